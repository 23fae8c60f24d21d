// Pass construction shared by the plain and the KV-cache planners (plan_common.h).
#include "plan/plan_common.h"

#include "checked_math.h"
#include "rope.h"

#include <algorithm>
#include <string>

namespace vkmha::plan_build {

void spread_groups(Pass& pass, uint32_t groups) {
    pass.groups[0] = std::min(groups, kMaxGroups);
    pass.groups[1] = div_up(groups, pass.groups[0]);
}

Status check_binding(const DeviceLimits& limits, const char* what, uint64_t elems, uint64_t elem_bytes) {
    const uint64_t bytes = saturating_mul(elems, elem_bytes);
    if (bytes > limits.max_storage_buffer_range)
        return make_error(ErrorCode::unsupported, std::string(what) + " needs " + count_text(bytes, "bytes") +
                                                      " in one binding; the device allows " +
                                                      std::to_string(limits.max_storage_buffer_range) +
                                                      " (maxStorageBufferRange)");
    return {};
}

namespace {

Status check_groups(const DeviceLimits& limits, const Pass& pass) {
    for (int i = 0; i < 3; ++i)
        if (pass.groups[i] > limits.max_workgroup_count[i] || pass.groups[i] == 0)
            return make_error(ErrorCode::unsupported, std::string(kernel_name(pass.kernel)) + " needs " +
                                                          std::to_string(pass.groups[i]) + " workgroups in dimension " +
                                                          std::to_string(i) + "; the device allows " +
                                                          std::to_string(limits.max_workgroup_count[i]));
    return {};
}

} // namespace

// An unused writable binding (which the kernel does not write in that configuration, but which synchronization
// validation counts as written) is bound to a role the pass really writes, so it adds no hazard: independent passes
// need no barrier between them.
Pass& add_pass(AttentionPlan& plan, Precision precision, Kernel kernel, Stage stage,
               std::initializer_list<BufferRole> bindings) {
    Pass p;
    p.kernel = kernel;
    p.variant = precision == Precision::fp16 && has_variant(kernel, Variant::f16) ? Variant::f16 : Variant::f32;
    p.stage = stage;
    std::copy(bindings.begin(), bindings.end(), p.bindings.begin());
    p.write_mask = kernel_write_mask(kernel);
    BufferRole written = BufferRole::sink;
    for (uint32_t b = 0; b < kernel_binding_count(kernel); ++b)
        if ((p.write_mask >> b) & 1u && p.bindings[b] != BufferRole::dummy) {
            written = p.bindings[b];
            break;
        }
    for (uint32_t b = 0; b < kernel_binding_count(kernel); ++b)
        if ((p.write_mask >> b) & 1u && p.bindings[b] == BufferRole::dummy) p.bindings[b] = written;
    plan.passes.push_back(p);
    return plan.passes.back();
}

// The dummy role is never really accessed, so it is no hazard.
Status place_barriers(AttentionPlan& plan, const DeviceLimits& limits) {
    uint64_t written = 0, read = 0;
    for (Pass& pass : plan.passes) {
        uint64_t reads = 0, writes = 0;
        for (uint32_t b = 0; b < kernel_binding_count(pass.kernel); ++b) {
            if (pass.bindings[b] == BufferRole::dummy) continue;
            uint64_t bit = 1ull << static_cast<uint32_t>(pass.bindings[b]);
            ((pass.write_mask >> b) & 1u ? writes : reads) |= bit;
        }
        // Read-modify-write bindings (softmax in place, averaged weights, resumed state) are reads too.
        for (uint32_t b = 0; b < kernel_binding_count(pass.kernel); ++b)
            if ((kernel_read_write_mask(pass.kernel) >> b) & 1u)
                reads |= 1ull << static_cast<uint32_t>(pass.bindings[b]);
        if (((reads | writes) & written) || (writes & read)) {
            pass.barrier_before = true;
            written = 0;
            read = 0;
        }
        written |= writes;
        read |= reads;
        VKMHA_TRY(check_groups(limits, pass));
    }
    return {};
}

void reset_plan(AttentionPlan& plan) {
    std::vector<Pass> passes = std::move(plan.passes);
    passes.clear();
    plan = AttentionPlan{};
    plan.passes = std::move(passes);
}

namespace {

// A linear pass (bindings: x, w, b, y, row map, k, v); fp16 models read the fp16 concat as input.
Pass& add_linear(AttentionPlan& plan, const PlanModel& model, Stage stage, std::initializer_list<BufferRole> bindings,
                 const LinearParams& params) {
    Pass& p = add_pass(plan, model.precision, Kernel::linear, stage, bindings);
    if (p.variant == Variant::f16 && *bindings.begin() == BufferRole::concat) p.variant = Variant::f16_in;
    set_push(p, params);
    p.groups[0] = div_up(params.N, model.linear_tiling.block_n());
    // Row tiles past the guaranteed grid fold into z (linear_row_tile() in linear_common.glsl): one dispatch still
    // covers every row, which the packed K/V outputs need (they take no row offset). 0 rows stay 0 groups, refused.
    const uint32_t row_tiles = div_up(params.M, model.linear_tiling.block_m());
    p.groups[1] = std::min(row_tiles, kMaxGroups);
    p.groups[2] = row_tiles ? div_up(row_tiles, p.groups[1]) : 1;
    return p;
}

} // namespace

void add_projection(AttentionPlan& plan, const PlanModel& model, const Projection& pr) {
    const uint32_t D = model.config.head_dim();
    add_linear(plan, model, pr.stage,
               {pr.x, pr.w, pr.has_bias ? pr.bias : BufferRole::dummy, pr.y,
                pr.out_mode == 2 ? BufferRole::records : BufferRole::dummy},
               LinearParams{.M = pr.M,
                            .N = pr.N,
                            .K = pr.K,
                            .x_offset = pr.x_offset,
                            .w_offset = pr.w_offset,
                            .b_offset = pr.b_offset,
                            .y_offset = pr.y_offset,
                            .has_bias = pr.has_bias ? 1u : 0u,
                            .out_mode = pr.out_mode,
                            .rows_per_batch = pr.rows_per_batch,
                            .head_dim = D,
                            .num_out_heads = pr.N / D,
                            .map_offset = pr.map_offset});
}

bool can_pack_qkv(const PlanModel& model, bool self_attention) {
    const AttentionConfig& c = model.config;
    return self_attention && c.kdim == c.embed_dim && c.vdim == c.embed_dim;
}

void add_packed_qkv(AttentionPlan& plan, const PlanModel& model, const PackedQkv& pq) {
    const AttentionConfig& c = model.config;
    add_linear(plan, model, Stage::qkv_proj,
               {BufferRole::query, BufferRole::wq, model.has_in_bias ? BufferRole::bq : BufferRole::dummy, pq.q,
                pq.kv_out_mode == 2 ? BufferRole::records : BufferRole::dummy, pq.k, pq.v},
               LinearParams{.M = pq.rows,
                            .N = c.q_width() + 2 * c.kv_width(),
                            .K = c.embed_dim,
                            .x_offset = pq.x_offset,
                            .has_bias = model.has_in_bias ? 1u : 0u,
                            .out_mode = pq.kv_out_mode,
                            .rows_per_batch = pq.kv_rows_per_batch,
                            .head_dim = c.head_dim(),
                            .num_out_heads = c.num_kv_heads,
                            .map_offset = pq.map_offset,
                            .q_cols = c.q_width(),
                            .q_out_mode = pq.q_head_major ? 1u : 0u,
                            .q_rows_per_batch = pq.q_rows_per_batch});
}

void add_rope(AttentionPlan& plan, Precision precision, const AttentionConfig& c, const RopeRows& r) {
    const bool mapped = r.row_layout == 2;
    Pass& p =
        add_pass(plan, precision, Kernel::rope, Stage::rope,
                 {r.data, BufferRole::model_table, r.positions, mapped ? BufferRole::records : BufferRole::dummy});
    const TableOffsets t = table_offsets(c);
    set_push(p, RopeParams{.rows = r.rows,
                           .heads = r.heads,
                           .D = c.head_dim(),
                           .R = c.rope.enabled() ? c.rotary_dims() : 0u,
                           .pairing = static_cast<uint32_t>(c.rope.layout),
                           .norm = c.qk_norm ? 1u : 0u,
                           .eps = c.norm_eps,
                           .attention_factor = rope_attention_factor(c.rope),
                           .freq_offset = t.inv_freq,
                           .norm_offset = r.key ? t.k_norm : t.q_norm,
                           .row_layout = r.row_layout,
                           .rows_per_batch = r.rows_per_batch,
                           .map_offset = r.map_offset,
                           .data_offset = r.data_offset,
                           .pos_mode = r.positions != BufferRole::dummy ? 1u : 0u,
                           .pos_offset = r.pos_offset,
                           .pos_base = r.pos_base,
                           .pos_period = r.pos_period});
    spread_groups(p, div_up(uint64_t(r.rows) * r.heads, kRopeGroup));
}

void add_copy(AttentionPlan& plan, Precision precision, const CopyRegion& r) {
    Pass& p = add_pass(plan, precision, Kernel::copy, Stage::copy,
                       {r.src, r.dst, r.mapped ? BufferRole::records : BufferRole::dummy});
    if (p.variant == Variant::f16 && r.src == BufferRole::concat) p.variant = Variant::f16_in; // fp16 heads out to fp32
    set_push(p, CopyParams{.B = r.B,
                           .H = r.H,
                           .L = r.L,
                           .D = r.D,
                           .src_offset = r.src_offset,
                           .src_batch_stride = r.src_strides.batch,
                           .src_head_stride = r.src_strides.head,
                           .src_row_stride = r.src_strides.row,
                           .dst_offset = r.dst_offset,
                           .dst_batch_stride = r.dst_strides.batch,
                           .dst_head_stride = r.dst_strides.head,
                           .dst_row_stride = r.dst_strides.row,
                           .dst_mapped = r.mapped ? 1u : 0u,
                           .map_offset = r.map_offset,
                           .rows_per_batch = r.rows_per_batch});
    spread_groups(p, div_up(uint64_t(r.B) * r.H * r.L * r.D, kCopyGroup));
}

uint32_t split_target_workgroups(const DeviceLimits& limits) {
    return limits.compute_units ? limits.compute_units * kSplitWorkgroupsPerComputeUnit : kSplitTargetWorkgroups;
}

Result<KeySplit> choose_key_split(const KeySplitRequest& rq, const DeviceLimits& limits) {
    const AttentionTiling& t = *rq.tiling;
    const uint32_t required = min_key_splits(limits, t, rq.head_dim, rq.keys);
    const uint32_t target = split_target_workgroups(limits);
    uint64_t split = required;
    if (rq.split_k && rq.rows_per_head <= kSplitMaxLq && rq.workgroups < target) {
        split = div_up(target, rq.workgroups);
        split = std::min<uint64_t>(split, div_up(rq.keys, 2ull * t.keys)); // at least two key tiles per range
        split = std::min<uint64_t>(split, kMaxSplits);
        split = std::min<uint64_t>(split, rq.partials_capacity / (rq.state_rows * (rq.head_dim + 2)));
        split = std::max<uint64_t>({split, required, 1});
    }
    KeySplit out;
    if (split > 1) {
        // Whole key tiles per range; rounding up may leave fewer ranges than asked for.
        out.keys_per_split = div_up(div_up(rq.keys, split), t.keys) * t.keys;
        split = div_up(rq.keys, out.keys_per_split);
    }
    if (split > 1 && split * rq.state_rows * (rq.head_dim + 2) > rq.partials_capacity)
        return make_error(ErrorCode::unsupported,
                          "this step needs " + std::to_string(split) + " key splits of " +
                              std::to_string(rq.state_rows) +
                              " (head, row) pairs, more partial-result scratch than the session has; record "
                              "fewer tokens");
    out.count = static_cast<uint32_t>(split);
    return out;
}

void add_combine(AttentionPlan& plan, const PlanModel& model, uint32_t batch, uint32_t rows, uint32_t split,
                 bool write_lse, uint32_t head_factors) {
    const AttentionConfig& c = model.config;
    const uint32_t H = c.num_heads, D = c.head_dim();
    Pass& p = add_pass(plan, model.precision, Kernel::combine, Stage::combine,
                       {BufferRole::partials, BufferRole::concat, write_lse ? BufferRole::lse : BufferRole::dummy,
                        sinks_role(c), head_factors ? BufferRole::records : BufferRole::dummy});
    set_push(p, CombineParams{.B = batch,
                              .H = H,
                              .Lq = rows,
                              .D = D,
                              .split_count = split,
                              .write_lse = write_lse ? 1u : 0u,
                              .sinks = c.sinks ? 1u : 0u,
                              .head_factors = head_factors});
    spread_groups(p, div_up(uint64_t(batch) * H * rows * D, kCombineGroup));
}

} // namespace vkmha::plan_build
