// The shape of one attention layer and of one forward call: the vocabulary shared by the CPU
// reference, the GPU plan and the plugin.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vkmha {

// Rotary position embeddings (RoPE), as Hugging Face transformers defines them. Position p rotates pair i of the
// first `dims` head dims by the angle p * inv_freq[i] (rope.h computes inv_freq from theta and the scaling).
enum class RopeLayout : uint32_t {
    none = 0,
    neox = 1, // rotate halves: dims i and i + R/2 form a pair (Llama, Qwen, Mistral, gpt-oss, GPT-NeoX)
    gptj = 2  // interleaved: dims 2i and 2i + 1 form a pair (GPT-J)
};
enum class RopeScaling : uint32_t {
    none = 0,
    linear = 1, // inv_freq / factor
    llama3 = 2, // low frequencies / factor, high ones kept, a smooth blend between (Llama 3.1)
    yarn = 3    // NTK-by-parts with a correction range, cos and sin times 0.1 ln(factor) + 1 (gpt-oss, Qwen long)
};
struct RopeConfig {
    RopeLayout layout = RopeLayout::none;
    uint32_t dims = 0; // R: rotary dims, even, <= D; 0 = D (partial rotary: the rest pass through)
    double theta = 10000.0;
    RopeScaling scaling = RopeScaling::none;
    double factor = 1.0;                 // linear, llama3, yarn
    double low_freq_factor = 1.0;        // llama3
    double high_freq_factor = 4.0;       // llama3
    uint32_t original_max_positions = 0; // llama3, yarn: original_max_position_embeddings
    double beta_fast = 32.0;             // yarn
    double beta_slow = 1.0;              // yarn
    bool truncate = true;                // yarn: round the correction range to whole dims (HF's default)
    bool enabled() const { return layout != RopeLayout::none; }
    bool operator==(const RopeConfig&) const = default;
};

// Fixed per model. Semantics of torch.nn.MultiheadAttention(batch_first=True); num_kv_heads < num_heads
// is grouped-query attention (query head h reads key/value head h / (num_heads / num_kv_heads)).
struct AttentionConfig {
    uint32_t embed_dim = 0;    // E: the width of the query input and of the output
    uint32_t num_heads = 0;    // H
    uint32_t num_kv_heads = 0; // G; H % G == 0
    uint32_t kdim = 0;         // width of the key input (E unless separate projections)
    uint32_t vdim = 0;         // width of the value input

    // The attention of real model families (docs/DESIGN.md, "The math"), applied in this order; all off by default.
    bool qk_norm = false;   // per-head RMSNorm of Q and K over D with AttentionWeights::q_norm / k_norm
    float norm_eps = 1e-6f; // QK-norm's epsilon
    RopeConfig rope;        // rotates Q and K after QK-norm, before K enters a cache
    float scale = 0.0f;     // softmax scale; 0 = 1/sqrt(D)
    float softcap = 0.0f;   // > 0: s <- softcap * tanh(s / softcap) on the scaled scores, before the masks
    bool alibi = false;     // adds slope_h * (j - i) to the scaled scores (Bloom's slopes, alibi_slope())
    uint32_t window = 0;    // > 0: key j is visible to query position i only when i - window < j
    bool sinks = false;     // AttentionWeights::sinks: one logit per head joins each row's softmax denominator

    uint32_t explicit_head_dim = 0; // D when it is not E / H (Gemma, Qwen3: q_proj.weight is [H * D, E])
    bool attention_only = false;    // no projection weights: records take the caller's own Q, K, V (RecordArgs)

    uint32_t head_dim() const { return explicit_head_dim ? explicit_head_dim : num_heads ? embed_dim / num_heads : 0; }
    uint32_t q_width() const { return num_heads * head_dim(); } // H * D: Q and the concatenated heads
    uint32_t rotary_dims() const { return rope.dims ? rope.dims : head_dim(); }
    float softmax_scale() const;
    uint32_t kv_width() const { return num_kv_heads * head_dim(); } // G * D
    uint32_t group_size() const { return num_kv_heads ? num_heads / num_kv_heads : 0; }
};

// How a model stores its weights and a session its Q/K/V/concat scratch on the GPU. Arithmetic is fp32 either way
// (docs/DESIGN.md, "Numerics"); caller inputs and outputs, scores, LSE and split-K partials are always fp32.
enum class Precision : uint32_t {
    fp32 = 0,
    fp16 = 1 // needs the storageBuffer16BitAccess feature (Device::storage16())
};
constexpr uint32_t precision_bytes(Precision p) { return p == Precision::fp16 ? 2 : 4; }
constexpr const char* precision_name(Precision p) { return p == Precision::fp16 ? "fp16" : "fp32"; }

// Projection weights in PyTorch's layout: a Linear's weight is [out_features, in_features], row-major.
// Biases are empty when absent (treated as zero).
struct AttentionWeights {
    std::vector<float> wq, wk, wv;     // [H*D, E], [G*D, kdim], [G*D, vdim]
    std::vector<float> bq, bk, bv;     // [H*D], [G*D], [G*D] or empty
    std::vector<float> wo;             // [E, H*D]
    std::vector<float> bo;             // [E] or empty
    std::vector<float> q_norm, k_norm; // [D] each with qk_norm, else empty
    std::vector<float> sinks;          // [H] with sinks, else empty
};

// Where each part of the model's fp32 table (Model::table(), bound as BufferRole::model_table) starts, in floats. Sinks
// come first so that the attention kernels read sink h at element h without an offset.
struct TableOffsets {
    uint32_t sinks = 0;    // [H] with config.sinks
    uint32_t inv_freq = 0; // [R/2] with config.rope
    uint32_t q_norm = 0;   // [D] with config.qk_norm
    uint32_t k_norm = 0;   // [D]
    uint32_t floats = 0;   // the table's size (at least 4)
};
TableOffsets table_offsets(const AttentionConfig&);

// ALiBi's slope for head h of H: 2^(-8(h+1)/n) with n the largest power of two <= H; heads past n take every other
// slope of 2n (Bloom's rule for head counts that are not powers of two).
float alibi_slope(uint32_t head, uint32_t num_heads);

enum class MaskKind : uint32_t {
    none = 0,
    boolean = 1, // one byte per element, nonzero = this key is not allowed
    additive = 2 // fp32 per element, added to the score (may hold -inf)
};

// One forward call. Shapes: query [B, Lq, E]; key [B, Lk, kdim]; value [B, Lk, vdim];
// key_padding_mask [B, Lk] (boolean only); attn_mask [Lq, Lk] or [B*H, Lq, Lk].
struct AttentionShape {
    uint32_t batch = 0; // B
    uint32_t lq = 0;    // query length
    uint32_t lk = 0;    // key/value length
    bool operator==(const AttentionShape&) const = default;
};

enum class AttentionPath : uint32_t {
    fused = 0,  // one kernel: online softmax over K/V tiles, no Lq x Lk buffer
    unfused = 1 // scores -> softmax -> P·V through an Lq x Lk buffer: the readable baseline
};

struct AttentionOptions {
    bool causal = false;                   // key j is masked for query i when j > i + (lk - lq) (aligned bottom-right)
    bool need_weights = false;             // also produce the softmax probabilities
    bool average_weights = true;           // with need_weights: [B, Lq, Lk] mean over heads, else [B, H, Lq, Lk]
    MaskKind key_padding = MaskKind::none; // boolean only
    MaskKind attn_mask = MaskKind::none;
    bool attn_mask_per_head = false; // true: [B*H, Lq, Lk]; false: [Lq, Lk] broadcast
    AttentionPath path = AttentionPath::fused;
    bool split_k = true; // fused path: split long key ranges across workgroups when the grid is small
    bool operator==(const AttentionOptions&) const = default;
};

} // namespace vkmha
