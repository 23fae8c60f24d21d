// The head mask (API 1.3, Hugging Face's head_mask): one factor per head ([H]) or per batch item and head ([B, H])
// that multiplies each head's attention output (and its weights) before the output projection. The host checks the
// factors and writes them, expanded to [B, H], into a host-visible buffer the kernels read (BufferRole::records).
#pragma once

#include "result.h"

#include <cstdint>
#include <span>

namespace vkmha {

// Empty (no mask) or `heads` factors, or (when batch > 0) batch * heads of them; each finite. `what` names the call.
Status check_head_factors(std::span<const float> factors, uint32_t heads, uint32_t batch, const char* what);

// Writes [batch, heads] factors to `dst`: [H] factors repeated for every batch item, [B, H] ones as they are.
void write_head_factors(float* dst, std::span<const float> factors, uint32_t heads, uint32_t batch);

} // namespace vkmha
