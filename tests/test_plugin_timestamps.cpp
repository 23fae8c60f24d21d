// The 1.3 switch for GPU timestamps (issue 12, item 11): a session created with VKMHA_SESSION_CREATE_NO_TIMESTAMPS_BIT
// creates no query pool and records no query reset or timestamp write, its results are unchanged, and
// getStageTimings refuses it by the flag's name; a session without the flag is timed as in 1.2. The engine adopts
// its device through the fault injector's wrappers (support/fault_injector.h), which count the query pools and the
// recorded commands.
#undef VK_NO_PROTOTYPES // the engine side calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/compare.h"
#include "support/engine_frame.h"
#include "support/fault_injector.h"
#include "support/host_model.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <random>
#include <vector>

namespace {

using vkmha::test::api;
using vkmha::test::CacheHandle;
using vkmha::test::ContextHandle;
using vkmha::test::FaultInjector;
using vkmha::test::ModelHandle;
using vkmha::test::SessionHandle;

constexpr uint32_t kEmbed = 48, kHeads = 6, kKvHeads = 2, kTokens = 7;

// One causal self-attention submit of `tokens` ([kTokens, E]) and its output, waited for.
std::vector<float> submit_causal(VkmhaSession session, const std::vector<float>& tokens, uint64_t& value) {
    VkmhaHostSubmitInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
    si.batch = 1;
    si.queryLength = si.keyLength = kTokens;
    si.flags = VKMHA_ATTENTION_CAUSAL_BIT;
    si.pQuery = tokens.data();
    REQUIRE_VKMHA(api().submit(session, &si, &value));
    REQUIRE_VKMHA(api().wait(session, value, UINT64_MAX));
    std::vector<float> out(tokens.size());
    REQUIRE_VKMHA(api().readOutputs(session, value, out.data(), out.size(), nullptr, 0));
    return out;
}

} // namespace

TEST_SUITE("plugin_timestamps") {
    TEST_CASE("NO_TIMESTAMPS: no query pool, no query commands, same results, getStageTimings refused by name") {
        vkmha::test::EngineDevice engine;
        vkmha::test::require_engine(engine);
        FaultInjector& fi = FaultInjector::instance();
        fi.disarm();
        {
            const vkmha::test::HostModel host = vkmha::test::make_model(
                {.embed = kEmbed, .heads = kHeads, .kv_heads = kKvHeads, .naming = vkmha::test::Naming::llama});
            ContextHandle context;
            VkmhaAdoptDeviceInfo adopt = vkmha::test::adopt_info(engine, VK_NULL_HANDLE);
            adopt.pfnGetInstanceProcAddr = FaultInjector::get_instance_proc_addr();
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            ci.pAdoptDevice = &adopt;
            REQUIRE_VKMHA(api().createContext(&ci, context.out()));
            REQUIRE(vkmha::test::context_properties(context.get()).timestamps == VK_TRUE);
            ModelHandle model;
            vkmha::test::create_model(context.get(), host, model);

            VkmhaSessionCreateInfo si{};
            si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
            si.maxBatch = 1;
            si.maxQueryLength = si.maxKeyLength = kTokens;
            si.framesInFlight = 3;
            si.hostIo = VK_TRUE;
            si.flags = VKMHA_SESSION_CREATE_NO_TIMESTAMPS_BIT;
            const int64_t pools_before = FaultInjector::instance().live_objects("VkQueryPool");
            SessionHandle quiet;
            REQUIRE_VKMHA(api().createSession(model.get(), &si, quiet.out()));
            CHECK(FaultInjector::instance().live_objects("VkQueryPool") == pools_before);
            si.flags = 0;
            SessionHandle timed;
            REQUIRE_VKMHA(api().createSession(model.get(), &si, timed.out()));
            CHECK(FaultInjector::instance().live_objects("VkQueryPool") ==
                  pools_before + 3); // one per frame slot, as in 1.2

            std::mt19937 rng(11);
            const std::vector<float> tokens = vkmha::test::random_floats(rng, size_t(kTokens) * kEmbed, 1.0f);
            fi.reset_commands();
            uint64_t value = 0;
            const std::vector<float> out = submit_causal(quiet.get(), tokens, value);
            // A cached decode step too: the other recorder.
            CacheHandle cache;
            VkmhaKvCacheCreateInfo kci{};
            kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
            kci.sequences = 1;
            kci.capacity = kTokens;
            REQUIRE_VKMHA(api().createKvCache(model.get(), &kci, cache.out()));
            const VkmhaSequenceStep step{0, 1};
            VkmhaHostCachedSubmitInfo csi{};
            csi.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
            csi.cache = cache.get();
            csi.stepCount = 1;
            csi.pSteps = &step;
            csi.pQuery = tokens.data();
            uint64_t cached_value = 0;
            REQUIRE_VKMHA(api().submitCached(quiet.get(), &csi, &cached_value));
            REQUIRE_VKMHA(api().wait(quiet.get(), cached_value, UINT64_MAX));
            CHECK(fi.commands("vkCmdDispatch") > 0);
            CHECK(fi.commands("vkCmdResetQueryPool") == 0);
            CHECK(fi.commands("vkCmdWriteTimestamp") == 0);
            uint32_t count = 16;
            VkmhaStageTiming timings[16];
            EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, api().getStageTimings(quiet.get(), value - 1, &count, timings),
                           "VKMHA_SESSION_CREATE_NO_TIMESTAMPS_BIT");

            // The same pass on the timed session: the same bits, and timings.
            fi.reset_commands();
            uint64_t timed_value = 0;
            const std::vector<float> timed_out = submit_causal(timed.get(), tokens, timed_value);
            CHECK(fi.commands("vkCmdWriteTimestamp") > 0);
            CHECK(timed_out == out);
            count = 16;
            REQUIRE_VKMHA(api().getStageTimings(timed.get(), timed_value - 1, &count, timings));
            CHECK(count > 0);

            vkmha::AttentionOptions o;
            o.causal = true;
            vkmha::AttentionInputs in;
            in.query = in.key = in.value = tokens.data();
            auto ref = vkmha::reference_attention(host.config, host.weights, {1, kTokens, kTokens}, o, in);
            REQUIRE(ref.ok());
            const vkmha::test::Comparison c = vkmha::test::compare(out, ref.value().output, {1e-4, 1e-3, 1e30});
            CHECK_MESSAGE(c.ok, c.describe("untimed session vs CPU reference"));
        }
        CHECK(fi.live_objects().empty());
        engine.destroy();
        vkmha::test::check_engine_quiet(engine);
    }
}
