// The GPU kernels as AMD's compiler (ACO) builds them, without an AMD GPU: RADV's null-hardware devices
// (RADV_FORCE_FAMILY) compile every pipeline vkmha would run and report its statistics. The guard fails on any
// spilled register or scratch in the fused attention, combine and projection kernels, and on occupancy below each
// kernel's floor (docs/PERFORMANCE.md, "GPU kernels on AMD's compiler", says where each floor comes from).
#include "model.h"
#include "pipeline_statistics.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace vkmha;

namespace {

// RDNA3 desktop (RX 7900), RDNA2 desktop (RX 6800/6900), the Steam Deck's APU.
constexpr const char* kFamilies[] = {"gfx1100", "navi21", "vangogh"};
constexpr uint32_t kHeadDims[] = {64, 80, 96, 128, 256};

// Sets RADV_FORCE_FAMILY for its lifetime: RADV reads it when an instance enumerates its devices. The previous value
// comes back afterwards, so the other suites' default device stays what it was.
class ForcedFamily {
  public:
    explicit ForcedFamily(const char* family) {
        if (const char* old = std::getenv("RADV_FORCE_FAMILY")) m_old = old, m_had = true;
        setenv("RADV_FORCE_FAMILY", family, 1);
    }
    ~ForcedFamily() {
        if (m_had)
            setenv("RADV_FORCE_FAMILY", m_old.c_str(), 1);
        else
            unsetenv("RADV_FORCE_FAMILY");
    }
    ForcedFamily(const ForcedFamily&) = delete;
    ForcedFamily& operator=(const ForcedFamily&) = delete;

  private:
    std::string m_old;
    bool m_had = false;
};

// A compile-only context on the null device of `family`, or nullptr (with the reason) where this Mesa has none.
std::unique_ptr<Context> null_device_context(const char* family, std::string* why) {
    ForcedFamily forced(family);
    OwnDeviceOptions o;
    o.compile_only = true;
    o.device_name = family; // RADV names it "Null hardware (RADV GFX1100)", ...
    auto device = Device::create_own(o, {});
    if (!device || !device.value()->info().null_hardware) {
        *why = device ? "device '" + device.value()->info().name + "' is not RADV's null hardware"
                      : device.error().message;
        return nullptr;
    }
    auto context = Context::create(std::move(device.value()), {});
    if (!context) {
        *why = context.error().message;
        return nullptr;
    }
    return std::move(context.value());
}

// Occupancy floors in subgroups per SIMD as RADV counts them (wave32 units: a wave64 counts twice), per kernel role.
// Prefill 8: the target, met at every head dim since the compact tiles (10 on RDNA3 at D <= 128, 8 on
// RDNA2, where 112 VGPRs allow no more; 8 and 14 at D = 256 with 8 rows); the tiles before had 6, capped by 14.5 KiB
// of LDS. Decode 16: its 3.5 KiB of LDS and <= 60 VGPRs allow 16 everywhere. Combine and projections: 16, well
// under what they reach (32, and 24-30) so a change that doubles their registers fails here first.
uint32_t occupancy_floor(PipelineRole role) {
    switch (role) {
    case PipelineRole::prefill: return 8;
    case PipelineRole::decode: return 16;
    case PipelineRole::combine: return 16;
    case PipelineRole::projection: return 16;
    default: return 0;
    }
}

double statistic(const PipelineReport& r, const char* name) {
    const PipelineStatistic* s = r.find(name);
    REQUIRE_MESSAGE(s, r.variant, " reports no '", name, "'");
    return s->as_double();
}

void check_pipeline(const PipelineReport& r) {
    if (r.role == PipelineRole::other) return;
    INFO(r.variant, " (", pipeline_role_name(r.role), ")");
    CHECK(statistic(r, "Spilled VGPRs") == 0);
    CHECK(statistic(r, "Spilled SGPRs") == 0);
    CHECK(statistic(r, "Scratch size") == 0);
    CHECK(statistic(r, "Subgroups per SIMD") >= occupancy_floor(r.role));
}

} // namespace

TEST_SUITE("shader_stats") {
    TEST_CASE("guard: no spills or scratch, occupancy floors, on RDNA3, RDNA2 and the Steam Deck") {
        for (const char* family : kFamilies) {
            std::string why;
            std::unique_ptr<Context> ctx = null_device_context(family, &why);
            if (!ctx) {
                MESSAGE("skipped: RADV_FORCE_FAMILY=", family, " gives no null device here (", why, ")");
                return;
            }
            REQUIRE(ctx->device().pipeline_statistics());
            for (uint32_t d : kHeadDims)
                for (Precision precision : {Precision::fp32, Precision::fp16}) {
                    INFO(family, " D ", d, " ", precision_name(precision));
                    AttentionConfig c;
                    c.num_heads = 32;
                    c.num_kv_heads = 8;
                    c.embed_dim = c.kdim = c.vdim = 4096;
                    c.explicit_head_dim = d;
                    auto reports = pipeline_statistics(*ctx, c, precision);
                    REQUIRE_MESSAGE(reports.ok(), (reports ? std::string() : reports.error().message));
                    uint32_t fused = 0;
                    for (const PipelineReport& r : reports.value()) {
                        fused += r.kernel == "attention";
                        check_pipeline(r);
                    }
                    CHECK(fused == 2); // the prefill and decode tilings
                }
            CHECK(ctx->device().validation_message_count() == 0);
        }
    }

    TEST_CASE("compile-only: a null device builds pipelines and refuses whatever would submit work") {
        std::string why;
        std::unique_ptr<Context> ctx = null_device_context("gfx1100", &why);
        if (!ctx) {
            MESSAGE("skipped: no RADV null device here (", why, ")");
            return;
        }
        CHECK(ctx->compile_only());
        CHECK(ctx->shaders().pipeline_count() > 0);
        AttentionConfig c;
        c.num_heads = c.num_kv_heads = 2;
        c.embed_dim = c.kdim = c.vdim = 8;
        AttentionWeights w;
        w.wq.assign(64, 0.0f), w.wk.assign(64, 0.0f), w.wv.assign(64, 0.0f), w.wo.assign(64, 0.0f);
        auto model = Model::create(*ctx, c, w);
        REQUIRE_FALSE(model);
        CHECK(model.error().code == ErrorCode::unsupported);
        CHECK(model.error().message.find("compile-only") != std::string::npos);
    }

    TEST_CASE("compile-only: a null device is refused to an ordinary context, naming it") {
        ForcedFamily forced("gfx1100");
        OwnDeviceOptions o;
        o.device_name = "gfx1100";
        auto device = Device::create_own(o, {});
        if (device) {
            // No null device here: the name matched nothing of RADV's, or a real GPU.
            CHECK_FALSE(device.value()->info().null_hardware);
            return;
        }
        if (device.error().message.find("no Vulkan device name contains") != std::string::npos) {
            MESSAGE("skipped: no RADV null device here (", device.error().message, ")");
            return;
        }
        CHECK(device.error().code == ErrorCode::unsupported);
        CHECK(device.error().message.find("Null hardware") != std::string::npos);
        CHECK(device.error().message.find("compile-only") != std::string::npos);
    }

    TEST_CASE("statistics: a device without VK_KHR_pipeline_executable_properties says so") {
        OwnDeviceOptions o;
        o.compile_only = true;
        o.device_name = "llvmpipe";
        auto device = Device::create_own(o, {});
        if (!device) {
            MESSAGE("skipped: no lavapipe here (", device.error().message, ")");
            return;
        }
        auto ctx = Context::create(std::move(device.value()), {});
        REQUIRE(ctx);
        AttentionConfig c;
        c.num_heads = c.num_kv_heads = 2;
        c.embed_dim = c.kdim = c.vdim = 8;
        auto reports = pipeline_statistics(*ctx.value(), c, Precision::fp32);
        REQUIRE_FALSE(reports);
        CHECK(reports.error().code == ErrorCode::unsupported);
        CHECK(reports.error().message.find("VK_KHR_pipeline_executable_properties") != std::string::npos);
    }
}

TEST_SUITE("shader_stats") {
    TEST_CASE("C API: a compile-only context reports its pipelines with the two-call idiom") {
        using test::api;
        ForcedFamily forced("gfx1100");
        VkmhaOwnDeviceInfo own{VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO};
        own.deviceIndex = -1;
        own.pDeviceName = "gfx1100";
        VkmhaContextCompileOnlyInfo compile{VKMHA_STRUCTURE_TYPE_CONTEXT_COMPILE_ONLY_INFO};
        compile.compileOnly = VK_TRUE;
        VkmhaContextCreateInfo ci{VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO};
        ci.pNext = &compile;
        ci.pOwnDevice = &own;
        test::Owned<VkmhaContext> owned(api().destroyContext);
        if (api().createContext(&ci, owned.out()) != VKMHA_SUCCESS) {
            MESSAGE("skipped: no RADV null device here (", test::last_error(), ")");
            return;
        }
        VkmhaContext context = owned.get();
        VkmhaContextProperties props{VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES};
        REQUIRE(api().getContextProperties(context, &props) == VKMHA_SUCCESS);
        CHECK(props.canSubmit == VK_FALSE);

        VkmhaPipelineStatisticsInfo info{VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS_INFO};
        info.embedDim = 960;
        info.numHeads = 12;
        info.numKvHeads = 4;
        info.headDim = 80;
        info.precision = VKMHA_PRECISION_FP16;
        uint32_t count = 0;
        REQUIRE(api().getPipelineStatistics(context, &info, &count, nullptr) == VKMHA_SUCCESS);
        REQUIRE(count > 2);
        std::vector<VkmhaPipelineStatistics> stats(count, {VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS});
        uint32_t fewer = 2;
        CHECK(api().getPipelineStatistics(context, &info, &fewer, stats.data()) == VKMHA_NOT_READY);
        CHECK(fewer == 2);
        REQUIRE(api().getPipelineStatistics(context, &info, &count, stats.data()) == VKMHA_SUCCESS);
        CHECK(std::string(stats[0].kernel) == "attention");
        CHECK(stats[0].role == VKMHA_PIPELINE_ROLE_PREFILL);
        CHECK(stats[1].role == VKMHA_PIPELINE_ROLE_DECODE);
        CHECK(stats[0].statisticCount > 5);

        stats[0].sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().getPipelineStatistics(context, &info, &count, stats.data()),
                       "pStatistics[0].sType");
        info.numKvHeads = 5;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().getPipelineStatistics(context, &info, &count, nullptr), "5");
    }
}
