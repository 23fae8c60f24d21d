// Rotary position embeddings: the frequency table a model computes once (fp64, rounded to fp32) and the rotation
// itself, shared by the CPU reference and the GPU upload so both rotate by the same fp32 angles.
#pragma once

#include "attention_config.h"
#include "result.h"

#include <cstdint>
#include <vector>

namespace vkmha {

// Checks the RoPE settings against a head dim: layout and scaling known, R even and <= D, theta > 1, the scaling's
// parameters in range. ErrorCode::invalid_argument naming the bad value.
Status validate_rope(const RopeConfig&, uint32_t head_dim);

// inv_freq[i] for the R/2 pairs, Hugging Face's formulas for each scaling, computed in double.
std::vector<float> rope_inv_freq(const RopeConfig&, uint32_t rotary_dims);

// What cos and sin are multiplied by: 0.1 ln(factor) + 1 for yarn with factor > 1, else 1.
float rope_attention_factor(const RopeConfig&);

// The angle position p turns pair i by, as Hugging Face computes it: float(p) * inv_freq[i] in fp32.
inline float rope_angle(int64_t position, float inv_freq) { return static_cast<float>(position) * inv_freq; }

// Rotates one head row x[0..D) in place at `position` (the first R dims; the rest pass through).
void rope_rotate(float* x, uint32_t head_dim, const RopeConfig&, const std::vector<float>& inv_freq,
                 float attention_factor, int64_t position);

} // namespace vkmha
