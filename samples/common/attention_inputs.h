// attention_inputs.h: the inputs of one attention call (query, key, value, key_padding_mask, attn_mask) read from a
// safetensors file and checked against the model's dimensions, as vkmha's C API takes them. vkmha-run and vkmha-viz
// share it, so both accept the same files and word their errors alike.
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
    bool mask_per_head = false; // attn_mask is [batch * heads, lq, lk], else [lq, lk]

    const void* attn_mask() const {
        if (mask_type == VKMHA_MASK_TYPE_BOOL) return mask_bytes.data();
        if (mask_type == VKMHA_MASK_TYPE_ADDITIVE) return mask_floats.data();
        return nullptr;
    }
};

// `file`'s tensors for a model of embedding size `embed_dim`, key and value sizes `kdim` and `vdim`, and `heads`
// heads. Every error is one line naming the file and the tensor: io when the file cannot be read, invalid_argument
// when a tensor is missing or has the wrong shape or dtype.
Result<InputTensors> load_input_tensors(const std::string& file, uint32_t embed_dim, uint32_t kdim, uint32_t vdim,
                                        uint32_t heads);

} // namespace vkmha::samples
