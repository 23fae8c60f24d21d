// Rules docs/ENGINE_INTEGRATION.md states for engines, checked through the C ABI as an engine calls it: what a
// session's declared limits bound (and what they do not), that one session may mix plain records, cached steps and
// prefill pieces across frames but records once per frame, and that a new session starts at any frame index.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/compare.h"
#include "support/engine_device.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using vkmha::test::api;
using vkmha::test::EngineDevice;
using vkmha::test::HostBuffer;
using vkmha::test::random_floats;

constexpr uint32_t kE = 32, kH = 4, kG = 2, kD = kE / kH;

// A GQA layer with Hugging Face names and no biases: tensors for vkmha, floats for the CPU reference.
struct Layer {
    vkmha::AttentionConfig config{kE, kH, kG, kE, kE};
    vkmha::AttentionWeights weights;
    std::vector<VkmhaTensor> tensors;
    explicit Layer(uint32_t seed) {
        std::mt19937 rng(seed);
        const float bound = 1.0f / std::sqrt(float(kE));
        weights.wq = random_floats(rng, size_t(kE) * kE, bound);
        weights.wk = random_floats(rng, size_t(kG) * kD * kE, bound);
        weights.wv = random_floats(rng, size_t(kG) * kD * kE, bound);
        weights.wo = random_floats(rng, size_t(kE) * kE, bound);
        tensors = {{"q_proj.weight", VKMHA_DATA_TYPE_F32, 2, {kE, kE}, weights.wq.data()},
                   {"k_proj.weight", VKMHA_DATA_TYPE_F32, 2, {kG * kD, kE}, weights.wk.data()},
                   {"v_proj.weight", VKMHA_DATA_TYPE_F32, 2, {kG * kD, kE}, weights.wv.data()},
                   {"o_proj.weight", VKMHA_DATA_TYPE_F32, 2, {kE, kE}, weights.wo.data()}};
    }
    // Causal self-attention output of the last `lq` rows of `tokens` over all of them.
    std::vector<float> reference(const std::vector<float>& tokens, uint32_t lq) const {
        const auto lk = static_cast<uint32_t>(tokens.size() / kE);
        const std::vector<float> query(tokens.end() - std::ptrdiff_t(size_t(lq) * kE), tokens.end());
        vkmha::AttentionOptions o;
        o.causal = true;
        vkmha::AttentionInputs in;
        in.query = query.data();
        in.key = tokens.data();
        in.value = tokens.data();
        auto r = vkmha::reference_attention(config, weights, vkmha::AttentionShape{1, lq, lk}, o, in);
        REQUIRE_MESSAGE(r.ok(), "CPU reference failed: ", r.error().message);
        return std::move(r.value().output);
    }
};

void check_matches(const HostBuffer& got, const std::vector<float>& ref, const char* what) {
    std::vector<float> values(ref.size());
    std::memcpy(values.data(), got.bytes(), values.size() * sizeof(float));
    const vkmha::test::Comparison c = vkmha::test::compare(values, ref, {1e-4, 1e-3, 1e30});
    CHECK_MESSAGE(c.ok, c.describe(what));
}

// The engine's side of one frame: a command buffer begun, recorded into by `record`, submitted and waited for.
struct FrameLoop {
    EngineDevice& engine;
    VkCommandBuffer cmd;
    VkFence fence;
    template <typename Record> void run(Record record) {
        REQUIRE(vkResetCommandBuffer(cmd, 0) == VK_SUCCESS);
        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        REQUIRE(vkBeginCommandBuffer(cmd, &bi) == VK_SUCCESS);
        record(cmd);
        VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                             nullptr, 0, nullptr);
        REQUIRE(vkEndCommandBuffer(cmd) == VK_SUCCESS);
        REQUIRE(vkResetFences(engine.device(), 1, &fence) == VK_SUCCESS);
        REQUIRE(engine.submit(cmd, fence) == VK_SUCCESS);
        REQUIRE(vkWaitForFences(engine.device(), 1, &fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
    }
};

VkmhaSessionCreateInfo session_info(uint32_t max_key_length) {
    VkmhaSessionCreateInfo si{VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO};
    si.maxBatch = 1;
    si.maxQueryLength = 1;
    si.maxKeyLength = max_key_length;
    si.framesInFlight = 2;
    si.flags = VKMHA_SESSION_CREATE_FUSED_ONLY_BIT;
    return si;
}

} // namespace

TEST_SUITE("plugin_rules") {
    TEST_CASE("session limits: a 1x1x1 session runs a 37-token prefill and a 38-key cached step, mixed with records") {
        EngineDevice engine;
        REQUIRE_MESSAGE(engine.ok(), "engine device: ", engine.error());
        VkCommandPool pool = engine.create_command_pool();
        FrameLoop loop{engine, engine.allocate_command_buffer(pool), engine.create_fence()};
        REQUIRE((pool != VK_NULL_HANDLE && loop.cmd != VK_NULL_HANDLE && loop.fence != VK_NULL_HANDLE));
        {
            const VkmhaProcTable& t = api();
            vkmha::test::ContextHandle context;
            vkmha::test::adopt_context(engine, context);
            const Layer layer(5);
            vkmha::test::ModelHandle model;
            VkmhaModelCreateInfo mi{VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO};
            mi.numHeads = kH;
            mi.tensorCount = static_cast<uint32_t>(layer.tensors.size());
            mi.pTensors = layer.tensors.data();
            REQUIRE_VKMHA(t.createModel(context.get(), &mi, model.out()));
            constexpr uint32_t L = 37, cap = 40;

            // maxKeyLength sizes the K/V scratch of plain records: a larger one costs memory.
            const VkmhaSessionCreateInfo si = session_info(1), si_cap = session_info(cap);
            VkDeviceSize small = 0, large = 0;
            REQUIRE_VKMHA(t.getSessionMemoryRequirements(model.get(), &si, &small));
            REQUIRE_VKMHA(t.getSessionMemoryRequirements(model.get(), &si_cap, &large));
            CHECK(large > small);
            vkmha::test::SessionHandle session;
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            vkmha::test::CacheHandle cache;
            const VkmhaKvCacheCreateInfo ki{VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO, nullptr, 2, cap, 0};
            REQUIRE_VKMHA(t.createKvCache(model.get(), &ki, cache.out()));

            std::mt19937 rng(11);
            const std::vector<float> tokens = random_floats(rng, size_t(L + 1) * kE, 1.0f);
            const size_t row = kE * sizeof(float);
            HostBuffer prompt = engine.create_host_buffer(L * row), prompt_out = engine.create_host_buffer(L * row);
            HostBuffer step = engine.create_host_buffer(2 * row), step_out = engine.create_host_buffer(2 * row);
            REQUIRE((prompt && prompt_out && step && step_out));
            std::memcpy(prompt.bytes(), tokens.data(), L * row);
            std::memcpy(step.bytes(), tokens.data() + size_t(L) * kE, row);

            // A new session takes any first frame index; nothing has completed yet.
            uint64_t frame = 1000, completed = VKMHA_NO_FRAME;
            vkmha::test::JobHandle job;
            const VkmhaPrefillJobCreateInfo ji{VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO, nullptr, cache.get(), 0,
                                               L};
            REQUIRE_VKMHA(t.createPrefillJob(model.get(), &ji, job.out()));
            VkmhaPrefillRecordInfo pi{VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO};
            pi.job = job.get();
            pi.query = {prompt.buffer(), 0, L * row, 0, 0};
            pi.output = {prompt_out.buffer(), 0, L * row, 0, 0};
            VkmhaPrefillStatus status{};
            for (int piece = 0; piece < 16 && !status.done; ++piece, completed = frame++) {
                pi.frameIndex = frame;
                pi.completedFrame = completed;
                loop.run(
                    [&](VkCommandBuffer cmd) { REQUIRE_VKMHA(t.recordPrefill(session.get(), cmd, &pi, &status)); });
            }
            REQUIRE(status.done == VK_TRUE);
            check_matches(prompt_out, layer.reference({tokens.begin(), tokens.end() - kE}, L), "prefill");

            // A cached step attends over 38 keys although maxKeyLength is 1: the cache bounds its keys.
            const VkmhaSequenceStep one{0, 1};
            VkmhaCachedRecordInfo ci{VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO};
            ci.frameIndex = frame;
            ci.completedFrame = completed;
            ci.cache = cache.get();
            ci.stepCount = 1;
            ci.pSteps = &one;
            ci.query = {step.buffer(), 0, row, 0, 0};
            ci.output = {step_out.buffer(), 0, row, 0, 0};
            loop.run([&](VkCommandBuffer cmd) {
                REQUIRE_VKMHA(t.recordCachedAttention(session.get(), cmd, &ci));
                // A second record of the session in the same frame is refused, whatever its kind.
                VkmhaRecordInfo ri{VKMHA_STRUCTURE_TYPE_RECORD_INFO};
                ri.frameIndex = frame;
                ri.completedFrame = completed;
                ri.batch = ri.queryLength = ri.keyLength = 1;
                ri.query = {step.buffer(), 0, row, 0, 0};
                ri.output = {step_out.buffer(), row, row, 0, 0};
                EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(session.get(), cmd, &ri),
                               "one record per session per frame");
            });
            check_matches(step_out, layer.reference(tokens, 1), "cached step over the prefilled prompt");
            completed = frame++;

            // The token budget, maxBatch x maxQueryLength, bounds a cached step's new tokens; maxKeyLength bounds a
            // plain record's keyLength. Both refusals record nothing.
            const VkmhaSequenceStep two{1, 2};
            ci.frameIndex = frame;
            ci.completedFrame = completed;
            ci.pSteps = &two;
            ci.query.range = ci.output.range = 2 * row;
            VkmhaRecordInfo ri{VKMHA_STRUCTURE_TYPE_RECORD_INFO};
            ri.frameIndex = frame;
            ri.completedFrame = completed;
            ri.batch = ri.queryLength = 1;
            ri.keyLength = 2;
            ri.query = {step.buffer(), 0, row, 0, 0};
            ri.key = {step.buffer(), 0, 2 * row, 0, 0};
            ri.output = {step_out.buffer(), 0, row, 0, 0};
            loop.run([&](VkCommandBuffer cmd) {
                EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.recordCachedAttention(session.get(), cmd, &ci), "budget");
                EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.recordAttention(session.get(), cmd, &ri), "budget");
                // Within the limits, a plain record on the session that ran the prefill and the cached step.
                ri.keyLength = 1;
                ri.key = {};
                REQUIRE_VKMHA(t.recordAttention(session.get(), cmd, &ri));
            });
            check_matches(step_out, layer.reference({tokens.end() - kE, tokens.end()}, 1), "plain record");
            uint32_t length = 0;
            REQUIRE_VKMHA(t.getKvCacheLength(cache.get(), 1, &length));
            CHECK(length == 0);

            job.reset();
            cache.reset();
            session.reset();
            model.reset();
            context.reset();
        }
        vkDeviceWaitIdle(engine.device());
        vkDestroyFence(engine.device(), loop.fence, nullptr);
        vkDestroyCommandPool(engine.device(), pool, nullptr);
        engine.destroy();
        CHECK_MESSAGE(engine.validation_messages() == 0, "the engine's messenger saw ", engine.validation_messages(),
                      " validation messages; last: ", engine.last_validation_message());
    }
}
