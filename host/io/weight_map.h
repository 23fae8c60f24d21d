// Maps the tensors of a checkpoint (PyTorch nn.MultiheadAttention or Hugging Face Llama names) to one
// attention layer's AttentionConfig and fp32 AttentionWeights.
#pragma once

#include "attention_config.h"
#include "io/safetensors.h"
#include "result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace vkmha::io {

struct LoadedModel {
    AttentionConfig config;
    AttentionWeights weights;
};

// Recognised names (anything else in the file is ignored):
//   PyTorch nn.MultiheadAttention: in_proj_weight [3E, E] or q_proj_weight [E, E], k_proj_weight [E, kdim],
//     v_proj_weight [E, vdim]; optional in_proj_bias [3E]; out_proj.weight [E, E]; optional out_proj.bias [E].
//     G = H. bias_k / bias_v (add_bias_kv=True) are rejected as unsupported.
//   Hugging Face Llama: q_proj.weight [H*D, E], k_proj.weight and v_proj.weight [G*D, E], o_proj.weight [E, H*D],
//     each with an optional .bias. kdim = vdim = E; D = q_proj.weight rows / H (config.explicit_head_dim when
//     H*D != E, as in Gemma and Qwen3).
//   With either scheme: q_norm.weight and k_norm.weight [D] (both or neither) set config.qk_norm and the weights'
//     q_norm / k_norm; sinks [H] sets config.sinks and weights.sinks.
// num_kv_heads == 0 means G = H for PyTorch and G = k_proj.weight rows / D for Llama. F32, F16 and BF16
// all convert to float. `file` names the source in messages.
// Errors: invalid_argument (num_heads/num_kv_heads do not fit the weights), io (missing, misshapen or
// non-float tensor; unrecognised or ambiguous names), unsupported (bias_k/bias_v), out_of_memory.
Result<LoadedModel> map_attention_weights(const std::vector<Tensor>& tensors, uint32_t num_heads, uint32_t num_kv_heads,
                                          const std::string& file);

} // namespace vkmha::io
