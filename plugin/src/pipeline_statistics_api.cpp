// getPipelineStatistics: the configuration checked and converted, the reports copied into the caller's structs.
#include "pipeline_statistics_api.h"

#include "enum_mirror.h"
#include "guard.h"
#include "pipeline_statistics.h"
#include "struct_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace vkmha::plugin {
namespace {

// The configuration as the host takes it; the score modifiers from a chained VkmhaModelAttentionInfo.
Result<AttentionConfig> config_of(const VkmhaPipelineStatisticsInfo& info) {
    const VkmhaModelAttentionInfo* attention = nullptr;
    const ChainTarget slots[] = {
        {VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO, reinterpret_cast<const void**>(&attention)}};
    VKMHA_TRY(walk_chain(info.pNext, "VkmhaPipelineStatisticsInfo", slots));
    const uint32_t precision = raw_enum(info.precision);
    if (precision != VKMHA_PRECISION_FP32 && precision != VKMHA_PRECISION_FP16)
        return argument_error("VkmhaPipelineStatisticsInfo::precision " + std::to_string(precision) + " is unknown");
    if (info.numHeads == 0) return argument_error("VkmhaPipelineStatisticsInfo::numHeads is 0");
    AttentionConfig c;
    c.embed_dim = info.embedDim;
    c.num_heads = info.numHeads;
    c.num_kv_heads = info.numKvHeads ? info.numKvHeads : info.numHeads;
    c.kdim = c.vdim = info.embedDim;
    c.explicit_head_dim = info.headDim;
    if (attention) {
        if (!(attention->softcap >= 0.0f) || !std::isfinite(attention->softcap))
            return argument_error("VkmhaModelAttentionInfo::softcap " + std::to_string(attention->softcap) +
                                  " is not a finite value >= 0");
        c.softcap = attention->softcap;
        c.alibi = attention->alibi == VK_TRUE;
    }
    return c;
}

void copy_name(char* dst, size_t size, const std::string& src) {
    const size_t n = std::min(size - 1, src.size());
    std::memcpy(dst, src.data(), n);
    dst[n] = '\0';
}

void fill(const PipelineReport& r, VkmhaPipelineStatistics& out) {
    void* next = out.pNext;
    out = {};
    out.sType = VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS;
    out.pNext = next;
    copy_name(out.kernel, sizeof(out.kernel), r.kernel);
    copy_name(out.variant, sizeof(out.variant), r.variant);
    out.role = static_cast<VkmhaPipelineRole>(r.role);
    for (size_t i = 0; i < 3; ++i) out.workgroupSize[i] = r.workgroup[i];
    out.specializationCount = static_cast<uint32_t>(std::min<size_t>(r.specialization.size(), 8));
    for (uint32_t i = 0; i < out.specializationCount; ++i) {
        copy_name(out.specializationNames[i], sizeof(out.specializationNames[i]), r.specialization[i].name);
        out.specializationValues[i] = r.specialization[i].value;
    }
    out.statisticCount = static_cast<uint32_t>(std::min<size_t>(r.statistics.size(), VKMHA_MAX_PIPELINE_STATISTICS));
    for (uint32_t i = 0; i < out.statisticCount; ++i) {
        copy_name(out.statistics[i].name, sizeof(out.statistics[i].name), r.statistics[i].name);
        out.statistics[i].format = r.statistics[i].format;
        out.statistics[i].value = r.statistics[i].value;
    }
}

static_assert(static_cast<uint32_t>(PipelineRole::prefill) == VKMHA_PIPELINE_ROLE_PREFILL &&
              static_cast<uint32_t>(PipelineRole::decode) == VKMHA_PIPELINE_ROLE_DECODE &&
              static_cast<uint32_t>(PipelineRole::combine) == VKMHA_PIPELINE_ROLE_COMBINE &&
              static_cast<uint32_t>(PipelineRole::projection) == VKMHA_PIPELINE_ROLE_PROJECTION &&
              static_cast<uint32_t>(PipelineRole::other) == VKMHA_PIPELINE_ROLE_OTHER);

} // namespace

VkmhaResult pipeline_statistics_c(const Context& context, const VkmhaPipelineStatisticsInfo* info, uint32_t* count,
                                  VkmhaPipelineStatistics* out) {
    if (!count) return fail(ErrorCode::invalid_argument, "pCount is NULL");
    if (Status s = check_struct(info, "pInfo"); !s) return fail(s.error());
    auto config = config_of(*info);
    if (!config) return fail(config.error());
    auto reports = pipeline_statistics(context, config.value(), to_host(info->precision));
    if (!reports) return fail(reports.error());
    const uint32_t n = static_cast<uint32_t>(reports->size());
    if (!out) {
        *count = n;
        return VKMHA_SUCCESS;
    }
    const uint32_t written = std::min(*count, n);
    for (uint32_t i = 0; i < written; ++i) {
        if (out[i].sType != VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS)
            return fail(ErrorCode::invalid_argument, "pStatistics[" + std::to_string(i) + "].sType is " +
                                                         std::to_string(out[i].sType) + ", expected " +
                                                         std::to_string(VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS) +
                                                         " for a VkmhaPipelineStatistics");
        if (Status s = no_chain(out[i].pNext, "VkmhaPipelineStatistics"); !s) return fail(s.error());
        fill((*reports)[i], out[i]);
    }
    *count = written;
    return written < n ? VKMHA_NOT_READY : VKMHA_SUCCESS;
}

} // namespace vkmha::plugin
