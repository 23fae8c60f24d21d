// The few computed facts of an attention layer's configuration.
#include "attention_config.h"

#include <cmath>

namespace vkmha {

float AttentionConfig::softmax_scale() const {
    if (scale > 0.0f) return scale;
    const uint32_t d = head_dim();
    return d ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))) : 0.0f;
}

float alibi_slope(uint32_t head, uint32_t num_heads) {
    uint32_t n = 1;
    while (n * 2 <= num_heads) n *= 2;
    if (head < n) return static_cast<float>(std::exp2(-8.0 * (head + 1) / n));
    return static_cast<float>(std::exp2(-4.0 * (2 * (head - n) + 1) / n)); // every other slope of 2n
}

} // namespace vkmha
