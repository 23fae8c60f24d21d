// Inputs of one attention call for the plugin suites: random query/key/value and masks for a shape and options,
// their CPU reference result, and the sizes of the outputs the C ABI writes.
#pragma once

#include "attention_config.h"
#include "cpu_reference.h"
#include "support/host_model.h"

#include "vkmha/vkmha.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vkmha::test {

struct RunInputs {
    AttentionShape shape;
    AttentionOptions options;
    std::vector<float> query, key, value; // key empty: self-attention; value empty: the key
    std::vector<uint8_t> key_padding_mask, mask_bytes;
    std::vector<float> mask_floats;
};

// Random inputs; masks leave at least one key per row unless `mask_whole_row` (row 0 of a boolean mask all masked).
RunInputs make_inputs(const AttentionConfig& c, AttentionShape shape, AttentionOptions options, bool cross,
                      bool separate_value, uint32_t seed, bool mask_whole_row = false);

// The CPU reference's output (and weights, when asked for) for `in` on `m`.
AttentionOutputs reference(const HostModel& m, const RunInputs& in);

VkmhaAttentionFlags flags_of(const AttentionOptions& o);

// Floats in attn_output, and in attn_output_weights (0 unless the options ask for weights).
size_t output_count(const AttentionConfig& c, const RunInputs& in);
size_t weights_count(const AttentionConfig& c, const RunInputs& in);

} // namespace vkmha::test
