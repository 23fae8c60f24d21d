// The attention plan: a pure description (no Vulkan calls) of the dispatches one forward pass needs for a given
// config, shape and options on a device with given limits. The recorder turns it into commands.
#pragma once

#include "attention_config.h"
#include "checked_math.h"
#include "prefill_item.h"
#include "result.h"
#include "shader_library.h"
#include "vulkan/device.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

namespace vkmha {

// Every buffer a pass can read or write. The first group is bound by the caller each frame, the second belongs
// to the model, the third to the session's frame slot.
enum class BufferRole : uint32_t {
    query,
    key,
    value,
    key_padding_mask,
    attn_mask,
    output,
    weights,
    wq,
    wk,
    wv,
    bq,
    bk,
    bv,
    wo,
    bo,
    q,
    k,
    v,
    scores,
    concat,
    lse,
    partials,
    cache_k,          // a KvCache's keys [sequences, G, capacity, D]
    cache_v,          // and values
    records,          // cached steps: sequence records (4 words each) and K/V row maps, written by the host
    position_ids,     // the caller's int32 RoPE positions
    key_position_ids, // and its keys' (attention-only records)
    model_table,      // the model's fp32 table: sinks, RoPE inv_freq, QK-norm weights (Model::table_offsets)
    sink,             // a small per-frame-slot buffer bound where a kernel's writable binding is unused
    dummy,            // a small buffer bound where a kernel's read-only binding is unused; never written
    count
};
constexpr uint32_t kBufferRoleCount = static_cast<uint32_t>(BufferRole::count);
const char* buffer_role_name(BufferRole);

// Passes are grouped into stages for timing and debug labels.
enum class Stage : uint32_t {
    q_proj,
    k_proj,
    v_proj,
    scores,
    softmax,
    apply,
    average_weights,
    out_proj,
    attention,
    combine,
    qkv_proj, // Q, K and V in one dispatch (self-attention with packed weights)
    rope,     // QK-norm and rotary positions on Q and K
    copy,     // the caller's own Q, K, V copied in and O out (attention-only records)
    count
};
constexpr uint32_t kStageCount = static_cast<uint32_t>(Stage::count);
const char* stage_name(Stage);

struct Pass {
    Kernel kernel = Kernel::linear;
    Variant variant = Variant::f32; // the kernel's SPIR-V variant: fp16 storage for fp16 models
    Stage stage = Stage::q_proj;
    std::array<BufferRole, kMaxBindings> bindings = all_dummy();
    uint32_t write_mask = 0;     // bit b set: binding b is declared writable (kernel_write_mask)
    bool barrier_before = false; // a write earlier in the pass list is read or overwritten here
    bool decode_tiling = false;  // Kernel::attention: the model's decode pipeline (4 rows per workgroup)
    std::array<uint32_t, kMaxPushBytes / 4> push{};
    uint32_t push_bytes = 0;
    uint32_t groups[3] = {1, 1, 1};

    static std::array<BufferRole, kMaxBindings> all_dummy() {
        std::array<BufferRole, kMaxBindings> b;
        b.fill(BufferRole::dummy);
        return b;
    }
};

struct AttentionPlan {
    std::vector<Pass> passes;
    // Scratch sizes in elements (q/k/v/concat: of the model's precision; scores: floats), per frame slot.
    uint64_t q_elems = 0, k_elems = 0, v_elems = 0, concat_elems = 0, scores_elems = 0;
    uint32_t chunk_bh = 0;    // (batch, head) pairs per scores chunk
    bool fused = false;       // the fused kernel runs (else the unfused stages)
    uint32_t split_count = 1; // fused: key ranges per row
};

// Scratch an upper-bound shape needs (for allocation at session creation), in elements.
struct ScratchSizes {
    uint64_t q_elems = 0, k_elems = 0, v_elems = 0, concat_elems = 0, scores_elems = 0;
    uint64_t lse_elems = 0, partials_elems = 0;
    uint32_t activation_bytes = 4; // per element of q, k, v and concat (the model's precision); the rest are floats
};
// scores_budget_bytes caps the unfused path's per-chunk score buffer (0: the default, 64 MiB); the device's
// maxStorageBufferRange caps it too.
// With fused_only, no score buffer is allocated: need_weights and the unfused path are then refused.
Result<ScratchSizes> attention_scratch(const AttentionConfig&, Precision, const AttentionShape& max_shape,
                                       const DeviceLimits&, const AttentionTiling&, uint64_t scores_budget_bytes = 0,
                                       bool fused_only = false);

// The fewest key ranges the fused kernel must split Lk into on this device: more than 1 only where the driver
// stops long-running invocations (llvmpipe), for very long key ranges.
uint32_t min_key_splits(const DeviceLimits&, const AttentionTiling&, uint32_t head_dim, uint32_t lk);

// Where each caller-bound buffer's data starts inside its binding, in elements (floats; bytes for the masks): the
// recorder binds at an offset rounded down to the device's alignment and passes the remainder here.
struct ExternalOffsets {
    uint32_t query = 0, key = 0, value = 0, key_padding_mask = 0, attn_mask = 0, output = 0, weights = 0;
    uint32_t position_ids = 0, key_position_ids = 0; // int32 elements
    bool operator==(const ExternalOffsets&) const = default;
};

// Where wk, wv (after wq in one buffer) and bk, bv (after bq) start, in elements of the model's precision.
struct WeightOffsets {
    uint32_t wk = 0, wv = 0, bk = 0, bv = 0;
};

// Where an attention-only record finds the caller's own tensors: element (b, h, l, d) at
// offset + b * batch + h * head + l * row + d, in floats (the offset is ExternalOffsets').
struct TensorStrides {
    uint32_t batch = 0, head = 0, row = 0;
    bool operator==(const TensorStrides&) const = default;
};
// Elements from a strided tensor's offset to one past its last element (0 for an empty one).
inline uint64_t strided_extent(const TensorStrides& s, uint32_t B, uint32_t H, uint32_t L, uint32_t D) {
    if (B == 0 || H == 0 || L == 0 || D == 0) return 0;
    // Three 32x32-bit products can sum past 2^64: saturate, so that the range checks refuse it.
    return saturating_add(saturating_add(uint64_t(B - 1) * s.batch, uint64_t(H - 1) * s.head),
                          saturating_add(uint64_t(L - 1) * s.row, D));
}
// Whether the B * H * L rows of D elements a strided tensor spans are disjoint: sorted by stride, each stride must
// clear the span of the dimensions below it (dimensions of size 1 do not count).
inline bool rows_disjoint(const TensorStrides& s, uint32_t B, uint32_t H, uint32_t L, uint32_t D) {
    std::array<std::pair<uint64_t, uint32_t>, 3> dims{{{s.batch, B}, {s.head, H}, {s.row, L}}};
    std::sort(dims.begin(), dims.end());
    uint64_t span = D;
    for (const auto& [stride, count] : dims) {
        if (count <= 1) continue;
        if (stride < span) return false;
        span = saturating_add(stride * (count - 1), span); // three 32x32-bit products may pass 2^64
    }
    return true;
}
struct OwnQkv {
    TensorStrides q, k, v, o;          // Q [B, H, Lq, D], K and V [B, G, Lk, D], O [B, H, Lq, D]
    bool has_key_position_ids = false; // BufferRole::key_position_ids holds the keys' RoPE positions [B, Lk]
    bool operator==(const OwnQkv&) const = default;
};

// The tiling for `rows` query rows per (batch, key/value head): the decode one when the regular row tile would be
// mostly padding.
inline bool use_decode_tiling(const AttentionTiling& tiling, bool has_decode_tiling, uint64_t rows) {
    return has_decode_tiling && rows * 4 <= tiling.rows;
}

// What every plan of a session knows about its model: the config, where the packed weights start, and the
// pipelines' tilings on this device. Fixed for the session's life.
struct PlanModel {
    AttentionConfig config;
    WeightOffsets weights;
    Precision precision = Precision::fp32; // the model's: picks the kernels' storage variants
    bool has_in_bias = false;
    bool has_out_bias = false;
    AttentionTiling tiling;         // the fused kernel's, from the shader library
    bool has_decode_tiling = false; // the model also has the decode pipeline, with decode_tiling
    AttentionTiling decode_tiling;
    LinearTiling linear_tiling; // the projections'

    // The fused kernel's tiling for `rows` query rows per (batch, key/value head).
    bool decode(uint64_t rows) const { return use_decode_tiling(tiling, has_decode_tiling, rows); }
    const AttentionTiling& fused_tiling(uint64_t rows) const { return decode(rows) ? decode_tiling : tiling; }
};

struct PlanInputs {
    PlanModel model;
    bool self_attention = false; // key and value are the query: Q, K and V may be projected in one dispatch
    AttentionShape shape;
    AttentionOptions options;
    bool has_position_ids = false; // BufferRole::position_ids holds the caller's RoPE positions [B, Lq]
    bool own_qkv = false;          // attention only: the caller's Q, K, V in the query/key/value slots, O out
    OwnQkv qkv;
    ExternalOffsets offsets;
    uint64_t scores_capacity = 0;     // floats of scores scratch the session allocated (0: fused only)
    uint64_t partials_capacity = 0;   // floats of split-K partials scratch
    uint64_t scores_budget_bytes = 0; // as given to attention_scratch
    // The head mask (1.3): 0 = none; else 1 + the word of BufferRole::records where its [B, H] factors start.
    uint32_t head_factors = 0;
};

// Checks the shape against the device's limits (binding ranges, group counts) and lays out the passes.
Result<AttentionPlan> plan_attention(const PlanInputs&, const DeviceLimits&);

// What every plan over a KV cache shares (kv_cache.h): the model, the cache's shape, the caller's bindings.
struct CachePlanBase {
    PlanModel model;
    bool self_attention = false; // key and value are the query
    uint32_t capacity = 0;       // the cache's slots per sequence
    uint32_t window = 0;
    bool key_padding = false; // a [sequences, capacity] byte mask by ring position is bound
    ExternalOffsets offsets;  // query, key, value, key_padding_mask, output
    // The head mask (1.3): 0 = none; else 1 + the word of BufferRole::records (as the pass binds it) where its [H]
    // factors start.
    uint32_t head_factors = 0;
};

// One step of a ragged batch over a KV cache: `tokens` new tokens packed sequence after sequence (query, key,
// value and output are [tokens, width]), `records` sequence records then the K/V row map (one cache row per
// token, from word kv_map_offset) in BufferRole::records. Projects Q, writes the new K/V into the cache, attends
// causally over each sequence's cached positions (split-K for decode), projects the output.
struct CachedStepInputs {
    CachePlanBase base;
    uint32_t tokens = 0;
    uint32_t records = 0;
    uint32_t max_new_tokens = 0; // the largest q_len of the records
    uint32_t max_keys = 0;       // the largest key range (positions attended) of the records
    uint32_t kv_map_offset = 0;
    uint32_t positions_offset = 0; // RoPE: each token's position (int32) in BufferRole::records from this word
    bool has_position_ids = false; // the caller's positions [tokens] in BufferRole::position_ids instead
    bool own_qkv = false;          // the caller's Q, K, V (batch strides unused): copied in, no projections
    OwnQkv qkv;
    uint64_t partials_capacity = 0;
    bool split_k = true;
};
Result<AttentionPlan> plan_cached_step(const CachedStepInputs&, const DeviceLimits&);
// The same into `plan`, reusing its storage (the recorder's per-frame path).
Status plan_cached_step(const CachedStepInputs&, const DeviceLimits&, AttentionPlan& plan);

// One bounded piece of a sliced prefill (prefill_job.h) of `tokens` tokens of one cached sequence. Its buffers:
// BufferRole::q (the prompt's Q, [H, tokens, D]), BufferRole::partials (per-row running state), BufferRole::concat
// ([tokens, E]), BufferRole::records (the Q row map and the K/V row map, tokens words each; for attend, the piece's one
// record).
struct PrefillItemInputs {
    CachePlanBase base;
    uint32_t tokens = 0;
    uint32_t first_position = 0;   // the cache position of the prompt's first token (RoPE's default)
    bool has_position_ids = false; // RoPE: the prompt's positions [tokens] in BufferRole::position_ids instead
    PrefillItem item;
};
Result<AttentionPlan> plan_prefill_item(const PrefillItemInputs&, const DeviceLimits&);
Status plan_prefill_item(const PrefillItemInputs&, const DeviceLimits&, AttentionPlan& plan);

// The most keys one dispatch of the fused kernel may cover on this device (UINT32_MAX: no limit): llvmpipe stops
// invocations that loop too long.
uint32_t max_keys_per_dispatch(const DeviceLimits&, const AttentionTiling&, uint32_t head_dim);

} // namespace vkmha
