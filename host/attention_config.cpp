// The few computed facts of an attention layer's configuration.
#include "attention_config.h"

#include <algorithm>
#include <cmath>

namespace vkmha {

float AttentionConfig::softmax_scale() const {
    if (scale > 0.0f) return scale;
    const uint32_t d = head_dim();
    return d ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))) : 0.0f;
}

TableOffsets table_offsets(const AttentionConfig& c) {
    TableOffsets t;
    uint32_t at = 0;
    auto take = [&](bool present, uint32_t count) {
        const uint32_t start = at;
        if (present) at += count;
        return start;
    };
    t.sinks = take(c.sinks, c.num_heads);
    t.inv_freq = take(c.rope.enabled(), c.rotary_dims() / 2);
    t.q_norm = take(c.qk_norm, c.head_dim());
    t.k_norm = take(c.qk_norm, c.head_dim());
    t.floats = std::max(at, 4u);
    return t;
}

float alibi_slope(uint32_t head, uint32_t num_heads) {
    uint32_t n = 1;
    while (n * 2 <= num_heads) n *= 2;
    if (head < n) return static_cast<float>(std::exp2(-8.0 * (head + 1) / n));
    return static_cast<float>(std::exp2(-4.0 * (2 * (head - n) + 1) / n)); // every other slope of 2n
}

} // namespace vkmha
