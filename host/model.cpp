// Model: validates a layer's weights and uploads them through a staging arena.
#include "model.h"

#include "io/half.h"
#include "pipeline_warmup.h"
#include "rope.h"

#include <cmath>
#include <cstring>

namespace vkmha {
namespace {

// wk/wv after wq, bk/bv after bq, in elements.
WeightOffsets offsets_of(const AttentionConfig& c) {
    const uint32_t E = c.embed_dim, QW = c.q_width(), KV = c.kv_width();
    return {QW * E, QW * E + KV * c.kdim, QW, QW + KV};
}

// In the order of Model's accessors; each weight takes precision_bytes per element (rounded up to whole 4-byte
// words).
std::vector<BufferRequest> model_requests(const AttentionConfig& c, Precision precision, MemoryKind kind) {
    const uint64_t E = c.embed_dim, QW = c.q_width(), KV = c.kv_width(), bytes = precision_bytes(precision);
    // An attention-only model stores no projections: 16-byte placeholders keep the accessors valid.
    auto req = [&](const char* name, uint64_t elems) {
        return BufferRequest{name, c.attention_only ? 16 : (elems * bytes + 3) / 4 * 4, kind};
    };
    return {req("vkmha wqkv", QW * E + KV * (c.kdim + c.vdim)),
            req("vkmha bqkv", QW + 2 * KV),
            req("vkmha wo", E * QW),
            req("vkmha bo", E),
            BufferRequest{"vkmha dummy", 16, kind},
            BufferRequest{"vkmha table", uint64_t(table_offsets(c).floats) * 4, kind}};
}

// The fp32 table's contents (TableOffsets), zero where a part is absent.
std::vector<float> table_contents(const AttentionConfig& c, const AttentionWeights& w) {
    const TableOffsets t = table_offsets(c);
    std::vector<float> table(t.floats, 0.0f);
    auto put = [&](const std::vector<float>& src, uint32_t offset) {
        std::copy(src.begin(), src.end(), &table[offset]);
    };
    if (c.sinks) put(w.sinks, t.sinks);
    if (c.rope.enabled()) put(rope_inv_freq(c.rope, c.rotary_dims()), t.inv_freq);
    if (c.qk_norm) {
        put(w.q_norm, t.q_norm);
        put(w.k_norm, t.k_norm);
    }
    return table;
}

Status check_precision(const Context& ctx, Precision precision) {
    if (precision != Precision::fp32 && precision != Precision::fp16)
        return make_error(ErrorCode::invalid_argument,
                          "precision " + std::to_string(static_cast<uint32_t>(precision)) + " is unknown");
    if (precision == Precision::fp16 && !ctx.device().storage16())
        return make_error(ErrorCode::unsupported, "fp16 precision needs the storageBuffer16BitAccess feature "
                                                  "(VkPhysicalDevice16BitStorageFeatures), which device '" +
                                                      ctx.device().info().name + "' does not have enabled");
    return {};
}

Status check_size(const char* name, const std::vector<float>& v, uint64_t expected, bool optional) {
    if (optional && v.empty()) return {};
    if (v.size() != expected)
        return make_error(ErrorCode::invalid_argument, std::string("weight '") + name + "' has " +
                                                           std::to_string(v.size()) + " values, expected " +
                                                           std::to_string(expected));
    return {};
}

} // namespace

Status validate_config(const AttentionConfig& c) {
    if (c.embed_dim == 0) return make_error(ErrorCode::invalid_argument, "embed_dim is 0");
    if (c.num_heads == 0) return make_error(ErrorCode::invalid_argument, "num_heads is 0");
    if (c.num_kv_heads == 0) return make_error(ErrorCode::invalid_argument, "num_kv_heads is 0");
    if (c.kdim == 0 || c.vdim == 0)
        return make_error(ErrorCode::invalid_argument,
                          "kdim " + std::to_string(c.kdim) + " / vdim " + std::to_string(c.vdim) + " must be nonzero");
    if (c.explicit_head_dim == 0 && c.embed_dim % c.num_heads != 0)
        return make_error(ErrorCode::invalid_argument, "embed_dim " + std::to_string(c.embed_dim) +
                                                           " is not divisible by num_heads " +
                                                           std::to_string(c.num_heads) + " (give the head dim)");
    if (uint64_t(c.num_heads) * c.head_dim() > (1u << 16))
        return make_error(ErrorCode::invalid_argument, "num_heads * head_dim " +
                                                           std::to_string(uint64_t(c.num_heads) * c.head_dim()) +
                                                           " over 65536 is not supported");
    if (c.num_heads % c.num_kv_heads != 0)
        return make_error(ErrorCode::invalid_argument, "num_heads " + std::to_string(c.num_heads) +
                                                           " is not divisible by num_kv_heads " +
                                                           std::to_string(c.num_kv_heads));
    if (c.embed_dim > (1u << 16) || c.kdim > (1u << 16) || c.vdim > (1u << 16))
        return make_error(ErrorCode::invalid_argument, "embed_dim/kdim/vdim over 65536 is not supported");
    VKMHA_TRY(validate_rope(c.rope, c.head_dim()));
    auto non_negative = [](const char* name, float v) -> Status {
        if (std::isfinite(v) && v >= 0.0f) return {};
        return make_error(ErrorCode::invalid_argument,
                          std::string(name) + " " + std::to_string(v) + " must be finite and >= 0 (0: the default)");
    };
    VKMHA_TRY(non_negative("scale", c.scale));
    VKMHA_TRY(non_negative("softcap", c.softcap));
    if (c.qk_norm && !(std::isfinite(c.norm_eps) && c.norm_eps > 0.0f))
        return make_error(ErrorCode::invalid_argument, "norm_eps " + std::to_string(c.norm_eps) + " must be > 0");
    return {};
}

Status validate_weights(const AttentionConfig& c, const AttentionWeights& w) {
    VKMHA_TRY(validate_config(c));
    VKMHA_TRY(check_size("q_norm", w.q_norm, c.qk_norm ? c.head_dim() : 0, !c.qk_norm));
    VKMHA_TRY(check_size("k_norm", w.k_norm, c.qk_norm ? c.head_dim() : 0, !c.qk_norm));
    VKMHA_TRY(check_size("sinks", w.sinks, c.sinks ? c.num_heads : 0, !c.sinks));
    if (c.attention_only) {
        for (const auto* v : {&w.wq, &w.wk, &w.wv, &w.wo, &w.bq, &w.bk, &w.bv, &w.bo})
            if (!v->empty())
                return make_error(ErrorCode::invalid_argument,
                                  "an attention-only model takes no projection weights, but one was given");
        return {};
    }
    const uint64_t E = c.embed_dim, QW = c.q_width(), KV = c.kv_width();
    VKMHA_TRY(check_size("wq", w.wq, QW * E, false));
    VKMHA_TRY(check_size("wk", w.wk, KV * c.kdim, false));
    VKMHA_TRY(check_size("wv", w.wv, KV * c.vdim, false));
    VKMHA_TRY(check_size("wo", w.wo, E * QW, false));
    VKMHA_TRY(check_size("bq", w.bq, QW, true));
    VKMHA_TRY(check_size("bk", w.bk, KV, true));
    VKMHA_TRY(check_size("bv", w.bv, KV, true));
    VKMHA_TRY(check_size("bo", w.bo, E, true));
    bool any_in_bias = !w.bq.empty() || !w.bk.empty() || !w.bv.empty();
    bool all_in_bias = !w.bq.empty() && !w.bk.empty() && !w.bv.empty();
    if (any_in_bias && !all_in_bias)
        return make_error(ErrorCode::invalid_argument, "q/k/v biases must be given all three or none");
    return {};
}

FusedTilings choose_fused_tilings(const DeviceLimits& limits, const KernelPolicy& policy, const AttentionConfig& c) {
    FusedTilings t;
    t.prefill = ShaderLibrary::choose_attention_tiling(limits, policy, c.head_dim());
    t.fused = c.head_dim() <= t.prefill.max_head_dim;
    if (t.fused) t.decode = ShaderLibrary::choose_decode_tiling(limits, policy, c.head_dim());
    return t;
}

Result<VkDeviceSize> Model::memory_required(const Context& ctx, const AttentionConfig& c, Precision precision) {
    VKMHA_TRY(validate_config(c));
    VKMHA_TRY(check_precision(ctx, precision));
    return Arena::measure(ctx.device(), model_requests(c, precision, MemoryKind::device_local));
}

namespace {

// Host-visible buffers holding the weights in the model's precision, in the layout of model_requests, ready to be
// copied to the device.
Result<Arena> staged_weights(const Context& ctx, const AttentionConfig& c, const AttentionWeights& w,
                             Precision precision, const WeightOffsets& o) {
    auto staging = Arena::create(ctx.device(), model_requests(c, precision, MemoryKind::host_visible));
    if (!staging) return staging.take_error();
    const std::vector<float> table = table_contents(c, w);
    std::memcpy((*staging)[5].mapped, table.data(), table.size() * sizeof(float));
    // Each weight: its staging buffer and element offset there.
    struct Part {
        const char* name;
        const std::vector<float>* src;
        size_t buffer;
        uint32_t offset;
    };
    const Part parts[] = {{"wq", &w.wq, 0, 0},    {"wk", &w.wk, 0, o.wk}, {"wv", &w.wv, 0, o.wv}, {"bq", &w.bq, 1, 0},
                          {"bk", &w.bk, 1, o.bk}, {"bv", &w.bv, 1, o.bv}, {"wo", &w.wo, 2, 0},    {"bo", &w.bo, 3, 0}};
    for (size_t i = 0; i + 1 < staging->size(); ++i) std::memset((*staging)[i].mapped, 0, (*staging)[i].size);
    for (const Part& part : parts) {
        const std::vector<float>& src = *part.src;
        if (src.empty()) continue; // an absent bias stays zero
        void* base = (*staging)[part.buffer].mapped;
        const char* name = part.name;
        if (precision == Precision::fp16) {
            auto* dst = static_cast<uint16_t*>(base) + part.offset;
            for (size_t e = 0; e < src.size(); ++e) {
                dst[e] = io::float_to_half(src[e]);
                // A finite weight that fp16 cannot hold would silently become +-inf.
                if ((dst[e] & 0x7c00u) == 0x7c00u && std::isfinite(src[e]))
                    return make_error(ErrorCode::invalid_argument,
                                      std::string("weight '") + name + "' element " + std::to_string(e) + " (" +
                                          std::to_string(src[e]) +
                                          ") is outside fp16's range (65504); use fp32 precision");
            }
        } else {
            std::memcpy(static_cast<float*>(base) + part.offset, src.data(), src.size() * sizeof(float));
        }
    }
    return staging;
}

void record_copies(const Device& d, const Arena& staging, const Arena& dst, VkCommandBuffer cmd) {
    for (size_t i = 0; i < staging.size(); ++i) {
        VkBufferCopy region{0, 0, staging[i].size};
        d.vk().vkCmdCopyBuffer(cmd, staging[i].buffer, dst[i].buffer, 1, &region);
    }
}

} // namespace

Result<std::unique_ptr<Model>> Model::create(const Context& ctx, const AttentionConfig& c, const AttentionWeights& w,
                                             Precision precision, ModelUpload upload) {
    VKMHA_TRY(validate_weights(c, w));
    VKMHA_TRY(check_precision(ctx, precision));
    if (ctx.compile_only())
        return make_error(ErrorCode::unsupported, "createModel uploads weights, and the context on '" +
                                                      ctx.device().info().name +
                                                      "' is compile-only (it never submits work): read its "
                                                      "pipelines' statistics with getPipelineStatistics instead");
    std::unique_ptr<Model> m(new Model());
    m->m_device = &ctx.device();
    m->m_config = c;
    m->m_precision = precision;
    m->m_in_bias = !w.bq.empty();
    m->m_out_bias = !w.bo.empty();
    const FusedTilings tilings = choose_fused_tilings(ctx.device().limits(), ctx.kernel_policy(), c);
    m->m_tiling = tilings.prefill;
    if (tilings.fused) { // larger head dims take the unfused path
        auto pipeline = ctx.shaders().attention_pipeline(m->m_tiling, precision, score_modifiers(c));
        if (!pipeline) return pipeline.take_error();
        m->m_attention = std::move(pipeline.value());
        m->m_decode_tiling = tilings.decode;
        auto decode = ctx.shaders().attention_pipeline(m->m_decode_tiling, precision, score_modifiers(c));
        if (!decode) return decode.take_error();
        m->m_decode = std::move(decode.value());
    }
    auto arena = Arena::create(ctx.device(), model_requests(c, precision, MemoryKind::device_local));
    if (!arena) return arena.take_error();
    m->m_arena = std::move(arena.value());
    m->m_offsets = offsets_of(c);
    auto staging = staged_weights(ctx, c, w, precision, m->m_offsets);
    if (!staging) return staging.take_error();
    if (upload == ModelUpload::record) { // the engine records the copies (record_upload)
        m->m_staging = std::move(staging.value());
        return m;
    }
    const Device& d = ctx.device();
    const Arena& dst = m->m_arena;
    // Every pipeline the model's sessions may bind is dispatched once in the upload below (pipeline_warmup.h), so
    // that no frame compiles one: the context's for this precision (once per context) and the model's own.
    auto warmup = PipelineWarmup::create(ctx, m->dummy());
    if (!warmup) return warmup.take_error();
    std::vector<VkPipeline> warm;
    if (!ctx.pipelines_warmed(precision)) warm = context_pipelines_for(ctx, precision);
    for (VkPipeline p : {m->attention_pipeline(), m->decode_pipeline()})
        if (p) warm.push_back(p);
    VKMHA_TRY(ctx.run_once([&](VkCommandBuffer cmd) {
        record_copies(d, staging.value(), dst, cmd);
        // The copies must be visible to every later compute read of the weights, in any later submission.
        VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        barrier.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
        barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT;
        d.vk().vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                                    &barrier, 0, nullptr, 0, nullptr);
        warmup->record(cmd, warm);
    }));
    ctx.mark_pipelines_warmed(precision);
    return m;
}

Status Model::record_upload(VkCommandBuffer cmd) {
    if (!m_staging)
        return make_error(ErrorCode::invalid_argument,
                          "the model's weights are already on the device: recordModelUpload is only for a model "
                          "created with VkmhaModelUploadInfo::recordUpload whose upload is not yet completed");
    if (cmd == VK_NULL_HANDLE) return make_error(ErrorCode::invalid_argument, "commandBuffer is VK_NULL_HANDLE");
    record_copies(*m_device, *m_staging, m_arena, cmd);
    m_upload_recorded = true;
    return {};
}

Status Model::finish_upload() {
    if (!m_staging)
        return make_error(ErrorCode::invalid_argument,
                          "the model's weights are already on the device: completeModelUpload is only for a model "
                          "created with VkmhaModelUploadInfo::recordUpload, once");
    if (!m_upload_recorded)
        return make_error(ErrorCode::invalid_argument,
                          "completeModelUpload before recordModelUpload: record the upload into a command buffer, "
                          "submit it and wait for it first");
    m_staging.reset();
    return {};
}

} // namespace vkmha
