// What the plain planner (plan_plain.cpp) and the KV-cache planner (plan_cached.cpp) share: the kernels' workgroup
// sizes, pass construction, the split-K choice, the passes both lay out the same way (projections, QK-norm/RoPE,
// strided copies, the split-K combine) and the barrier placement every plan ends with.
#pragma once

#include "attention_plan.h"
#include "kernel_table.h"
#include "push_constants.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>

namespace vkmha::plan_build {

// Grid divisors: the workgroup sizes of shaders/CMakeLists.txt's kernel table (kernel_workgroup_size).
constexpr uint32_t kTile = kernel_workgroup_size(Kernel::scores)[0]; // scores and apply: kTile x kTile
static_assert(kernel_workgroup_size(Kernel::scores) == std::array<uint32_t, 3>{kTile, kTile, 1} &&
              kernel_workgroup_size(Kernel::apply) == kernel_workgroup_size(Kernel::scores));
constexpr uint32_t kAverageGroup = kernel_workgroup_size(Kernel::average_heads)[0];
constexpr uint32_t kCombineGroup = kernel_workgroup_size(Kernel::combine)[0];
constexpr uint32_t kRopeGroup = kernel_workgroup_size(Kernel::rope)[0];
constexpr uint32_t kCopyGroup = kernel_workgroup_size(Kernel::copy)[0];

constexpr uint32_t kMaxGroups = 65535; // Vulkan's guaranteed minimum per grid dimension; larger grids go 2D
// Split-K: only for decode-like shapes, toward split_target_workgroups() workgroups, at most kMaxSplits key ranges.
constexpr uint32_t kSplitMaxLq = 16;
// The target where the device does not report its compute units: a 64-100 unit desktop GPU's worth.
constexpr uint32_t kSplitTargetWorkgroups = 256;
// Where it does: 4 workgroups per compute unit, so that each of an RDNA compute unit's 2 SIMDs (a GCN one's 4, an
// NVIDIA SM's 4 partitions) has work while the others wait on memory, and a Steam Deck (8 compute units) is not
// split 8x more than it can run at once. A starting point for the first GPU run (scripts/gpu-check.sh) to tune.
constexpr uint32_t kSplitWorkgroupsPerComputeUnit = 4;
uint32_t split_target_workgroups(const DeviceLimits&);
constexpr uint32_t kMaxSplits = 32;
constexpr uint64_t kPartialsBudgetBytes = 16ull << 20;
// The unfused path's score chunk is capped below the binding limit to bound scratch memory.
constexpr uint64_t kScoresBudgetBytes = 64ull << 20;

inline uint32_t div_up(uint64_t a, uint64_t b) { return static_cast<uint32_t>((a + b - 1) / b); }

template <typename Params> void set_push(Pass& pass, const Params& params) {
    static_assert(sizeof(Params) <= sizeof(pass.push));
    std::memcpy(pass.push.data(), &params, sizeof(Params));
    pass.push_bytes = sizeof(Params);
}

// A 1D grid of `groups` workgroups, folded into 2D where it exceeds the guaranteed per-dimension count (the kernels
// flatten the 2D id back).
void spread_groups(Pass&, uint32_t groups);

// `elems` may be saturated (checked_math.h): it is refused like any count over the limit. A binding that passes holds
// under 2^32 bytes (maxStorageBufferRange is a uint32), so element indices within it fit the kernels' 32 bits.
Status check_binding(const DeviceLimits&, const char* what, uint64_t elems, uint64_t elem_bytes);

// `bindings` in binding order; unused ones are BufferRole::dummy here and become a role the pass writes where the
// kernel declares them writable. fp16 models run each kernel's fp16 storage variant where it has one.
Pass& add_pass(AttentionPlan&, Precision, Kernel, Stage, std::initializer_list<BufferRole> bindings);

// Barriers: a pass needs one when it touches a buffer role written since the last barrier (RAW/WAW) or writes a role
// read since the last barrier (WAR). Also checks every grid against the device's limits.
Status place_barriers(AttentionPlan&, const DeviceLimits&);

// Empties a plan but keeps its pass storage, so per-frame plans allocate nothing in steady state.
void reset_plan(AttentionPlan&);

// One linear.comp pass: rows [0, M) of x (N x K weights w, bias b) -> y. out_mode 0 row-major, 1 head-major with
// rows_per_batch rows per batch, 2 head-major at the rows the map in BufferRole::records names from word map_offset.
struct Projection {
    Stage stage = Stage::q_proj;
    BufferRole x = BufferRole::dummy, w = BufferRole::dummy, bias = BufferRole::dummy,
               y = BufferRole::dummy; // bias: bound only with has_bias
    uint32_t M = 0, N = 0, K = 0;
    uint32_t x_offset = 0, y_offset = 0, w_offset = 0, b_offset = 0;
    bool has_bias = false;
    uint32_t out_mode = 0;
    uint32_t rows_per_batch = 0;
    uint32_t map_offset = 0;
};
void add_projection(AttentionPlan&, const PlanModel&, const Projection&);

// Q, K and V of self-attention in one dispatch over the packed [Wq; Wk; Wv], when the key and value widths are E.
bool can_pack_qkv(const PlanModel&, bool self_attention);
struct PackedQkv {
    uint32_t rows = 0; // token rows of the query input
    uint32_t x_offset = 0;
    BufferRole q = BufferRole::dummy; // Q's destination
    bool q_head_major = false;        // else row-major [rows, H * D]
    uint32_t q_rows_per_batch = 0;    // q_head_major
    BufferRole k = BufferRole::dummy, v = BufferRole::dummy;
    uint32_t kv_out_mode = 1;       // linear.comp's out_mode for K and V: 1 head-major, 2 at the mapped rows
    uint32_t kv_rows_per_batch = 0; // K/V rows of one batch (the cache capacity for mode 2)
    uint32_t map_offset = 0;        // mode 2: the row map in BufferRole::records
};
void add_packed_qkv(AttentionPlan&, const PlanModel&, const PackedQkv&);

// Where one QK-norm/RoPE pass finds its rows (rope.comp's row_layout) and their positions.
struct RopeRows {
    BufferRole data = BufferRole::dummy;
    uint32_t rows = 0, heads = 0;
    uint32_t row_layout = 0, rows_per_batch = 0, map_offset = 0, data_offset = 0;
    BufferRole positions = BufferRole::dummy; // bound: pos_mode 1, positions[pos_offset + m]
    uint32_t pos_offset = 0;
    int32_t pos_base = 0; // unbound: position = pos_base + m % pos_period
    uint32_t pos_period = UINT32_MAX;
    bool key = false; // K rows: the k_norm weights
};
inline bool needs_rope_pass(const AttentionConfig& c) { return c.qk_norm || c.rope.enabled(); }
// QK-norm and RoPE in place on Q or K rows, after their projection and before anything reads them.
void add_rope(AttentionPlan&, Precision, const AttentionConfig&, const RopeRows&);

// Copies a strided [B, H, L, D] tensor (Kernel::copy); a mapped destination takes its rows from BufferRole::records.
struct CopyRegion {
    BufferRole src = BufferRole::dummy, dst = BufferRole::dummy;
    uint32_t B = 1, H = 1, L = 1, D = 1;
    uint32_t src_offset = 0;
    TensorStrides src_strides;
    uint32_t dst_offset = 0;
    TensorStrides dst_strides;
    bool mapped = false;
    uint32_t map_offset = 0, rows_per_batch = 0;
};
void add_copy(AttentionPlan&, Precision, const CopyRegion&);

// Head-major [B, heads, L, D] strides, as vkmha's Q/K/V scratch and caches hold them.
inline TensorStrides head_major(uint32_t heads, uint32_t L, uint32_t D) { return {heads * L * D, L * D, D}; }

inline BufferRole sinks_role(const AttentionConfig& c) { return c.sinks ? BufferRole::model_table : BufferRole::dummy; }

// The fused kernel's key ranges per row. Decode-like work (few query rows per head) has too few workgroups to fill a
// device, so its keys are split across workgroups and merged exactly by the combine pass; llvmpipe also needs splits
// for very long key ranges (min_key_splits), whatever the shape.
struct KeySplitRequest {
    const AttentionTiling* tiling = nullptr; // the fused kernel's, for these rows
    uint32_t head_dim = 0;
    uint32_t keys = 0;          // the longest key range a row attends
    uint32_t rows_per_head = 0; // query rows per (batch or record, head)
    uint32_t workgroups = 0;    // the fused kernel's grid without splits
    uint64_t state_rows = 0;    // (head, row) pairs whose partial results each split writes
    uint64_t partials_capacity = 0;
    bool split_k = true; // the caller allows optional splits
};
struct KeySplit {
    uint32_t count = 1;
    uint32_t keys_per_split = UINT32_MAX; // count > 1: keys [s * keys_per_split, (s + 1) * keys_per_split)
};
// Refused (ErrorCode::unsupported) where the splits the device requires need more partial-result scratch than the
// session has: a caller can reach that with a legal request (a cached step of many tokens over long caches).
Result<KeySplit> choose_key_split(const KeySplitRequest&, const DeviceLimits&);

// The split-K merge: `split` partial records per (batch, head, row) into the concatenated heads (and the LSE).
// head_factors: 0, or 1 + the word of BufferRole::records where the head mask's [batch, H] factors start.
void add_combine(AttentionPlan&, const PlanModel&, uint32_t batch, uint32_t rows, uint32_t split, bool write_lse,
                 uint32_t head_factors = 0);

} // namespace vkmha::plan_build
