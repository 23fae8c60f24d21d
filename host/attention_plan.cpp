// The attention plan's vocabulary and sizing: slot and stage names, the scratch a session allocates for its largest
// shape, and the key ranges a device can run in one dispatch. The passes are laid out in plan/: plan_plain.cpp (one
// forward call), plan_cached.cpp (KV-cache steps and prefill pieces), plan_common.cpp (what both share).
#include "attention_plan.h"

#include "plan/plan_common.h"

#include <algorithm>
#include <string>

namespace vkmha {

using namespace plan_build;

namespace {

uint64_t scores_cap_elems(const DeviceLimits& limits, uint64_t budget_bytes) {
    return std::min<uint64_t>(limits.max_storage_buffer_range, budget_bytes ? budget_bytes : kScoresBudgetBytes) /
           sizeof(float);
}

} // namespace

const char* buffer_role_name(BufferRole s) {
    static const char* names[kBufferRoleCount] = {"query",
                                                  "key",
                                                  "value",
                                                  "key_padding_mask",
                                                  "attn_mask",
                                                  "output",
                                                  "weights",
                                                  "wq",
                                                  "wk",
                                                  "wv",
                                                  "bq",
                                                  "bk",
                                                  "bv",
                                                  "wo",
                                                  "bo",
                                                  "q",
                                                  "k",
                                                  "v",
                                                  "scores",
                                                  "concat",
                                                  "lse",
                                                  "partials",
                                                  "cache_k",
                                                  "cache_v",
                                                  "records",
                                                  "position_ids",
                                                  "key_position_ids",
                                                  "model_table",
                                                  "sink",
                                                  "dummy"};
    return names[static_cast<uint32_t>(s)];
}

const char* stage_name(Stage s) {
    static const char* names[kStageCount] = {
        "q_proj",   "k_proj",    "v_proj",  "scores",   "softmax", "apply", "average_weights",
        "out_proj", "attention", "combine", "qkv_proj", "rope",    "copy"};
    return names[static_cast<uint32_t>(s)];
}

uint32_t min_key_splits(const DeviceLimits& limits, const AttentionTiling& t, uint32_t head_dim, uint32_t lk) {
    if (limits.max_invocation_loop_iterations == 0) return 1;
    // Loop iterations attention.comp runs per key tile (its README derives this; conservative). Lane tiles unroll
    // everything inside the key loop.
    const uint64_t chunks = (head_dim + t.dims - 1) / t.dims;
    const uint64_t per_tile =
        t.lanes ? 2
                : 8 + t.keys / 4 + t.keys / (4 * (t.workgroup / t.rows)) +
                      chunks * (3 + (uint64_t(t.keys) * t.dims + 4 * t.workgroup - 1) / (4 * t.workgroup) + t.dims / 4);
    const uint64_t max_keys = std::max<uint64_t>(1, limits.max_invocation_loop_iterations / per_tile) * t.keys;
    return div_up(lk, max_keys);
}

Result<ScratchSizes> attention_scratch(const AttentionConfig& c, Precision precision, const AttentionShape& s,
                                       const DeviceLimits& limits, const AttentionTiling& tiling,
                                       uint64_t scores_budget_bytes, bool fused_only) {
    const uint64_t cap = scores_cap_elems(limits, scores_budget_bytes);
    ScratchSizes sizes;
    sizes.activation_bytes = precision_bytes(precision);
    const uint64_t D = c.head_dim();
    // Saturating: a shape whose counts pass 2^64 is refused by the binding checks below, never wrapped.
    sizes.q_elems = saturating_product({s.batch, c.num_heads, s.lq, D});
    sizes.k_elems = saturating_product({s.batch, c.num_kv_heads, s.lk, D});
    sizes.v_elems = sizes.k_elems;
    sizes.concat_elems = saturating_product({s.batch, s.lq, c.q_width()});
    sizes.lse_elems = saturating_product({s.batch, c.num_heads, s.lq});
    if (fused_only) {
        // The fused path without weights projects Q into the concat buffer and attends in place (q_row_major), and
        // only need_weights, refused here, reads the LSE.
        sizes.q_elems = 0;
        sizes.lse_elems = 0;
    }
    // Split-K serves decode shapes (Lq <= kSplitMaxLq), within a budget; and any shape whose keys this device
    // cannot run in one invocation's loops (min_key_splits), whatever that takes.
    const uint64_t record = saturating_product({s.batch, c.num_heads, D + 2});
    const uint32_t required_splits = min_key_splits(limits, tiling, c.head_dim(), s.lk);
    sizes.partials_elems =
        std::max(std::min<uint64_t>(kPartialsBudgetBytes / 4,
                                    saturating_product({kMaxSplits, std::min(s.lq, kSplitMaxLq), record})),
                 required_splits > 1 ? saturating_product({required_splits, s.lq, record}) : 0);
    VKMHA_TRY(check_binding(limits, "split-K partial results", sizes.partials_elems, 4));
    if (!fused_only) {
        const uint64_t row_block = uint64_t(s.lq) * s.lk; // two 32-bit factors: no overflow
        if (row_block > cap)
            return make_error(ErrorCode::unsupported,
                              "need_weights and the unfused path need Lq*Lk = " + std::to_string(s.lq) + "*" +
                                  std::to_string(s.lk) + " scores per head in one binding, over this device's " +
                                  std::to_string(cap * 4) +
                                  "-byte score chunk limit; create the session without score scratch (no "
                                  "VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT, or with FUSED_ONLY_BIT before API 1.3)");
        sizes.scores_elems = std::min<uint64_t>(uint64_t(s.batch) * c.num_heads, cap / row_block) * row_block;
    }
    VKMHA_TRY(check_binding(limits, "query projections", sizes.q_elems, sizes.activation_bytes));
    VKMHA_TRY(check_binding(limits, "key projections", sizes.k_elems, sizes.activation_bytes));
    VKMHA_TRY(check_binding(limits, "concatenated heads", sizes.concat_elems, sizes.activation_bytes));
    // Every pass counts rows in 32 bits (a projection's M is batch * length). The bindings above imply this today;
    // checked here so that a later layout change cannot let them wrap silently.
    VKMHA_TRY(check_fits_u32("batch * lq query rows", uint64_t(s.batch) * s.lq));
    VKMHA_TRY(check_fits_u32("batch * lk key rows", uint64_t(s.batch) * s.lk));
    return sizes;
}

uint32_t max_keys_per_dispatch(const DeviceLimits& limits, const AttentionTiling& t, uint32_t head_dim) {
    if (limits.max_invocation_loop_iterations == 0) return UINT32_MAX;
    // min_key_splits is monotone in Lk: the largest Lk that needs one split, in whole tiles.
    uint32_t keys = t.keys;
    while (keys < (1u << 30) && min_key_splits(limits, t, head_dim, keys * 2) == 1) keys *= 2;
    uint32_t step = keys / 2;
    while (step >= t.keys) {
        if (min_key_splits(limits, t, head_dim, keys + step) == 1) keys += step;
        step /= 2;
    }
    return keys;
}

} // namespace vkmha
