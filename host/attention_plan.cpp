// The attention plan: projections, then per chunk of (batch, head) pairs scores -> softmax -> P·V (and the
// averaged weights), then the output projection. Chunking keeps every binding within maxStorageBufferRange.
#include "attention_plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace vkmha {
namespace {

constexpr uint32_t kTile = 16;             // linear/scores/apply workgroups are 16x16 (shaders/README.md)
constexpr uint32_t kSoftmaxGroups = 65535; // rows per grid row before the softmax grid goes 2D
constexpr uint32_t kAverageGroup = 256;
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
            return make_error(ErrorCode::unsupported,
                              std::string(kernel_name(pass.kernel)) + " needs " + std::to_string(pass.groups[i]) +
                                  " workgroups in dimension " + std::to_string(i) + "; the device allows " +
                                  std::to_string(limits.max_workgroup_count[i]));
    return {};
}

} // namespace

const char* slot_name(Slot s) {
    static const char* names[kSlotCount] = {"query", "key", "value", "key_padding_mask", "attn_mask", "output",
                                            "weights", "wq", "wk", "wv", "bq", "bk", "bv", "wo", "bo",
                                            "q", "k", "v", "scores", "concat", "dummy"};
    return names[static_cast<uint32_t>(s)];
}

const char* stage_name(Stage s) {
    static const char* names[kStageCount] = {"q_proj", "k_proj",          "v_proj",   "scores",    "softmax",
                                             "apply",  "average_weights", "out_proj", "attention", "combine"};
    return names[static_cast<uint32_t>(s)];
}

Result<ScratchSizes> attention_scratch(const AttentionConfig& c, const AttentionShape& s, const DeviceLimits& limits,
                                       uint64_t scores_budget_bytes) {
    const uint64_t cap = scores_cap_elems(limits, scores_budget_bytes);
    ScratchSizes sizes;
    const uint64_t D = c.head_dim();
    sizes.q_elems = uint64_t(s.batch) * c.num_heads * s.lq * D;
    sizes.k_elems = uint64_t(s.batch) * c.num_kv_heads * s.lk * D;
    sizes.v_elems = sizes.k_elems;
    sizes.concat_elems = uint64_t(s.batch) * s.lq * c.embed_dim;
    const uint64_t row_block = uint64_t(s.lq) * s.lk;
    if (row_block > cap)
        return make_error(ErrorCode::unsupported,
                          "the unfused path needs Lq*Lk = " + std::to_string(s.lq) + "*" + std::to_string(s.lk) +
                              " scores per head in one binding, over this device's " +
                              std::to_string(cap * 4) + "-byte score chunk limit");
    sizes.scores_elems = std::min<uint64_t>(uint64_t(s.batch) * c.num_heads, cap / row_block) *
                         row_block;
    VKMHA_TRY(check_binding(limits, "query projections", sizes.q_elems, 4));
    VKMHA_TRY(check_binding(limits, "key projections", sizes.k_elems, 4));
    VKMHA_TRY(check_binding(limits, "concatenated heads", sizes.concat_elems, 4));
    return sizes;
}

Result<AttentionPlan> plan_attention(const PlanInputs& in, const DeviceLimits& limits) {
    const AttentionConfig& c = in.config;
    const AttentionShape& s = in.shape;
    const AttentionOptions& o = in.options;
    const uint32_t E = c.embed_dim, H = c.num_heads, G = c.num_kv_heads, D = c.head_dim();
    const uint32_t B = s.batch, Lq = s.lq, Lk = s.lk;
    AttentionPlan plan;
    auto sizes = attention_scratch(c, s, limits, in.scores_budget_bytes);
    if (!sizes) return sizes.take_error();
    plan.q_elems = sizes->q_elems;
    plan.k_elems = sizes->k_elems;
    plan.v_elems = sizes->v_elems;
    plan.concat_elems = sizes->concat_elems;
    const uint64_t row_block = uint64_t(Lq) * Lk;
    plan.chunk_bh = static_cast<uint32_t>(std::min<uint64_t>(uint64_t(B) * H, in.scores_capacity / row_block));
    if (plan.chunk_bh == 0) return make_error(ErrorCode::internal, "scores scratch is smaller than one head's scores");
    plan.scores_elems = uint64_t(plan.chunk_bh) * row_block;
    VKMHA_TRY(check_binding(limits, "query input", uint64_t(B) * Lq * E + in.offsets.query, 4));
    VKMHA_TRY(check_binding(limits, "output", uint64_t(B) * Lq * E + in.offsets.output, 4));
    if (o.need_weights)
        VKMHA_TRY(check_binding(limits, "attention weights output",
                                (o.average_weights ? uint64_t(B) : uint64_t(B) * H) * row_block + in.offsets.weights, 4));
    if (o.attn_mask != MaskKind::none)
        VKMHA_TRY(check_binding(limits, "attn_mask", (o.attn_mask_per_head ? uint64_t(B) * H : 1) * row_block,
                                o.attn_mask == MaskKind::additive ? 4 : 1));

    auto linear = [&](Stage stage, Slot x, Slot w, Slot b, Slot y, uint32_t M, uint32_t N, uint32_t K, uint32_t x_offset,
                      uint32_t y_offset, bool has_bias, bool head_major, uint32_t rows_per_batch) {
        Pass p;
        p.kernel = Kernel::linear;
        p.stage = stage;
        p.bindings = {x, w, has_bias ? b : Slot::dummy, y, Slot::dummy};
        p.write_mask = 1u << 3;
        LinearParams lp{M, N, K, x_offset, 0, 0, y_offset, has_bias ? 1u : 0u, head_major ? 1u : 0u, rows_per_batch, D,
                        N / D};
        set_push(p, lp);
        p.groups[0] = div_up(N, kTile);
        p.groups[1] = div_up(M, kTile);
        plan.passes.push_back(p);
    };
    linear(Stage::q_proj, Slot::query, Slot::wq, Slot::bq, Slot::q, B * Lq, E, E, in.offsets.query, 0, in.has_in_bias,
           true, Lq);
    linear(Stage::k_proj, Slot::key, Slot::wk, Slot::bk, Slot::k, B * Lk, G * D, c.kdim, in.offsets.key, 0,
           in.has_in_bias, true, Lk);
    linear(Stage::v_proj, Slot::value, Slot::wv, Slot::bv, Slot::v, B * Lk, G * D, c.vdim, in.offsets.value, 0,
           in.has_in_bias, true, Lk);

    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    for (uint32_t bh0 = 0; bh0 < B * H; bh0 += plan.chunk_bh) {
        const uint32_t count = std::min(plan.chunk_bh, B * H - bh0);
        Pass sc;
        sc.kernel = Kernel::scores;
        sc.stage = Stage::scores;
        sc.bindings = {Slot::q, Slot::k, Slot::scores,
                       o.attn_mask != MaskKind::none ? Slot::attn_mask : Slot::dummy,
                       o.key_padding != MaskKind::none ? Slot::key_padding_mask : Slot::dummy};
        sc.write_mask = 1u << 2;
        ScoresParams sp{};
        sp.B = B, sp.H = H, sp.G = G, sp.Lq = Lq, sp.Lk = Lk, sp.D = D, sp.bh_begin = bh0, sp.bh_count = count;
        sp.scale = scale;
        sp.attn_mask_mode = static_cast<uint32_t>(o.attn_mask);
        sp.attn_mask_offset = in.offsets.attn_mask;
        sp.attn_mask_bh_stride = o.attn_mask_per_head ? static_cast<uint32_t>(row_block) : 0;
        sp.kpm_mode = o.key_padding == MaskKind::none ? 0 : 1;
        sp.kpm_offset = in.offsets.key_padding_mask;
        sp.causal = o.causal ? 1 : 0;
        sp.causal_offset = static_cast<int32_t>(Lk) - static_cast<int32_t>(Lq);
        set_push(sc, sp);
        sc.groups[0] = div_up(Lk, kTile);
        sc.groups[1] = div_up(Lq, kTile);
        sc.groups[2] = count;
        plan.passes.push_back(sc);

        Pass sm;
        sm.kernel = Kernel::softmax;
        sm.stage = Stage::softmax;
        const bool copy_out = o.need_weights && !o.average_weights;
        sm.bindings = {Slot::scores, copy_out ? Slot::weights : Slot::dummy, Slot::dummy, Slot::dummy, Slot::dummy};
        sm.write_mask = copy_out ? 0b11u : 0b01u;
        const uint32_t rows = count * Lq;
        SoftmaxParams smp{rows, Lk, copy_out ? 1u : 0u,
                          static_cast<uint32_t>(uint64_t(bh0) * row_block + in.offsets.weights)};
        set_push(sm, smp);
        sm.groups[0] = std::min(rows, kSoftmaxGroups);
        sm.groups[1] = div_up(rows, kSoftmaxGroups);
        plan.passes.push_back(sm);

        if (o.need_weights && o.average_weights) {
            Pass av;
            av.kernel = Kernel::average_heads;
            av.stage = Stage::average_weights;
            av.bindings = {Slot::scores, Slot::weights, Slot::dummy, Slot::dummy, Slot::dummy};
            av.write_mask = 1u << 1;
            AverageHeadsParams ap{H, Lq, Lk, bh0, count, in.offsets.weights};
            set_push(av, ap);
            av.groups[0] = std::min(div_up(row_block, kAverageGroup), kSoftmaxGroups); // the kernel strides over the plane
            av.groups[1] = (bh0 + count - 1) / H - bh0 / H + 1;
            plan.passes.push_back(av);
        }

        Pass ap;
        ap.kernel = Kernel::apply;
        ap.stage = Stage::apply;
        ap.bindings = {Slot::scores, Slot::v, Slot::concat, Slot::dummy, Slot::dummy};
        ap.write_mask = 1u << 2;
        ApplyParams app{H, G, Lq, Lk, D, bh0, count};
        set_push(ap, app);
        ap.groups[0] = div_up(D, kTile);
        ap.groups[1] = div_up(Lq, kTile);
        ap.groups[2] = count;
        plan.passes.push_back(ap);
    }
    linear(Stage::out_proj, Slot::concat, Slot::wo, Slot::bo, Slot::output, B * Lq, E, E, 0, in.offsets.output,
           in.has_out_bias, false, Lq);

    // Barriers: a pass needs one when it touches a slot written since the last barrier (RAW/WAW) or writes a slot
    // read since the last barrier (WAR). The dummy slot is never really accessed.
    uint64_t written = 0, read = 0;
    for (Pass& p : plan.passes) {
        uint64_t reads = 0, writes = 0;
        for (uint32_t b = 0; b < kernel_binding_count(p.kernel); ++b) {
            if (p.bindings[b] == Slot::dummy) continue;
            uint64_t bit = 1ull << static_cast<uint32_t>(p.bindings[b]);
            ((p.write_mask >> b) & 1u ? writes : reads) |= bit;
        }
        // Kernels that read-modify-write their output (softmax in place, averaged weights) read it too.
        if (p.kernel == Kernel::softmax || p.kernel == Kernel::average_heads) reads |= writes;
        if (((reads | writes) & written) || (writes & read)) {
            p.barrier_before = true;
            written = 0;
            read = 0;
        }
        written |= writes;
        read |= reads;
        VKMHA_TRY(check_groups(limits, p));
    }
    return plan;
}

} // namespace vkmha
