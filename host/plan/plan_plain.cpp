// The plan of one forward call: projections (and QK-norm/RoPE), then the fused kernel (split-K and its merge where
// the grid is small) or, per chunk of (batch, head) pairs, scores -> softmax -> P·V, then the output projection.
// Chunking keeps every binding within maxStorageBufferRange.
#include "attention_plan.h"

#include "plan/plan_common.h"

#include <algorithm>
#include <string>
#include <tuple>

namespace vkmha {

using namespace plan_build;

namespace {

// The passes of one plan_attention call, step by step.
struct PlainPlanner {
    const PlanInputs& in;
    const DeviceLimits& limits;
    AttentionPlan& plan;
    const PlanModel& model = in.model;
    const AttentionConfig& c = in.model.config;
    const AttentionOptions& o = in.options;
    uint32_t E = c.embed_dim, H = c.num_heads, G = c.num_kv_heads, D = c.head_dim();
    uint32_t B = in.shape.batch, Lq = in.shape.lq, Lk = in.shape.lk;
    uint64_t row_block = uint64_t(Lq) * Lk;
    float scale = c.softmax_scale();

    Pass& add(Kernel kernel, Stage stage, std::initializer_list<BufferRole> bindings) {
        return add_pass(plan, model.precision, kernel, stage, bindings);
    }
    // The fused path without weights projects (or, attention only, copies) Q row-major into the concat buffer and
    // attends in place (see attention.comp's q_row_major): no Q scratch, which sessions without score scratch lack.
    // need_weights recomputes scores from head-major Q afterwards.
    bool q_in_place() const { return plan.fused && !o.need_weights; }
    BufferRole q_role() const { return q_in_place() ? BufferRole::concat : BufferRole::q; }
    BufferRole mask_role() const { return o.attn_mask != MaskKind::none ? BufferRole::attn_mask : BufferRole::dummy; }
    BufferRole kpm_role() const {
        return o.key_padding != MaskKind::none ? BufferRole::key_padding_mask : BufferRole::dummy;
    }
    uint32_t mask_bh_stride() const { return o.attn_mask_per_head ? static_cast<uint32_t>(row_block) : 0; }
    int32_t causal_offset() const { return static_cast<int32_t>(Lk) - static_cast<int32_t>(Lq); }
    BufferRole head_factor_role() const { return in.head_factors ? BufferRole::records : BufferRole::dummy; }

    Status size_plan();
    void projections();
    void copies_in();
    void rope();
    void scores(uint32_t bh0, uint32_t count);
    void probabilities(uint32_t bh0, uint32_t count, bool from_lse);
    void apply(uint32_t bh0, uint32_t count);
    void unfused_attention();
    Status fused_attention();
    void fused_pass(const KeySplit&, uint32_t row_tiles);
    void output();
};

// The scratch sizes, the path, the score chunk, and the caller's bindings against the device's limits.
Status PlainPlanner::size_plan() {
    auto sizes = attention_scratch(c, model.precision, in.shape, limits, model.tiling, in.scores_budget_bytes,
                                   in.scores_capacity == 0);
    if (!sizes) return sizes.take_error();
    plan.q_elems = sizes->q_elems;
    plan.k_elems = sizes->k_elems;
    plan.v_elems = sizes->v_elems;
    plan.concat_elems = sizes->concat_elems;
    plan.fused = o.path == AttentionPath::fused && D <= model.tiling.max_head_dim;
    const bool needs_scores = !plan.fused || o.need_weights;
    if (needs_scores) {
        if (in.scores_capacity == 0)
            return make_error(ErrorCode::invalid_argument,
                              std::string(o.need_weights ? "need_weights" : "the unfused path") +
                                  " needs score scratch, which this session does not have: create it with "
                                  "VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT (and without FUSED_ONLY_BIT)");
        // A chunk's (batch, head) pairs are the score kernels' third grid dimension: more chunks, not a grid past
        // the device's maxComputeWorkGroupCount.
        plan.chunk_bh = static_cast<uint32_t>(
            std::min<uint64_t>({uint64_t(B) * H, in.scores_capacity / row_block, limits.max_workgroup_count[2]}));
        if (plan.chunk_bh == 0)
            return make_error(ErrorCode::internal, "scores scratch is smaller than one head's scores");
        plan.scores_elems = uint64_t(plan.chunk_bh) * row_block;
    }
    // Saturating sums and products: a shape past 2^64 elements is refused by check_binding, never wrapped.
    const uint64_t q_elems = in.own_qkv ? strided_extent(in.qkv.q, B, H, Lq, D) : saturating_product({B, Lq, E});
    const uint64_t o_elems = in.own_qkv ? strided_extent(in.qkv.o, B, H, Lq, D) : saturating_product({B, Lq, E});
    VKMHA_TRY(check_binding(limits, "query input", saturating_add(q_elems, in.offsets.query), 4));
    VKMHA_TRY(check_binding(limits, "output", saturating_add(o_elems, in.offsets.output), 4));
    if (o.need_weights)
        VKMHA_TRY(check_binding(
            limits, "attention weights output",
            saturating_add(saturating_product({B, o.average_weights ? 1u : H, row_block}), in.offsets.weights), 4));
    if (o.attn_mask != MaskKind::none)
        VKMHA_TRY(check_binding(limits, "attn_mask",
                                saturating_product({o.attn_mask_per_head ? B * uint64_t(H) : 1, row_block}),
                                o.attn_mask == MaskKind::additive ? 4 : 1));
    return {};
}

// Attention only: the caller's Q, K and V into the head-major scratch the attention kernels read.
void PlainPlanner::copies_in() {
    const OwnQkv& x = in.qkv;
    const ExternalOffsets& off = in.offsets;
    // Q in place is [B, Lq, H, D] in the concat buffer (strides batch, head, row), as the projections write it.
    const TensorStrides q_strides = q_in_place() ? TensorStrides{Lq * H * D, D, H * D} : head_major(H, Lq, D);
    for (const auto& [src, dst, heads, L, offset, strides, dst_strides] :
         {std::tuple{BufferRole::query, q_role(), H, Lq, off.query, x.q, q_strides},
          std::tuple{BufferRole::key, BufferRole::k, G, Lk, off.key, x.k, head_major(G, Lk, D)},
          std::tuple{BufferRole::value, BufferRole::v, G, Lk, off.value, x.v, head_major(G, Lk, D)}})
        add_copy(plan, model.precision,
                 {.src = src,
                  .dst = dst,
                  .B = B,
                  .H = heads,
                  .L = L,
                  .D = D,
                  .src_offset = offset,
                  .src_strides = strides,
                  .dst_strides = dst_strides});
}

// Q, K and V: the caller's own, or one dispatch over [Wq; Wk; Wv] for self-attention with kdim = vdim = E, or three.
void PlainPlanner::projections() {
    const WeightOffsets& w = model.weights;
    const uint32_t KV = c.kv_width();
    if (in.own_qkv) {
        copies_in();
    } else if (can_pack_qkv(model, in.self_attention)) {
        add_packed_qkv(plan, model,
                       {.rows = B * Lq,
                        .x_offset = in.offsets.query,
                        .q = q_role(),
                        .q_head_major = !q_in_place(),
                        .q_rows_per_batch = Lq,
                        .k = BufferRole::k,
                        .v = BufferRole::v,
                        .kv_out_mode = 1,
                        .kv_rows_per_batch = Lk});
    } else {
        add_projection(plan, model,
                       {.stage = Stage::q_proj,
                        .x = BufferRole::query,
                        .w = BufferRole::wq,
                        .bias = BufferRole::bq,
                        .y = q_role(),
                        .M = B * Lq,
                        .N = c.q_width(),
                        .K = E,
                        .x_offset = in.offsets.query,
                        .has_bias = model.has_in_bias,
                        .out_mode = q_in_place() ? 0u : 1u,
                        .rows_per_batch = Lq});
        add_projection(plan, model,
                       {.stage = Stage::k_proj,
                        .x = BufferRole::key,
                        .w = BufferRole::wk,
                        .bias = BufferRole::bk,
                        .y = BufferRole::k,
                        .M = B * Lk,
                        .N = KV,
                        .K = c.kdim,
                        .x_offset = in.offsets.key,
                        .w_offset = w.wk,
                        .b_offset = w.bk,
                        .has_bias = model.has_in_bias,
                        .out_mode = 1,
                        .rows_per_batch = Lk});
        add_projection(plan, model,
                       {.stage = Stage::v_proj,
                        .x = BufferRole::value,
                        .w = BufferRole::wv,
                        .bias = BufferRole::bv,
                        .y = BufferRole::v,
                        .M = B * Lk,
                        .N = KV,
                        .K = c.vdim,
                        .x_offset = in.offsets.value,
                        .w_offset = w.wv,
                        .b_offset = w.bv,
                        .has_bias = model.has_in_bias,
                        .out_mode = 1,
                        .rows_per_batch = Lk});
    }
    if (needs_rope_pass(c)) rope();
}

// Queries at Lk - Lq + i (or the caller's position_ids), keys at j (self-attention: the queries' positions).
void PlainPlanner::rope() {
    const bool given = in.has_position_ids;
    RopeRows q{.data = q_role(),
               .rows = B * Lq,
               .heads = H,
               .row_layout = q_in_place() ? 0u : 1u,
               .rows_per_batch = Lq,
               .positions = given ? BufferRole::position_ids : BufferRole::dummy,
               .pos_offset = in.offsets.position_ids,
               .pos_base = causal_offset(),
               .pos_period = Lq};
    RopeRows k{.data = BufferRole::k,
               .rows = B * Lk,
               .heads = G,
               .row_layout = 1,
               .rows_per_batch = Lk,
               .positions = given && in.self_attention ? BufferRole::position_ids : BufferRole::dummy,
               .pos_offset = in.offsets.position_ids,
               .pos_period = Lk,
               .key = true};
    if (in.own_qkv && in.qkv.has_key_position_ids) {
        k.positions = BufferRole::key_position_ids;
        k.pos_offset = in.offsets.key_position_ids;
    }
    add_rope(plan, model.precision, c, q);
    add_rope(plan, model.precision, c, k);
}

// Scores of (batch, head) pairs [bh0, bh0 + count) into the chunk-local scores scratch.
void PlainPlanner::scores(uint32_t bh0, uint32_t count) {
    Pass& p =
        add(Kernel::scores, Stage::scores, {BufferRole::q, BufferRole::k, BufferRole::scores, mask_role(), kpm_role()});
    set_push(p, ScoresParams{.B = B,
                             .H = H,
                             .G = G,
                             .Lq = Lq,
                             .Lk = Lk,
                             .D = D,
                             .bh_begin = bh0,
                             .bh_count = count,
                             .scale = scale,
                             .attn_mask_mode = static_cast<uint32_t>(o.attn_mask),
                             .attn_mask_offset = in.offsets.attn_mask,
                             .attn_mask_bh_stride = mask_bh_stride(),
                             .kpm_mode = o.key_padding == MaskKind::none ? 0u : 1u,
                             .kpm_offset = in.offsets.key_padding_mask,
                             .causal = o.causal ? 1u : 0u,
                             .causal_offset = causal_offset(),
                             .softcap = c.softcap,
                             .alibi = c.alibi ? 1u : 0u,
                             .window = c.window});
    p.groups[0] = div_up(Lk, kTile);
    p.groups[1] = div_up(Lq, kTile);
    p.groups[2] = count;
}

// Probabilities of a chunk: by softmax (unfused) or from the fused kernel's log-sum-exp; per-head weights are
// copied out on the way, averaged weights accumulated after.
void PlainPlanner::probabilities(uint32_t bh0, uint32_t count, bool from_lse) {
    const bool copy_out = o.need_weights && !o.average_weights;
    const uint32_t rows = count * Lq;
    const uint32_t out_offset = static_cast<uint32_t>(uint64_t(bh0) * row_block + in.offsets.weights);
    const BufferRole out = copy_out ? BufferRole::weights : BufferRole::dummy;
    Pass* p = nullptr;
    if (from_lse) {
        p = &add(Kernel::probs_from_lse, Stage::softmax,
                 {BufferRole::scores, out, BufferRole::lse, head_factor_role()});
        set_push(*p, ProbsFromLseParams{.rows = rows,
                                        .Lk = Lk,
                                        .copy_out = copy_out ? 1u : 0u,
                                        .out_offset = out_offset,
                                        .bh_begin = bh0,
                                        .Lq = Lq,
                                        .head_factors = in.head_factors});
    } else {
        p = &add(Kernel::softmax, Stage::softmax, {BufferRole::scores, out, sinks_role(c), head_factor_role()});
        set_push(*p, SoftmaxParams{.rows = rows,
                                   .Lk = Lk,
                                   .copy_out = copy_out ? 1u : 0u,
                                   .out_offset = out_offset,
                                   .sinks = c.sinks ? 1u : 0u,
                                   .H = H,
                                   .Lq = Lq,
                                   .bh_begin = bh0,
                                   .head_factors = in.head_factors});
    }
    p->groups[0] = std::min(rows, kMaxGroups);
    p->groups[1] = div_up(rows, kMaxGroups);
    if (o.need_weights && o.average_weights) {
        Pass& av = add(Kernel::average_heads, Stage::average_weights, {BufferRole::scores, BufferRole::weights});
        set_push(av,
                 AverageHeadsParams{
                     .H = H, .Lq = Lq, .Lk = Lk, .bh_begin = bh0, .bh_count = count, .out_offset = in.offsets.weights});
        av.groups[0] = std::min(div_up(row_block, kAverageGroup), kMaxGroups); // the kernel strides over the plane
        av.groups[1] = (bh0 + count - 1) / H - bh0 / H + 1;
    }
}

// P·V of a chunk into the concatenated heads.
void PlainPlanner::apply(uint32_t bh0, uint32_t count) {
    Pass& p = add(Kernel::apply, Stage::apply, {BufferRole::scores, BufferRole::v, BufferRole::concat});
    set_push(p, ApplyParams{.H = H, .G = G, .Lq = Lq, .Lk = Lk, .D = D, .bh_begin = bh0, .bh_count = count});
    p.groups[0] = div_up(D, kTile);
    p.groups[1] = div_up(Lq, kTile);
    p.groups[2] = count;
}

void PlainPlanner::unfused_attention() {
    for (uint32_t bh0 = 0; bh0 < B * H; bh0 += plan.chunk_bh) {
        const uint32_t count = std::min(plan.chunk_bh, B * H - bh0);
        scores(bh0, count);
        probabilities(bh0, count, false);
        apply(bh0, count);
    }
}

// The fused kernel over every (row tile, batch, key/value head), each split writing partial results.
void PlainPlanner::fused_pass(const KeySplit& split, uint32_t row_tiles) {
    const bool lse = o.need_weights;
    const bool partial = split.count > 1;
    Pass& p = add(Kernel::attention, Stage::attention,
                  {q_role(), BufferRole::k, BufferRole::v, partial ? BufferRole::dummy : BufferRole::concat,
                   mask_role(), kpm_role(), lse && !partial ? BufferRole::lse : BufferRole::dummy,
                   partial ? BufferRole::partials : BufferRole::dummy, sinks_role(c), head_factor_role()});
    p.decode_tiling = model.decode(uint64_t(Lq) * (H / G));
    set_push(p, AttentionParams{.B = B,
                                .H = H,
                                .G = G,
                                .Lq = Lq,
                                .Lk = Lk,
                                .D = D,
                                .scale = scale,
                                .attn_mask_mode = static_cast<uint32_t>(o.attn_mask),
                                .attn_mask_offset = in.offsets.attn_mask,
                                .attn_mask_bh_stride = mask_bh_stride(),
                                .kpm_mode = o.key_padding == MaskKind::none ? 0u : 1u,
                                .kpm_offset = in.offsets.key_padding_mask,
                                .kpm_stride = Lk,
                                .causal = o.causal ? 1u : 0u,
                                .causal_offset = causal_offset(),
                                .split_count = split.count,
                                .keys_per_split = partial ? split.keys_per_split : Lk,
                                .write_lse = lse ? 1u : 0u,
                                .window = c.window,
                                .key_lo = 0,
                                .key_hi = UINT32_MAX,
                                .q_row_major = q_in_place() ? 1u : 0u,
                                .softcap = c.softcap,
                                .alibi = c.alibi ? 1u : 0u,
                                .sinks = c.sinks ? 1u : 0u,
                                .head_factors = in.head_factors});
    p.groups[0] = row_tiles;
    p.groups[1] = B * G;
    p.groups[2] = split.count;
}

Status PlainPlanner::fused_attention() {
    const uint64_t rows_per_kv_head = uint64_t(Lq) * (H / G);
    const AttentionTiling& t = model.fused_tiling(rows_per_kv_head);
    const uint32_t row_tiles = div_up(rows_per_kv_head, t.rows);
    auto split = choose_key_split({.tiling = &t,
                                   .head_dim = D,
                                   .keys = Lk,
                                   .rows_per_head = Lq,
                                   .workgroups = row_tiles * B * G,
                                   .state_rows = uint64_t(B) * H * Lq,
                                   .partials_capacity = in.partials_capacity,
                                   .split_k = o.split_k},
                                  limits);
    if (!split) return split.take_error();
    plan.split_count = split->count;
    fused_pass(split.value(), row_tiles);
    if (split->count > 1) add_combine(plan, model, B, Lq, split->count, o.need_weights, in.head_factors);
    if (!o.need_weights) return {};
    // need_weights: recompute each chunk's scores and normalise them with the saved log-sum-exp.
    for (uint32_t bh0 = 0; bh0 < B * H; bh0 += plan.chunk_bh) {
        const uint32_t count = std::min(plan.chunk_bh, B * H - bh0);
        scores(bh0, count);
        probabilities(bh0, count, true);
    }
    return {};
}

// The concatenated heads [B, Lq, H, D]: projected to the output, or (attention only) copied to the caller's O.
void PlainPlanner::output() {
    if (in.own_qkv) {
        add_copy(plan, model.precision,
                 {.src = BufferRole::concat,
                  .dst = BufferRole::output,
                  .B = B,
                  .H = H,
                  .L = Lq,
                  .D = D,
                  .src_strides = {Lq * H * D, D, H * D},
                  .dst_offset = in.offsets.output,
                  .dst_strides = in.qkv.o});
        return;
    }
    add_projection(plan, model,
                   {.stage = Stage::out_proj,
                    .x = BufferRole::concat,
                    .w = BufferRole::wo,
                    .bias = BufferRole::bo,
                    .y = BufferRole::output,
                    .M = B * Lq,
                    .N = E,
                    .K = c.q_width(),
                    .y_offset = in.offsets.output,
                    .has_bias = model.has_out_bias,
                    .out_mode = 0,
                    .rows_per_batch = Lq});
}

} // namespace

Result<AttentionPlan> plan_attention(const PlanInputs& in, const DeviceLimits& limits) {
    AttentionPlan plan;
    PlainPlanner p{.in = in, .limits = limits, .plan = plan};
    VKMHA_TRY(p.size_plan());
    p.projections();
    if (plan.fused)
        VKMHA_TRY(p.fused_attention());
    else
        p.unfused_attention();
    p.output();
    VKMHA_TRY(place_barriers(plan, limits));
    return plan;
}

} // namespace vkmha
