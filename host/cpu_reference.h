// CPU reference for multi-head / grouped-query attention (double accumulation): the ground truth for GPU paths.
#pragma once

#include "attention_config.h"
#include "result.h"

#include <cstdint>
#include <span>
#include <vector>

namespace vkmha {

// Host pointers for one forward call; fp32 unless stated, sizes per AttentionShape. Only read during the call.
struct AttentionInputs {
    const float* query = nullptr;              // [B, Lq, E]; required
    const float* key = nullptr;                // [B, Lk, kdim]; nullptr: self-attention, reads query (Lk == Lq,
                                               // kdim == E)
    const float* value = nullptr;              // [B, Lk, vdim]; nullptr: reads key (or query), so vdim must match it
    const uint8_t* key_padding_mask = nullptr; // [B, Lk] bytes, nonzero = ignore that key; read only when
                                               // options.key_padding == MaskKind::boolean
    const void* attn_mask = nullptr;           // uint8_t (MaskKind::boolean) or float (MaskKind::additive);
                                               // [Lq, Lk] or [B*H, Lq, Lk] (options.attn_mask_per_head)
    // RoPE positions (read only with config.rope): nullptr = query i at Lk - Lq + i and key j at j. Masks and ALiBi
    // never read them.
    const int32_t* position_ids = nullptr;     // [B, Lq]; self-attention: the keys' positions too
    const int32_t* key_position_ids = nullptr; // [B, Lk]; cross-attention keys (nullptr: 0..Lk-1)
    // The head mask (Hugging Face's head_mask): [H] or [B, H] factors that multiply each head's probabilities after
    // the softmax, so its P V and its weights (stages' probs stay the softmax's). Empty: every head counts fully.
    std::span<const float> head_mask;
};

struct AttentionOutputs {
    std::vector<float> output;  // [B, Lq, E]
    std::vector<float> weights; // empty unless need_weights: [B, Lq, Lk] (averaged over heads) or [B, H, Lq, Lk]
};

// Every intermediate of the math in docs/DESIGN.md, so a GPU stage test can compare each pass on its own. The order:
// projections (bias added); QK-norm; RoPE at each token's position (query i at position_ids[b, i], else
// Lk - Lq + i; key j at position_ids[b, j] for self-attention with position_ids, else key_position_ids[b, j], else
// j); s = softmax_scale * q.k, soft-cap, + ALiBi slope_h * (j - i_pos), + additive mask, masked = -inf (causal,
// window, key padding, boolean mask), where i_pos = i + Lk - Lq is the query's index position: masks and ALiBi never
// read position_ids; softmax with the head's sink logit in the denominator; P V; concat; output projection.
struct AttentionStages {
    std::vector<float> q;      // [B, H, Lq, D]  head-major projections, bias added, QK-normed, rotated, NOT scaled
    std::vector<float> k;      // [B, G, Lk, D]  likewise
    std::vector<float> v;      // [B, G, Lk, D]
    std::vector<float> scores; // [B, H, Lq, Lk] scale * q.k, soft-capped, + ALiBi + additive mask; masked = -inf
    std::vector<float> probs;  // [B, H, Lq, Lk] row softmax (rows sum to < 1 with sinks); all keys masked: zeros
    std::vector<float> concat; // [B, Lq, H*D]   P V with heads concatenated
    std::vector<float> output; // [B, Lq, E]
};

// Checks config, weight sizes, shape and options (not the input pointers): E % H, H % G, every weight/bias
// size, zero sizes, key_padding must be boolean, element counts that overflow size_t; the model options: q_norm and
// k_norm of D with qk_norm (norm_eps > 0), sinks of H with sinks, validate_rope, scale and softcap finite and >= 0.
// Errors are ErrorCode::invalid_argument with a one-line message naming the bad value.
Status validate_attention(const AttentionConfig& config, const AttentionWeights& weights, const AttentionShape& shape,
                          const AttentionOptions& options);

// All stages; holds B*H*Lq*Lk scores and probs, so prefer reference_attention when only the output is needed.
// Also validates the input pointers (and self-attention widths). Never throws: allocation failure is
// ErrorCode::out_of_memory.
Result<AttentionStages> reference_attention_stages(const AttentionConfig& config, const AttentionWeights& weights,
                                                   const AttentionShape& shape, const AttentionOptions& options,
                                                   const AttentionInputs& inputs);

// Output (and weights when options.need_weights); keeps only one head's Lq x Lk block of scores at a time.
Result<AttentionOutputs> reference_attention(const AttentionConfig& config, const AttentionWeights& weights,
                                             const AttentionShape& shape, const AttentionOptions& options,
                                             const AttentionInputs& inputs);

// Attention only, on the caller's own contiguous fp32 Q [B, H, Lq, D] (inputs.query), K and V [B, G, Lk, D]
// (inputs.key, inputs.value): QK-norm, RoPE, scores, masks, softmax with sinks and P V as reference_attention after
// its projections. Of the weights only q_norm, k_norm and sinks are read (with their options); config needs
// num_heads, num_kv_heads and the head dim (explicit_head_dim, or embed_dim / num_heads). RoPE positions:
// position_ids [B, Lq] (nullptr: Lk - Lq + i) and key_position_ids [B, Lk] (nullptr: j). Output: O [B, H, Lq, D],
// as torch.nn.functional.scaled_dot_product_attention returns it; weights as reference_attention's.
Result<AttentionOutputs> reference_attention_qkv(const AttentionConfig& config, const AttentionWeights& weights,
                                                 const AttentionShape& shape, const AttentionOptions& options,
                                                 const AttentionInputs& inputs);

} // namespace vkmha
