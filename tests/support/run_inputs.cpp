// Random inputs, their CPU reference and their sizes; see run_inputs.h.
#include "support/run_inputs.h"

#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <utility>

namespace vkmha::test {

RunInputs make_inputs(const AttentionConfig& c, AttentionShape shape, AttentionOptions options, bool cross,
                      bool separate_value, uint32_t seed, bool mask_whole_row) {
    RunInputs in;
    in.shape = shape;
    in.options = options;
    std::mt19937 rng(seed);
    const size_t B = shape.batch, Lq = shape.lq, Lk = shape.lk, H = c.num_heads;
    in.query = random_floats(rng, B * Lq * c.embed_dim, 1.0f);
    if (cross) {
        in.key = random_floats(rng, B * Lk * c.kdim, 1.0f);
        if (separate_value) in.value = random_floats(rng, B * Lk * c.vdim, 1.0f);
    }
    if (options.key_padding == MaskKind::boolean) {
        in.key_padding_mask.assign(B * Lk, 0);
        for (size_t b = 0; b < B; ++b) {
            const size_t padded = std::min(b + 1, Lk - 1); // the last b+1 keys, never all of them
            for (size_t j = Lk - padded; j < Lk; ++j) in.key_padding_mask[b * Lk + j] = 1;
        }
    }
    const size_t mask_elems = (options.attn_mask_per_head ? B * H : 1) * Lq * Lk;
    std::uniform_int_distribution<int> pick(0, 3);
    if (options.attn_mask == MaskKind::boolean) {
        in.mask_bytes.resize(mask_elems);
        for (size_t i = 0; i < mask_elems; ++i) in.mask_bytes[i] = (i % Lk != 0 && pick(rng) == 0) ? 1 : 0;
        if (mask_whole_row)
            for (size_t j = 0; j < Lk; ++j) in.mask_bytes[j] = 1;
    } else if (options.attn_mask == MaskKind::additive) {
        in.mask_floats = random_floats(rng, mask_elems, 2.0f);
        for (size_t i = 0; i < mask_elems; ++i)
            if (i % Lk != 0 && pick(rng) == 0) in.mask_floats[i] = -std::numeric_limits<float>::infinity();
    }
    return in;
}

AttentionOutputs reference(const HostModel& m, const RunInputs& in) {
    AttentionInputs ri;
    ri.query = in.query.data();
    ri.key = in.key.empty() ? nullptr : in.key.data();
    ri.value = in.value.empty() ? nullptr : in.value.data();
    ri.key_padding_mask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    ri.attn_mask = in.options.attn_mask == MaskKind::boolean    ? static_cast<const void*>(in.mask_bytes.data())
                   : in.options.attn_mask == MaskKind::additive ? static_cast<const void*>(in.mask_floats.data())
                                                                : nullptr;
    auto r = vkmha::reference_attention(m.config, m.weights, in.shape, in.options, ri);
    REQUIRE_MESSAGE(r.ok(), "CPU reference failed: ", r.error().message);
    return std::move(r.value());
}

VkmhaAttentionFlags flags_of(const AttentionOptions& o) {
    VkmhaAttentionFlags f = 0;
    if (o.causal) f |= VKMHA_ATTENTION_CAUSAL_BIT;
    if (o.need_weights) f |= VKMHA_ATTENTION_NEED_WEIGHTS_BIT;
    if (o.need_weights && !o.average_weights) f |= VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT;
    if (o.attn_mask_per_head) f |= VKMHA_ATTENTION_PER_HEAD_MASK_BIT;
    return f;
}

size_t output_count(const AttentionConfig& c, const RunInputs& in) {
    return size_t(in.shape.batch) * in.shape.lq * c.embed_dim;
}

size_t weights_count(const AttentionConfig& c, const RunInputs& in) {
    if (!in.options.need_weights) return 0;
    return size_t(in.shape.batch) * (in.options.average_weights ? 1 : c.num_heads) * in.shape.lq * in.shape.lk;
}

} // namespace vkmha::test
