// The C ABI 1.3 KV-cache state (issue 12, item 9): a sequence read back to host memory and written into a sequence
// again (save games), and a sequence forked into another on the GPU (branching dialogue). Each continues exactly
// as the uninterrupted run does: outputs are compared bit for bit with it, and a forked branch with the CPU
// reference too. fp32 and fp16 caches, GQA, a sliding-window ring that wraps, head dim 80; bad input is refused by
// name and leaves the cache as it was.
#undef VK_NO_PROTOTYPES // the engine side calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/compare.h"
#include "support/engine_frame.h"
#include "support/host_model.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using vkmha::test::api;
using vkmha::test::CacheHandle;
using vkmha::test::ContextHandle;
using vkmha::test::LogCapture;
using vkmha::test::ModelHandle;
using vkmha::test::SessionHandle;

struct Shape {
    uint32_t embed, heads, kv_heads; // head dim = embed / heads
    VkmhaPrecision precision;
    uint32_t capacity, window;
};

std::string shape_text(const Shape& s) {
    return "E " + std::to_string(s.embed) + " H " + std::to_string(s.heads) + " G " + std::to_string(s.kv_heads) +
           (s.precision == VKMHA_PRECISION_FP16 ? " fp16" : " fp32") + " capacity " + std::to_string(s.capacity) +
           " window " + std::to_string(s.window);
}

// Own mode, a Llama-named model of the shape, a host-I/O session for steps of up to 4 tokens.
struct Setup {
    Shape shape;
    LogCapture log;
    ContextHandle context;
    vkmha::test::HostModel host;
    ModelHandle model;
    SessionHandle session;
    explicit Setup(const Shape& s)
        : shape(s), host(vkmha::test::make_model({.embed = s.embed,
                                                  .heads = s.heads,
                                                  .kv_heads = s.kv_heads,
                                                  .naming = vkmha::test::Naming::llama,
                                                  .seed = 12})) {
        const VkmhaContextCreateInfo ci = vkmha::test::own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        const std::vector<VkmhaTensor> views = vkmha::test::tensor_views(host.tensors);
        VkmhaModelCreateInfo mi = vkmha::test::model_info(s.heads, views);
        mi.precision = s.precision;
        REQUIRE_VKMHA(api().createModel(context.get(), &mi, model.out()));
        VkmhaSessionCreateInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
        si.maxBatch = 1;
        si.maxQueryLength = 4;
        si.maxKeyLength = 1;
        si.hostIo = VK_TRUE;
        si.flags = VKMHA_SESSION_CREATE_FUSED_ONLY_BIT;
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
    }
    void create_cache(CacheHandle& out, uint32_t sequences) const {
        VkmhaKvCacheCreateInfo ci{};
        ci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
        ci.sequences = sequences;
        ci.capacity = shape.capacity;
        ci.window = shape.window;
        REQUIRE_VKMHA(api().createKvCache(model.get(), &ci, out.out()));
    }
    // One cached step of `tokens` ([n, E]) on `sequence`: its [n, E] output.
    std::vector<float> step(VkmhaKvCache cache, uint32_t sequence, const std::vector<float>& tokens) const {
        const VkmhaSequenceStep st{sequence, static_cast<uint32_t>(tokens.size() / shape.embed)};
        VkmhaHostCachedSubmitInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
        si.cache = cache;
        si.stepCount = 1;
        si.pSteps = &st;
        si.pQuery = tokens.data();
        uint64_t value = 0;
        REQUIRE_VKMHA(api().submitCached(session.get(), &si, &value));
        REQUIRE_VKMHA(api().wait(session.get(), value, UINT64_MAX));
        std::vector<float> out(tokens.size());
        REQUIRE_VKMHA(api().readOutputs(session.get(), value, out.data(), out.size(), nullptr, 0));
        return out;
    }
};

uint32_t length_of(VkmhaKvCache cache, uint32_t sequence) {
    uint32_t n = 0;
    REQUIRE_VKMHA(api().getKvCacheLength(cache, sequence, &n));
    return n;
}

std::vector<uint8_t> read_state(VkmhaKvCache cache, uint32_t sequence) {
    size_t size = 0;
    REQUIRE_VKMHA(api().readKvCacheState(cache, sequence, &size, nullptr));
    std::vector<uint8_t> blob(size);
    REQUIRE_VKMHA(api().readKvCacheState(cache, sequence, &size, blob.data()));
    CHECK(size == blob.size());
    return blob;
}

VkmhaKvCacheCopyInfo copy_info(VkmhaKvCache src, uint32_t src_sequence, VkmhaKvCache dst, uint32_t dst_sequence) {
    VkmhaKvCacheCopyInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_COPY_INFO;
    ci.srcCache = src;
    ci.dstCache = dst;
    ci.srcSequence = src_sequence;
    ci.dstSequence = dst_sequence;
    return ci;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Tokens [n, E] drawn from `rng`.
std::vector<float> draw(std::mt19937& rng, uint32_t n, uint32_t E) {
    return vkmha::test::random_floats(rng, size_t(n) * E, 1.0f);
}

// The step sizes of a conversation: 13 tokens (a capacity-8 ring wraps), at most 4 per step (a window of 5 in a ring
// of 8 takes at most 4).
const std::vector<uint32_t> kSteps = {3, 1, 2, 4, 1, 1, 1};

// The causal (windowed) CPU reference of the last `lq` of `tokens`.
std::vector<float> reference(const vkmha::test::HostModel& host, const Shape& shape, const std::vector<float>& tokens,
                             uint32_t lq) {
    vkmha::AttentionConfig c = host.config;
    c.window = shape.window;
    const uint32_t lk = static_cast<uint32_t>(tokens.size() / shape.embed);
    vkmha::AttentionOptions o;
    o.causal = true;
    const std::vector<float> query(tokens.end() - std::ptrdiff_t(size_t(lq) * shape.embed), tokens.end());
    vkmha::AttentionInputs in;
    in.query = query.data();
    in.key = tokens.data();
    in.value = tokens.data();
    auto r = vkmha::reference_attention(c, host.weights, vkmha::AttentionShape{1, lq, lk}, o, in);
    REQUIRE_MESSAGE(r.ok(), "CPU reference failed: ", r.error().message);
    return std::move(r.value().output);
}

void check_reference(const Shape& shape, const std::vector<float>& got, const std::vector<float>& ref,
                     const std::string& what) {
    vkmha::test::Tolerance tol;
    const bool fp16 = shape.precision == VKMHA_PRECISION_FP16;
    tol.atol = fp16 ? 1.5e-3 : 1e-4;
    tol.rtol = fp16 ? 1.5e-3 : 1e-3;
    tol.nmse = 1e30; // the elementwise bound is the criterion
    const vkmha::test::Comparison c = vkmha::test::compare(got, ref, tol);
    CHECK_MESSAGE(c.ok, c.describe(what));
}

const Shape kShapes[] = {
    {48, 6, 2, VKMHA_PRECISION_FP32, 8, 5},   // GQA 3:1, head dim 8, a ring that wraps
    {48, 6, 2, VKMHA_PRECISION_FP16, 8, 5},   // the same in fp16
    {160, 2, 1, VKMHA_PRECISION_FP32, 16, 0}, // MQA, head dim 80, no window
    {160, 2, 1, VKMHA_PRECISION_FP16, 16, 0},
};

} // namespace

TEST_SUITE("plugin_kv_state") {
    TEST_CASE("save and restore: the restored sequence continues bit for bit as the uninterrupted one") {
        for (const Shape& shape : kShapes) {
            CAPTURE(shape_text(shape));
            Setup s(shape);
            const uint32_t E = shape.embed;
            std::mt19937 rng(9);
            std::vector<std::vector<float>> tokens;
            for (uint32_t n : kSteps) tokens.push_back(draw(rng, n, E));
            constexpr size_t kSaveAfter = 4; // steps before the save

            // The uninterrupted conversation.
            CacheHandle whole;
            s.create_cache(whole, 1);
            std::vector<std::vector<float>> want;
            for (const auto& t : tokens) want.push_back(s.step(whole.get(), 0, t));

            // The same first steps, saved; sequence 0 then goes on with other tokens (its rows overwritten) and
            // sequence 1 holds another conversation.
            CacheHandle cache;
            s.create_cache(cache, 2);
            for (size_t i = 0; i < kSaveAfter; ++i) (void)s.step(cache.get(), 0, tokens[i]);
            const std::vector<uint8_t> saved = read_state(cache.get(), 0);
            CHECK(saved.size() >= 40);
            REQUIRE_VKMHA(api().resetKvCache(cache.get(), 0));
            for (uint32_t n : {4u, 4u, 3u}) (void)s.step(cache.get(), 0, draw(rng, n, E));
            (void)s.step(cache.get(), 1, draw(rng, 2, E));

            // Restored into its own sequence and into sequence 1, both continue as the uninterrupted run did.
            REQUIRE_VKMHA(api().writeKvCacheState(cache.get(), 0, saved.size(), saved.data()));
            REQUIRE_VKMHA(api().writeKvCacheState(cache.get(), 1, saved.size(), saved.data()));
            uint32_t saved_length = 0;
            for (size_t i = 0; i < kSaveAfter; ++i) saved_length += kSteps[i];
            for (uint32_t q = 0; q < 2; ++q) CHECK(length_of(cache.get(), q) == saved_length);
            CHECK(read_state(cache.get(), 1) == saved);
            for (size_t i = kSaveAfter; i < tokens.size(); ++i)
                for (uint32_t q = 0; q < 2; ++q)
                    CHECK_MESSAGE(same_bits(s.step(cache.get(), q, tokens[i]), want[i]), "step ", i, ", sequence ", q,
                                  " after the restore differs from the uninterrupted run");
            vkmha::test::check_no_validation_messages(s.context.get(), s.log);
        }
    }

    TEST_CASE("fork: both branches continue independently, each as its own uninterrupted run") {
        for (const Shape& shape : kShapes) {
            CAPTURE(shape_text(shape));
            Setup s(shape);
            const uint32_t E = shape.embed;
            std::mt19937 rng(21);
            std::vector<float> all_prefix;
            std::vector<std::vector<float>> prefix, reply_a, reply_b;
            for (uint32_t n : {3u, 4u, 2u}) prefix.push_back(draw(rng, n, E));
            for (uint32_t n : {1u, 4u, 1u}) reply_a.push_back(draw(rng, n, E));
            for (uint32_t n : {2u, 1u, 3u}) reply_b.push_back(draw(rng, n, E));

            // Uninterrupted references: sequence 0 hears the prefix then reply A, sequence 1 the prefix then reply B.
            CacheHandle whole;
            s.create_cache(whole, 2);
            std::vector<std::vector<float>> want_a, want_b;
            for (const auto& t : prefix) {
                (void)s.step(whole.get(), 0, t);
                (void)s.step(whole.get(), 1, t);
                all_prefix.insert(all_prefix.end(), t.begin(), t.end());
            }
            for (const auto& t : reply_a) want_a.push_back(s.step(whole.get(), 0, t));
            for (const auto& t : reply_b) want_b.push_back(s.step(whole.get(), 1, t));

            // The prefix once, on sequence 2; sequence 0 holds something else, then the fork copies 2 onto 0.
            CacheHandle cache;
            s.create_cache(cache, 3);
            for (const auto& t : prefix) (void)s.step(cache.get(), 2, t);
            (void)s.step(cache.get(), 0, draw(rng, 4, E));
            const VkmhaKvCacheCopyInfo ci = copy_info(cache.get(), 2, cache.get(), 0);
            REQUIRE_VKMHA(api().copyKvCache(&ci));
            CHECK(length_of(cache.get(), 0) == length_of(cache.get(), 2));
            for (size_t i = 0; i < reply_a.size(); ++i) {
                CHECK_MESSAGE(same_bits(s.step(cache.get(), 0, reply_a[i]), want_a[i]), "branch A, step ", i);
                CHECK_MESSAGE(same_bits(s.step(cache.get(), 2, reply_b[i]), want_b[i]), "branch B, step ", i);
            }
            // Branch B against the CPU reference: the prefix and B's replies, the last step's rows.
            std::vector<float> all_b = all_prefix;
            for (const auto& t : reply_b) all_b.insert(all_b.end(), t.begin(), t.end());
            check_reference(shape, want_b.back(),
                            reference(s.host, shape, all_b, static_cast<uint32_t>(reply_b.back().size() / E)),
                            "branch B's last step");
            vkmha::test::check_no_validation_messages(s.context.get(), s.log);
        }
    }

    TEST_CASE("bad input: wrong sizes, sequences out of range and mismatched caches are refused by name") {
        Setup s(kShapes[0]);
        const uint32_t E = s.shape.embed;
        const VkmhaProcTable& t = api();
        CacheHandle cache;
        s.create_cache(cache, 2);
        std::mt19937 rng(3);
        (void)s.step(cache.get(), 0, draw(rng, 3, E));
        (void)s.step(cache.get(), 1, draw(rng, 2, E));
        const std::vector<uint8_t> saved = read_state(cache.get(), 0);
        const std::vector<uint8_t> before1 = read_state(cache.get(), 1);

        size_t size = 0;
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.readKvCacheState(cache.get(), 2, &size, nullptr), "sequence 2");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.readKvCacheState(cache.get(), 0, nullptr, nullptr), "pSize");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.readKvCacheState(nullptr, 0, &size, nullptr), "cache");
        std::vector<uint8_t> small(saved.size() - 1);
        size = small.size();
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.readKvCacheState(cache.get(), 0, &size, small.data()),
                       std::to_string(small.size()), std::to_string(saved.size()));

        auto refused = [&](std::vector<uint8_t> blob, VkmhaResult want, const std::string& name) {
            CAPTURE(name);
            EXPECT_FAILURE(want, t.writeKvCacheState(cache.get(), 1, blob.size(), blob.data()), name);
            CHECK(length_of(cache.get(), 1) == 2);
            CHECK(read_state(cache.get(), 1) == before1); // unchanged
        };
        auto with_word = [&](size_t word, uint32_t value) {
            std::vector<uint8_t> blob = saved;
            std::memcpy(blob.data() + 4 * word, &value, 4);
            return blob;
        };
        refused(std::vector<uint8_t>(saved.begin(), saved.end() - 1), VKMHA_ERROR_INVALID_ARGUMENT, "bytes");
        refused(std::vector<uint8_t>(saved.begin(), saved.begin() + 12), VKMHA_ERROR_INVALID_ARGUMENT, "header");
        refused(with_word(0, 0x12345678), VKMHA_ERROR_INVALID_ARGUMENT, "magic");
        refused(with_word(1, 2), VKMHA_ERROR_INVALID_ARGUMENT, "format version 2");
        refused(with_word(2, VKMHA_PRECISION_FP16), VKMHA_ERROR_INVALID_ARGUMENT, "precision 1");
        refused(with_word(3, 3), VKMHA_ERROR_INVALID_ARGUMENT, "KV heads 3");
        refused(with_word(4, 16), VKMHA_ERROR_INVALID_ARGUMENT, "head dim 16");
        refused(with_word(5, 0), VKMHA_ERROR_INVALID_ARGUMENT, "window 0");
        refused(with_word(9, 2), VKMHA_ERROR_INVALID_ARGUMENT, "rows");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.writeKvCacheState(cache.get(), 1, saved.size(), nullptr),
                       "pData");
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.writeKvCacheState(cache.get(), 7, saved.size(), saved.data()),
                       "sequence 7");

        // A cache of another shape: a window of 4, and a model without GQA.
        CacheHandle other_window;
        VkmhaKvCacheCreateInfo oci{};
        oci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
        oci.sequences = 1;
        oci.capacity = 8;
        oci.window = 4;
        REQUIRE_VKMHA(t.createKvCache(s.model.get(), &oci, other_window.out()));
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                       t.writeKvCacheState(other_window.get(), 0, saved.size(), saved.data()), "window 5", "cache's 4");
        VkmhaKvCacheCopyInfo ci = copy_info(cache.get(), 0, other_window.get(), 0);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.copyKvCache(&ci), "window");
        CHECK(length_of(other_window.get(), 0) == 0);

        ci = copy_info(cache.get(), 0, cache.get(), 0);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.copyKvCache(&ci), "onto itself");
        ci = copy_info(cache.get(), 5, cache.get(), 1);
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.copyKvCache(&ci), "sequence 5");
        ci = copy_info(cache.get(), 0, nullptr, 1);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.copyKvCache(&ci), "dstCache");
        ci = copy_info(cache.get(), 0, cache.get(), 1);
        ci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.copyKvCache(&ci), "VkmhaKvCacheCopyInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.copyKvCache(nullptr), "pInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordKvCacheCopy(VK_NULL_HANDLE, &ci), "commandBuffer");
        CHECK(read_state(cache.get(), 1) == before1);

        // A ring of 6 cannot take the 8 positions a wrapped ring of 8 holds.
        for (uint32_t n : {4u, 4u, 2u}) (void)s.step(cache.get(), 0, draw(rng, n, E));
        CHECK(length_of(cache.get(), 0) == 13);
        const std::vector<uint8_t> wrapped = read_state(cache.get(), 0);
        CacheHandle small_ring;
        oci.capacity = 6;
        oci.window = 5;
        REQUIRE_VKMHA(t.createKvCache(s.model.get(), &oci, small_ring.out()));
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE,
                       t.writeKvCacheState(small_ring.get(), 0, wrapped.size(), wrapped.data()), "capacity 6");
        ci = copy_info(cache.get(), 0, small_ring.get(), 0);
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.copyKvCache(&ci), "capacity 6");
        CHECK(length_of(small_ring.get(), 0) == 0);
        vkmha::test::check_no_validation_messages(s.context.get(), s.log);
    }
    TEST_CASE("recordKvCacheCopy: a fork between two steps of one engine command buffer, validation-clean") {
        vkmha::test::EngineDevice engine;
        vkmha::test::require_engine(engine);
        {
            vkmha::test::EngineObjects objects(engine);
            const VkCommandBuffer cmd = objects.command_buffer();
            const VkFence fence = objects.fence();
            const Shape shape = kShapes[0]; // GQA, a ring of 8 with window 5
            const uint32_t E = shape.embed;
            const vkmha::test::HostModel host = vkmha::test::make_model(
                {.embed = E, .heads = shape.heads, .kv_heads = shape.kv_heads, .naming = vkmha::test::Naming::llama});
            ContextHandle context;
            vkmha::test::adopt_context(engine, context);
            ModelHandle model;
            vkmha::test::create_model(context.get(), host, model);
            VkmhaSessionCreateInfo si{};
            si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
            si.maxBatch = 1;
            si.maxQueryLength = 4;
            si.maxKeyLength = 1;
            si.framesInFlight = 4; // frames 1, 2 and 3 share one command buffer
            si.flags = VKMHA_SESSION_CREATE_FUSED_ONLY_BIT;
            SessionHandle session;
            REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
            CacheHandle cache;
            VkmhaKvCacheCreateInfo kci{};
            kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
            kci.sequences = 2;
            kci.capacity = shape.capacity;
            kci.window = shape.window;
            REQUIRE_VKMHA(api().createKvCache(model.get(), &kci, cache.out()));

            // Tokens: a prompt of 4 then 3 on sequence 0 (the ring wraps), the fork, then one token of each branch.
            std::mt19937 rng(8);
            const std::vector<uint32_t> sizes = {4, 3, 1, 1};
            std::vector<std::vector<float>> tokens;
            std::vector<vkmha::test::HostBuffer> in, out;
            for (uint32_t n : sizes) {
                tokens.push_back(draw(rng, n, E));
                in.push_back(engine.create_host_buffer(VkDeviceSize(n) * E * 4));
                out.push_back(engine.create_host_buffer(VkDeviceSize(n) * E * 4));
                REQUIRE((in.back() && out.back()));
                std::memcpy(in.back().bytes(), tokens.back().data(), size_t(n) * E * 4);
            }
            uint64_t frame = 0;
            auto step = [&](size_t i, uint32_t sequence) {
                const VkmhaSequenceStep st{sequence, sizes[i]};
                VkmhaCachedRecordInfo ri{};
                ri.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
                ri.frameIndex = frame;
                ri.completedFrame = frame == 0 ? VKMHA_NO_FRAME : 0;
                ++frame;
                ri.cache = cache.get();
                ri.stepCount = 1;
                ri.pSteps = &st;
                const VkDeviceSize bytes = VkDeviceSize(sizes[i]) * E * 4;
                ri.query = {in[i].buffer(), 0, bytes, 0, 0};
                ri.output = {out[i].buffer(), 0, bytes, 0, 0};
                REQUIRE_VKMHA(api().recordCachedAttention(session.get(), cmd, &ri));
            };
            vkmha::test::begin_command_buffer(cmd);
            step(0, 0);
            vkmha::test::barrier_to_host(cmd);
            vkmha::test::end_submit_wait(engine, cmd, fence);
            // One command buffer: a step, the fork, a step on each branch.
            vkmha::test::begin_command_buffer(cmd);
            step(1, 0);
            const VkmhaKvCacheCopyInfo ci = copy_info(cache.get(), 0, cache.get(), 1);
            REQUIRE_VKMHA(api().recordKvCacheCopy(cmd, &ci));
            CHECK(length_of(cache.get(), 1) == 7);
            step(2, 0);
            step(3, 1);
            vkmha::test::barrier_to_host(cmd);
            vkmha::test::end_submit_wait(engine, cmd, fence);

            std::vector<float> prompt = tokens[0];
            prompt.insert(prompt.end(), tokens[1].begin(), tokens[1].end());
            for (size_t branch = 2; branch < 4; ++branch) {
                std::vector<float> all = prompt;
                all.insert(all.end(), tokens[branch].begin(), tokens[branch].end());
                std::vector<float> got(static_cast<size_t>(E));
                std::memcpy(got.data(), out[branch].bytes(), got.size() * 4);
                check_reference(shape, got, reference(host, shape, all, 1),
                                "branch of sequence " + std::to_string(branch - 2));
            }
        }
        engine.destroy();
        vkmha::test::check_engine_quiet(engine);
    }
}
