// The header's threading rules, exercised (issue 16, item 2): sessions of one shared model recording and submitting
// from several threads at once, host submits racing on the context's one queue, a KV cache per thread, and
// createModel / createSession / destroySession racing on one context. Every thread's outputs are compared with the
// CPU reference. scripts/test.sh runs this suite again in a ThreadSanitizer build (tests/tsan.supp), which is what
// finds a race; the release run checks that racing threads still compute the right thing.
// Worker threads never call doctest: each collects its failures as text, and the test thread checks them.
#undef VK_NO_PROTOTYPES // the engine side calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/call_infos.h"
#include "support/engine_device.h"
#include "support/engine_frame.h"
#include "support/host_model.h"
#include "support/plugin_api.h"
#include "support/run_inputs.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using vkmha::AttentionOptions;
using vkmha::AttentionShape;
using vkmha::test::api;
using vkmha::test::ContextHandle;
using vkmha::test::EngineDevice;
using vkmha::test::HostBuffer;
using vkmha::test::HostModel;
using vkmha::test::LogCapture;
using vkmha::test::ModelHandle;
using vkmha::test::RunInputs;

constexpr uint32_t kThreads = 4;

// Head dim 80 over 3 query heads and 1 KV head (GQA, a head count that is no power of two), Llama names.
vkmha::test::ModelSpec spec(uint32_t seed) {
    return {.embed = 240, .heads = 3, .kv_heads = 1, .naming = vkmha::test::Naming::llama, .seed = seed};
}

// What went wrong in one worker thread, checked on the test thread.
struct Failures {
    std::string text;
    void add(const std::string& what) { text += what + "\n"; }
    // A vkmha call's failure, with the calling thread's message.
    bool call(VkmhaResult r, const char* what) {
        if (r == VKMHA_SUCCESS) return true;
        add(std::string(what) + " returned " + vkmha::test::result_name(r) + ": " + vkmha::test::last_error());
        return false;
    }
    // |got - ref| <= 1e-4 + 1e-3 |ref| everywhere (the fp32 bound the plugin suites use).
    void compare(const float* got, const std::vector<float>& ref, const std::string& what) {
        for (size_t i = 0; i < ref.size(); ++i)
            if (!(std::fabs(got[i] - ref[i]) <= 1e-4 + 1e-3 * std::fabs(ref[i]))) {
                add(what + ": element " + std::to_string(i) + " is " + std::to_string(got[i]) + ", reference " +
                    std::to_string(ref[i]));
                return;
            }
    }
};

// Runs `body(t, failures[t])` on kThreads threads at once and checks that none failed.
void run_threads(const std::function<void(uint32_t, Failures&)>& body) {
    std::vector<Failures> failures(kThreads);
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { body(t, failures[t]); });
    for (std::thread& th : threads) th.join();
    for (uint32_t t = 0; t < kThreads; ++t)
        CHECK_MESSAGE(failures[t].text.empty(), "thread ", t, ":\n", failures[t].text);
}

// Inputs of one call: self-attention when lq == lk, else cross-attention with the key as value; causal for odd
// seeds.
RunInputs inputs(const HostModel& m, AttentionShape shape, uint32_t seed) {
    AttentionOptions o;
    o.causal = seed % 2 == 1;
    const bool cross = shape.lq != shape.lk;
    return vkmha::test::make_inputs(m.config, shape, o, cross, false, seed);
}

// submit, wait and readOutputs on a host-I/O session, compared with the CPU reference.
void submit_and_check(VkmhaSession session, const HostModel& m, const RunInputs& in, const std::string& what,
                      Failures& f) {
    const VkmhaHostSubmitInfo hi = vkmha::test::host_submit_info(in);
    uint64_t value = 0;
    if (!f.call(api().submit(session, &hi, &value), "submit")) return;
    if (!f.call(api().wait(session, value, UINT64_MAX), "wait")) return;
    std::vector<float> out(vkmha::test::output_count(m.config, in), std::nanf(""));
    if (!f.call(api().readOutputs(session, value, out.data(), out.size(), nullptr, 0), "readOutputs")) return;
    f.compare(out.data(), vkmha::test::reference(m, in).output, what);
}

const AttentionShape kShapes[] = {{1, 1, 1}, {1, 7, 7}, {2, 3, 5}, {1, 1, 9}};

// The causal outputs of `lq` new tokens, the last of `tokens` ([lk, E]), over all of them.
std::vector<float> causal_reference(const HostModel& m, const std::vector<float>& tokens, uint32_t lq) {
    const uint32_t lk = static_cast<uint32_t>(tokens.size() / m.config.embed_dim);
    AttentionOptions o;
    o.causal = true;
    const std::vector<float> query(tokens.end() - std::ptrdiff_t(size_t(lq) * m.config.embed_dim), tokens.end());
    vkmha::AttentionInputs in;
    in.query = query.data();
    in.key = tokens.data();
    in.value = tokens.data();
    auto r = vkmha::reference_attention(m.config, m.weights, AttentionShape{1, lq, lk}, o, in);
    return r ? std::move(r.value().output) : std::vector<float>{};
}

// Each thread's own KV cache (and session): tokens in steps of 3, 1, 1 and 4, each step checked.
void cached_steps(VkmhaModel model, const HostModel& m, uint32_t seed, Failures& f) {
    const uint32_t E = m.config.embed_dim, steps[] = {3, 1, 1, 4}, capacity = 9;
    VkmhaSession session = nullptr;
    VkmhaKvCache cache = nullptr;
    const VkmhaSessionCreateInfo si = vkmha::test::session_info(1, 4, capacity, true);
    VkmhaKvCacheCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
    ci.sequences = 1;
    ci.capacity = capacity;
    if (f.call(api().createSession(model, &si, &session), "createSession") &&
        f.call(api().createKvCache(model, &ci, &cache), "createKvCache")) {
        std::mt19937 rng(seed);
        const std::vector<float> tokens = vkmha::test::random_floats(rng, size_t(capacity) * E, 1.0f);
        uint32_t done = 0;
        for (uint32_t n : steps) {
            const VkmhaSequenceStep step{0, n};
            VkmhaHostCachedSubmitInfo hi{};
            hi.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
            hi.cache = cache;
            hi.stepCount = 1;
            hi.pSteps = &step;
            hi.pQuery = tokens.data() + size_t(done) * E;
            uint64_t value = 0;
            std::vector<float> out(size_t(n) * E, std::nanf(""));
            if (!f.call(api().submitCached(session, &hi, &value), "submitCached") ||
                !f.call(api().wait(session, value, UINT64_MAX), "wait") ||
                !f.call(api().readOutputs(session, value, out.data(), out.size(), nullptr, 0), "readOutputs"))
                break;
            done += n;
            const std::vector<float> seen(tokens.begin(), tokens.begin() + std::ptrdiff_t(size_t(done) * E));
            f.compare(out.data(), causal_reference(m, seen, n), "cached step to length " + std::to_string(done));
            uint32_t length = 0;
            if (f.call(api().getKvCacheLength(cache, 0, &length), "getKvCacheLength") && length != done)
                f.add("cache length " + std::to_string(length) + ", expected " + std::to_string(done));
        }
    }
    api().destroyKvCache(cache);
    api().destroySession(session);
}

} // namespace

TEST_SUITE("threads") {

    TEST_CASE("own mode: each thread creates, submits and destroys its own session on one shared model") {
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = vkmha::test::own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        const HostModel m = vkmha::test::make_model(spec(3));
        ModelHandle model;
        vkmha::test::create_model(context.get(), m, model);
        // Three rounds: sessions are created and destroyed while other threads' submits are in flight.
        run_threads([&](uint32_t t, Failures& f) {
            for (uint32_t round = 0; round < 3; ++round) {
                VkmhaSession session = nullptr;
                const VkmhaSessionCreateInfo si = vkmha::test::session_info(2, 7, 9, true, 1 + t % 3);
                if (!f.call(api().createSession(model.get(), &si, &session), "createSession")) return;
                for (uint32_t s = 0; s < 4; ++s) {
                    const AttentionShape shape = kShapes[(s + t) % 4];
                    submit_and_check(session, m, inputs(m, shape, 100 * t + 10 * round + s),
                                     "thread " + std::to_string(t) + " round " + std::to_string(round), f);
                }
                api().destroySession(session);
            }
        });
        vkmha::test::check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("own mode: a KV cache per thread, cached steps racing on one queue") {
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = vkmha::test::own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        const HostModel m = vkmha::test::make_model(spec(5));
        ModelHandle model;
        vkmha::test::create_model(context.get(), m, model);
        run_threads([&](uint32_t t, Failures& f) { cached_steps(model.get(), m, 50 + t, f); });
        vkmha::test::check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("own mode: createModel, createSession and destroy racing on one context") {
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = vkmha::test::own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        // Each thread its own layer: the uploads share the context's one-time command pool and fence.
        std::vector<HostModel> layers;
        for (uint32_t t = 0; t < kThreads; ++t) layers.push_back(vkmha::test::make_model(spec(20 + t)));
        run_threads([&](uint32_t t, Failures& f) {
            for (uint32_t round = 0; round < 2; ++round) {
                const std::vector<VkmhaTensor> views = vkmha::test::tensor_views(layers[t].tensors);
                const VkmhaModelCreateInfo mi = vkmha::test::model_info(layers[t].config.num_heads, views);
                VkmhaModel model = nullptr;
                VkmhaSession session = nullptr;
                const VkmhaSessionCreateInfo si = vkmha::test::session_info(1, 7, 7, true);
                if (f.call(api().createModel(context.get(), &mi, &model), "createModel") &&
                    f.call(api().createSession(model, &si, &session), "createSession"))
                    submit_and_check(session, layers[t], inputs(layers[t], {1, 7, 7}, t + round),
                                     "thread " + std::to_string(t), f);
                api().destroySession(session);
                api().destroyModel(model);
            }
        });
        vkmha::test::check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("adopt mode: threads record their own sessions of one model into their own command buffers") {
        EngineDevice engine;
        vkmha::test::require_engine(engine);
        // The engine's rule, not vkmha's: its queue is externally synchronised, so its threads take turns submitting.
        std::mutex queue_mutex;
        {
            ContextHandle context;
            vkmha::test::adopt_context(engine, context);
            const HostModel m = vkmha::test::make_model(spec(7));
            ModelHandle model;
            vkmha::test::create_model(context.get(), m, model);
            run_threads([&](uint32_t t, Failures& f) {
                const VkDevice dev = engine.device();
                const VkCommandPool pool = engine.create_command_pool();
                const VkCommandBuffer cmd = pool ? engine.allocate_command_buffer(pool) : VK_NULL_HANDLE;
                const VkFence fence = engine.create_fence();
                VkmhaSession session = nullptr;
                const VkmhaSessionCreateInfo si = vkmha::test::session_info(2, 7, 9, false, 2);
                if (cmd && fence && f.call(api().createSession(model.get(), &si, &session), "createSession")) {
                    for (uint32_t frame = 0; frame < 4; ++frame) {
                        const RunInputs in = inputs(m, kShapes[(frame + t) % 4], 200 + 10 * t + frame);
                        const bool cross = !in.key.empty();
                        HostBuffer q = engine.create_host_buffer(in.query.size() * 4);
                        HostBuffer k = engine.create_host_buffer(cross ? in.key.size() * 4 : 4);
                        HostBuffer out = engine.create_host_buffer(vkmha::test::output_count(m.config, in) * 4);
                        std::memcpy(q.bytes(), in.query.data(), in.query.size() * 4);
                        if (cross) std::memcpy(k.bytes(), in.key.data(), in.key.size() * 4);
                        VkmhaRecordInfo ri = vkmha::test::record_info(frame, frame ? frame - 1 : VKMHA_NO_FRAME, in);
                        ri.query = {q.buffer(), 0, q.size(), 0, 0};
                        if (cross) ri.key = {k.buffer(), 0, k.size(), 0, 0};
                        ri.output = {out.buffer(), 0, out.size(), 0, 0};
                        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
                        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
                        vkResetCommandBuffer(cmd, 0);
                        vkBeginCommandBuffer(cmd, &bi);
                        const VkmhaResult r = api().recordAttention(session, cmd, &ri);
                        vkmha::test::barrier_to_host(cmd);
                        vkEndCommandBuffer(cmd);
                        if (!f.call(r, "recordAttention")) break;
                        vkResetFences(dev, 1, &fence);
                        VkResult sr;
                        {
                            std::lock_guard<std::mutex> lock(queue_mutex);
                            sr = engine.submit(cmd, fence);
                        }
                        if (sr != VK_SUCCESS || vkWaitForFences(dev, 1, &fence, VK_TRUE, UINT64_MAX) != VK_SUCCESS) {
                            f.add("the engine's submit or wait failed");
                            break;
                        }
                        f.compare(reinterpret_cast<const float*>(out.bytes()), vkmha::test::reference(m, in).output,
                                  "thread " + std::to_string(t) + " frame " + std::to_string(frame));
                    }
                } else if (!cmd || !fence) {
                    f.add("engine command buffer or fence");
                }
                api().destroySession(session);
                if (fence) vkDestroyFence(dev, fence, nullptr);
                if (pool) vkDestroyCommandPool(dev, pool, nullptr);
            });
        }
        engine.destroy();
        vkmha::test::check_engine_quiet(engine);
    }
}
