// No first-frame hitch (issue 12, item 2): createModel dispatches once every pipeline its sessions may bind, so no
// record compiles one (llvmpipe JIT-compiles a pipeline at its first dispatch: seconds on a cold shader cache). The
// engine adopts its device through the fault injector's wrappers (support/fault_injector.h), which see every
// pipeline bound and every pipeline created: each pipeline a record of any path binds was already bound inside
// createModel, and no pipeline is created after it. The frame-0 GPU time this saves is measured with frame-loop
// (docs/PERFORMANCE.md), not timed here.
#undef VK_NO_PROTOTYPES // the engine side calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

#include "vkmha/vkmha.h"

#include "support/engine_frame.h"
#include "support/fault_injector.h"
#include "support/host_model.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using vkmha::test::api;
using vkmha::test::CacheHandle;
using vkmha::test::ContextHandle;
using vkmha::test::FaultInjector;
using vkmha::test::ModelHandle;
using vkmha::test::SessionHandle;

constexpr uint32_t kEmbed = 48, kHeads = 6, kKvHeads = 2, kTokens = 7;

// createModel with RoPE (so the rope kernel runs) at `precision`; returns the pipelines it bound.
std::set<uint64_t> create_model(VkmhaContext context, const vkmha::test::HostModel& host, VkmhaPrecision precision,
                                ModelHandle& out) {
    const std::vector<VkmhaTensor> views = vkmha::test::tensor_views(host.tensors);
    VkmhaModelCreateInfo mi = vkmha::test::model_info(kHeads, views);
    mi.precision = precision;
    VkmhaModelAttentionInfo ai{};
    ai.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
    ai.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
    mi.pNext = &ai;
    FaultInjector::instance().reset_commands();
    REQUIRE_VKMHA(api().createModel(context, &mi, out.out()));
    return FaultInjector::instance().bound_pipelines();
}

// Every record path of a host-I/O session: fused and unfused passes, weights, decode (split-K), cached steps of one
// and of several tokens.
void run_every_path(VkmhaModel model, const std::vector<float>& tokens) {
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = 1;
    si.maxQueryLength = si.maxKeyLength = kTokens;
    si.hostIo = VK_TRUE;
    si.flags = VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT;
    SessionHandle session;
    REQUIRE_VKMHA(api().createSession(model, &si, session.out()));
    const VkmhaAttentionFlags variants[] = {VKMHA_ATTENTION_CAUSAL_BIT, VKMHA_ATTENTION_NEED_WEIGHTS_BIT,
                                            VKMHA_ATTENTION_UNFUSED_BIT | VKMHA_ATTENTION_NEED_WEIGHTS_BIT,
                                            VKMHA_ATTENTION_NEED_WEIGHTS_BIT | VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT};
    for (uint32_t lq : {kTokens, 1u})
        for (VkmhaAttentionFlags flags : variants) {
            VkmhaHostSubmitInfo hi{};
            hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
            hi.batch = 1;
            hi.queryLength = lq;
            hi.keyLength = kTokens;
            hi.flags = flags;
            hi.pQuery = tokens.data();
            hi.pKey = tokens.data();
            uint64_t value = 0;
            REQUIRE_VKMHA(api().submit(session.get(), &hi, &value));
            REQUIRE_VKMHA(api().wait(session.get(), value, UINT64_MAX));
        }
    CacheHandle cache;
    VkmhaKvCacheCreateInfo kci{};
    kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
    kci.sequences = 1;
    kci.capacity = 2 * kTokens;
    REQUIRE_VKMHA(api().createKvCache(model, &kci, cache.out()));
    for (uint32_t n : {kTokens, 1u}) {
        const VkmhaSequenceStep step{0, n};
        VkmhaHostCachedSubmitInfo ci{};
        ci.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
        ci.cache = cache.get();
        ci.stepCount = 1;
        ci.pSteps = &step;
        ci.pQuery = tokens.data();
        uint64_t value = 0;
        REQUIRE_VKMHA(api().submitCached(session.get(), &ci, &value));
        REQUIRE_VKMHA(api().wait(session.get(), value, UINT64_MAX));
    }
}

} // namespace

TEST_SUITE("plugin_warmup") {
    TEST_CASE("createModel: every pipeline a record binds was dispatched in createModel, none is created later") {
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
            adopt.storageBuffer16BitAccessEnabled = engine.storage16() ? VK_TRUE : VK_FALSE;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            ci.pAdoptDevice = &adopt;
            REQUIRE_VKMHA(api().createContext(&ci, context.out()));

            std::vector<VkmhaPrecision> precisions = {VKMHA_PRECISION_FP32};
            if (engine.storage16()) precisions.push_back(VKMHA_PRECISION_FP16);
            std::mt19937 rng(2);
            const std::vector<float> tokens = vkmha::test::random_floats(rng, size_t(kTokens) * kEmbed, 1.0f);
            for (VkmhaPrecision precision : precisions) {
                CAPTURE(precision);
                ModelHandle model;
                const std::set<uint64_t> warmed = create_model(context.get(), host, precision, model);
                CHECK(!warmed.empty());
                const int64_t pipelines = FaultInjector::instance().live_objects("VkPipeline");
                fi.reset_commands();
                run_every_path(model.get(), tokens);
                const std::set<uint64_t> bound = fi.bound_pipelines();
                CHECK(bound.size() >= 4); // projections, rope, the fused kernel, combine, the unfused stages ...
                for (uint64_t p : bound)
                    CHECK_MESSAGE(warmed.count(p) == 1, "a record bound pipeline 0x", std::to_string(p),
                                  " that createModel did not dispatch (", warmed.size(), " warmed)");
                CHECK(FaultInjector::instance().live_objects("VkPipeline") == pipelines);

                // A second model of the precision warms only its own two fused-kernel pipelines: the context's are
                // warm already.
                ModelHandle second;
                CHECK(create_model(context.get(), host, precision, second).size() == 2);
            }
        }
        CHECK(fi.live_objects().empty());
        engine.destroy();
        vkmha::test::check_engine_quiet(engine);
    }
}
