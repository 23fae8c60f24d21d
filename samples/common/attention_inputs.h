// attention_inputs.h: the inputs of one attention call (query, key, value, key_padding_mask, attn_mask, position_ids)
// read from a safetensors file and checked against the model's dimensions, as vkmha's C API takes them. vkmha-run and
// vkmha-viz share it, so both accept the same files and word their errors alike.
#pragma once

#include "vkmha/vkmha.h"

#include "result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace vkmha::samples {

struct InputTensors {
    uint32_t batch = 0, lq = 0, lk = 0;
    std::vector<float> query, key, value;    // [batch, lq, E], [batch, lk, kdim], [batch, lk, vdim]
    bool has_key = false, has_value = false; // absent: key is the query, value is the key (as the API reads null)
    std::vector<uint8_t> key_padding_mask;   // [batch, lk], 0 or 1; empty when the file has none
    std::vector<uint8_t> mask_bytes;         // attn_mask when mask_type is BOOL, 0 or 1
    std::vector<float> mask_floats;          // attn_mask when mask_type is ADDITIVE
    VkmhaMaskType mask_type = VKMHA_MASK_TYPE_NONE;
    bool mask_per_head = false;        // attn_mask is [batch * heads, lq, lk], else [lq, lk]
    std::vector<int32_t> position_ids; // [batch, lq] RoPE positions (I32 or I64 in the file); empty when absent
    std::vector<float> head_mask;      // [heads] or [batch, heads] F32 factors (1.3, Hugging Face's head_mask); empty
                                       // when absent
    // load_qkv_tensors only: query, key and value hold q [batch, heads, lq, head_dim] and k, v [batch, kv_heads, lk,
    // head_dim]; key_position_ids [batch, lk] the keys' RoPE positions (empty when absent).
    uint32_t heads = 0, kv_heads = 0, head_dim = 0;
    std::vector<int32_t> key_position_ids;

    // The head mask chained in front of `next` (factorCount 0, nothing to chain, when the file has none).
    VkmhaHeadMaskInfo head_mask_info(const void* next) const {
        VkmhaHeadMaskInfo info{VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO};
        info.pNext = next;
        info.factorCount = static_cast<uint32_t>(head_mask.size());
        info.pFactors = head_mask.empty() ? nullptr : head_mask.data();
        return info;
    }
    const void* attn_mask() const {
        if (mask_type == VKMHA_MASK_TYPE_BOOL) return mask_bytes.data();
        if (mask_type == VKMHA_MASK_TYPE_ADDITIVE) return mask_floats.data();
        return nullptr;
    }
};

// Every loader also reads an optional head_mask, F32 [heads] or [batch, heads], each factor finite.
// `file`'s tensors for a model of embedding size `embed_dim`, key and value sizes `kdim` and `vdim`, and `heads`
// heads. Every error is one line naming the file and the tensor: io when the file cannot be read, invalid_argument
// when a tensor is missing or has the wrong shape or dtype.
Result<InputTensors> load_input_tensors(const std::string& file, uint32_t embed_dim, uint32_t kdim, uint32_t vdim,
                                        uint32_t heads);

// The caller's own Q, K and V (vkmha-run --qkv, as scaled_dot_product_attention takes them): `file`'s q [B, H, Lq, D],
// k and v [B, G, Lk, D] (F32, F16 or BF16), optional key_padding_mask [B, Lk], attn_mask [Lq, Lk] or [B*H, Lq, Lk],
// position_ids [B, Lq] and key_position_ids [B, Lk] (I32 or I64). H must be `heads`; G is `kv_heads`, or k's when 0,
// and must divide H. Errors as load_input_tensors'; a flag that disagrees with a shape is named.
Result<InputTensors> load_qkv_tensors(const std::string& file, uint32_t heads, uint32_t kv_heads);

} // namespace vkmha::samples
