// 1.3: the CPU reference through the C ABI: the same inputs as submit or submitQkv, the same outputs as readOutputs.
#include "reference.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace vkmha::plugin {
namespace {

Error refused(const std::string& message) { return make_error(ErrorCode::invalid_argument, message); }

// What the caller's pointers must hold; the counts are those readOutputs returns for the same submit.
struct OutputCounts {
    uint64_t output = 0, weights = 0;
};

OutputCounts counts_of(const AttentionConfig& c, const AttentionShape& s, const AttentionOptions& o, bool qkv) {
    OutputCounts n;
    const uint64_t width = qkv ? uint64_t(c.num_heads) * c.head_dim() : c.embed_dim;
    n.output = uint64_t(s.batch) * s.lq * width;
    if (o.need_weights) n.weights = uint64_t(s.batch) * (o.average_weights ? 1 : c.num_heads) * s.lq * s.lk;
    return n;
}

Status check_destinations(const VkmhaReferenceInfo& info, const AttentionOptions& o, const OutputCounts& need) {
    if (!info.pOutput) return refused("pInfo->pOutput is NULL");
    if (info.outputCount < need.output)
        return refused("pInfo->outputCount " + std::to_string(info.outputCount) + " is below the output's " +
                       std::to_string(need.output) + " floats");
    if (!info.pWeights) return {};
    if (!o.need_weights)
        return refused("pInfo->pWeights is set but the flags lack VKMHA_ATTENTION_NEED_WEIGHTS_BIT (no weights to "
                       "write)");
    if (info.weightsCount < need.weights)
        return refused("pInfo->weightsCount " + std::to_string(info.weightsCount) + " is below the weights' " +
                       std::to_string(need.weights) + " floats");
    return {};
}

// The masks a submit names by type must be given (as the GPU path requires).
Status check_masks(const char* owner, const AttentionOptions& o, const uint8_t* key_padding, const void* attn_mask) {
    if (o.key_padding == MaskKind::boolean && !key_padding)
        return refused(std::string(owner) + "::keyPaddingMaskType is BOOL but pKeyPaddingMask is NULL");
    if (o.attn_mask != MaskKind::none && !attn_mask)
        return refused(std::string(owner) + "::attnMaskType is " +
                       (o.attn_mask == MaskKind::boolean ? "BOOL" : "ADDITIVE") + " but pAttnMask is NULL");
    return {};
}

Status write_outputs(const Result<AttentionOutputs>& out, const VkmhaReferenceInfo& info) {
    if (!out) return out.error();
    std::copy(out->output.begin(), out->output.end(), info.pOutput);
    if (info.pWeights) std::copy(out->weights.begin(), out->weights.end(), info.pWeights);
    return {};
}

Status run_projected(const io::LoadedModel& model, const VkmhaReferenceInfo& info, const AttentionOptions& options,
                     const HostPositions& positions, std::span<const float> head_mask) {
    const VkmhaHostSubmitInfo& s = *info.pSubmit;
    if (model.config.attention_only)
        return refused("the model is attention-only (VkmhaModelAttentionInfo::attentionOnly, no projection weights): "
                       "pInfo->pSubmit projects its inputs; give the caller's own Q, K and V in pInfo->pQkv");
    if (!s.pQuery) return refused("VkmhaHostSubmitInfo::pQuery is NULL");
    VKMHA_TRY(check_masks("VkmhaHostSubmitInfo", options, s.pKeyPaddingMask, s.pAttnMask));
    const AttentionShape shape{s.batch, s.queryLength, s.keyLength};
    // The shape and options first, so that a bad count is not reported for a shape that is itself refused.
    VKMHA_TRY(validate_attention(model.config, model.weights, shape, options));
    VKMHA_TRY(check_destinations(info, options, counts_of(model.config, shape, options, false)));
    AttentionInputs in;
    in.query = s.pQuery;
    in.key = s.pKey;
    in.value = s.pValue;
    in.key_padding_mask = s.pKeyPaddingMask;
    in.attn_mask = s.pAttnMask;
    in.position_ids = positions.queries;
    in.head_mask = head_mask;
    return write_outputs(reference_attention(model.config, model.weights, shape, options, in), info);
}

Status run_own_qkv(const io::LoadedModel& model, const VkmhaReferenceInfo& info, const AttentionOptions& options,
                   const HostPositions& positions, std::span<const float> head_mask) {
    const VkmhaHostQkvSubmitInfo& s = *info.pQkv;
    for (const auto& [name, pointer] : {std::pair{"pQ", s.pQ}, {"pK", s.pK}, {"pV", s.pV}})
        if (!pointer) return refused(std::string("VkmhaHostQkvSubmitInfo::") + name + " is NULL");
    VKMHA_TRY(check_masks("VkmhaHostQkvSubmitInfo", options, s.pKeyPaddingMask, s.pAttnMask));
    const AttentionShape shape{s.batch, s.queryLength, s.keyLength};
    if (shape.batch == 0 || shape.lq == 0 || shape.lk == 0)
        return refused("batch " + std::to_string(shape.batch) + ", queryLength " + std::to_string(shape.lq) +
                       ", keyLength " + std::to_string(shape.lk) + ": each must be >= 1");
    VKMHA_TRY(check_destinations(info, options, counts_of(model.config, shape, options, true)));
    AttentionInputs in;
    in.query = s.pQ;
    in.key = s.pK;
    in.value = s.pV;
    in.key_padding_mask = s.pKeyPaddingMask;
    in.attn_mask = s.pAttnMask;
    in.position_ids = positions.queries;
    in.key_position_ids = positions.keys;
    in.head_mask = head_mask;
    return write_outputs(reference_attention_qkv(model.config, model.weights, shape, options, in), info);
}

} // namespace

Status run_reference(const io::LoadedModel& model, const VkmhaReferenceInfo& info, const AttentionOptions& options,
                     const HostPositions& positions, std::span<const float> head_mask) {
    return info.pSubmit ? run_projected(model, info, options, positions, head_mask)
                        : run_own_qkv(model, info, options, positions, head_mask);
}

} // namespace vkmha::plugin
