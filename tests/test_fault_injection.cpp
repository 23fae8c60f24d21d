// Every Vulkan failure injected (issue 16, item 1): an engine adopts its device into vkmha through a wrapping
// vkGetInstanceProcAddr (support/fault_injector.h), runs one small scenario through the C ABI — context, model,
// session, host submit and read back, KV cache and cached steps, a sliced prefill recorded into the engine's own
// command buffer, destroy — and for every N fails the Nth fallible Vulkan call vkmha makes (out of device memory,
// out of host memory, device lost) and then the Nth host allocation made through the engine's VkAllocationCallbacks.
// For every N: no crash or hang, the failing vkmha call returns a negative result whose message names the Vulkan
// call, the objects made before a recoverable failure finish the scenario when it is retried (outputs checked
// against the CPU reference), after a device loss every call on the context says so, and nothing leaks (the
// wrapper's create/destroy counts balance; the validation layer's object tracker reports nothing at the end).
#undef VK_NO_PROTOTYPES // the engine side calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/engine_device.h"
#include "support/fault_injector.h"
#include "support/host_model.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using vkmha::test::api;
using vkmha::test::CacheHandle;
using vkmha::test::ContextHandle;
using vkmha::test::EngineDevice;
using vkmha::test::FaultInjector;
using vkmha::test::HostBuffer;
using vkmha::test::HostModel;
using vkmha::test::JobHandle;
using vkmha::test::ModelHandle;
using vkmha::test::SessionHandle;

// The smallest layer that still takes every path: GQA (2 query heads over 1 KV head), head dim 8.
constexpr uint32_t kEmbed = 16, kHeads = 2, kKvHeads = 1;
constexpr uint32_t kSubmitTokens = 4;  // the one-shot host submit: self-attention over 4 tokens
constexpr uint32_t kCapacity = 8;      // KV cache rows per sequence
constexpr uint32_t kPrefillTokens = 6; // the sliced prefill's prompt (cache sequence 1)

const HostModel& layer() {
    static const HostModel m = vkmha::test::make_model(
        {.embed = kEmbed, .heads = kHeads, .kv_heads = kKvHeads, .naming = vkmha::test::Naming::llama, .seed = 16});
    return m;
}

// Self-attention of the last `lq` of `tokens` ([lk, E]) over all of them; causal (bottom-right) when asked.
std::vector<float> reference(const std::vector<float>& tokens, uint32_t lq, bool causal) {
    const uint32_t lk = static_cast<uint32_t>(tokens.size() / kEmbed);
    vkmha::AttentionOptions o;
    o.causal = causal;
    const std::vector<float> query(tokens.end() - std::ptrdiff_t(size_t(lq) * kEmbed), tokens.end());
    vkmha::AttentionInputs in;
    in.query = query.data();
    in.key = tokens.data();
    in.value = tokens.data();
    auto r = vkmha::reference_attention(layer().config, layer().weights, vkmha::AttentionShape{1, lq, lk}, o, in);
    REQUIRE_MESSAGE(r.ok(), "CPU reference failed: ", r.error().message);
    return std::move(r.value().output);
}

bool matches(const float* got, const std::vector<float>& ref) {
    for (size_t i = 0; i < ref.size(); ++i)
        if (!(std::fabs(got[i] - ref[i]) <= 1e-4 + 1e-3 * std::fabs(ref[i]))) return false;
    return true;
}

// The inputs every run uses, and the outputs the CPU reference gives for them.
struct Data {
    std::vector<float> tokens; // [kCapacity, E]: submit uses the first 4, cached steps the first 4 as 3 + 1 tokens
    std::vector<float> prompt; // [kPrefillTokens, E]
    std::vector<float> submit_ref, step1_ref, step2_ref, prefill_ref;
    std::vector<uint8_t> pipeline_cache; // getPipelineCacheData after a clean run
    Data() {
        std::mt19937 rng(1616);
        tokens = vkmha::test::random_floats(rng, size_t(kCapacity) * kEmbed, 1.0f);
        prompt = vkmha::test::random_floats(rng, size_t(kPrefillTokens) * kEmbed, 1.0f);
        const std::vector<float> first4(tokens.begin(), tokens.begin() + 4 * kEmbed);
        submit_ref = reference(first4, kSubmitTokens, false);
        step1_ref = reference(std::vector<float>(tokens.begin(), tokens.begin() + 3 * kEmbed), 3, true);
        step2_ref = reference(first4, 1, true);
        prefill_ref = reference(prompt, kPrefillTokens, true);
    }
};

// The engine's side: its command buffer and fence for the prefill frames and the prompt/output buffers.
struct Engine {
    EngineDevice device;
    VkCommandPool pool = VK_NULL_HANDLE;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    HostBuffer prompt, output;
    VkAllocationCallbacks allocator = FaultInjector::instance().allocator();
    Engine() {
        REQUIRE_MESSAGE(device.ok(), "engine device: ", device.error());
        pool = device.create_command_pool();
        cmd = device.allocate_command_buffer(pool);
        fence = device.create_fence();
        const size_t bytes = size_t(kPrefillTokens) * kEmbed * sizeof(float);
        prompt = device.create_host_buffer(bytes);
        output = device.create_host_buffer(bytes);
        REQUIRE((cmd && fence && prompt && output));
    }
    ~Engine() { release(); }
    // Everything but the device, so that the device can be destroyed (and its object tracker report) first.
    void release() {
        prompt.reset();
        output.reset();
        if (fence) vkDestroyFence(device.device(), fence, nullptr);
        if (pool) vkDestroyCommandPool(device.device(), pool, nullptr);
        fence = VK_NULL_HANDLE;
        pool = VK_NULL_HANDLE;
    }
};

// What one run of the scenario saw.
struct Outcome {
    VkmhaResult result = VKMHA_SUCCESS; // the first failure's result
    std::string call;                   // the vkmha call that failed
    std::string message;                // its getLastError text
    bool wrong_output = false;          // an output differed from the CPU reference
    bool completed = false;             // every step succeeded, possibly after a retry
    std::string lost_check;             // after DEVICE_LOST: a later call that did not report it
};

// The scenario as a list of vkmha calls; a failed run resumes at the call that failed, keeping every object made.
class Scenario {
  public:
    Scenario(Engine& engine, const Data& data) : m_engine(engine), m_data(data) { build(); }

    // Runs the remaining steps; returns false at the first failure (recorded in `out`).
    bool run(Outcome& out) {
        for (; m_next < m_steps.size(); ++m_next) {
            const VkmhaResult r = m_steps[m_next].call();
            if (r == VKMHA_SUCCESS) continue;
            out.result = r;
            out.call = m_steps[m_next].name;
            out.message = api().getLastError();
            return false;
        }
        return true;
    }
    // After a device loss: a fresh call on the context (or a model of it) must report it too.
    VkmhaResult call_after_loss() {
        if (m_model.get()) {
            const VkmhaSessionCreateInfo si = session_info(false);
            SessionHandle extra;
            return api().createSession(m_model.get(), &si, extra.out());
        }
        if (m_context.get()) {
            const std::vector<VkmhaTensor> views = vkmha::test::tensor_views(layer().tensors);
            VkmhaModelCreateInfo mi = vkmha::test::model_info(kHeads, views);
            ModelHandle extra;
            return api().createModel(m_context.get(), &mi, extra.out());
        }
        return VKMHA_ERROR_DEVICE_LOST; // nothing was made on the context yet
    }
    bool has_context() const { return m_context.get() != nullptr; }
    std::vector<uint8_t> pipeline_cache_data() {
        size_t size = 0;
        REQUIRE_VKMHA(api().getPipelineCacheData(m_context.get(), &size, nullptr));
        std::vector<uint8_t> bytes(size);
        REQUIRE_VKMHA(api().getPipelineCacheData(m_context.get(), &size, bytes.data()));
        bytes.resize(size);
        return bytes;
    }
    bool wrong_output() const { return m_wrong; }
    // Destroys everything, children first.
    void destroy() {
        m_job.reset();
        m_record_session.reset();
        m_session.reset(); // before the cache: destroying a session waits for its host submits, which use the cache
        m_cache.reset();
        m_model.reset();
        m_context.reset();
    }

  private:
    struct Step {
        const char* name;
        std::function<VkmhaResult()> call;
    };

    static VkmhaSessionCreateInfo session_info(bool host_io) {
        VkmhaSessionCreateInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
        si.maxBatch = 1;
        si.maxQueryLength = host_io ? kSubmitTokens : 1;
        si.maxKeyLength = host_io ? kSubmitTokens : kCapacity;
        si.hostIo = host_io ? VK_TRUE : VK_FALSE;
        return si;
    }

    VkmhaResult read(uint64_t value, const std::vector<float>& ref, size_t rows) {
        std::vector<float> out(rows * kEmbed);
        const VkmhaResult r = api().readOutputs(m_session.get(), value, out.data(), out.size(), nullptr, 0);
        if (r == VKMHA_SUCCESS && !matches(out.data(), ref)) m_wrong = true;
        return r;
    }

    VkmhaResult cached_submit(uint32_t first, uint32_t count, uint64_t& value) {
        const VkmhaSequenceStep step{0, count};
        VkmhaHostCachedSubmitInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
        si.cache = m_cache.get();
        si.stepCount = 1;
        si.pSteps = &step;
        si.pQuery = m_data.tokens.data() + size_t(first) * kEmbed;
        return api().submitCached(m_session.get(), &si, &value);
    }

    // One prefill piece per engine frame, recorded into the engine's command buffer, until the job is done.
    VkmhaResult prefill_frames() {
        const VkDevice device = m_engine.device.device();
        const VkCommandBuffer cmd = m_engine.cmd;
        const size_t bytes = size_t(kPrefillTokens) * kEmbed * sizeof(float);
        VkmhaPrefillRecordInfo ri{};
        ri.sType = VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO;
        ri.job = m_job.get();
        ri.maxRows = 4;
        ri.maxKeys = 4;
        ri.query = {m_engine.prompt.buffer(), 0, bytes, 0, 0};
        ri.output = {m_engine.output.buffer(), 0, bytes, 0, 0};
        for (int guard = 0; guard < 200; ++guard) {
            ri.frameIndex = m_frame;
            ri.completedFrame = m_frame ? m_frame - 1 : VKMHA_NO_FRAME;
            REQUIRE(vkResetCommandBuffer(cmd, 0) == VK_SUCCESS);
            VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
            bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
            REQUIRE(vkBeginCommandBuffer(cmd, &bi) == VK_SUCCESS);
            VkmhaPrefillStatus st{};
            const VkmhaResult r = api().recordPrefill(m_record_session.get(), cmd, &ri, &st);
            if (r == VKMHA_SUCCESS) {
                VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
                b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
                b.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &b, 0,
                                     nullptr, 0, nullptr);
            }
            REQUIRE(vkEndCommandBuffer(cmd) == VK_SUCCESS);
            if (r != VKMHA_SUCCESS) return r; // the engine drops the frame; the retry records the next one
            REQUIRE(vkResetFences(device, 1, &m_engine.fence) == VK_SUCCESS);
            REQUIRE(m_engine.device.submit(cmd, m_engine.fence) == VK_SUCCESS);
            REQUIRE(vkWaitForFences(device, 1, &m_engine.fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
            ++m_frame;
            if (st.done) {
                if (!matches(reinterpret_cast<const float*>(m_engine.output.bytes()), m_data.prefill_ref))
                    m_wrong = true;
                return VKMHA_SUCCESS;
            }
        }
        FAIL("the prefill job did not finish in 200 frames");
        return VKMHA_ERROR_INTERNAL;
    }

    void build() {
        m_steps = {
            {"createContext",
             [this] {
                 VkmhaAdoptDeviceInfo a = vkmha::test::adopt_info(m_engine.device, VK_NULL_HANDLE);
                 a.pfnGetInstanceProcAddr = FaultInjector::get_instance_proc_addr();
                 a.pAllocator = &m_engine.allocator;
                 VkmhaContextCreateInfo ci{};
                 ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
                 ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
                 ci.pAdoptDevice = &a;
                 // Pipelines from an earlier run's cache: compiling them is most of a run's time on lavapipe.
                 ci.pPipelineCacheData = m_data.pipeline_cache.data();
                 ci.pipelineCacheDataSize = m_data.pipeline_cache.size();
                 return api().createContext(&ci, m_context.out());
             }},
            {"createModel",
             [this] {
                 const std::vector<VkmhaTensor> views = vkmha::test::tensor_views(layer().tensors);
                 VkmhaModelCreateInfo mi = vkmha::test::model_info(kHeads, views);
                 return api().createModel(m_context.get(), &mi, m_model.out());
             }},
            {"createSession",
             [this] {
                 const VkmhaSessionCreateInfo si = session_info(true);
                 return api().createSession(m_model.get(), &si, m_session.out());
             }},
            {"submit",
             [this] {
                 VkmhaHostSubmitInfo si{};
                 si.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
                 si.batch = 1;
                 si.queryLength = si.keyLength = kSubmitTokens;
                 si.pQuery = m_data.tokens.data();
                 return api().submit(m_session.get(), &si, &m_value);
             }},
            {"wait", [this] { return api().wait(m_session.get(), m_value, UINT64_MAX); }},
            {"readOutputs", [this] { return read(m_value, m_data.submit_ref, kSubmitTokens); }},
            {"createKvCache",
             [this] {
                 VkmhaKvCacheCreateInfo ci{};
                 ci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
                 ci.sequences = 2;
                 ci.capacity = kCapacity;
                 return api().createKvCache(m_model.get(), &ci, m_cache.out());
             }},
            {"submitCached", [this] { return cached_submit(0, 3, m_value); }},
            {"wait", [this] { return api().wait(m_session.get(), m_value, UINT64_MAX); }},
            {"readOutputs", [this] { return read(m_value, m_data.step1_ref, 3); }},
            {"submitCached", [this] { return cached_submit(3, 1, m_value); }},
            {"wait", [this] { return api().wait(m_session.get(), m_value, UINT64_MAX); }},
            {"readOutputs", [this] { return read(m_value, m_data.step2_ref, 1); }},
            {"createSession",
             [this] {
                 const VkmhaSessionCreateInfo si = session_info(false);
                 return api().createSession(m_model.get(), &si, m_record_session.out());
             }},
            {"createPrefillJob",
             [this] {
                 std::memcpy(m_engine.prompt.bytes(), m_data.prompt.data(), m_data.prompt.size() * sizeof(float));
                 std::memset(m_engine.output.bytes(), 0xFF, m_data.prompt.size() * sizeof(float)); // NaNs
                 VkmhaPrefillJobCreateInfo ji{};
                 ji.sType = VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO;
                 ji.cache = m_cache.get();
                 ji.sequence = 1;
                 ji.tokenCount = kPrefillTokens;
                 return api().createPrefillJob(m_model.get(), &ji, m_job.out());
             }},
            {"recordPrefill", [this] { return prefill_frames(); }},
        };
    }

    Engine& m_engine;
    const Data& m_data;
    std::vector<Step> m_steps;
    size_t m_next = 0;
    uint64_t m_value = 0, m_frame = 0;
    bool m_wrong = false;
    ContextHandle m_context;
    ModelHandle m_model;
    SessionHandle m_session;
    CacheHandle m_cache;
    SessionHandle m_record_session;
    JobHandle m_job;
};

// One run with the injector armed: the first failure, then (unless the device is lost) a retry without injection.
Outcome run_once(Engine& engine, const Data& data) {
    Outcome o;
    Scenario s(engine, data);
    if (!s.run(o)) {
        FaultInjector::instance().disarm();
        if (o.result == VKMHA_ERROR_DEVICE_LOST) {
            const VkmhaResult again = s.call_after_loss();
            if (again != VKMHA_ERROR_DEVICE_LOST)
                o.lost_check = "a call after the loss returned " + vkmha::test::result_name(again);
        } else {
            Outcome retry;
            o.completed = s.run(retry);
            if (!o.completed) o.message += " | retry: " + retry.call + " " + retry.message;
        }
    } else {
        o.completed = true;
    }
    o.wrong_output = s.wrong_output();
    s.destroy(); // failures injected into destroy calls have nothing to report
    FaultInjector::instance().disarm();
    return o;
}

const char* kind_name(VkResult r) {
    switch (r) {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    default: return "another VkResult";
    }
}

std::string without_khr(std::string name) {
    if (name.size() > 3 && name.compare(name.size() - 3, 3, "KHR") == 0) name.resize(name.size() - 3);
    return name;
}

std::string live_text(const std::map<std::string, int64_t>& live) {
    std::string s;
    for (const auto& [type, n] : live) s += type + " " + std::to_string(n) + "; ";
    return s;
}

struct Tally {
    uint64_t runs = 0, injected = 0, reported = 0, in_destroy = 0, skipped = 0, lost = 0, absorbed = 0;
};

// Checks one injected run; `what` names the N and the error kind for messages.
void check_run(const Outcome& o, const std::string& what, const std::string& failed_call, VkResult kind, Tally& tally,
               const EngineDevice& engine, uint64_t messages_before) {
    ++tally.runs;
    FaultInjector& fi = FaultInjector::instance();
    const auto live = fi.live_objects();
    CHECK_MESSAGE(live.empty(), what, ": objects left after destroy: ", live_text(live));
    CHECK_MESSAGE(fi.live_allocations() == 0, what, ": ", fi.live_allocations(), " host allocations left");
    CHECK_MESSAGE(engine.validation_messages() == messages_before, what,
                  ": validation: ", engine.last_validation_message());
    CHECK_MESSAGE(!o.wrong_output, what, ": an output differs from the CPU reference (", failed_call, ")");
    if (o.result == VKMHA_SUCCESS) {
        // The failure happened where no vkmha call can report it: in a destroy call.
        CHECK_MESSAGE(o.completed, what, ": the scenario did not complete");
        ++tally.in_destroy;
        return;
    }
    ++tally.reported;
    CHECK_MESSAGE(o.result < 0, what, ": ", o.call, " returned ", vkmha::test::result_name(o.result));
    CHECK_MESSAGE(o.message.find(without_khr(failed_call)) != std::string::npos, what, ": ", o.call,
                  "'s message does not name ", failed_call, ": ", o.message);
    if (kind == VK_ERROR_DEVICE_LOST)
        CHECK_MESSAGE(o.result == VKMHA_ERROR_DEVICE_LOST, what, ": ", o.call, " returned ",
                      vkmha::test::result_name(o.result), ", not VKMHA_ERROR_DEVICE_LOST: ", o.message);
    if (o.result == VKMHA_ERROR_DEVICE_LOST) {
        ++tally.lost;
        CHECK_MESSAGE(o.lost_check.empty(), what, ": ", o.lost_check);
    } else {
        CHECK_MESSAGE(o.completed, what, ": after ", o.call, " failed (", o.message,
                      ") the retry without injection did not complete");
    }
}

// The targeted tests' set-up: the engine's device adopted through the injector, one model, a host-I/O session and
// a KV cache, made without injection.
struct Adopted {
    Engine engine;
    ContextHandle context;
    ModelHandle model;
    SessionHandle session;
    CacheHandle cache;
    Adopted() {
        FaultInjector::instance().disarm();
        create_context();
        create_model(model);
        VkmhaSessionCreateInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
        si.maxBatch = 1;
        si.maxQueryLength = si.maxKeyLength = kSubmitTokens;
        si.hostIo = VK_TRUE;
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
        VkmhaKvCacheCreateInfo ci{};
        ci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
        ci.sequences = 2;
        ci.capacity = kCapacity;
        REQUIRE_VKMHA(api().createKvCache(model.get(), &ci, cache.out()));
    }
    void create_context() {
        VkmhaAdoptDeviceInfo a = vkmha::test::adopt_info(engine.device, VK_NULL_HANDLE);
        a.pfnGetInstanceProcAddr = FaultInjector::get_instance_proc_addr();
        VkmhaContextCreateInfo ci{};
        ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
        ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
        ci.pAdoptDevice = &a;
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
    }
    VkmhaResult try_create_model(ModelHandle& out) {
        const std::vector<VkmhaTensor> views = vkmha::test::tensor_views(layer().tensors);
        const VkmhaModelCreateInfo mi = vkmha::test::model_info(kHeads, views);
        return api().createModel(context.get(), &mi, out.out());
    }
    void create_model(ModelHandle& out) { REQUIRE_VKMHA(try_create_model(out)); }
    VkmhaResult submit_cached(const Data& data, uint32_t first, uint32_t count, uint64_t& value) {
        const VkmhaSequenceStep step{0, count};
        VkmhaHostCachedSubmitInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
        si.cache = cache.get();
        si.stepCount = 1;
        si.pSteps = &step;
        si.pQuery = data.tokens.data() + size_t(first) * kEmbed;
        return api().submitCached(session.get(), &si, &value);
    }
    // A one-shot submit on `on` (a host-I/O session) and its output.
    std::vector<float> submit_and_read(VkmhaSession on, const Data& data) {
        VkmhaHostSubmitInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
        si.batch = 1;
        si.queryLength = si.keyLength = kSubmitTokens;
        si.pQuery = data.tokens.data();
        uint64_t value = 0;
        REQUIRE_VKMHA(api().submit(on, &si, &value));
        REQUIRE_VKMHA(api().wait(on, value, UINT64_MAX));
        std::vector<float> out(size_t(kSubmitTokens) * kEmbed);
        REQUIRE_VKMHA(api().readOutputs(on, value, out.data(), out.size(), nullptr, 0));
        return out;
    }
    uint32_t length(uint32_t sequence) {
        uint32_t n = 0;
        REQUIRE_VKMHA(api().getKvCacheLength(cache.get(), sequence, &n));
        return n;
    }
    ~Adopted() { FaultInjector::instance().disarm(); }
};

// A clean run that fills data.pipeline_cache (so the sweep's runs compile nothing), then one that counts the calls
// or allocations of the scenario as every swept run makes them.
void warm_up(Engine& engine, Data& data) {
    FaultInjector::instance().disarm();
    {
        Outcome o;
        Scenario s(engine, data);
        REQUIRE_MESSAGE(s.run(o), "the scenario fails without injection: ", o.call, ": ", o.message);
        data.pipeline_cache = s.pipeline_cache_data();
        s.destroy();
    }
}

void sweep_calls(VkResult kind) {
    Data data;
    Tally tally;
    const auto start = std::chrono::steady_clock::now();
    Engine engine;
    warm_up(engine, data);
    FaultInjector& fi = FaultInjector::instance();
    fi.arm_call(0, VK_SUCCESS);
    const Outcome clean = run_once(engine, data);
    REQUIRE_MESSAGE(clean.completed, "the scenario fails without injection: ", clean.call, ": ", clean.message);
    REQUIRE(!clean.wrong_output);
    const uint64_t total = fi.calls();
    REQUIRE(total > 0);
    for (uint64_t n = 1; n <= total; ++n) {
        const uint64_t messages = engine.device.validation_messages();
        fi.arm_call(n, kind);
        const Outcome o = run_once(engine, data);
        REQUIRE_MESSAGE(fi.fired(), "call ", n, " of ", total, " was never made: the scenario changed");
        ++tally.injected;
        const std::string what =
            std::string("call ") + std::to_string(n) + " (" + fi.failed_call() + ") failing with " + kind_name(kind);
        check_run(o, what, fi.failed_call(), kind, tally, engine.device, messages);
    }
    MESSAGE("fault injection (", std::string(kind_name(kind)), "): ", total, " fallible calls in the scenario, ",
            tally.injected, " failures injected: ", tally.reported, " reported by the failing call (", tally.lost,
            " as device lost), ", tally.in_destroy, " inside destroy calls (nothing to report); ",
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), " s");
    engine.release();
    engine.device.destroy(); // the object tracker reports undestroyed objects here
    CHECK_MESSAGE(engine.device.validation_messages() == 0, engine.device.last_validation_message());
}

} // namespace

TEST_SUITE("fault_injection") {
    TEST_CASE("submitCached: a failed vkQueueSubmit or vkEndCommandBuffer leaves the KV cache lengths unchanged") {
        const Data data;
        for (const char* call : {"vkQueueSubmit", "vkEndCommandBuffer"}) {
            const std::string name = call;
            CAPTURE(name);
            Adopted a;
            uint64_t value = 0;
            FaultInjector::instance().arm_named(call, 1, VK_ERROR_OUT_OF_DEVICE_MEMORY);
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_MEMORY, a.submit_cached(data, 0, 3, value), call);
            FaultInjector::instance().disarm();
            CHECK(a.length(0) == 0);
            // The retry attends over the positions it writes, not over three that no step ever wrote.
            REQUIRE_VKMHA(a.submit_cached(data, 0, 3, value));
            REQUIRE_VKMHA(api().wait(a.session.get(), value, UINT64_MAX));
            CHECK(a.length(0) == 3);
            std::vector<float> out(3 * kEmbed);
            REQUIRE_VKMHA(api().readOutputs(a.session.get(), value, out.data(), out.size(), nullptr, 0));
            CHECK(matches(out.data(), data.step1_ref));
        }
    }

    TEST_CASE("createModel: a failed vkResetFences fails it, and the next model's upload is waited for") {
        const Data data;
        Adopted a;
        ModelHandle failed, next;
        FaultInjector::instance().arm_named("vkResetFences", 1, VK_ERROR_OUT_OF_DEVICE_MEMORY);
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_MEMORY, a.try_create_model(failed), "vkResetFences");
        FaultInjector::instance().disarm();
        CHECK(failed.get() == nullptr);
        a.create_model(next);
        VkmhaSessionCreateInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
        si.maxBatch = 1;
        si.maxQueryLength = si.maxKeyLength = kSubmitTokens;
        si.hostIo = VK_TRUE;
        SessionHandle session;
        REQUIRE_VKMHA(api().createSession(next.get(), &si, session.out()));
        const std::vector<float> out = a.submit_and_read(session.get(), data);
        CHECK_MESSAGE(matches(out.data(), data.submit_ref), "the second model's weights were not uploaded in time");
    }

    TEST_CASE("createModel: a failed vkWaitForFences frees nothing the GPU still uses") {
        for (VkResult kind : {VK_ERROR_OUT_OF_HOST_MEMORY, VK_ERROR_DEVICE_LOST}) {
            const std::string name = kind_name(kind);
            CAPTURE(name);
            Adopted a;
            const uint64_t messages = a.engine.device.validation_messages();
            ModelHandle failed;
            FaultInjector::instance().arm_named("vkWaitForFences", 1, kind);
            EXPECT_FAILURE(kind == VK_ERROR_DEVICE_LOST ? VKMHA_ERROR_DEVICE_LOST : VKMHA_ERROR_OUT_OF_MEMORY,
                           a.try_create_model(failed), "vkWaitForFences");
            FaultInjector::instance().disarm();
            CHECK_MESSAGE(a.engine.device.validation_messages() == messages, a.engine.device.last_validation_message());
        }
    }

    TEST_CASE("createModel: overlapping calls on one context take turns on its upload pool and fence") {
        const Data data;
        Adopted a;
        const uint64_t messages = a.engine.device.validation_messages();
        constexpr int kThreads = 4;
        std::vector<ModelHandle> models(kThreads);
        std::vector<VkmhaResult> results(kThreads, VKMHA_ERROR_INTERNAL);
        {
            std::vector<std::thread> threads;
            for (int i = 0; i < kThreads; ++i)
                threads.emplace_back([&, i] { results[size_t(i)] = a.try_create_model(models[size_t(i)]); });
            for (std::thread& t : threads) t.join();
        }
        for (int i = 0; i < kThreads; ++i) {
            CAPTURE(i);
            REQUIRE(results[size_t(i)] == VKMHA_SUCCESS);
            VkmhaSessionCreateInfo si{};
            si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
            si.maxBatch = 1;
            si.maxQueryLength = si.maxKeyLength = kSubmitTokens;
            si.hostIo = VK_TRUE;
            SessionHandle session;
            REQUIRE_VKMHA(api().createSession(models[size_t(i)].get(), &si, session.out()));
            const std::vector<float> out = a.submit_and_read(session.get(), data);
            CHECK(matches(out.data(), data.submit_ref));
        }
        CHECK_MESSAGE(a.engine.device.validation_messages() == messages, a.engine.device.last_validation_message());
    }

    TEST_CASE("device lost: VKMHA_ERROR_DEVICE_LOST, then every call on the context says so until it is destroyed") {
        const Data data;
        Adopted a;
        uint64_t value = 0;
        FaultInjector::instance().arm_named("vkQueueSubmit", 1, VK_ERROR_DEVICE_LOST);
        EXPECT_FAILURE(VKMHA_ERROR_DEVICE_LOST, a.submit_cached(data, 0, 3, value), "vkQueueSubmit",
                       "VK_ERROR_DEVICE_LOST");
        FaultInjector::instance().disarm();
        uint32_t length = 0;
        EXPECT_FAILURE(VKMHA_ERROR_DEVICE_LOST, api().getKvCacheLength(a.cache.get(), 0, &length), "lost");
        EXPECT_FAILURE(VKMHA_ERROR_DEVICE_LOST, a.submit_cached(data, 0, 3, value), "lost");
        ModelHandle model;
        EXPECT_FAILURE(VKMHA_ERROR_DEVICE_LOST, a.try_create_model(model), "lost");
        VkmhaContextProperties p{};
        p.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
        EXPECT_FAILURE(VKMHA_ERROR_DEVICE_LOST, api().getContextProperties(a.context.get(), &p), "lost");
        // Destroying still works, and a fresh context on the same (in truth healthy) device is not lost.
        a.cache.reset();
        a.session.reset();
        a.model.reset();
        a.create_context();
        a.create_model(model);
    }

    TEST_CASE("host submit: a failed vkResetCommandBuffer is named as such") {
        const Data data;
        Adopted a;
        uint64_t value = 0;
        FaultInjector::instance().arm_named("vkResetCommandBuffer", 1, VK_ERROR_OUT_OF_HOST_MEMORY);
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_MEMORY, a.submit_cached(data, 0, 3, value), "vkResetCommandBuffer");
        FaultInjector::instance().disarm();
        CHECK(a.length(0) == 0);
    }

    TEST_CASE("sweep: every fallible Vulkan call fails once with VK_ERROR_OUT_OF_DEVICE_MEMORY") {
        sweep_calls(VK_ERROR_OUT_OF_DEVICE_MEMORY);
    }
    TEST_CASE("sweep: every fallible Vulkan call fails once with VK_ERROR_OUT_OF_HOST_MEMORY") {
        sweep_calls(VK_ERROR_OUT_OF_HOST_MEMORY);
    }
    TEST_CASE("sweep: every fallible Vulkan call fails once with VK_ERROR_DEVICE_LOST") {
        sweep_calls(VK_ERROR_DEVICE_LOST);
    }

    TEST_CASE("sweep: every host allocation through the engine's VkAllocationCallbacks fails once") {
        Data data;
        Tally tally;
        const auto start = std::chrono::steady_clock::now();
        {
            Engine engine;
            warm_up(engine, data);
            std::map<std::string, uint64_t> skipped_in;
            FaultInjector& fi = FaultInjector::instance();
            fi.arm_allocation(0);
            const Outcome clean = run_once(engine, data);
            REQUIRE_MESSAGE(clean.completed, "the scenario fails without injection: ", clean.call, ": ", clean.message);
            const uint64_t total = fi.allocations();
            REQUIRE(total > 0);
            for (uint64_t n = 1; n <= total; ++n) {
                const uint64_t messages = engine.device.validation_messages();
                fi.arm_allocation(n);
                const Outcome o = run_once(engine, data);
                if (fi.skipped_in_recording()) {
                    // Inside a call that returns no VkResult (vkCmd*, vkUpdateDescriptorSets, a destroy): the driver
                    // must cope alone, and lavapipe does not (it segfaults or drops the command) — not vkmha's to test.
                    ++tally.skipped;
                    ++skipped_in[fi.failed_call()];
                    continue;
                }
                REQUIRE_MESSAGE(fi.fired(), "allocation ", n, " of ", total, " was never made: the scenario changed");
                ++tally.injected;
                const std::string call = fi.failed_call();
                const std::string what = "host allocation " + std::to_string(n) + " (in " + call + ")";
                if (o.result == VKMHA_SUCCESS && call.rfind("vk", 0) != 0) {
                    // Outside every wrapped call (e.g. a debug name, whose failure vkmha ignores on purpose).
                    ++tally.absorbed;
                    continue;
                }
                check_run(o, what, call, VK_SUCCESS, tally, engine.device, messages);
            }
            MESSAGE("host-allocation fault injection: ", total, " allocations in the scenario, ", tally.injected,
                    " failed (", tally.reported, " reported by the failing call, ", tally.in_destroy,
                    " inside destroy calls, ", tally.absorbed, " outside any fallible call), ", tally.skipped,
                    " skipped: inside a call that cannot report (the driver's, noted)");
            std::string where;
            for (const auto& [call, count] : skipped_in) where += call + " " + std::to_string(count) + "; ";
            MESSAGE("skipped allocations by call: ", where);
            engine.release();
            engine.device.destroy();
            CHECK_MESSAGE(engine.device.validation_messages() == 0, engine.device.last_validation_message());
        }
        MESSAGE("sweep took ", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), " s");
    }
}
