// The C++ mirrors of each kernel's push-constant block (shaders/*.comp, `layout(push_constant) uniform Params`).
// Every member is 4 bytes and the GLSL blocks use std430-like packing, so member i sits at byte 4 * i. Build them
// with designated initializers only: a positional initializer that swaps two zeros is a silent wrong answer on the
// GPU. Members that default to 0 mean "off" or "no offset"; the rest are the shape and must be named.
//
// Each block also has a table of {GLSL member name, C++ offset}, in the GLSL declaration order, so a test can compare
// it with the names and offsets the SPIR-V declares; the static_asserts below check that the table covers every byte
// of the struct in order, so a member added on one side only fails the build.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vkmha {

struct LinearParams {
    uint32_t M, N, K;
    uint32_t x_offset = 0, w_offset = 0, b_offset = 0, y_offset = 0;
    uint32_t has_bias = 0;
    uint32_t out_mode = 0; // 0 row-major [M, N]; 1 head-major; 2 head-major at the rows of a row map
    uint32_t rows_per_batch = 0, head_dim = 0, num_out_heads = 0, map_offset = 0;
    uint32_t q_cols = 0, q_out_mode = 0, q_rows_per_batch = 0; // packed Q/K/V (0: one output)
};
struct ScoresParams {
    uint32_t B, H, G, Lq, Lk, D, bh_begin, bh_count;
    float scale;
    uint32_t attn_mask_mode = 0, attn_mask_offset = 0, attn_mask_bh_stride = 0, kpm_mode = 0, kpm_offset = 0;
    uint32_t causal = 0;
    int32_t causal_offset = 0;
    float softcap = 0.0f;
    uint32_t alibi = 0, window = 0;
};
struct SoftmaxParams {
    uint32_t rows, Lk;
    uint32_t copy_out = 0, out_offset = 0;
    uint32_t sinks = 0, H, Lq, bh_begin;
    uint32_t head_factors = 0; // 0: no head mask; else 1 + its first word in the factors binding
};
struct ApplyParams {
    uint32_t H, G, Lq, Lk, D, bh_begin, bh_count;
};
struct AverageHeadsParams {
    uint32_t H, Lq, Lk, bh_begin, bh_count;
    uint32_t out_offset = 0;
};
struct AttentionParams {
    uint32_t B, H, G, Lq, Lk, D;
    float scale;
    uint32_t attn_mask_mode = 0, attn_mask_offset = 0, attn_mask_bh_stride = 0;
    uint32_t kpm_mode = 0, kpm_offset = 0, kpm_stride = 0;
    uint32_t causal = 0;
    int32_t causal_offset = 0;
    uint32_t split_count, keys_per_split;
    uint32_t write_lse = 0, o_offset = 0;
    uint32_t cache_mode = 0, capacity = 0, window = 0;
    uint32_t key_lo, key_hi; // [0, UINT32_MAX) for every key: no default, so a missed range cannot hide
    uint32_t state_mode = 0, q_row_major = 0;
    float softcap = 0.0f;
    uint32_t alibi = 0, sinks = 0;
    uint32_t head_factors = 0; // 0: no head mask; else 1 + its first word in binding 9
};
struct CombineParams {
    uint32_t B, H, Lq, D, split_count;
    uint32_t write_lse = 0, o_offset = 0, sinks = 0;
    uint32_t head_factors = 0;
};
struct CopyParams {
    uint32_t B, H, L, D;
    uint32_t src_offset = 0, src_batch_stride, src_head_stride, src_row_stride;
    uint32_t dst_offset = 0, dst_batch_stride, dst_head_stride, dst_row_stride;
    uint32_t dst_mapped = 0, map_offset = 0, rows_per_batch = 0;
};
struct RopeParams {
    uint32_t rows, heads, D;
    uint32_t R = 0, pairing = 0, norm = 0; // R 0: QK-norm only
    float eps, attention_factor;
    uint32_t freq_offset = 0, norm_offset = 0;
    uint32_t row_layout = 0, rows_per_batch = 0, map_offset = 0, data_offset = 0;
    uint32_t pos_mode = 0, pos_offset = 0;
    int32_t pos_base = 0;
    uint32_t pos_period;
};
struct ProbsFromLseParams {
    uint32_t rows, Lk;
    uint32_t copy_out = 0, out_offset = 0;
    uint32_t bh_begin, Lq;
    uint32_t head_factors = 0;
};

// One member of a push-constant block: its name in the GLSL and its byte offset in the C++ mirror.
struct PushField {
    std::string_view name;
    uint32_t offset;
};

// The C++ member names are the GLSL ones, so one macro writes both halves of a row.
#define VKMHA_PUSH_MEMBER(Block, member)                                                                               \
    PushField { #member, static_cast < uint32_t>(offsetof(Block, member)) }

inline constexpr std::array kLinearParamsLayout{
    VKMHA_PUSH_MEMBER(LinearParams, M),          VKMHA_PUSH_MEMBER(LinearParams, N),
    VKMHA_PUSH_MEMBER(LinearParams, K),          VKMHA_PUSH_MEMBER(LinearParams, x_offset),
    VKMHA_PUSH_MEMBER(LinearParams, w_offset),   VKMHA_PUSH_MEMBER(LinearParams, b_offset),
    VKMHA_PUSH_MEMBER(LinearParams, y_offset),   VKMHA_PUSH_MEMBER(LinearParams, has_bias),
    VKMHA_PUSH_MEMBER(LinearParams, out_mode),   VKMHA_PUSH_MEMBER(LinearParams, rows_per_batch),
    VKMHA_PUSH_MEMBER(LinearParams, head_dim),   VKMHA_PUSH_MEMBER(LinearParams, num_out_heads),
    VKMHA_PUSH_MEMBER(LinearParams, map_offset), VKMHA_PUSH_MEMBER(LinearParams, q_cols),
    VKMHA_PUSH_MEMBER(LinearParams, q_out_mode), VKMHA_PUSH_MEMBER(LinearParams, q_rows_per_batch),
};
inline constexpr std::array kScoresParamsLayout{
    VKMHA_PUSH_MEMBER(ScoresParams, B),
    VKMHA_PUSH_MEMBER(ScoresParams, H),
    VKMHA_PUSH_MEMBER(ScoresParams, G),
    VKMHA_PUSH_MEMBER(ScoresParams, Lq),
    VKMHA_PUSH_MEMBER(ScoresParams, Lk),
    VKMHA_PUSH_MEMBER(ScoresParams, D),
    VKMHA_PUSH_MEMBER(ScoresParams, bh_begin),
    VKMHA_PUSH_MEMBER(ScoresParams, bh_count),
    VKMHA_PUSH_MEMBER(ScoresParams, scale),
    VKMHA_PUSH_MEMBER(ScoresParams, attn_mask_mode),
    VKMHA_PUSH_MEMBER(ScoresParams, attn_mask_offset),
    VKMHA_PUSH_MEMBER(ScoresParams, attn_mask_bh_stride),
    VKMHA_PUSH_MEMBER(ScoresParams, kpm_mode),
    VKMHA_PUSH_MEMBER(ScoresParams, kpm_offset),
    VKMHA_PUSH_MEMBER(ScoresParams, causal),
    VKMHA_PUSH_MEMBER(ScoresParams, causal_offset),
    VKMHA_PUSH_MEMBER(ScoresParams, softcap),
    VKMHA_PUSH_MEMBER(ScoresParams, alibi),
    VKMHA_PUSH_MEMBER(ScoresParams, window),
};
inline constexpr std::array kSoftmaxParamsLayout{
    VKMHA_PUSH_MEMBER(SoftmaxParams, rows),         VKMHA_PUSH_MEMBER(SoftmaxParams, Lk),
    VKMHA_PUSH_MEMBER(SoftmaxParams, copy_out),     VKMHA_PUSH_MEMBER(SoftmaxParams, out_offset),
    VKMHA_PUSH_MEMBER(SoftmaxParams, sinks),        VKMHA_PUSH_MEMBER(SoftmaxParams, H),
    VKMHA_PUSH_MEMBER(SoftmaxParams, Lq),           VKMHA_PUSH_MEMBER(SoftmaxParams, bh_begin),
    VKMHA_PUSH_MEMBER(SoftmaxParams, head_factors),
};
inline constexpr std::array kApplyParamsLayout{
    VKMHA_PUSH_MEMBER(ApplyParams, H),        VKMHA_PUSH_MEMBER(ApplyParams, G),
    VKMHA_PUSH_MEMBER(ApplyParams, Lq),       VKMHA_PUSH_MEMBER(ApplyParams, Lk),
    VKMHA_PUSH_MEMBER(ApplyParams, D),        VKMHA_PUSH_MEMBER(ApplyParams, bh_begin),
    VKMHA_PUSH_MEMBER(ApplyParams, bh_count),
};
inline constexpr std::array kAverageHeadsParamsLayout{
    VKMHA_PUSH_MEMBER(AverageHeadsParams, H),        VKMHA_PUSH_MEMBER(AverageHeadsParams, Lq),
    VKMHA_PUSH_MEMBER(AverageHeadsParams, Lk),       VKMHA_PUSH_MEMBER(AverageHeadsParams, bh_begin),
    VKMHA_PUSH_MEMBER(AverageHeadsParams, bh_count), VKMHA_PUSH_MEMBER(AverageHeadsParams, out_offset),
};
inline constexpr std::array kAttentionParamsLayout{
    VKMHA_PUSH_MEMBER(AttentionParams, B),
    VKMHA_PUSH_MEMBER(AttentionParams, H),
    VKMHA_PUSH_MEMBER(AttentionParams, G),
    VKMHA_PUSH_MEMBER(AttentionParams, Lq),
    VKMHA_PUSH_MEMBER(AttentionParams, Lk),
    VKMHA_PUSH_MEMBER(AttentionParams, D),
    VKMHA_PUSH_MEMBER(AttentionParams, scale),
    VKMHA_PUSH_MEMBER(AttentionParams, attn_mask_mode),
    VKMHA_PUSH_MEMBER(AttentionParams, attn_mask_offset),
    VKMHA_PUSH_MEMBER(AttentionParams, attn_mask_bh_stride),
    VKMHA_PUSH_MEMBER(AttentionParams, kpm_mode),
    VKMHA_PUSH_MEMBER(AttentionParams, kpm_offset),
    VKMHA_PUSH_MEMBER(AttentionParams, kpm_stride),
    VKMHA_PUSH_MEMBER(AttentionParams, causal),
    VKMHA_PUSH_MEMBER(AttentionParams, causal_offset),
    VKMHA_PUSH_MEMBER(AttentionParams, split_count),
    VKMHA_PUSH_MEMBER(AttentionParams, keys_per_split),
    VKMHA_PUSH_MEMBER(AttentionParams, write_lse),
    VKMHA_PUSH_MEMBER(AttentionParams, o_offset),
    VKMHA_PUSH_MEMBER(AttentionParams, cache_mode),
    VKMHA_PUSH_MEMBER(AttentionParams, capacity),
    VKMHA_PUSH_MEMBER(AttentionParams, window),
    VKMHA_PUSH_MEMBER(AttentionParams, key_lo),
    VKMHA_PUSH_MEMBER(AttentionParams, key_hi),
    VKMHA_PUSH_MEMBER(AttentionParams, state_mode),
    VKMHA_PUSH_MEMBER(AttentionParams, q_row_major),
    VKMHA_PUSH_MEMBER(AttentionParams, softcap),
    VKMHA_PUSH_MEMBER(AttentionParams, alibi),
    VKMHA_PUSH_MEMBER(AttentionParams, sinks),
    VKMHA_PUSH_MEMBER(AttentionParams, head_factors),
};
inline constexpr std::array kCombineParamsLayout{
    VKMHA_PUSH_MEMBER(CombineParams, B),
    VKMHA_PUSH_MEMBER(CombineParams, H),
    VKMHA_PUSH_MEMBER(CombineParams, Lq),
    VKMHA_PUSH_MEMBER(CombineParams, D),
    VKMHA_PUSH_MEMBER(CombineParams, split_count),
    VKMHA_PUSH_MEMBER(CombineParams, write_lse),
    VKMHA_PUSH_MEMBER(CombineParams, o_offset),
    VKMHA_PUSH_MEMBER(CombineParams, sinks),
    VKMHA_PUSH_MEMBER(CombineParams, head_factors),
};
inline constexpr std::array kCopyParamsLayout{
    VKMHA_PUSH_MEMBER(CopyParams, B),
    VKMHA_PUSH_MEMBER(CopyParams, H),
    VKMHA_PUSH_MEMBER(CopyParams, L),
    VKMHA_PUSH_MEMBER(CopyParams, D),
    VKMHA_PUSH_MEMBER(CopyParams, src_offset),
    VKMHA_PUSH_MEMBER(CopyParams, src_batch_stride),
    VKMHA_PUSH_MEMBER(CopyParams, src_head_stride),
    VKMHA_PUSH_MEMBER(CopyParams, src_row_stride),
    VKMHA_PUSH_MEMBER(CopyParams, dst_offset),
    VKMHA_PUSH_MEMBER(CopyParams, dst_batch_stride),
    VKMHA_PUSH_MEMBER(CopyParams, dst_head_stride),
    VKMHA_PUSH_MEMBER(CopyParams, dst_row_stride),
    VKMHA_PUSH_MEMBER(CopyParams, dst_mapped),
    VKMHA_PUSH_MEMBER(CopyParams, map_offset),
    VKMHA_PUSH_MEMBER(CopyParams, rows_per_batch),
};
inline constexpr std::array kRopeParamsLayout{
    VKMHA_PUSH_MEMBER(RopeParams, rows),        VKMHA_PUSH_MEMBER(RopeParams, heads),
    VKMHA_PUSH_MEMBER(RopeParams, D),           VKMHA_PUSH_MEMBER(RopeParams, R),
    VKMHA_PUSH_MEMBER(RopeParams, pairing),     VKMHA_PUSH_MEMBER(RopeParams, norm),
    VKMHA_PUSH_MEMBER(RopeParams, eps),         VKMHA_PUSH_MEMBER(RopeParams, attention_factor),
    VKMHA_PUSH_MEMBER(RopeParams, freq_offset), VKMHA_PUSH_MEMBER(RopeParams, norm_offset),
    VKMHA_PUSH_MEMBER(RopeParams, row_layout),  VKMHA_PUSH_MEMBER(RopeParams, rows_per_batch),
    VKMHA_PUSH_MEMBER(RopeParams, map_offset),  VKMHA_PUSH_MEMBER(RopeParams, data_offset),
    VKMHA_PUSH_MEMBER(RopeParams, pos_mode),    VKMHA_PUSH_MEMBER(RopeParams, pos_offset),
    VKMHA_PUSH_MEMBER(RopeParams, pos_base),    VKMHA_PUSH_MEMBER(RopeParams, pos_period),
};
inline constexpr std::array kProbsFromLseParamsLayout{
    VKMHA_PUSH_MEMBER(ProbsFromLseParams, rows),         VKMHA_PUSH_MEMBER(ProbsFromLseParams, Lk),
    VKMHA_PUSH_MEMBER(ProbsFromLseParams, copy_out),     VKMHA_PUSH_MEMBER(ProbsFromLseParams, out_offset),
    VKMHA_PUSH_MEMBER(ProbsFromLseParams, bh_begin),     VKMHA_PUSH_MEMBER(ProbsFromLseParams, Lq),
    VKMHA_PUSH_MEMBER(ProbsFromLseParams, head_factors),
};

#undef VKMHA_PUSH_MEMBER

// Member i of a table at byte 4 * i, and the struct exactly as large as the table: with 4-byte members only, that
// is every member of the struct, each at the offset its GLSL declaration order gives it.
template <typename Block, size_t N> consteval bool packed_in_glsl_order(const std::array<PushField, N>& layout) {
    if (sizeof(Block) != 4 * N) return false;
    for (size_t i = 0; i < N; ++i)
        if (layout[i].offset != 4 * i) return false;
    return true;
}

static_assert(packed_in_glsl_order<LinearParams>(kLinearParamsLayout));
static_assert(packed_in_glsl_order<ScoresParams>(kScoresParamsLayout));
static_assert(packed_in_glsl_order<SoftmaxParams>(kSoftmaxParamsLayout));
static_assert(packed_in_glsl_order<ApplyParams>(kApplyParamsLayout));
static_assert(packed_in_glsl_order<AverageHeadsParams>(kAverageHeadsParamsLayout));
static_assert(packed_in_glsl_order<AttentionParams>(kAttentionParamsLayout));
static_assert(packed_in_glsl_order<CombineParams>(kCombineParamsLayout));
static_assert(packed_in_glsl_order<CopyParams>(kCopyParamsLayout));
static_assert(packed_in_glsl_order<RopeParams>(kRopeParamsLayout));
static_assert(packed_in_glsl_order<ProbsFromLseParams>(kProbsFromLseParamsLayout));

} // namespace vkmha
