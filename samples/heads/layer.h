// layer.h: the configurations vkmha-heads compares, as weights: the layer as read, and its MHA->GQA conversions
// (the GQA paper's: the K and V projections, weights and biases, of the key/value heads that come to share a group
// are averaged), written back as Hugging Face Llama-named tensors that createModel takes.
#pragma once

#include "attention_config.h"
#include "io/safetensors.h"

#include <cstdint>
#include <vector>

namespace vkmha::heads {

// The layer with G' = kv_heads key/value heads: each new head averages the G / G' consecutive old heads it replaces
// (query head h then reads new head h / (H / G'), the same heads it read before through the old ones).
// kv_heads must divide the layer's G.
AttentionWeights convert_to_gqa(const AttentionConfig& c, const AttentionWeights& w, uint32_t kv_heads);

// Llama names (q_proj, k_proj, v_proj, o_proj, with their biases when present; q_norm/k_norm/sinks when the config
// uses them) for a layer of `kv_heads` key/value heads. Needs kdim = vdim = embed_dim.
std::vector<io::Tensor> llama_tensors(const AttentionConfig& c, const AttentionWeights& w, uint32_t kv_heads);

} // namespace vkmha::heads
