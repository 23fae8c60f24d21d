// Shader statistics: builds the list of a model's pipelines and reads each one's executable statistics.
#include "pipeline_statistics.h"

#include "model.h"

#include <algorithm>

namespace vkmha {
namespace {

PipelineRole role_of(Kernel k) {
    switch (k) {
    case Kernel::combine: return PipelineRole::combine;
    case Kernel::linear: return PipelineRole::projection;
    default: return PipelineRole::other;
    }
}

// The storage variants a model of `precision` runs of kernel k: fp32 models the f32 rows; fp16 models the f16 and
// f16_in rows, and f32 where the kernel has no fp16 variant (softmax, average_heads, probs_from_lse).
std::vector<Variant> variants_for(Kernel k, Precision precision) {
    if (precision == Precision::fp32) return {Variant::f32};
    std::vector<Variant> out;
    for (Variant v : {Variant::f16, Variant::f16_in})
        if (has_variant(k, v)) out.push_back(v);
    if (out.empty()) out.push_back(Variant::f32);
    return out;
}

Result<std::vector<PipelineStatistic>> read_statistics(const Device& d, VkPipeline pipeline, const char* name) {
    const auto& vk = d.vk();
    VkPipelineExecutableInfoKHR executable{VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR};
    executable.pipeline = pipeline;
    executable.executableIndex = 0; // a compute pipeline has one executable: its compute shader
    uint32_t count = 0;
    VkResult r = vk.vkGetPipelineExecutableStatisticsKHR(d.handle(), &executable, &count, nullptr);
    if (r != VK_SUCCESS)
        return d.vk_error((std::string("vkGetPipelineExecutableStatisticsKHR(") + name + ")").c_str(), r);
    std::vector<VkPipelineExecutableStatisticKHR> raw(count, {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR});
    r = vk.vkGetPipelineExecutableStatisticsKHR(d.handle(), &executable, &count, raw.data());
    if (r != VK_SUCCESS && r != VK_INCOMPLETE)
        return d.vk_error((std::string("vkGetPipelineExecutableStatisticsKHR(") + name + ")").c_str(), r);
    std::vector<PipelineStatistic> out;
    for (uint32_t i = 0; i < count; ++i) out.push_back({raw[i].name, raw[i].format, raw[i].value});
    return out;
}

std::vector<SpecializationValue> attention_specialization(const AttentionTiling& t, uint32_t modifiers) {
    return {{"local_size_x", t.workgroup}, {"ROWS", t.rows}, {"BC", t.keys}, {"DC", t.dims}, {"D_MAX", t.max_head_dim},
            {"SCORE_MODIFIERS", modifiers}};
}

std::vector<SpecializationValue> linear_specialization(const LinearTiling& t) {
    return {{"local_size_x", t.x},
            {"local_size_y", t.y},
            {"TILE_K", t.k},
            {"ROWS_PER_INVOCATION", t.rows},
            {"COLS_PER_INVOCATION", t.cols}};
}

// The context's pipelines of kernel k that a model of `precision` runs (every kernel but the fused one).
Status add_context_pipelines(const Context& ctx, Kernel k, Precision precision, std::vector<PipelineReport>& out) {
    const ShaderLibrary& lib = ctx.shaders();
    const bool lanes = k == Kernel::linear && lib.linear_tiling().lanes;
    for (Variant v : variants_for(k, precision)) {
        VkPipeline pipeline = lib.pipeline(k, v);
        const KernelVariantRow* row = kernel_row(k, v, lanes, lib.policy().subgroup_arithmetic);
        if (!pipeline || !row) continue;
        PipelineReport report;
        report.kernel = kernel_name(k);
        report.variant = row->name;
        report.role = role_of(k);
        auto iface = reflect_shader_interface(row->spirv());
        if (iface) report.workgroup = iface->local_size;
        if (k == Kernel::linear) {
            report.specialization = linear_specialization(lib.linear_tiling());
            report.workgroup = {lib.linear_tiling().x, lib.linear_tiling().y, 1};
        }
        auto stats = read_statistics(ctx.device(), pipeline, row->name);
        if (!stats) return stats.take_error();
        report.statistics = std::move(stats.value());
        out.push_back(std::move(report));
    }
    return {};
}

// The model's fused-kernel pipeline of one tiling, built as Model::create builds it.
Status add_fused_pipeline(const Context& ctx, const AttentionConfig& c, Precision precision, const AttentionTiling& t,
                          PipelineRole role, std::vector<PipelineReport>& out) {
    auto pipeline = ctx.shaders().attention_pipeline(t, precision, score_modifiers(c));
    if (!pipeline) return pipeline.take_error();
    const Variant v = precision == Precision::fp16 ? Variant::f16 : Variant::f32;
    const KernelVariantRow* row = kernel_row(Kernel::attention, v, t.lanes, false);
    PipelineReport report;
    report.kernel = kernel_name(Kernel::attention);
    report.variant = row ? row->name : "attention";
    report.role = role;
    report.workgroup = {t.workgroup, 1, 1};
    report.specialization = attention_specialization(t, score_modifiers(c));
    auto stats = read_statistics(ctx.device(), pipeline->get(), report.variant.c_str());
    if (!stats) return stats.take_error();
    report.statistics = std::move(stats.value());
    out.push_back(std::move(report));
    return {};
}

} // namespace

const char* pipeline_role_name(PipelineRole r) {
    switch (r) {
    case PipelineRole::prefill: return "prefill";
    case PipelineRole::decode: return "decode";
    case PipelineRole::combine: return "combine";
    case PipelineRole::projection: return "projection";
    default: return "other";
    }
}

double PipelineStatistic::as_double() const {
    switch (format) {
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: return value.b32 ? 1.0 : 0.0;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: return static_cast<double>(value.i64);
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: return static_cast<double>(value.u64);
    default: return value.f64;
    }
}

const PipelineStatistic* PipelineReport::find(const std::string& name) const {
    auto it = std::find_if(statistics.begin(), statistics.end(), [&](const auto& s) { return s.name == name; });
    return it == statistics.end() ? nullptr : &*it;
}

Result<std::vector<PipelineReport>> pipeline_statistics(const Context& ctx, const AttentionConfig& c,
                                                        Precision precision) {
    const Device& d = ctx.device();
    if (!d.pipeline_statistics())
        return make_error(ErrorCode::unsupported,
                          "device '" + d.info().name + "' reports no shader statistics: " +
                              (d.compile_only() ? "it lacks VK_KHR_pipeline_executable_properties"
                                                : "only a compile-only context in own mode enables "
                                                  "VK_KHR_pipeline_executable_properties"));
    VKMHA_TRY(validate_config(c));
    if (precision == Precision::fp16 && !d.storage16())
        return make_error(ErrorCode::unsupported,
                          "device '" + d.info().name + "' lacks storageBuffer16BitAccess, which fp16 storage needs");
    std::vector<PipelineReport> out;
    const FusedTilings tilings = choose_fused_tilings(d.limits(), ctx.kernel_policy(), c);
    if (tilings.fused) {
        VKMHA_TRY(add_fused_pipeline(ctx, c, precision, tilings.prefill, PipelineRole::prefill, out));
        VKMHA_TRY(add_fused_pipeline(ctx, c, precision, tilings.decode, PipelineRole::decode, out));
    }
    for (uint32_t k = 0; k < kKernelCount; ++k)
        if (static_cast<Kernel>(k) != Kernel::attention)
            VKMHA_TRY(add_context_pipelines(ctx, static_cast<Kernel>(k), precision, out));
    return out;
}

} // namespace vkmha
