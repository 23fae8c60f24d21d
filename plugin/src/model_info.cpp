// A VkmhaModelCreateInfo read into what the host takes: its tensors (file or memory), its fields and its chained
// VkmhaModelAttentionInfo checked against the weights, each refusal naming the field and the value.
#include "model_info.h"

#include "chain.h"
#include "enum_mirror.h"
#include "io/safetensors.h"
#include "rope.h"
#include "struct_check.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace vkmha::plugin {
namespace {

// The create-info's tensors (read from pSafetensorsPath, or copied from pTensors) and where they came from, for
// messages. Neither given (an attention-only model): none.
struct ModelTensors {
    std::vector<io::Tensor> tensors;
    std::string origin;
};

Result<ModelTensors> read_tensors(const VkmhaModelCreateInfo& info) {
    std::vector<io::Tensor> tensors;
    std::string origin;
    if (info.pSafetensorsPath) {
        origin = info.pSafetensorsPath;
        auto read = io::read_safetensors(origin);
        if (!read) return read.take_error();
        tensors = std::move(read.value());
    } else {
        origin = "pTensors";
        for (uint32_t i = 0; i < info.tensorCount; ++i) {
            const VkmhaTensor& t = info.pTensors[i];
            const std::string at = "pTensors[" + std::to_string(i) + "]";
            if (!t.pName) return make_error(ErrorCode::invalid_argument, at + ".pName is NULL");
            if (!t.pData) return make_error(ErrorCode::invalid_argument, at + " ('" + t.pName + "') pData is NULL");
            if (t.rank == 0 || t.rank > 4)
                return make_error(ErrorCode::invalid_argument,
                                  at + " ('" + t.pName + "') rank " + std::to_string(t.rank) + " is outside 1..4");
            io::Tensor tensor;
            tensor.name = t.pName;
            size_t elem = 0;
            const uint32_t type = raw_enum(t.dataType);
            switch (type) {
            case VKMHA_DATA_TYPE_F32: tensor.dtype = io::DType::f32, elem = 4; break;
            case VKMHA_DATA_TYPE_F16: tensor.dtype = io::DType::f16, elem = 2; break;
            case VKMHA_DATA_TYPE_BF16: tensor.dtype = io::DType::bf16, elem = 2; break;
            default:
                return make_error(ErrorCode::invalid_argument,
                                  at + " ('" + t.pName + "') dataType " + std::to_string(type) + " is unknown");
            }
            uint64_t count = 1;
            for (uint32_t r = 0; r < t.rank; ++r) {
                if (t.shape[r] == 0 || t.shape[r] > (1ull << 32) || count > (1ull << 34) / t.shape[r])
                    return make_error(ErrorCode::invalid_argument,
                                      at + " ('" + t.pName + "') shape[" + std::to_string(r) +
                                          "] = " + std::to_string(t.shape[r]) + " is out of range");
                count *= t.shape[r];
                tensor.shape.push_back(t.shape[r]);
            }
            const auto* bytes = static_cast<const uint8_t*>(t.pData);
            tensor.data.assign(bytes, bytes + count * elem);
            tensors.push_back(std::move(tensor));
        }
    }
    return ModelTensors{std::move(tensors), std::move(origin)};
}

// The create-info's own fields (its chain is walked before: attention_only is its VkmhaModelAttentionInfo's).
Status check_model_info(const VkmhaModelCreateInfo* info, bool attention_only) {
    if (info->numHeads == 0) return make_error(ErrorCode::invalid_argument, "numHeads is 0");
    if (info->pSafetensorsPath != nullptr && info->tensorCount > 0)
        return make_error(ErrorCode::invalid_argument, "give exactly one of pSafetensorsPath and tensorCount/pTensors");
    if (!attention_only && info->pSafetensorsPath == nullptr && info->tensorCount == 0)
        return make_error(ErrorCode::invalid_argument, "give exactly one of pSafetensorsPath and tensorCount/pTensors "
                                                       "(only a VkmhaModelAttentionInfo::attentionOnly model has "
                                                       "no weights)");
    if (info->tensorCount && !info->pTensors)
        return make_error(ErrorCode::invalid_argument, "tensorCount is nonzero but pTensors is NULL");
    const uint32_t precision = raw_enum(info->precision);
    if (precision != VKMHA_PRECISION_FP32 && precision != VKMHA_PRECISION_FP16)
        return make_error(ErrorCode::invalid_argument, "precision " + std::to_string(precision) + " is unknown");
    return {};
}

// ---- 1.2: VkmhaModelAttentionInfo ------------------------------------------------------------------------------

Error attention_info_error(const std::string& what) {
    return make_error(ErrorCode::invalid_argument, "VkmhaModelAttentionInfo::" + what);
}

std::string number(float value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(value));
    return buf;
}

// A float field whose 0 is its default; anything else must be finite and above `minimum`.
Status check_above(const char* field, float value, float minimum = 0.0f) {
    if (value == 0.0f || (std::isfinite(value) && value > minimum)) return {};
    return attention_info_error(std::string(field) + " is " + number(value) +
                                "; expected 0 (the default) or a finite number > " + number(minimum));
}

Status check_bool(const char* field, VkBool32 value) {
    if (value == VK_FALSE || value == VK_TRUE) return {};
    return attention_info_error(std::string(field) + " is " + std::to_string(value) + ", not VK_TRUE or VK_FALSE");
}

const char* scaling_name(VkmhaRopeScaling scaling) {
    switch (scaling) {
    case VKMHA_ROPE_SCALING_LINEAR: return "LINEAR";
    case VKMHA_ROPE_SCALING_LLAMA3: return "LLAMA3";
    case VKMHA_ROPE_SCALING_YARN: return "YARN";
    default: return "NONE";
    }
}

Status check_enums(const VkmhaModelAttentionInfo& a) {
    if (raw_enum(a.ropeLayout) > VKMHA_ROPE_LAYOUT_GPTJ)
        return attention_info_error("ropeLayout " + std::to_string(raw_enum(a.ropeLayout)) +
                                    " is unknown (NONE 0, NEOX 1, GPTJ 2)");
    if (raw_enum(a.ropeScaling) > VKMHA_ROPE_SCALING_YARN)
        return attention_info_error("ropeScaling " + std::to_string(raw_enum(a.ropeScaling)) +
                                    " is unknown (NONE 0, LINEAR 1, LLAMA3 2, YARN 3)");
    VKMHA_TRY(check_bool("ropeNoTruncate", a.ropeNoTruncate));
    VKMHA_TRY(check_bool("attentionOnly", a.attentionOnly));
    return check_bool("alibi", a.alibi);
}

// RoPE settings without a layout are most likely a forgotten ropeLayout, not a wish for no RoPE.
Status check_rope_unset(const VkmhaModelAttentionInfo& a) {
    const std::pair<const char*, bool> fields[] = {{"rotaryDims", a.rotaryDims != 0},
                                                   {"ropeTheta", a.ropeTheta != 0},
                                                   {"ropeScaling", a.ropeScaling != VKMHA_ROPE_SCALING_NONE},
                                                   {"ropeScalingFactor", a.ropeScalingFactor != 0},
                                                   {"ropeLowFreqFactor", a.ropeLowFreqFactor != 0},
                                                   {"ropeHighFreqFactor", a.ropeHighFreqFactor != 0},
                                                   {"ropeOriginalMaxPositions", a.ropeOriginalMaxPositions != 0},
                                                   {"ropeBetaFast", a.ropeBetaFast != 0},
                                                   {"ropeBetaSlow", a.ropeBetaSlow != 0},
                                                   {"ropeNoTruncate", a.ropeNoTruncate != VK_FALSE}};
    for (const auto& [field, set] : fields)
        if (set) return attention_info_error(std::string(field) + " is set but ropeLayout is NONE");
    return {};
}

// The parameters the chosen scaling reads (the others are ignored).
Status check_rope_scaling(const VkmhaModelAttentionInfo& a) {
    if (a.ropeScaling == VKMHA_ROPE_SCALING_NONE) return {};
    const std::string scaling = scaling_name(a.ropeScaling);
    if (!(std::isfinite(a.ropeScalingFactor) && a.ropeScalingFactor > 0))
        return attention_info_error("ropeScalingFactor is " + number(a.ropeScalingFactor) + "; " + scaling +
                                    " scaling needs a finite factor > 0");
    if (a.ropeScaling == VKMHA_ROPE_SCALING_LINEAR) return {};
    if (a.ropeOriginalMaxPositions == 0)
        return attention_info_error("ropeOriginalMaxPositions is 0; " + scaling +
                                    " scaling needs the original context length (original_max_position_embeddings)");
    if (a.ropeScaling == VKMHA_ROPE_SCALING_YARN) return {};
    const float low = a.ropeLowFreqFactor, high = a.ropeHighFreqFactor;
    if (!(std::isfinite(low) && std::isfinite(high) && low > 0 && high > low))
        return attention_info_error("ropeLowFreqFactor " + number(low) + " and ropeHighFreqFactor " + number(high) +
                                    ": LLAMA3 scaling needs 0 < ropeLowFreqFactor < ropeHighFreqFactor");
    return {};
}

Status check_rope(const VkmhaModelAttentionInfo& a, uint32_t head_dim) {
    if (a.ropeLayout == VKMHA_ROPE_LAYOUT_NONE) return check_rope_unset(a);
    if (a.rotaryDims % 2 != 0 || a.rotaryDims > head_dim)
        return attention_info_error("rotaryDims " + std::to_string(a.rotaryDims) +
                                    " must be even and at most headDim " + std::to_string(head_dim));
    VKMHA_TRY(check_above("ropeTheta", a.ropeTheta, 1.0f));
    VKMHA_TRY(check_above("ropeBetaFast", a.ropeBetaFast));
    VKMHA_TRY(check_above("ropeBetaSlow", a.ropeBetaSlow));
    return check_rope_scaling(a);
}

// The header's defaults (0 = ...) made explicit.
RopeConfig rope_config(const VkmhaModelAttentionInfo& a) {
    RopeConfig r;
    r.layout = to_host(a.ropeLayout);
    r.dims = a.rotaryDims;
    if (a.ropeTheta != 0) r.theta = a.ropeTheta;
    r.scaling = to_host(a.ropeScaling);
    if (r.scaling != RopeScaling::none) r.factor = a.ropeScalingFactor;
    if (r.scaling == RopeScaling::llama3) {
        r.low_freq_factor = a.ropeLowFreqFactor;
        r.high_freq_factor = a.ropeHighFreqFactor;
    }
    if (r.scaling == RopeScaling::llama3 || r.scaling == RopeScaling::yarn)
        r.original_max_positions = a.ropeOriginalMaxPositions;
    if (a.ropeBetaFast != 0) r.beta_fast = a.ropeBetaFast;
    if (a.ropeBetaSlow != 0) r.beta_slow = a.ropeBetaSlow;
    r.truncate = a.ropeNoTruncate != VK_TRUE;
    return r;
}

// Checks every field against the model's head dim (known once the weights are read) and sets them in `c`.
Status apply_attention_info(const VkmhaModelAttentionInfo& a, AttentionConfig& c) {
    VKMHA_TRY(check_enums(a));
    VKMHA_TRY(check_rope(a, c.head_dim()));
    VKMHA_TRY(check_above("scale", a.scale));
    VKMHA_TRY(check_above("softcap", a.softcap));
    VKMHA_TRY(check_above("normEps", a.normEps));
    if (a.ropeLayout != VKMHA_ROPE_LAYOUT_NONE) c.rope = rope_config(a);
    // A backstop for what the checks above do not word themselves (validate_rope is the core's own rule).
    if (Status rope = validate_rope(c.rope, c.head_dim()); !rope)
        return make_error(ErrorCode::invalid_argument, "VkmhaModelAttentionInfo: " + rope.error().message);
    c.scale = a.scale;
    c.softcap = a.softcap;
    c.alibi = a.alibi == VK_TRUE;
    c.window = a.window;
    if (a.normEps != 0) c.norm_eps = a.normEps;
    return {};
}

// ---- 1.2: attention-only models ---------------------------------------------------------------------------------

// The tensors an attention-only model takes, and nothing else: q_norm.weight and k_norm.weight [D] (both or neither)
// and sinks [H], any float type.
Result<io::LoadedModel> map_attention_only(const ModelTensors& in, const AttentionConfig& config) {
    io::LoadedModel m;
    m.config = config;
    const uint32_t D = config.head_dim(), H = config.num_heads;
    const std::string& origin = in.origin;
    auto named = [&](const io::Tensor& t) { return origin + ": tensor " + io::quote_for_message(t.name); };
    for (const io::Tensor& t : in.tensors)
        if (t.name != "q_norm.weight" && t.name != "k_norm.weight" && t.name != "sinks")
            return make_error(ErrorCode::invalid_argument,
                              named(t) + " is not one an attention-only model takes (VkmhaModelAttentionInfo::"
                                         "attentionOnly: only sinks, q_norm.weight and k_norm.weight)");
    auto take = [&](const char* name, uint64_t size, const char* dims, std::vector<float>& out) -> Result<bool> {
        const io::Tensor* t = io::find_tensor(in.tensors, name);
        if (!t) return false;
        if (t->shape != std::vector<uint64_t>{size})
            return make_error(ErrorCode::io, named(*t) + " has shape " + io::shape_to_string(t->shape) + ", expected " +
                                                 dims + " = [" + std::to_string(size) + "]");
        auto values = io::to_float(*t, origin);
        if (!values) return values.take_error();
        out = std::move(values.value());
        return true;
    };
    auto q = take("q_norm.weight", D, "[D]", m.weights.q_norm);
    if (!q) return q.take_error();
    auto k = take("k_norm.weight", D, "[D]", m.weights.k_norm);
    if (!k) return k.take_error();
    if (*q != *k)
        return make_error(ErrorCode::io, origin + ": tensor " + (*q ? "'q_norm.weight'" : "'k_norm.weight'") +
                                             " is given without " + (*q ? "'k_norm.weight'" : "'q_norm.weight'") +
                                             " (QK-norm needs both, [D] each)");
    m.config.qk_norm = *q;
    auto sinks = take("sinks", H, "[H]", m.weights.sinks);
    if (!sinks) return sinks.take_error();
    m.config.sinks = *sinks;
    return m;
}

// An attention-only model's shape comes from the create-info and the struct, not from weights.
Result<AttentionConfig> attention_only_config(const VkmhaModelCreateInfo& info, const VkmhaModelAttentionInfo& a) {
    const uint32_t H = info.numHeads, G = info.numKvHeads ? info.numKvHeads : info.numHeads;
    if (a.headDim == 0)
        return attention_info_error("headDim is 0; an attentionOnly model has no weights to infer the head dim from");
    if (G > H || H % G != 0)
        return make_error(ErrorCode::invalid_argument,
                          "numKvHeads " + std::to_string(G) + " does not divide numHeads " + std::to_string(H));
    if (uint64_t(H) * a.headDim > (1u << 16))
        return attention_info_error("headDim " + std::to_string(a.headDim) + ": numHeads * headDim = " +
                                    std::to_string(uint64_t(H) * a.headDim) + " is over 65536");
    AttentionConfig c;
    c.num_heads = H;
    c.num_kv_heads = G;
    c.explicit_head_dim = a.headDim;
    c.embed_dim = c.kdim = c.vdim = H * a.headDim;
    c.attention_only = true;
    return c;
}

} // namespace

Result<io::LoadedModel> load_model_info(const VkmhaModelCreateInfo* info) {
    VKMHA_TRY(check_struct(info, "pCreateInfo"));
    const void* chained = nullptr;
    const void* upload = nullptr; // read by upload_of
    const ChainTarget slots[] = {{VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO, &chained},
                                 {VKMHA_STRUCTURE_TYPE_MODEL_UPLOAD_INFO, &upload}};
    VKMHA_TRY(walk_chain(info->pNext, "VkmhaModelCreateInfo", slots));
    const auto* attention = static_cast<const VkmhaModelAttentionInfo*>(chained);
    if (attention) VKMHA_TRY(check_bool("attentionOnly", attention->attentionOnly));
    const bool attention_only = attention && attention->attentionOnly == VK_TRUE;
    VKMHA_TRY(check_model_info(info, attention_only));
    Result<io::LoadedModel> loaded = make_error(ErrorCode::internal, "no model");
    if (attention_only) {
        auto config = attention_only_config(*info, *attention);
        if (!config) return config.take_error();
        auto tensors = read_tensors(*info);
        if (!tensors) return tensors.take_error();
        loaded = map_attention_only(tensors.value(), config.value());
    } else {
        auto tensors = read_tensors(*info);
        if (!tensors) return tensors.take_error();
        loaded = io::map_attention_weights(tensors->tensors, info->numHeads, info->numKvHeads, tensors->origin);
        if (loaded && attention && attention->headDim != 0 && attention->headDim != loaded->config.head_dim())
            return attention_info_error("headDim is " + std::to_string(attention->headDim) +
                                        " but the weights give a head dim of " +
                                        std::to_string(loaded->config.head_dim()) + " (0: take the weights')");
    }
    // The weight mapping calls a missing or misshapen tensor an I/O error, which it is in a safetensors file; in the
    // caller's pTensors it is a bad argument.
    if (!loaded && !info->pSafetensorsPath && loaded.error().code == ErrorCode::io)
        return make_error(ErrorCode::invalid_argument, loaded.error().message);
    if (loaded && attention) VKMHA_TRY(apply_attention_info(*attention, loaded->config));
    return loaded;
}

Precision precision_of(const VkmhaModelCreateInfo& info) {
    return to_host(info.precision); // check_model_info refused any other value
}

Result<ModelUpload> upload_of(const VkmhaModelCreateInfo& info) {
    const void* attention = nullptr;
    const void* found = nullptr;
    const ChainTarget slots[] = {{VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO, &attention},
                                 {VKMHA_STRUCTURE_TYPE_MODEL_UPLOAD_INFO, &found}};
    VKMHA_TRY(walk_chain(info.pNext, "VkmhaModelCreateInfo", slots));
    const auto* upload = static_cast<const VkmhaModelUploadInfo*>(found);
    if (!upload) return ModelUpload::submit;
    if (upload->recordUpload != VK_FALSE && upload->recordUpload != VK_TRUE)
        return make_error(ErrorCode::invalid_argument, "VkmhaModelUploadInfo::recordUpload is " +
                                                           std::to_string(upload->recordUpload) +
                                                           ", not VK_TRUE or VK_FALSE");
    return upload->recordUpload == VK_TRUE ? ModelUpload::record : ModelUpload::submit;
}

} // namespace vkmha::plugin
