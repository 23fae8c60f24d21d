// ShapeBytes: buffer sizes of a record, from the model's widths and the shape.
#include "shape_bytes.h"

#include "checked_math.h"

#include <algorithm>

namespace vkmha {

ShapeBytes shape_bytes(const AttentionConfig& c, const AttentionShape& s, const AttentionOptions& o, bool max_all,
                       const OwnQkv* qkv) {
    ShapeBytes b{};
    // Saturating (checked_math.h): a max shape past 2^64 bytes reads as kSaturated, which the session refuses
    // (shape_bytes_overflow), instead of wrapping to a small staging buffer that a later copy would overrun.
    const uint64_t B = s.batch, Lq = s.lq, Lk = s.lk, H = c.num_heads;
    const uint64_t E = c.embed_dim, QW = c.q_width(), KV = c.kv_width();
    b.query = saturating_product({B, Lq, max_all ? std::max(E, QW) : E, 4});
    b.key = saturating_product({B, Lk, max_all ? std::max<uint64_t>(c.kdim, KV) : c.kdim, 4});
    b.value = saturating_product({B, Lk, max_all ? std::max<uint64_t>(c.vdim, KV) : c.vdim, 4});
    b.kpm = B * Lk;
    b.mask_elems = saturating_product({max_all || o.attn_mask_per_head ? B * H : 1, Lq, Lk});
    b.output = b.query;
    b.weights = saturating_product({max_all || !o.average_weights ? B * H : B, Lq, Lk, 4});
    b.positions = saturating_product({B, Lq, 4});
    if (qkv) {
        const uint32_t D = c.head_dim(), G = c.num_kv_heads;
        b.query = strided_extent(qkv->q, s.batch, c.num_heads, s.lq, D) * 4;
        b.key = strided_extent(qkv->k, s.batch, G, s.lk, D) * 4;
        b.value = strided_extent(qkv->v, s.batch, G, s.lk, D) * 4;
        b.output = strided_extent(qkv->o, s.batch, c.num_heads, s.lq, D) * 4;
    }
    return b;
}

bool shape_bytes_overflow(const ShapeBytes& b) {
    for (uint64_t bytes : {b.query, b.key, b.value, b.kpm, b.mask_elems, b.output, b.weights, b.positions})
        if (bytes == kSaturated) return true;
    return false;
}

} // namespace vkmha
