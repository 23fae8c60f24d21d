// The attention plan: projections, then per chunk of (batch, head) pairs scores -> softmax -> P·V (and the
// averaged weights), then the output projection. Chunking keeps every binding within maxStorageBufferRange.
#include "attention_plan.h"

#include "rope.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>

namespace vkmha {
namespace {

// Grid divisors: the workgroup sizes of shaders/CMakeLists.txt's kernel table (kernel_workgroup_size).
constexpr uint32_t kTile = kernel_workgroup_size(Kernel::scores)[0]; // scores and apply: kTile x kTile
static_assert(kernel_workgroup_size(Kernel::scores) == std::array<uint32_t, 3>{kTile, kTile, 1} &&
              kernel_workgroup_size(Kernel::apply) == kernel_workgroup_size(Kernel::scores));
constexpr uint32_t kMaxGroups = 65535; // Vulkan's guaranteed minimum per grid dimension; larger grids go 2D
constexpr uint32_t kAverageGroup = kernel_workgroup_size(Kernel::average_heads)[0];
constexpr uint32_t kCombineGroup = kernel_workgroup_size(Kernel::combine)[0];
constexpr uint32_t kRopeGroup = kernel_workgroup_size(Kernel::rope)[0];
constexpr uint32_t kCopyGroup = kernel_workgroup_size(Kernel::copy)[0];
// Split-K: only for decode-like shapes, toward this many workgroups, at most this many key ranges.
constexpr uint32_t kSplitMaxLq = 16;
constexpr uint32_t kSplitTargetWorkgroups = 256;
constexpr uint32_t kMaxSplits = 32;
constexpr uint64_t kPartialsBudgetBytes = 16ull << 20;
// The unfused path's score chunk is capped below the binding limit to bound scratch memory.
constexpr uint64_t kScoresBudgetBytes = 64ull << 20;

uint32_t div_up(uint64_t a, uint64_t b) { return static_cast<uint32_t>((a + b - 1) / b); }

template <typename P> void set_push(Pass& pass, const P& params) {
    static_assert(sizeof(P) <= sizeof(pass.push));
    std::memcpy(pass.push.data(), &params, sizeof(P));
    pass.push_bytes = sizeof(P);
}

uint64_t scores_cap_elems(const DeviceLimits& limits, uint64_t budget_bytes) {
    return std::min<uint64_t>(limits.max_storage_buffer_range, budget_bytes ? budget_bytes : kScoresBudgetBytes) /
           sizeof(float);
}

Status check_binding(const DeviceLimits& limits, const char* what, uint64_t elems, uint64_t elem_bytes) {
    uint64_t bytes = elems * elem_bytes;
    if (bytes > limits.max_storage_buffer_range)
        return make_error(ErrorCode::unsupported, std::string(what) + " needs " + std::to_string(bytes) +
                                                      " bytes in one binding; the device allows " +
                                                      std::to_string(limits.max_storage_buffer_range) +
                                                      " (maxStorageBufferRange)");
    return {};
}

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

const char* slot_name(Slot s) {
    static const char* names[kSlotCount] = {"query",
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
    sizes.q_elems = uint64_t(s.batch) * c.num_heads * s.lq * D;
    sizes.k_elems = uint64_t(s.batch) * c.num_kv_heads * s.lk * D;
    sizes.v_elems = sizes.k_elems;
    sizes.concat_elems = uint64_t(s.batch) * s.lq * c.q_width();
    sizes.lse_elems = uint64_t(s.batch) * c.num_heads * s.lq;
    if (fused_only) {
        // The fused path without weights projects Q into the concat buffer and attends in place (q_row_major), and
        // only need_weights, refused here, reads the LSE.
        sizes.q_elems = 0;
        sizes.lse_elems = 0;
    }
    // Split-K serves decode shapes (Lq <= kSplitMaxLq), within a budget; and any shape whose keys this device
    // cannot run in one invocation's loops (min_key_splits), whatever that takes.
    const uint64_t record = uint64_t(s.batch) * c.num_heads * (D + 2);
    sizes.partials_elems = std::max(
        std::min<uint64_t>(kPartialsBudgetBytes / 4, uint64_t(kMaxSplits) * std::min(s.lq, kSplitMaxLq) * record),
        min_key_splits(limits, tiling, c.head_dim(), s.lk) > 1
            ? min_key_splits(limits, tiling, c.head_dim(), s.lk) * uint64_t(s.lq) * record
            : 0);
    VKMHA_TRY(check_binding(limits, "split-K partial results", sizes.partials_elems, 4));
    if (!fused_only) {
        const uint64_t row_block = uint64_t(s.lq) * s.lk;
        if (row_block > cap)
            return make_error(ErrorCode::unsupported,
                              "need_weights and the unfused path need Lq*Lk = " + std::to_string(s.lq) + "*" +
                                  std::to_string(s.lk) + " scores per head in one binding, over this device's " +
                                  std::to_string(cap * 4) + "-byte score chunk limit; create the session fused-only");
        sizes.scores_elems = std::min<uint64_t>(uint64_t(s.batch) * c.num_heads, cap / row_block) * row_block;
    }
    VKMHA_TRY(check_binding(limits, "query projections", sizes.q_elems, sizes.activation_bytes));
    VKMHA_TRY(check_binding(limits, "key projections", sizes.k_elems, sizes.activation_bytes));
    VKMHA_TRY(check_binding(limits, "concatenated heads", sizes.concat_elems, sizes.activation_bytes));
    return sizes;
}

namespace {

// `bindings` in binding order; unused ones are Slot::dummy here. An unused writable binding (which the kernel does not
// write in that configuration, but which synchronization validation counts as written) is bound to a slot the pass
// really writes, so it adds no hazard: independent passes need no barrier between them. fp16 models run each
// kernel's fp16 storage variant where it has one (the kernels that touch weights or Q/K/V/concat).
Pass& add_pass(AttentionPlan& plan, Precision precision, Kernel kernel, Stage stage,
               std::initializer_list<Slot> bindings) {
    Pass p;
    p.kernel = kernel;
    p.variant = precision == Precision::fp16 && has_variant(kernel, Variant::f16) ? Variant::f16 : Variant::f32;
    p.stage = stage;
    std::copy(bindings.begin(), bindings.end(), p.bindings.begin());
    p.write_mask = kernel_write_mask(kernel);
    Slot written = Slot::sink;
    for (uint32_t b = 0; b < kernel_binding_count(kernel); ++b)
        if ((p.write_mask >> b) & 1u && p.bindings[b] != Slot::dummy) {
            written = p.bindings[b];
            break;
        }
    for (uint32_t b = 0; b < kernel_binding_count(kernel); ++b)
        if ((p.write_mask >> b) & 1u && p.bindings[b] == Slot::dummy) p.bindings[b] = written;
    plan.passes.push_back(p);
    return plan.passes.back();
}

// A linear pass (bindings: x, w, b, y, row map, k, v) with its params; fp16 models read the fp16 concat as input.
Pass& add_linear(AttentionPlan& plan, Precision precision, const LinearTiling& tiling, Stage stage,
                 std::initializer_list<Slot> bindings, const LinearParams& params) {
    Pass& p = add_pass(plan, precision, Kernel::linear, stage, bindings);
    if (p.variant == Variant::f16 && *bindings.begin() == Slot::concat) p.variant = Variant::f16_in;
    set_push(p, params);
    p.groups[0] = div_up(params.N, tiling.block_n());
    p.groups[1] = div_up(params.M, tiling.block_m());
    return p;
}

// Barriers: a pass needs one when it touches a slot written since the last barrier (RAW/WAW) or writes a slot read
// since the last barrier (WAR). The dummy slot is never really accessed. Also checks every grid.
Status place_barriers(AttentionPlan& plan, const DeviceLimits& limits) {
    uint64_t written = 0, read = 0;
    for (Pass& pass : plan.passes) {
        uint64_t reads = 0, writes = 0;
        for (uint32_t b = 0; b < kernel_binding_count(pass.kernel); ++b) {
            if (pass.bindings[b] == Slot::dummy) continue;
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

// Where one QK-norm/RoPE pass finds its rows (rope.comp's row_layout) and their positions.
struct RopeRows {
    Slot data;
    uint32_t rows = 0, heads = 0;
    uint32_t row_layout = 0, rows_per_batch = 0, map_offset = 0, data_offset = 0;
    Slot positions = Slot::dummy; // bound: pos_mode 1, positions[pos_offset + m]
    uint32_t pos_offset = 0;
    int32_t pos_base = 0; // unbound: position = pos_base + m % pos_period
    uint32_t pos_period = UINT32_MAX;
    bool key = false; // K rows: the k_norm weights
};

bool needs_rope_pass(const AttentionConfig& c) { return c.qk_norm || c.rope.enabled(); }

// QK-norm and RoPE in place on Q or K rows, after their projection and before anything reads them.
void add_rope(AttentionPlan& plan, Precision precision, const AttentionConfig& c, const RopeRows& r) {
    const bool mapped = r.row_layout == 2;
    Pass& p = add_pass(plan, precision, Kernel::rope, Stage::rope,
                       {r.data, Slot::model_table, r.positions, mapped ? Slot::records : Slot::dummy});
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
                           .pos_mode = r.positions != Slot::dummy ? 1u : 0u,
                           .pos_offset = r.pos_offset,
                           .pos_base = r.pos_base,
                           .pos_period = r.pos_period});
    const uint32_t groups = div_up(uint64_t(r.rows) * r.heads, kRopeGroup);
    p.groups[0] = std::min(groups, kMaxGroups);
    p.groups[1] = div_up(groups, p.groups[0]);
}

// Copies a strided [B, H, L, D] tensor (Kernel::copy); a mapped destination takes its rows from Slot::records.
struct CopyRegion {
    Slot src, dst;
    uint32_t B = 1, H = 1, L = 1, D = 1;
    uint32_t src_offset = 0;
    TensorStrides src_strides;
    uint32_t dst_offset = 0;
    TensorStrides dst_strides;
    bool mapped = false;
    uint32_t map_offset = 0, rows_per_batch = 0;
};

void add_copy(AttentionPlan& plan, Precision precision, const CopyRegion& r) {
    Pass& p =
        add_pass(plan, precision, Kernel::copy, Stage::copy, {r.src, r.dst, r.mapped ? Slot::records : Slot::dummy});
    if (p.variant == Variant::f16 && r.src == Slot::concat) p.variant = Variant::f16_in; // fp16 heads out to fp32
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
    const uint32_t groups = div_up(uint64_t(r.B) * r.H * r.L * r.D, kCopyGroup);
    p.groups[0] = std::min(groups, kMaxGroups);
    p.groups[1] = div_up(groups, p.groups[0]);
}

// Head-major [B, heads, L, D] strides, as vkmha's Q/K/V scratch and caches hold them.
TensorStrides head_major(uint32_t heads, uint32_t L, uint32_t D) { return {heads * L * D, L * D, D}; }

// The score modifiers and sinks of the model, as attention.comp's push block carries them.
AttentionParams with_modifiers(AttentionParams params, const AttentionConfig& c) {
    params.softcap = c.softcap;
    params.alibi = c.alibi ? 1u : 0u;
    params.sinks = c.sinks ? 1u : 0u;
    return params;
}
Slot sinks_slot(const AttentionConfig& c) { return c.sinks ? Slot::model_table : Slot::dummy; }

// Shared by every pass builder below.
struct Planner {
    const PlanInputs& in;
    const DeviceLimits& limits;
    AttentionPlan& plan;
    uint32_t E, H, G, D, B, Lq, Lk;
    uint64_t row_block;
    float scale;
    Status status; // the first error a builder met

    // `bindings` in binding order; unused ones are Slot::dummy here and become the sink where writable. fp16 models
    // run each kernel's fp16 storage variant where it has one (the kernels that touch weights or Q/K/V/concat).
    Pass& add(Kernel kernel, Stage stage, std::initializer_list<Slot> bindings) {
        return add_pass(plan, in.precision, kernel, stage, bindings);
    }
    // The fused path without weights projects Q row-major into the concat buffer and attends in place (see
    // attention.comp's q_row_major): no Q scratch. need_weights recomputes scores from head-major Q afterwards.
    bool q_in_place() const { return plan.fused && !in.options.need_weights && !in.own_qkv; }
    Slot mask_slot() const { return in.options.attn_mask != MaskKind::none ? Slot::attn_mask : Slot::dummy; }
    Slot kpm_slot() const { return in.options.key_padding != MaskKind::none ? Slot::key_padding_mask : Slot::dummy; }
    uint32_t mask_bh_stride() const { return in.options.attn_mask_per_head ? static_cast<uint32_t>(row_block) : 0; }
    int32_t causal_offset() const { return static_cast<int32_t>(Lk) - static_cast<int32_t>(Lq); }

    void linear(Stage stage, Slot x, Slot w, Slot b, Slot y, uint32_t M, uint32_t N, uint32_t K, uint32_t x_offset,
                uint32_t y_offset, bool has_bias, bool head_major, uint32_t rows_per_batch, uint32_t w_offset = 0,
                uint32_t b_offset = 0) {
        add_linear(plan, in.precision, in.linear_tiling, stage, {x, w, has_bias ? b : Slot::dummy, y},
                   LinearParams{M, N, K, x_offset, w_offset, b_offset, y_offset, has_bias ? 1u : 0u,
                                head_major ? 1u : 0u, rows_per_batch, D, N / D, 0});
    }

    // Attention only: the caller's Q, K and V into the head-major scratch the attention kernels read.
    void copies_in() {
        const OwnQkv& x = in.qkv;
        const ExternalOffsets& o = in.offsets;
        for (const auto& [src, dst, heads, L, offset, strides] :
             {std::tuple{Slot::query, Slot::q, H, Lq, o.query, x.q}, std::tuple{Slot::key, Slot::k, G, Lk, o.key, x.k},
              std::tuple{Slot::value, Slot::v, G, Lk, o.value, x.v}})
            add_copy(plan, in.precision,
                     {.src = src,
                      .dst = dst,
                      .B = B,
                      .H = heads,
                      .L = L,
                      .D = D,
                      .src_offset = offset,
                      .src_strides = strides,
                      .dst_strides = head_major(heads, L, D)});
    }

    // Attention only: the concatenated heads [B, Lq, H, D] out to the caller's O.
    void copy_out() {
        add_copy(plan, in.precision,
                 {.src = Slot::concat,
                  .dst = Slot::output,
                  .B = B,
                  .H = H,
                  .L = Lq,
                  .D = D,
                  .src_strides = {Lq * H * D, D, H * D},
                  .dst_offset = in.offsets.output,
                  .dst_strides = in.qkv.o});
    }

    // Q, K and V: one dispatch over [Wq; Wk; Wv] for self-attention with kdim = vdim = E, else three.
    void projections() {
        const AttentionConfig& c = in.config;
        if (in.own_qkv) {
            copies_in();
            if (needs_rope_pass(c)) rope();
            return;
        }
        const Slot q = q_in_place() ? Slot::concat : Slot::q;
        const uint32_t KV = G * D;
        const WeightOffsets& w = in.weights;
        const uint32_t QW = c.q_width();
        if (in.self_attention && c.kdim == E && c.vdim == E) {
            LinearParams lp{B * Lq, QW + 2 * KV, E, in.offsets.query, 0, 0, 0, in.has_in_bias ? 1u : 0u, 1, Lk,
                            D,      G,           0};
            lp.q_cols = QW;
            lp.q_out_mode = q_in_place() ? 0 : 1;
            lp.q_rows_per_batch = Lq;
            add_linear(
                plan, in.precision, in.linear_tiling, Stage::qkv_proj,
                {Slot::query, Slot::wq, in.has_in_bias ? Slot::bq : Slot::dummy, q, Slot::dummy, Slot::k, Slot::v}, lp);
        } else {
            linear(Stage::q_proj, Slot::query, Slot::wq, Slot::bq, q, B * Lq, QW, E, in.offsets.query, 0,
                   in.has_in_bias, !q_in_place(), Lq);
            linear(Stage::k_proj, Slot::key, Slot::wk, Slot::bk, Slot::k, B * Lk, KV, c.kdim, in.offsets.key, 0,
                   in.has_in_bias, true, Lk, w.wk, w.bk);
            linear(Stage::v_proj, Slot::value, Slot::wv, Slot::bv, Slot::v, B * Lk, KV, c.vdim, in.offsets.value, 0,
                   in.has_in_bias, true, Lk, w.wv, w.bv);
        }
        if (needs_rope_pass(c)) rope();
    }

    // Queries at Lk - Lq + i (or the caller's position_ids), keys at j (self-attention: the queries' positions).
    void rope() {
        const bool given = in.has_position_ids;
        RopeRows q{.data = q_in_place() ? Slot::concat : Slot::q,
                   .rows = B * Lq,
                   .heads = H,
                   .row_layout = q_in_place() ? 0u : 1u,
                   .rows_per_batch = Lq,
                   .positions = given ? Slot::position_ids : Slot::dummy,
                   .pos_offset = in.offsets.position_ids,
                   .pos_base = causal_offset(),
                   .pos_period = Lq};
        RopeRows k{.data = Slot::k,
                   .rows = B * Lk,
                   .heads = G,
                   .row_layout = 1,
                   .rows_per_batch = Lk,
                   .positions = given && in.self_attention ? Slot::position_ids : Slot::dummy,
                   .pos_offset = in.offsets.position_ids,
                   .pos_period = Lk,
                   .key = true};
        if (in.own_qkv && in.qkv.has_key_position_ids) {
            k.positions = Slot::key_position_ids;
            k.pos_offset = in.offsets.key_position_ids;
        }
        add_rope(plan, in.precision, in.config, q);
        add_rope(plan, in.precision, in.config, k);
    }

    // Scores of (batch, head) pairs [bh0, bh0 + count) into the chunk-local scores scratch.
    void scores(uint32_t bh0, uint32_t count) {
        Pass& p = add(Kernel::scores, Stage::scores, {Slot::q, Slot::k, Slot::scores, mask_slot(), kpm_slot()});
        const AttentionOptions& o = in.options;
        const AttentionConfig& c = in.config;
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
    void probabilities(uint32_t bh0, uint32_t count, bool from_lse) {
        const AttentionOptions& o = in.options;
        const bool copy_out = o.need_weights && !o.average_weights;
        const uint32_t rows = count * Lq;
        const uint32_t out_offset = static_cast<uint32_t>(uint64_t(bh0) * row_block + in.offsets.weights);
        const Slot out = copy_out ? Slot::weights : Slot::dummy;
        Pass* p = nullptr;
        if (from_lse) {
            p = &add(Kernel::probs_from_lse, Stage::softmax, {Slot::scores, out, Slot::lse});
            set_push(*p, ProbsFromLseParams{rows, Lk, copy_out ? 1u : 0u, out_offset, bh0, Lq});
        } else {
            p = &add(Kernel::softmax, Stage::softmax, {Slot::scores, out, sinks_slot(in.config)});
            set_push(*p, SoftmaxParams{.rows = rows,
                                       .Lk = Lk,
                                       .copy_out = copy_out ? 1u : 0u,
                                       .out_offset = out_offset,
                                       .sinks = in.config.sinks ? 1u : 0u,
                                       .H = H,
                                       .Lq = Lq,
                                       .bh_begin = bh0});
        }
        p->groups[0] = std::min(rows, kMaxGroups);
        p->groups[1] = div_up(rows, kMaxGroups);
        if (o.need_weights && o.average_weights) {
            Pass& av = add(Kernel::average_heads, Stage::average_weights, {Slot::scores, Slot::weights});
            set_push(av, AverageHeadsParams{H, Lq, Lk, bh0, count, in.offsets.weights});
            av.groups[0] = std::min(div_up(row_block, kAverageGroup), kMaxGroups); // the kernel strides over the plane
            av.groups[1] = (bh0 + count - 1) / H - bh0 / H + 1;
        }
    }

    void unfused_attention() {
        for (uint32_t bh0 = 0; bh0 < B * H; bh0 += plan.chunk_bh) {
            const uint32_t count = std::min(plan.chunk_bh, B * H - bh0);
            scores(bh0, count);
            probabilities(bh0, count, false);
            Pass& ap = add(Kernel::apply, Stage::apply, {Slot::scores, Slot::v, Slot::concat});
            set_push(ap, ApplyParams{H, G, Lq, Lk, D, bh0, count});
            ap.groups[0] = div_up(D, kTile);
            ap.groups[1] = div_up(Lq, kTile);
            ap.groups[2] = count;
        }
    }

    // Key ranges per row for the fused kernel: decode shapes have too few (row tile, batch, group) workgroups to
    // fill a device, so their keys are split across workgroups and merged exactly by the combine pass.
    bool decode() const { return use_decode_tiling(in.tiling, in.has_decode_tiling, uint64_t(Lq) * (H / G)); }
    const AttentionTiling& fused_tiling() const { return decode() ? in.decode_tiling : in.tiling; }

    uint32_t split_count(uint32_t workgroups) const {
        const AttentionTiling& t = fused_tiling();
        const uint32_t required = min_key_splits(limits, t, D, Lk);
        if (!in.options.split_k || Lq > kSplitMaxLq || workgroups >= kSplitTargetWorkgroups) return required;
        uint64_t split = div_up(kSplitTargetWorkgroups, workgroups);
        split = std::min<uint64_t>(split, div_up(Lk, 2ull * t.keys)); // at least two key tiles per range
        split = std::min<uint64_t>(split, kMaxSplits);
        split = std::min<uint64_t>(split, in.partials_capacity / (uint64_t(B) * H * Lq * (D + 2)));
        return static_cast<uint32_t>(std::max<uint64_t>(split, required));
    }

    void fused_attention() {
        const AttentionOptions& o = in.options;
        const AttentionTiling& t = fused_tiling();
        const uint32_t row_tiles = div_up(uint64_t(Lq) * (H / G), t.rows);
        uint32_t split = split_count(row_tiles * B * G);
        uint32_t keys_per_split = Lk;
        if (split > 1) {
            keys_per_split = div_up(div_up(Lk, split), t.keys) * t.keys;
            split = div_up(Lk, keys_per_split);
        }
        if (split > 1 && uint64_t(split) * B * H * Lq * (D + 2) > in.partials_capacity)
            status = make_error(ErrorCode::internal, "split-K needs more partial-result scratch than the session has");
        plan.split_count = split;
        const bool lse = o.need_weights;
        Pass& p = add(Kernel::attention, Stage::attention,
                      {q_in_place() ? Slot::concat : Slot::q, Slot::k, Slot::v, split > 1 ? Slot::dummy : Slot::concat,
                       mask_slot(), kpm_slot(), lse && split == 1 ? Slot::lse : Slot::dummy,
                       split > 1 ? Slot::partials : Slot::dummy, sinks_slot(in.config)});
        p.decode_tiling = decode();
        set_push(p, with_modifiers(AttentionParams{.B = B,
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
                                                   .split_count = split,
                                                   .keys_per_split = keys_per_split,
                                                   .write_lse = lse ? 1u : 0u,
                                                   .o_offset = 0,
                                                   .cache_mode = 0,
                                                   .capacity = 0,
                                                   .window = in.config.window,
                                                   .key_lo = 0,
                                                   .key_hi = UINT32_MAX,
                                                   .state_mode = 0,
                                                   .q_row_major = q_in_place() ? 1u : 0u},
                                   in.config));
        p.groups[0] = row_tiles;
        p.groups[1] = B * G;
        p.groups[2] = split;
        if (split > 1) {
            Pass& cb = add(Kernel::combine, Stage::combine,
                           {Slot::partials, Slot::concat, lse ? Slot::lse : Slot::dummy, sinks_slot(in.config)});
            set_push(cb, CombineParams{.B = B,
                                       .H = H,
                                       .Lq = Lq,
                                       .D = D,
                                       .split_count = split,
                                       .write_lse = lse ? 1u : 0u,
                                       .o_offset = 0,
                                       .sinks = in.config.sinks ? 1u : 0u});
            const uint32_t groups = div_up(uint64_t(B) * H * Lq * D, kCombineGroup);
            cb.groups[0] = std::min(groups, kMaxGroups);
            cb.groups[1] = div_up(groups, cb.groups[0]);
        }
        if (!o.need_weights) return;
        // need_weights: recompute each chunk's scores and normalise them with the saved log-sum-exp.
        for (uint32_t bh0 = 0; bh0 < B * H; bh0 += plan.chunk_bh) {
            const uint32_t count = std::min(plan.chunk_bh, B * H - bh0);
            scores(bh0, count);
            probabilities(bh0, count, true);
        }
    }
};

} // namespace

Result<AttentionPlan> plan_attention(const PlanInputs& in, const DeviceLimits& limits) {
    const AttentionConfig& c = in.config;
    const AttentionShape& s = in.shape;
    const AttentionOptions& o = in.options;
    const uint32_t E = c.embed_dim, H = c.num_heads, D = c.head_dim();
    const uint32_t B = s.batch, Lq = s.lq, Lk = s.lk;
    AttentionPlan plan;
    auto sizes =
        attention_scratch(c, in.precision, s, limits, in.tiling, in.scores_budget_bytes, in.scores_capacity == 0);
    if (!sizes) return sizes.take_error();
    plan.q_elems = sizes->q_elems;
    plan.k_elems = sizes->k_elems;
    plan.v_elems = sizes->v_elems;
    plan.concat_elems = sizes->concat_elems;
    const uint64_t row_block = uint64_t(Lq) * Lk;
    plan.fused = o.path == AttentionPath::fused && D <= in.tiling.max_head_dim;
    const bool needs_scores = !plan.fused || o.need_weights;
    if (needs_scores) {
        if (in.scores_capacity == 0)
            return make_error(ErrorCode::invalid_argument,
                              std::string(o.need_weights ? "need_weights" : "the unfused path") +
                                  " needs score scratch, which this fused-only session does not have");
        plan.chunk_bh = static_cast<uint32_t>(std::min<uint64_t>(uint64_t(B) * H, in.scores_capacity / row_block));
        if (plan.chunk_bh == 0)
            return make_error(ErrorCode::internal, "scores scratch is smaller than one head's scores");
        plan.scores_elems = uint64_t(plan.chunk_bh) * row_block;
    }
    const uint64_t q_elems = in.own_qkv ? strided_extent(in.qkv.q, B, H, Lq, D) : uint64_t(B) * Lq * E;
    const uint64_t o_elems = in.own_qkv ? strided_extent(in.qkv.o, B, H, Lq, D) : uint64_t(B) * Lq * E;
    VKMHA_TRY(check_binding(limits, "query input", q_elems + in.offsets.query, 4));
    VKMHA_TRY(check_binding(limits, "output", o_elems + in.offsets.output, 4));
    if (o.need_weights)
        VKMHA_TRY(check_binding(limits, "attention weights output",
                                (o.average_weights ? uint64_t(B) : uint64_t(B) * H) * row_block + in.offsets.weights,
                                4));
    if (o.attn_mask != MaskKind::none)
        VKMHA_TRY(check_binding(limits, "attn_mask", (o.attn_mask_per_head ? uint64_t(B) * H : 1) * row_block,
                                o.attn_mask == MaskKind::additive ? 4 : 1));

    Planner p{in, limits, plan, E, H, c.num_kv_heads, D, B, Lq, Lk, row_block, c.softmax_scale()};
    p.projections();
    if (plan.fused)
        p.fused_attention();
    else
        p.unfused_attention();
    if (!p.status) return p.status.take_error();
    if (in.own_qkv)
        p.copy_out();
    else
        p.linear(Stage::out_proj, Slot::concat, Slot::wo, Slot::bo, Slot::output, B * Lq, E, c.q_width(), 0,
                 in.offsets.output, in.has_out_bias, false, Lq);

    VKMHA_TRY(place_barriers(plan, limits));
    return plan;
}

} // namespace vkmha

namespace vkmha {
namespace {

// The passes of plans over a KV cache.
struct CachePlanner {
    const CachePlanBase& base;
    AttentionPlan& plan;
    uint32_t E = base.config.embed_dim, H = base.config.num_heads, G = base.config.num_kv_heads,
             D = base.config.head_dim();

    Pass& add(Kernel kernel, Stage stage, std::initializer_list<Slot> bindings) {
        return add_pass(plan, base.precision, kernel, stage, bindings);
    }

    // Rows [row0, row0 + rows) of x -> y; out_mode 0 row-major, 1 head-major with `rows_per_batch` rows, 2 head-major
    // at the rows the map in Slot::records names from word map_offset.
    void linear(Stage stage, Slot x, Slot w, Slot b, Slot y, uint32_t rows, uint32_t N, uint32_t K, uint32_t x_offset,
                uint32_t y_offset, bool has_bias, uint32_t out_mode, uint32_t rows_per_batch, uint32_t map_offset,
                uint32_t w_offset = 0, uint32_t b_offset = 0) {
        add_linear(plan, base.precision, base.linear_tiling, stage,
                   {x, w, has_bias ? b : Slot::dummy, y, out_mode == 2 ? Slot::records : Slot::dummy},
                   LinearParams{rows, N, K, x_offset, w_offset, b_offset, y_offset, has_bias ? 1u : 0u, out_mode,
                                rows_per_batch, D, N / D, map_offset});
    }

    // The fused kernel in cache mode over `records` records whose Q/O/state rows are packed in [H, tokens]:
    // split > 1 writes split-K partials, state_mode 1/2 the running state, else O.
    // q_in_concat: Q is row-major in the concat buffer (attended in place), else head-major in Slot::q.
    Pass& attention(uint32_t tokens, uint32_t records, uint32_t max_new_tokens, uint32_t split, uint32_t keys_per_split,
                    uint32_t key_lo, uint32_t key_hi, uint32_t state_mode, bool q_in_concat) {
        const bool partial = split > 1 || state_mode != 0;
        Pass& p = add(Kernel::attention, Stage::attention,
                      {q_in_concat ? Slot::concat : Slot::q, Slot::cache_k, Slot::cache_v,
                       partial ? Slot::dummy : Slot::concat, Slot::records,
                       base.key_padding ? Slot::key_padding_mask : Slot::dummy, Slot::dummy,
                       partial ? Slot::partials : Slot::dummy, partial ? Slot::dummy : sinks_slot(base.config)});
        set_push(p, with_modifiers(AttentionParams{.B = records,
                                                   .H = H,
                                                   .G = G,
                                                   .Lq = tokens,
                                                   .Lk = 0,
                                                   .D = D,
                                                   .scale = base.config.softmax_scale(),
                                                   .attn_mask_mode = 0,
                                                   .attn_mask_offset = 0,
                                                   .attn_mask_bh_stride = 0,
                                                   .kpm_mode = base.key_padding ? 1u : 0u,
                                                   .kpm_offset = base.offsets.key_padding_mask,
                                                   .kpm_stride = base.capacity,
                                                   .causal = 1u,
                                                   .causal_offset = 0,
                                                   .split_count = split,
                                                   .keys_per_split = keys_per_split,
                                                   .write_lse = 0,
                                                   .o_offset = 0,
                                                   .cache_mode = 1u,
                                                   .capacity = base.capacity,
                                                   .window = effective_window(),
                                                   .key_lo = key_lo,
                                                   .key_hi = key_hi,
                                                   .state_mode = state_mode,
                                                   .q_row_major = q_in_concat ? 1u : 0u},
                                   base.config));
        p.decode_tiling = use_decode_tiling(base.tiling, base.has_decode_tiling, uint64_t(max_new_tokens) * (H / G));
        p.groups[0] =
            div_up(uint64_t(max_new_tokens) * (H / G), (p.decode_tiling ? base.decode_tiling : base.tiling).rows);
        p.groups[1] = records * G;
        p.groups[2] = split;
        return p;
    }

    // The tighter of the model's window and the cache's ring (0: neither).
    uint32_t effective_window() const {
        const uint32_t a = base.config.window, b = base.window;
        return a == 0 ? b : b == 0 ? a : std::min(a, b);
    }

    void combine(uint32_t tokens, uint32_t split) {
        Pass& cb =
            add(Kernel::combine, Stage::combine, {Slot::partials, Slot::concat, Slot::dummy, sinks_slot(base.config)});
        set_push(cb, CombineParams{.B = 1,
                                   .H = H,
                                   .Lq = tokens,
                                   .D = D,
                                   .split_count = split,
                                   .write_lse = 0,
                                   .o_offset = 0,
                                   .sinks = base.config.sinks ? 1u : 0u});
        const uint32_t groups = div_up(uint64_t(H) * tokens * D, kCombineGroup);
        cb.groups[0] = std::min(groups, kMaxGroups);
        cb.groups[1] = div_up(groups, cb.groups[0]);
    }
};

Status check_cache_base(const CachePlanBase& b, const DeviceLimits& limits) {
    if (b.config.head_dim() > b.tiling.max_head_dim)
        return make_error(ErrorCode::unsupported, "KV-cache attention needs the fused kernel, which takes head dims up "
                                                  "to " +
                                                      std::to_string(b.tiling.max_head_dim) + ", not " +
                                                      std::to_string(b.config.head_dim()));
    (void)limits;
    return {};
}

} // namespace

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

// Empties a plan but keeps its pass storage, so per-frame plans allocate nothing in steady state.
void reset_plan(AttentionPlan& plan) {
    std::vector<Pass> passes = std::move(plan.passes);
    passes.clear();
    plan = AttentionPlan{};
    plan.passes = std::move(passes);
}

Result<AttentionPlan> plan_cached_step(const CachedStepInputs& in, const DeviceLimits& limits) {
    AttentionPlan plan;
    VKMHA_TRY(plan_cached_step(in, limits, plan));
    return plan;
}

Result<AttentionPlan> plan_prefill_item(const PrefillItemInputs& in, const DeviceLimits& limits) {
    AttentionPlan plan;
    VKMHA_TRY(plan_prefill_item(in, limits, plan));
    return plan;
}

namespace {

// Key ranges per row for a cached step, as plan_attention's: decode steps have few row tiles; llvmpipe needs splits
// for very long ranges. Sets plan.split_count; returns the keys per split (UINT32_MAX: one range).
Result<uint32_t> cached_step_split(const CachedStepInputs& in, const DeviceLimits& limits, AttentionPlan& plan) {
    const CachePlanBase& b = in.base;
    const uint32_t T = in.tokens, H = b.config.num_heads, G = b.config.num_kv_heads, D = b.config.head_dim();
    const AttentionTiling& t = use_decode_tiling(b.tiling, b.has_decode_tiling, uint64_t(in.max_new_tokens) * (H / G))
                                   ? b.decode_tiling
                                   : b.tiling;
    const uint32_t row_tiles = div_up(uint64_t(in.max_new_tokens) * (H / G), t.rows);
    const uint32_t workgroups = row_tiles * in.records * G;
    const uint32_t required = min_key_splits(limits, t, D, in.max_keys);
    uint64_t split = required;
    if (in.split_k && in.max_new_tokens <= kSplitMaxLq && workgroups < kSplitTargetWorkgroups) {
        split = div_up(kSplitTargetWorkgroups, workgroups);
        split = std::min<uint64_t>(split, div_up(in.max_keys, 2ull * t.keys));
        split = std::min<uint64_t>(split, kMaxSplits);
        split = std::min<uint64_t>(split, in.partials_capacity / (uint64_t(H) * T * (D + 2)));
        split = std::max<uint64_t>({split, required, 1});
    }
    uint32_t keys_per_split = UINT32_MAX;
    if (split > 1) {
        keys_per_split = div_up(div_up(in.max_keys, split), t.keys) * t.keys;
        split = div_up(in.max_keys, keys_per_split);
    }
    if (split > 1 && split * H * T * (D + 2) > in.partials_capacity)
        return make_error(ErrorCode::unsupported,
                          "this step needs " + std::to_string(split) + " key splits of " + std::to_string(T) +
                              " tokens, more partial-result scratch than the session has; record fewer tokens");
    plan.split_count = static_cast<uint32_t>(split);
    return keys_per_split;
}

// The concat buffer as [T, H, D].
TensorStrides concat_rows(const AttentionConfig& c) { return {0, c.head_dim(), c.q_width()}; }

// A cached step's Q into the concat buffer (attended in place: attention.comp's q_row_major) and K, V into the cache
// rows of the map: projected (all three in one dispatch for self-attention with packed weights), or the caller's own.
void cached_step_inputs(const CachedStepInputs& in, CachePlanner& p, AttentionPlan& plan) {
    const CachePlanBase& b = in.base;
    const AttentionConfig& c = b.config;
    const uint32_t T = in.tokens, H = p.H, D = p.D;
    if (in.own_qkv) {
        add_copy(plan, b.precision,
                 {.src = Slot::query,
                  .dst = Slot::concat,
                  .H = H,
                  .L = T,
                  .D = D,
                  .src_offset = b.offsets.query,
                  .src_strides = in.qkv.q,
                  .dst_strides = concat_rows(c)});
        for (const auto& [src, dst, offset, strides] :
             {std::tuple{Slot::key, Slot::cache_k, b.offsets.key, in.qkv.k},
              std::tuple{Slot::value, Slot::cache_v, b.offsets.value, in.qkv.v}})
            add_copy(plan, b.precision,
                     {.src = src,
                      .dst = dst,
                      .H = p.G,
                      .L = T,
                      .D = D,
                      .src_offset = offset,
                      .src_strides = strides,
                      .mapped = true,
                      .map_offset = in.kv_map_offset,
                      .rows_per_batch = b.capacity});
    } else if (b.self_attention && c.kdim == c.embed_dim && c.vdim == c.embed_dim) {
        LinearParams lp{T,
                        c.q_width() + 2 * c.kv_width(),
                        c.embed_dim,
                        b.offsets.query,
                        0,
                        0,
                        0,
                        b.has_in_bias ? 1u : 0u,
                        2,
                        b.capacity,
                        D,
                        p.G,
                        in.kv_map_offset};
        lp.q_cols = c.q_width();
        lp.q_out_mode = 0;
        lp.q_rows_per_batch = T;
        add_linear(plan, b.precision, b.linear_tiling, Stage::qkv_proj,
                   {Slot::query, Slot::wq, b.has_in_bias ? Slot::bq : Slot::dummy, Slot::concat, Slot::records,
                    Slot::cache_k, Slot::cache_v},
                   lp);
    } else {
        p.linear(Stage::q_proj, Slot::query, Slot::wq, Slot::bq, Slot::concat, T, c.q_width(), c.embed_dim,
                 b.offsets.query, 0, b.has_in_bias, 0, T, 0);
        p.linear(Stage::k_proj, Slot::key, Slot::wk, Slot::bk, Slot::cache_k, T, c.kv_width(), c.kdim, b.offsets.key, 0,
                 b.has_in_bias, 2, b.capacity, in.kv_map_offset, b.weights.wk, b.weights.bk);
        p.linear(Stage::v_proj, Slot::value, Slot::wv, Slot::bv, Slot::cache_v, T, c.kv_width(), c.vdim,
                 b.offsets.value, 0, b.has_in_bias, 2, b.capacity, in.kv_map_offset, b.weights.wv, b.weights.bv);
    }
}

// QK-norm and RoPE on the step's Q (concat) and its new K rows in the cache, at the records' positions or the caller's.
void cached_step_rope(const CachedStepInputs& in, AttentionPlan& plan) {
    const CachePlanBase& b = in.base;
    const AttentionConfig& c = b.config;
    const uint32_t T = in.tokens;
    const Slot positions = in.has_position_ids ? Slot::position_ids : Slot::records;
    const uint32_t pos_offset = in.has_position_ids ? b.offsets.position_ids : in.positions_offset;
    add_rope(plan, b.precision, c,
             {.data = Slot::concat, .rows = T, .heads = c.num_heads, .positions = positions, .pos_offset = pos_offset});
    add_rope(plan, b.precision, c,
             {.data = Slot::cache_k,
              .rows = T,
              .heads = c.num_kv_heads,
              .row_layout = 2,
              .rows_per_batch = b.capacity,
              .map_offset = in.kv_map_offset,
              .positions = positions,
              .pos_offset = pos_offset,
              .key = true});
}

} // namespace

Status plan_cached_step(const CachedStepInputs& in, const DeviceLimits& limits, AttentionPlan& plan) {
    reset_plan(plan);
    const CachePlanBase& b = in.base;
    VKMHA_TRY(check_cache_base(b, limits));
    if (in.tokens == 0 || in.records == 0)
        return make_error(ErrorCode::invalid_argument, "a cached step needs at least one new token");
    CachePlanner p{b, plan};
    const AttentionConfig& c = b.config;
    const uint32_t T = in.tokens, H = p.H, D = p.D;
    const uint64_t q_elems = in.own_qkv ? strided_extent(in.qkv.q, 1, H, T, D) : uint64_t(T) * c.embed_dim;
    const uint64_t o_elems = in.own_qkv ? strided_extent(in.qkv.o, 1, H, T, D) : uint64_t(T) * c.embed_dim;
    VKMHA_TRY(check_binding(limits, "query input", q_elems + b.offsets.query, 4));
    VKMHA_TRY(check_binding(limits, "output", o_elems + b.offsets.output, 4));
    plan.concat_elems = uint64_t(T) * c.q_width();
    plan.fused = true;
    auto keys_per_split = cached_step_split(in, limits, plan);
    if (!keys_per_split) return keys_per_split.take_error();

    cached_step_inputs(in, p, plan);
    if (needs_rope_pass(c)) cached_step_rope(in, plan);
    p.attention(T, in.records, in.max_new_tokens, plan.split_count, keys_per_split.value(), 0, UINT32_MAX, 0, true);
    if (plan.split_count > 1) p.combine(T, plan.split_count);
    if (in.own_qkv)
        add_copy(plan, b.precision,
                 {.src = Slot::concat,
                  .dst = Slot::output,
                  .H = H,
                  .L = T,
                  .D = D,
                  .src_strides = concat_rows(c),
                  .dst_offset = b.offsets.output,
                  .dst_strides = in.qkv.o});
    else
        p.linear(Stage::out_proj, Slot::concat, Slot::wo, Slot::bo, Slot::output, T, c.embed_dim, c.q_width(), 0,
                 b.offsets.output, b.has_out_bias, 0, T, 0);
    return place_barriers(plan, limits);
}

Status plan_prefill_item(const PrefillItemInputs& in, const DeviceLimits& limits, AttentionPlan& plan) {
    reset_plan(plan);
    const CachePlanBase& b = in.base;
    VKMHA_TRY(check_cache_base(b, limits));
    if (in.item.phase == PrefillPhase::attend && in.item.row_begin >= in.item.row_end)
        return make_error(ErrorCode::invalid_argument, "prefill attention piece over no rows");
    if (in.item.begin >= in.item.end)
        return make_error(ErrorCode::invalid_argument, "empty prefill item [" + std::to_string(in.item.begin) + ", " +
                                                           std::to_string(in.item.end) + ")");
    CachePlanner p{b, plan};
    const AttentionConfig& c = b.config;
    const uint32_t n = in.item.end - in.item.begin, T = in.tokens;
    plan.fused = true;
    switch (in.item.phase) {
    case PrefillPhase::project:
        // The Q row map (words 0..T) and the K/V row map (after it) are indexed by row.
        p.linear(Stage::q_proj, Slot::query, Slot::wq, Slot::bq, Slot::q, n, c.q_width(), c.embed_dim,
                 b.offsets.query + in.item.begin * c.embed_dim, 0, b.has_in_bias, 2, T, in.item.begin);
        p.linear(Stage::k_proj, Slot::key, Slot::wk, Slot::bk, Slot::cache_k, n, c.kv_width(), c.kdim,
                 b.offsets.key + in.item.begin * c.kdim, 0, b.has_in_bias, 2, b.capacity, T + in.item.begin,
                 b.weights.wk, b.weights.bk);
        p.linear(Stage::v_proj, Slot::value, Slot::wv, Slot::bv, Slot::cache_v, n, c.kv_width(), c.vdim,
                 b.offsets.value + in.item.begin * c.vdim, 0, b.has_in_bias, 2, b.capacity, T + in.item.begin,
                 b.weights.wv, b.weights.bv);
        if (needs_rope_pass(c)) {
            const auto first = static_cast<int32_t>(in.first_position + in.item.begin);
            const Slot positions = in.has_position_ids ? Slot::position_ids : Slot::dummy;
            const uint32_t pos_offset = b.offsets.position_ids + in.item.begin;
            add_rope(plan, b.precision, c,
                     {.data = Slot::q,
                      .rows = n,
                      .heads = p.H,
                      .row_layout = 2,
                      .rows_per_batch = T,
                      .map_offset = in.item.begin,
                      .positions = positions,
                      .pos_offset = pos_offset,
                      .pos_base = first});
            add_rope(plan, b.precision, c,
                     {.data = Slot::cache_k,
                      .rows = n,
                      .heads = p.G,
                      .row_layout = 2,
                      .rows_per_batch = b.capacity,
                      .map_offset = T + in.item.begin,
                      .positions = positions,
                      .pos_offset = pos_offset,
                      .pos_base = first,
                      .key = true});
        }
        break;
    case PrefillPhase::attend:
        p.attention(T, 1, in.item.row_end - in.item.row_begin, 1, UINT32_MAX, in.item.begin, in.item.end,
                    in.item.first_slice ? 1u : 2u, false);
        break;
    case PrefillPhase::finish: p.combine(T, 1); break;
    case PrefillPhase::out_proj:
        p.linear(Stage::out_proj, Slot::concat, Slot::wo, Slot::bo, Slot::output, n, c.embed_dim, c.q_width(),
                 in.item.begin * c.q_width(), b.offsets.output + in.item.begin * c.embed_dim, b.has_out_bias, 0, T, 0);
        break;
    }
    return place_barriers(plan, limits);
}

} // namespace vkmha
