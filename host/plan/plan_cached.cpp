// Plans over a KV cache: a cached step (a ragged batch of new tokens: project, write K/V into the cache, attend over
// each sequence's cached positions, project the output) and the pieces of a sliced prefill (prefill_job.h).
#include "attention_plan.h"

#include "plan/plan_common.h"

#include <algorithm>
#include <string>
#include <tuple>

namespace vkmha {

using namespace plan_build;

namespace {

// The fused kernel in cache mode over `records` records whose Q/O/state rows are packed in [H, tokens].
struct CacheAttention {
    uint32_t tokens = 0;
    uint32_t records = 0;
    uint32_t max_new_tokens = 0; // the most query rows of one record
    KeySplit split;              // count > 1 writes split-K partials
    uint32_t key_lo = 0, key_hi = UINT32_MAX;
    uint32_t state_mode = 0; // 1/2: start/resume the running state in BufferRole::partials, else O
    bool q_in_concat =
        false; // Q is row-major in the concat buffer (attended in place), else head-major in BufferRole::q
};

// The passes of plans over a KV cache.
struct CachePlanner {
    const CachePlanBase& base;
    AttentionPlan& plan;
    const PlanModel& model = base.model;
    const AttentionConfig& c = base.model.config;
    uint32_t H = c.num_heads, G = c.num_kv_heads, D = c.head_dim();

    Pass& add(Kernel kernel, Stage stage, std::initializer_list<BufferRole> bindings) {
        return add_pass(plan, model.precision, kernel, stage, bindings);
    }

    // The tighter of the model's window and the cache's ring (0: neither).
    uint32_t effective_window() const {
        const uint32_t a = c.window, b = base.window;
        return a == 0 ? b : b == 0 ? a : std::min(a, b);
    }

    void attention(const CacheAttention& a) {
        const bool partial = a.split.count > 1 || a.state_mode != 0;
        Pass& p = add(Kernel::attention, Stage::attention,
                      {a.q_in_concat ? BufferRole::concat : BufferRole::q, BufferRole::cache_k, BufferRole::cache_v,
                       partial ? BufferRole::dummy : BufferRole::concat, BufferRole::dummy,
                       base.key_padding ? BufferRole::key_padding_mask : BufferRole::dummy, BufferRole::dummy,
                       partial ? BufferRole::partials : BufferRole::dummy, partial ? BufferRole::dummy : sinks_role(c),
                       BufferRole::records});
        set_push(p, AttentionParams{.B = a.records,
                                    .H = H,
                                    .G = G,
                                    .Lq = a.tokens,
                                    .Lk = 0,
                                    .D = D,
                                    .scale = c.softmax_scale(),
                                    .kpm_mode = base.key_padding ? 1u : 0u,
                                    .kpm_offset = base.offsets.key_padding_mask,
                                    .kpm_stride = base.capacity,
                                    .causal = 1u,
                                    .split_count = a.split.count,
                                    .keys_per_split = a.split.keys_per_split,
                                    .cache_mode = 1u,
                                    .capacity = base.capacity,
                                    .window = effective_window(),
                                    .key_lo = a.key_lo,
                                    .key_hi = a.key_hi,
                                    .state_mode = a.state_mode,
                                    .q_row_major = a.q_in_concat ? 1u : 0u,
                                    .softcap = c.softcap,
                                    .alibi = c.alibi ? 1u : 0u,
                                    .sinks = c.sinks ? 1u : 0u,
                                    .head_factors = base.head_factors});
        const uint64_t rows_per_kv_head = uint64_t(a.max_new_tokens) * (H / G);
        p.decode_tiling = model.decode(rows_per_kv_head);
        p.groups[0] = div_up(rows_per_kv_head, model.fused_tiling(rows_per_kv_head).rows);
        p.groups[1] = a.records * G;
        p.groups[2] = a.split.count;
    }

    // K and V rows [begin, begin + rows) of the key/value inputs into the cache rows the map names from map_offset.
    void project_kv(uint32_t rows, uint32_t begin, uint32_t map_offset) {
        const WeightOffsets& w = model.weights;
        for (const auto& [stage, x, w_role, b_role, y, K, x_offset, w_offset, b_offset] :
             {std::tuple{Stage::k_proj, BufferRole::key, BufferRole::wk, BufferRole::bk, BufferRole::cache_k, c.kdim,
                         base.offsets.key, w.wk, w.bk},
              std::tuple{Stage::v_proj, BufferRole::value, BufferRole::wv, BufferRole::bv, BufferRole::cache_v, c.vdim,
                         base.offsets.value, w.wv, w.bv}})
            add_projection(plan, model,
                           {.stage = stage,
                            .x = x,
                            .w = w_role,
                            .bias = b_role,
                            .y = y,
                            .M = rows,
                            .N = c.kv_width(),
                            .K = K,
                            .x_offset = x_offset + begin * K,
                            .w_offset = w_offset,
                            .b_offset = b_offset,
                            .has_bias = model.has_in_bias,
                            .out_mode = 2,
                            .rows_per_batch = base.capacity,
                            .map_offset = map_offset});
    }
};

Status check_cache_base(const CachePlanBase& b) {
    const AttentionTiling& t = b.model.tiling;
    const uint32_t D = b.model.config.head_dim();
    if (D > t.max_head_dim)
        return make_error(ErrorCode::unsupported, "KV-cache attention needs the fused kernel, which takes head dims up "
                                                  "to " +
                                                      std::to_string(t.max_head_dim) + ", not " + std::to_string(D));
    return {};
}

// Key ranges per row for a cached step: decode steps have few row tiles; llvmpipe needs splits for very long ranges.
Result<KeySplit> cached_step_split(const CachedStepInputs& in, const DeviceLimits& limits) {
    const AttentionConfig& c = in.base.model.config;
    const uint32_t H = c.num_heads, G = c.num_kv_heads;
    const uint64_t rows_per_kv_head = uint64_t(in.max_new_tokens) * (H / G);
    const AttentionTiling& t = in.base.model.fused_tiling(rows_per_kv_head);
    return choose_key_split({.tiling = &t,
                             .head_dim = c.head_dim(),
                             .keys = in.max_keys,
                             .rows_per_head = in.max_new_tokens,
                             .workgroups = div_up(rows_per_kv_head, t.rows) * in.records * G,
                             .state_rows = uint64_t(H) * in.tokens,
                             .partials_capacity = in.partials_capacity,
                             .split_k = in.split_k},
                            limits);
}

// The concat buffer as [T, H, D].
TensorStrides concat_rows(const AttentionConfig& c) { return {0, c.head_dim(), c.q_width()}; }

// A cached step's Q into the concat buffer (attended in place: attention.comp's q_row_major) and K, V into the cache
// rows of the map: the caller's own, or projected (all three in one dispatch for self-attention with packed weights).
void cached_step_inputs(const CachedStepInputs& in, CachePlanner& p, AttentionPlan& plan) {
    const CachePlanBase& b = in.base;
    const AttentionConfig& c = b.model.config;
    const uint32_t T = in.tokens;
    if (in.own_qkv) {
        add_copy(plan, b.model.precision,
                 {.src = BufferRole::query,
                  .dst = BufferRole::concat,
                  .H = p.H,
                  .L = T,
                  .D = p.D,
                  .src_offset = b.offsets.query,
                  .src_strides = in.qkv.q,
                  .dst_strides = concat_rows(c)});
        for (const auto& [src, dst, offset, strides] :
             {std::tuple{BufferRole::key, BufferRole::cache_k, b.offsets.key, in.qkv.k},
              std::tuple{BufferRole::value, BufferRole::cache_v, b.offsets.value, in.qkv.v}})
            add_copy(plan, b.model.precision,
                     {.src = src,
                      .dst = dst,
                      .H = p.G,
                      .L = T,
                      .D = p.D,
                      .src_offset = offset,
                      .src_strides = strides,
                      .mapped = true,
                      .map_offset = in.kv_map_offset,
                      .rows_per_batch = b.capacity});
    } else if (can_pack_qkv(b.model, b.self_attention)) {
        add_packed_qkv(plan, b.model,
                       {.rows = T,
                        .x_offset = b.offsets.query,
                        .q = BufferRole::concat,
                        .q_head_major = false,
                        .q_rows_per_batch = T,
                        .k = BufferRole::cache_k,
                        .v = BufferRole::cache_v,
                        .kv_out_mode = 2,
                        .kv_rows_per_batch = b.capacity,
                        .map_offset = in.kv_map_offset});
    } else {
        add_projection(plan, b.model,
                       {.stage = Stage::q_proj,
                        .x = BufferRole::query,
                        .w = BufferRole::wq,
                        .bias = BufferRole::bq,
                        .y = BufferRole::concat,
                        .M = T,
                        .N = c.q_width(),
                        .K = c.embed_dim,
                        .x_offset = b.offsets.query,
                        .has_bias = b.model.has_in_bias,
                        .out_mode = 0,
                        .rows_per_batch = T});
        p.project_kv(T, 0, in.kv_map_offset);
    }
}

// QK-norm and RoPE on the step's Q (concat) and its new K rows in the cache, at the records' positions or the caller's.
void cached_step_rope(const CachedStepInputs& in, AttentionPlan& plan) {
    const CachePlanBase& b = in.base;
    const AttentionConfig& c = b.model.config;
    const uint32_t T = in.tokens;
    const BufferRole positions = in.has_position_ids ? BufferRole::position_ids : BufferRole::records;
    const uint32_t pos_offset = in.has_position_ids ? b.offsets.position_ids : in.positions_offset;
    add_rope(plan, b.model.precision, c,
             {.data = BufferRole::concat,
              .rows = T,
              .heads = c.num_heads,
              .positions = positions,
              .pos_offset = pos_offset});
    add_rope(plan, b.model.precision, c,
             {.data = BufferRole::cache_k,
              .rows = T,
              .heads = c.num_kv_heads,
              .row_layout = 2,
              .rows_per_batch = b.capacity,
              .map_offset = in.kv_map_offset,
              .positions = positions,
              .pos_offset = pos_offset,
              .key = true});
}

// The step's concatenated heads [T, H, D]: copied to the caller's O, or projected to the output.
void cached_step_output(const CachedStepInputs& in, AttentionPlan& plan) {
    const CachePlanBase& b = in.base;
    const AttentionConfig& c = b.model.config;
    const uint32_t T = in.tokens;
    if (in.own_qkv) {
        add_copy(plan, b.model.precision,
                 {.src = BufferRole::concat,
                  .dst = BufferRole::output,
                  .H = c.num_heads,
                  .L = T,
                  .D = c.head_dim(),
                  .src_strides = concat_rows(c),
                  .dst_offset = b.offsets.output,
                  .dst_strides = in.qkv.o});
        return;
    }
    add_projection(plan, b.model,
                   {.stage = Stage::out_proj,
                    .x = BufferRole::concat,
                    .w = BufferRole::wo,
                    .bias = BufferRole::bo,
                    .y = BufferRole::output,
                    .M = T,
                    .N = c.embed_dim,
                    .K = c.q_width(),
                    .y_offset = b.offsets.output,
                    .has_bias = b.model.has_out_bias,
                    .out_mode = 0,
                    .rows_per_batch = T});
}

// A prefill piece's projections of rows [begin, end): Q into the job's Q rows (the Q row map, words 0..T), K and V
// into the cache (the K/V row map after it), then QK-norm/RoPE at the prompt's positions.
void prefill_project(const PrefillItemInputs& in, CachePlanner& p, AttentionPlan& plan) {
    const CachePlanBase& b = in.base;
    const AttentionConfig& c = b.model.config;
    const uint32_t begin = in.item.begin, n = in.item.end - in.item.begin, T = in.tokens;
    add_projection(plan, b.model,
                   {.stage = Stage::q_proj,
                    .x = BufferRole::query,
                    .w = BufferRole::wq,
                    .bias = BufferRole::bq,
                    .y = BufferRole::q,
                    .M = n,
                    .N = c.q_width(),
                    .K = c.embed_dim,
                    .x_offset = b.offsets.query + begin * c.embed_dim,
                    .has_bias = b.model.has_in_bias,
                    .out_mode = 2,
                    .rows_per_batch = T,
                    .map_offset = begin});
    p.project_kv(n, begin, T + begin);
    if (!needs_rope_pass(c)) return;
    const auto first = static_cast<int32_t>(in.first_position + begin);
    const BufferRole positions = in.has_position_ids ? BufferRole::position_ids : BufferRole::dummy;
    const uint32_t pos_offset = b.offsets.position_ids + begin;
    add_rope(plan, b.model.precision, c,
             {.data = BufferRole::q,
              .rows = n,
              .heads = p.H,
              .row_layout = 2,
              .rows_per_batch = T,
              .map_offset = begin,
              .positions = positions,
              .pos_offset = pos_offset,
              .pos_base = first});
    add_rope(plan, b.model.precision, c,
             {.data = BufferRole::cache_k,
              .rows = n,
              .heads = p.G,
              .row_layout = 2,
              .rows_per_batch = b.capacity,
              .map_offset = T + begin,
              .positions = positions,
              .pos_offset = pos_offset,
              .pos_base = first,
              .key = true});
}

} // namespace

Status plan_cached_step(const CachedStepInputs& in, const DeviceLimits& limits, AttentionPlan& plan) {
    reset_plan(plan);
    const CachePlanBase& b = in.base;
    VKMHA_TRY(check_cache_base(b));
    if (in.tokens == 0 || in.records == 0)
        return make_error(ErrorCode::invalid_argument, "a cached step needs at least one new token");
    CachePlanner p{.base = b, .plan = plan};
    const AttentionConfig& c = b.model.config;
    const uint32_t T = in.tokens, H = p.H, D = p.D;
    const uint64_t q_elems = in.own_qkv ? strided_extent(in.qkv.q, 1, H, T, D) : uint64_t(T) * c.embed_dim;
    const uint64_t o_elems = in.own_qkv ? strided_extent(in.qkv.o, 1, H, T, D) : uint64_t(T) * c.embed_dim;
    VKMHA_TRY(check_binding(limits, "query input", q_elems + b.offsets.query, 4));
    VKMHA_TRY(check_binding(limits, "output", o_elems + b.offsets.output, 4));
    // The key and value rows too: their projections' x_offset (begin * kdim) is a 32-bit element index.
    const uint32_t G = c.num_kv_heads;
    const uint64_t k_elems = in.own_qkv ? strided_extent(in.qkv.k, 1, G, T, D) : uint64_t(T) * c.kdim;
    const uint64_t v_elems = in.own_qkv ? strided_extent(in.qkv.v, 1, G, T, D) : uint64_t(T) * c.vdim;
    VKMHA_TRY(check_binding(limits, "key input", saturating_add(k_elems, b.offsets.key), 4));
    VKMHA_TRY(check_binding(limits, "value input", saturating_add(v_elems, b.offsets.value), 4));
    plan.concat_elems = uint64_t(T) * c.q_width();
    plan.fused = true;
    auto split = cached_step_split(in, limits);
    if (!split) return split.take_error();
    plan.split_count = split->count;

    cached_step_inputs(in, p, plan);
    if (needs_rope_pass(c)) cached_step_rope(in, plan);
    p.attention({.tokens = T,
                 .records = in.records,
                 .max_new_tokens = in.max_new_tokens,
                 .split = split.value(),
                 .q_in_concat = true});
    if (split->count > 1) add_combine(plan, b.model, 1, T, split->count, false, b.head_factors);
    cached_step_output(in, plan);
    return place_barriers(plan, limits);
}

Result<AttentionPlan> plan_cached_step(const CachedStepInputs& in, const DeviceLimits& limits) {
    AttentionPlan plan;
    VKMHA_TRY(plan_cached_step(in, limits, plan));
    return plan;
}

Status plan_prefill_item(const PrefillItemInputs& in, const DeviceLimits& limits, AttentionPlan& plan) {
    reset_plan(plan);
    const CachePlanBase& b = in.base;
    VKMHA_TRY(check_cache_base(b));
    if (in.item.phase == PrefillPhase::attend && in.item.row_begin >= in.item.row_end)
        return make_error(ErrorCode::invalid_argument, "prefill attention piece over no rows");
    if (in.item.begin >= in.item.end)
        return make_error(ErrorCode::invalid_argument, "empty prefill item [" + std::to_string(in.item.begin) + ", " +
                                                           std::to_string(in.item.end) + ")");
    CachePlanner p{.base = b, .plan = plan};
    const AttentionConfig& c = b.model.config;
    const uint32_t n = in.item.end - in.item.begin, T = in.tokens;
    plan.fused = true;
    switch (in.item.phase) {
    case PrefillPhase::project: prefill_project(in, p, plan); break;
    case PrefillPhase::attend:
        p.attention({.tokens = T,
                     .records = 1,
                     .max_new_tokens = in.item.row_end - in.item.row_begin,
                     .split = {.count = 1, .keys_per_split = UINT32_MAX},
                     .key_lo = in.item.begin,
                     .key_hi = in.item.end,
                     .state_mode = in.item.first_slice ? 1u : 2u,
                     .q_in_concat = false});
        break;
    case PrefillPhase::finish: add_combine(plan, b.model, 1, T, 1, false, b.head_factors); break;
    case PrefillPhase::out_proj:
        add_projection(plan, b.model,
                       {.stage = Stage::out_proj,
                        .x = BufferRole::concat,
                        .w = BufferRole::wo,
                        .bias = BufferRole::bo,
                        .y = BufferRole::output,
                        .M = n,
                        .N = c.embed_dim,
                        .K = c.q_width(),
                        .x_offset = in.item.begin * c.q_width(),
                        .y_offset = b.offsets.output + in.item.begin * c.embed_dim,
                        .has_bias = b.model.has_out_bias,
                        .out_mode = 0,
                        .rows_per_batch = T});
        break;
    }
    return place_barriers(plan, limits);
}

Result<AttentionPlan> plan_prefill_item(const PrefillItemInputs& in, const DeviceLimits& limits) {
    AttentionPlan plan;
    VKMHA_TRY(plan_prefill_item(in, limits, plan));
    return plan;
}

} // namespace vkmha
