// Limits (issue 16, item 4): shapes that reach the device's binding and workgroup-count limits, and sizes whose
// products overflow 32 or 64 bits, are split or refused with a message naming the value, never wrapped. Shapes that
// would need gigabytes are tested through planning and the memory queries, which allocate nothing.
#include "attention_plan.h"
#include "checked_math.h"
#include "kernel_policy.h"
#include "shape_bytes.h"
#include "support/call_infos.h"
#include "support/gpu_context.h"
#include "support/host_io.h"
#include "support/plugin_api.h"
#include "support/run_inputs.h"
#include "vulkan/arena.h"

#include "vkmha/vkmha.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace vkmha;

namespace {

constexpr uint64_t kLavapipeBinding = 128ull << 20; // lavapipe's maxStorageBufferRange
constexpr uint32_t kGuaranteedGroups = 65535;       // Vulkan's minimum maxComputeWorkGroupCount per dimension

// The test device's limits with lavapipe's binding and grid caps, so that every device tests the same edges.
DeviceLimits lavapipe_like() {
    DeviceLimits limits = vkmha::test::gpu_context().device().limits();
    limits.max_storage_buffer_range = kLavapipeBinding;
    for (uint32_t& count : limits.max_workgroup_count) count = kGuaranteedGroups;
    return limits;
}

// A small model (embed E, H heads of E / H dims, G KV heads) as the planner sees it.
PlanInputs inputs(const DeviceLimits& limits, uint32_t E, uint32_t H, uint32_t G, AttentionShape shape) {
    PlanInputs in;
    in.model.config = {E, H, G, E, E};
    in.model.tiling = ShaderLibrary::choose_attention_tiling(limits, vkmha::test::gpu_context().kernel_policy(),
                                                             in.model.config.head_dim());
    in.model.linear_tiling = vkmha::test::gpu_context().shaders().linear_tiling();
    in.shape = shape;
    in.partials_capacity = 1u << 22;
    return in;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A crafted weights file in a fresh temporary folder, removed with it.
class CraftedFile {
  public:
    CraftedFile(const std::string& header, size_t data_bytes, uint64_t claimed_header_length = 0) {
        std::random_device seed;
        m_dir = std::filesystem::temp_directory_path() / ("vkmha_limits_" + std::to_string(seed()));
        std::filesystem::create_directories(m_dir);
        std::vector<uint8_t> bytes(8);
        const uint64_t length = claimed_header_length ? claimed_header_length : header.size();
        for (size_t i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(length >> (8 * i));
        bytes.insert(bytes.end(), header.begin(), header.end());
        bytes.resize(bytes.size() + data_bytes, 0);
        std::ofstream out(path(), std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    ~CraftedFile() {
        std::error_code ignored;
        std::filesystem::remove_all(m_dir, ignored);
    }
    std::string path() const { return (m_dir / "crafted.safetensors").string(); }

  private:
    std::filesystem::path m_dir;
};

} // namespace

TEST_SUITE("limits") {
    TEST_CASE("checked math: products and sums saturate or report overflow instead of wrapping") {
        CHECK(checked_mul(UINT32_MAX, UINT32_MAX).value() == uint64_t(UINT32_MAX) * UINT32_MAX);
        CHECK_FALSE(checked_mul(1ull << 32, 1ull << 32).has_value());
        CHECK(checked_product({1ull << 20, 1ull << 20, 1ull << 20}).value() == 1ull << 60);
        CHECK_FALSE(checked_product({1ull << 32, 1ull << 32, 0}).has_value()); // a later zero does not rescue it
        CHECK(checked_product({}).value() == 1);
        CHECK(saturating_product({UINT32_MAX, UINT32_MAX, 65536}) == kSaturated);
        CHECK(saturating_add(kSaturated - 1, 2) == kSaturated);
        CHECK(count_text(kSaturated, "bytes") == "more than 2^64 bytes");
        CHECK(check_fits_u32("x", UINT32_MAX).ok());
        const Status over = check_fits_u32("batch * lq query rows", 1ull << 32);
        REQUIRE_FALSE(over.ok());
        CHECK(contains(over.error().message, "batch * lq query rows is 4294967296 elements"));
    }

    TEST_CASE("binding: a query input of exactly maxStorageBufferRange plans, one row more is refused by name") {
        vkmha::test::ValidationGuard guard;
        const DeviceLimits limits = lavapipe_like();
        // E = 256 floats per row: 128 MiB is 131072 rows (few enough for the projections' row-tile grid, which a
        // narrower model would reach first).
        const uint32_t E = 256;
        const uint32_t rows = static_cast<uint32_t>(kLavapipeBinding / (E * 4));
        PlanInputs in = inputs(limits, E, 4, 4, {1, rows, 1});
        auto at_limit = plan_attention(in, limits);
        REQUIRE_MESSAGE(at_limit.ok(), at_limit.error().message);
        in.shape.lq = rows + 1;
        auto over = plan_attention(in, limits);
        REQUIRE_FALSE(over.ok());
        CHECK(over.error().code == ErrorCode::unsupported);
        CHECK(contains(over.error().message, "maxStorageBufferRange"));
        CHECK(contains(over.error().message, std::to_string(uint64_t(rows + 1) * E * 4)));
        // An offset that pushes the same input past the limit is refused too.
        in.shape.lq = rows;
        in.offsets.query = 1;
        auto offset = plan_attention(in, limits);
        REQUIRE_FALSE(offset.ok());
        CHECK(contains(offset.error().message, "query input"));
    }

    TEST_CASE("binding: shapes past 2^64 bytes are refused as such, never wrapped to a small size") {
        const DeviceLimits limits = lavapipe_like();
        // B * Lq * E * 4 = 2^32 * 2^32 * 2^8 * 4: wraps to 0 in 64 bits without the checks.
        PlanInputs in = inputs(limits, 256, 4, 4, {UINT32_MAX, UINT32_MAX, UINT32_MAX});
        auto plan = plan_attention(in, limits);
        REQUIRE_FALSE(plan.ok());
        CHECK(contains(plan.error().message, "more than 2^64 bytes"));
        auto scratch = attention_scratch(in.model.config, Precision::fp32, in.shape, limits, in.model.tiling, 0, true);
        REQUIRE_FALSE(scratch.ok());
        CHECK(contains(scratch.error().message, "2^64"));
        // The host staging of such a shape saturates rather than wrapping.
        CHECK(shape_bytes_overflow(shape_bytes(in.model.config, in.shape, {}, true)));
        CHECK_FALSE(shape_bytes_overflow(shape_bytes(in.model.config, {2, 3, 5}, {}, true)));
    }

    TEST_CASE("binding: caller strides whose extent passes 2^64 are refused") {
        const DeviceLimits limits = lavapipe_like();
        const TensorStrides huge{UINT32_MAX, UINT32_MAX, UINT32_MAX};
        CHECK(strided_extent(huge, UINT32_MAX, 4, 2, 64) == kSaturated);
        CHECK(strided_extent(huge, 2, 2, 2, 64) == 3ull * UINT32_MAX + 64);
        // Through the planner: huge strides on a small shape are refused by the binding check, naming the input.
        PlanInputs in = inputs(limits, 64, 4, 4, {2, 2, 2});
        in.own_qkv = true;
        in.qkv = {huge, huge, huge, huge};
        auto plan = plan_attention(in, limits);
        REQUIRE_FALSE(plan.ok());
        CHECK(contains(plan.error().message, "query input"));
    }

    TEST_CASE("workgroups: B*G fused workgroups past 65535 are refused by name, at 65535 they plan") {
        vkmha::test::ValidationGuard guard;
        const DeviceLimits limits = lavapipe_like();
        PlanInputs in = inputs(limits, 16, 4, 1, {kGuaranteedGroups, 1, 1}); // G = 1: one workgroup row per batch
        in.options.split_k = false;
        auto at_limit = plan_attention(in, limits);
        REQUIRE_MESSAGE(at_limit.ok(), at_limit.error().message);
        for (const Pass& pass : at_limit->passes)
            for (uint32_t count : pass.groups) CHECK(count <= kGuaranteedGroups);
        in.shape.batch = kGuaranteedGroups + 1;
        auto over = plan_attention(in, limits);
        REQUIRE_FALSE(over.ok());
        CHECK(over.error().code == ErrorCode::unsupported);
        CHECK(contains(over.error().message, "attention needs 65536 workgroups in dimension 1"));
        CHECK(contains(over.error().message, "65535"));
    }

    TEST_CASE("workgroups: projection row tiles past 65535 fold into the grid's z, in one dispatch each") {
        // linear.comp's packed K/V outputs take no row offset, so a projection is not split into several dispatches:
        // its row tiles fold over (y <= 65535, z), and the kernel reads tile z * groups.y + y.
        DeviceLimits limits = lavapipe_like();
        limits.max_storage_buffer_range = UINT32_MAX; // reach the grid, not a binding
        const uint32_t block_m = vkmha::test::gpu_context().shaders().linear_tiling().block_m();
        for (uint32_t lq : {kGuaranteedGroups, kGuaranteedGroups + 1, 3 * kGuaranteedGroups}) {
            CAPTURE(lq);
            PlanInputs in = inputs(limits, 16, 4, 4, {block_m, lq, 1}); // lq row tiles
            in.options.split_k = false;
            auto plan = plan_attention(in, limits);
            REQUIRE_MESSAGE(plan.ok(), plan.error().message);
            uint32_t folded = 0;
            for (const Pass& pass : plan->passes) {
                for (uint32_t count : pass.groups) CHECK(count <= kGuaranteedGroups);
                if (pass.kernel != Kernel::linear) continue;
                LinearParams params;
                std::memcpy(static_cast<void*>(&params), pass.push.data(), sizeof params);
                const uint64_t tiles = (uint64_t(params.M) + block_m - 1) / block_m;
                CHECK(uint64_t(pass.groups[1]) * pass.groups[2] >= tiles);      // every row tile has a workgroup
                CHECK(uint64_t(pass.groups[1]) * (pass.groups[2] - 1) < tiles); // and no z layer is wholly idle
                if (tiles == lq) ++folded;
            }
            CHECK(folded == 2); // the query and output projections, one dispatch each (K/V: block_m rows)
        }
    }

    TEST_CASE("workgroups: 557056 token rows, 69632 projection row tiles, match the CPU reference") {
        // End to end on the device: B * L rows past 65535 of lavapipe's 8-row projection tiles (lane tiles) fold
        // into a second grid layer; before, this record was refused. One KV head keeps the fused grid at B = 32768.
        const uint32_t B = 32768, L = 17;
        vkmha::test::ModelSpec spec;
        spec.embed = 8;
        spec.heads = 2;
        spec.kv_heads = 1;
        spec.naming = vkmha::test::Naming::llama;
        vkmha::test::OwnSetup setup(spec, vkmha::test::session_info(B, L, L, true));
        const VkmhaContextProperties p = vkmha::test::context_properties(setup.context.get());
        if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) // lane tiles of 8 rows: the premise of this test
            CHECK(uint64_t(B) * L / 8 > kGuaranteedGroups);
        AttentionOptions options;
        options.causal = true;
        const vkmha::test::RunInputs in =
            vkmha::test::make_inputs(setup.host.config, {B, L, L}, options, false, false, 17);
        vkmha::test::run_and_check(setup.session.get(), setup.host, in, "69632 row tiles");
        setup.check_still_works("after the folded projections");
    }

    TEST_CASE("workgroups: the unfused path splits B*H past 65535 into chunks that each fit the grid") {
        vkmha::test::ValidationGuard guard;
        const DeviceLimits limits = lavapipe_like();
        PlanInputs in = inputs(limits, 16, 4, 4, {20000, 1, 1}); // B*H = 80000 (batch, head) pairs
        in.options.path = AttentionPath::unfused;
        in.scores_capacity = 1u << 20; // room for every pair's 1x1 scores in one chunk, but not in one grid
        auto plan = plan_attention(in, limits);
        REQUIRE_MESSAGE(plan.ok(), plan.error().message);
        CHECK(plan->chunk_bh <= kGuaranteedGroups);
        uint32_t score_passes = 0;
        for (const Pass& pass : plan->passes) {
            for (uint32_t count : pass.groups) CHECK(count <= kGuaranteedGroups);
            if (pass.kernel == Kernel::scores) ++score_passes;
        }
        CHECK(score_passes == 2);
    }

    TEST_CASE("workgroups: B*H = 80000 pairs of attention weights run in grid-sized chunks, matching the reference") {
        // The split above, end to end: need_weights recomputes scores per chunk of (batch, head) pairs through the same
        // chunking; before it, this record was refused for its 80000-deep score grid. One KV head keeps the fused
        // kernel's B*G grid at 20000.
        const uint32_t B = 20000;
        vkmha::test::ModelSpec spec;
        spec.heads = 4;
        spec.kv_heads = 1;
        spec.naming = vkmha::test::Naming::llama;
        vkmha::test::OwnSetup setup(spec, vkmha::test::session_info(B, 1, 2, true));
        REQUIRE(uint64_t(B) * setup.host.config.num_heads > kGuaranteedGroups);
        AttentionOptions options;
        options.need_weights = true;
        options.average_weights = false;
        const vkmha::test::RunInputs in =
            vkmha::test::make_inputs(setup.host.config, {B, 1, 2}, options, true, false, 16);
        vkmha::test::run_and_check(setup.session.get(), setup.host, in, "B*H = 80000, per-head weights");
    }

    TEST_CASE("arena: a buffer total past 2^64 bytes is refused before vkCreateBuffer is asked for it") {
        vkmha::test::ValidationGuard guard;
        const Device& device = vkmha::test::gpu_context().device();
        const std::vector<BufferRequest> one = {{"vkmha huge", kSaturated - 8, MemoryKind::device_local}};
        auto single = Arena::measure(device, one);
        REQUIRE_FALSE(single.ok());
        CHECK(contains(single.error().message, "vkmha huge need more than 2^64 bytes"));
    }

    TEST_CASE("memory queries: max shapes that overflow or exceed the bindings are refused before allocating") {
        const VkmhaProcTable& t = vkmha::test::api();
        vkmha::test::OwnSetup setup(vkmha::test::ModelSpec{}, vkmha::test::session_info(1, 4, 4, true));
        VkDeviceSize bytes = 0;
        // Past 2^64 bytes of scratch: refused naming the overflow, not wrapped into a small arena.
        VkmhaSessionCreateInfo huge = vkmha::test::session_info(UINT32_MAX, UINT32_MAX, UINT32_MAX, false);
        EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.getSessionMemoryRequirements(setup.model.get(), &huge, &bytes),
                       "2^64");
        // The same shape with host I/O stages inputs and weights of more than 2^64 bytes.
        huge = vkmha::test::session_info(UINT32_MAX, UINT32_MAX, UINT32_MAX, true);
        EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.getSessionMemoryRequirements(setup.model.get(), &huge, &bytes),
                       "2^64");
        // Within 64 bits but over one binding: refused naming the limit.
        VkmhaSessionCreateInfo wide = vkmha::test::session_info(1u << 16, 1u << 10, 4, false);
        const uint64_t range = vkmha::test::gpu_context().device().limits().max_storage_buffer_range;
        if (uint64_t(1u << 16) * (1u << 10) * 16 * 4 > range) {
            EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.getSessionMemoryRequirements(setup.model.get(), &wide, &bytes),
                           "maxStorageBufferRange");
        }
        setup.check_still_works("after refused memory queries");
    }

    TEST_CASE("untrusted weights: crafted files are refused through the C API before anything is allocated") {
        const VkmhaProcTable& t = vkmha::test::api();
        vkmha::test::LogCapture log;
        vkmha::test::ContextHandle context;
        const VkmhaContextCreateInfo ci = vkmha::test::own_context_info(&log);
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        const std::string w = R"("in_proj_weight":{"dtype":"F32","shape":[48,16],"data_offsets":)";
        std::string many = "{";
        for (int i = 0; i < 100001; ++i)
            many += (i ? ",\"" : "\"") + std::to_string(i) + R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]})";
        many += "}";
        struct Crafted {
            const char* what;
            CraftedFile file;
            const char* message;
        };
        const Crafted files[] = {
            // 2^40 floats (4 TiB) claimed in 64 bytes.
            {"a 4 TiB tensor in 64 bytes",
             CraftedFile(
                 R"({"in_proj_weight":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}})", 64),
             "exceed the data section (64 bytes)"},
            {"a tensor shorter than its shape", CraftedFile("{" + w + "[0,64]}}", 64), "hold 64 bytes"},
            {"a header length past the file", CraftedFile("{}", 0, 100ull << 20), "header length 104857600 exceeds"},
            {"a header length past the cap", CraftedFile("{}", 0, (100ull << 20) + 1), "exceeds the 100 MiB limit"},
            {"more tensors than the cap", CraftedFile(many, 0), "more than 100000 tensors"},
        };
        for (const Crafted& c : files) {
            CAPTURE(c.what);
            VkmhaModelCreateInfo mi{};
            mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
            mi.numHeads = 4;
            const std::string path = c.file.path();
            mi.pSafetensorsPath = path.c_str();
            VkDeviceSize bytes = 0;
            EXPECT_FAILURE(VKMHA_ERROR_IO, t.getModelMemoryRequirements(context.get(), &mi, &bytes), path, c.message);
            vkmha::test::ModelHandle model;
            EXPECT_FAILURE(VKMHA_ERROR_IO, t.createModel(context.get(), &mi, model.out()), path, c.message);
            CHECK(model.get() == nullptr);
        }
        // The context is untouched: a good model still loads and reports its memory.
        const vkmha::test::HostModel good = vkmha::test::make_model(vkmha::test::ModelSpec{});
        vkmha::test::ModelHandle model;
        vkmha::test::create_model(context.get(), good, model);
        vkmha::test::check_no_validation_messages(context.get(), log);
    }
}
