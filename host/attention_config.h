// The shape of one attention layer and of one forward call: the vocabulary shared by the CPU
// reference, the GPU plan and the plugin.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vkmha {

// Fixed per model. Semantics of torch.nn.MultiheadAttention(batch_first=True); num_kv_heads < num_heads
// is grouped-query attention (query head h reads key/value head h / (num_heads / num_kv_heads)).
struct AttentionConfig {
    uint32_t embed_dim = 0;    // E; also the width of Q and of the concatenated heads (H * D)
    uint32_t num_heads = 0;    // H
    uint32_t num_kv_heads = 0; // G; H % G == 0
    uint32_t kdim = 0;         // width of the key input (E unless separate projections)
    uint32_t vdim = 0;         // width of the value input

    uint32_t head_dim() const { return num_heads ? embed_dim / num_heads : 0; }
    uint32_t kv_width() const { return num_kv_heads * head_dim(); } // G * D
    uint32_t group_size() const { return num_kv_heads ? num_heads / num_kv_heads : 0; }
};

// How a model stores its weights and a session its Q/K/V/concat scratch on the GPU. Arithmetic is fp32 either way
// (DESIGN.md, "Numerics"); caller inputs and outputs, scores, LSE and split-K partials are always fp32.
enum class Precision : uint32_t {
    fp32 = 0,
    fp16 = 1 // needs the storageBuffer16BitAccess feature (Device::storage16())
};
constexpr uint32_t precision_bytes(Precision p) { return p == Precision::fp16 ? 2 : 4; }
constexpr const char* precision_name(Precision p) { return p == Precision::fp16 ? "fp16" : "fp32"; }

// Projection weights in PyTorch's layout: a Linear's weight is [out_features, in_features], row-major.
// Biases are empty when absent (treated as zero).
struct AttentionWeights {
    std::vector<float> wq, wk, wv; // [E, E], [G*D, kdim], [G*D, vdim]
    std::vector<float> bq, bk, bv; // [E], [G*D], [G*D] or empty
    std::vector<float> wo;         // [E, E]
    std::vector<float> bo;         // [E] or empty
};

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
