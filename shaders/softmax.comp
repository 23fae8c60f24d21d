// In-place row softmax over rows of length Lk (max-subtracted, fp32); a fully masked row becomes zeros.
// Optionally also copies the probabilities out (need_weights without averaging) in the same pass. With sinks, each
// head's sink logit joins its rows' denominators (gpt-oss), so rows sum to less than 1.
//
// Variants: the default reduces through shared memory only (core Vulkan 1.1, any subgroup size); with
// -DUSE_SUBGROUPS (softmax_subgroup, used where the device reports subgroup arithmetic in compute shaders) each
// subgroup reduces with subgroupMax/subgroupAdd first and one value per subgroup goes through shared memory.
// Neither assumes a subgroup size: the subgroup variant reads gl_NumSubgroups at run time (4 to 128 all work).
//
// Specialization constants:
//   constant_id 0  local_size_x  default 128  invocations per row (any size, need not be a power of two)
// Dispatch: one workgroup per row: (min(rows, 65535), ceil(rows / min(rows, 65535)), 1);
//   row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x, rows past `rows` do nothing.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/score_modifiers.glsl"
#ifdef USE_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x = 128, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 0) in;

const uint WG = gl_WorkGroupSize.x;

layout(std430, set = 0, binding = 0) buffer Scores { float s_data[]; }; // [rows, Lk], in place
// [rows, Lk] from out_offset; bound to any valid buffer when copy_out is 0.
layout(std430, set = 0, binding = 1) writeonly buffer WeightsOut { float weights_data[]; };
layout(std430, set = 0, binding = 2) readonly buffer Sinks { float sink_data[]; }; // [H]; read when sinks != 0
// The head mask (1.3): factors [B, H] (index b * H + h = bh) from word head_factors - 1; read when head_factors != 0.
layout(std430, set = 0, binding = 3) readonly buffer HeadFactors { float head_factor_data[]; };

layout(push_constant) uniform Params {
    uint rows;
    uint Lk;
    uint copy_out;   // nonzero: also write each probability to weights_data[out_offset + row * Lk + j]
    uint out_offset; // elements
    uint sinks;      // nonzero: row r (head (bh_begin + r / Lq) % H) adds its head's sink to the denominator
    uint H;
    uint Lq;
    uint bh_begin;
    uint head_factors; // nonzero: each probability times its head's factor (Hugging Face's head_mask)
} p;

shared float partial[WG];

#ifdef USE_SUBGROUPS
// One value per subgroup through shared memory, then every invocation folds those few values itself (at most
// WG / 4 with the smallest subgroups), so the result is uniform without a second pass. Callers must reach these
// uniformly (they contain barriers).
float reduce_max(float v)
{
    const float sub = subgroupMax(v);
    if (subgroupElect()) partial[gl_SubgroupID] = sub;
    barrier();
    float result = partial[0];
    for (uint s = 1u; s < gl_NumSubgroups; ++s) result = max(result, partial[s]);
    barrier(); // partial is reused by the next reduction
    return result;
}

float reduce_sum(float v)
{
    const float sub = subgroupAdd(v);
    if (subgroupElect()) partial[gl_SubgroupID] = sub;
    barrier();
    float result = partial[0];
    for (uint s = 1u; s < gl_NumSubgroups; ++s) result += partial[s];
    barrier();
    return result;
}
#else
// Tree reductions in shared memory rather than subgroup operations: core Vulkan 1.1 GLSL, and no
// assumption about the subgroup size. Halving with a rounded-up half handles any workgroup size.
// Callers must reach this uniformly (it contains barriers).
float reduce_max(float v)
{
    const uint tid = gl_LocalInvocationID.x;
    partial[tid] = v;
    barrier();
    for (uint live = WG; live > 1u;) {
        const uint half_count = (live + 1u) / 2u;
        if (tid + half_count < live) {
            partial[tid] = max(partial[tid], partial[tid + half_count]);
        }
        barrier();
        live = half_count;
    }
    const float result = partial[0];
    barrier(); // partial is reused by the next reduction
    return result;
}

float reduce_sum(float v)
{
    const uint tid = gl_LocalInvocationID.x;
    partial[tid] = v;
    barrier();
    for (uint live = WG; live > 1u;) {
        const uint half_count = (live + 1u) / 2u;
        if (tid + half_count < live) {
            partial[tid] += partial[tid + half_count];
        }
        barrier();
        live = half_count;
    }
    const float result = partial[0];
    barrier();
    return result;
}
#endif

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    // Uniform over the workgroup; guards memory access only, so every barrier is still reached.
    const bool row_valid = row < p.rows;
    const uint base = row * p.Lk;

    float local_max = neg_inf();
    if (row_valid) {
        for (uint j = tid; j < p.Lk; j += WG) {
            local_max = max(local_max, s_data[base + j]);
        }
    }
    float row_max = reduce_max(local_max);

    // exp(-inf - -inf) is NaN, so a row with no allowed key skips the sum and is written as zeros.
    const bool all_masked = row_max == neg_inf();
    const float sink = p.sinks != 0u && row_valid ? sink_data[(p.bh_begin + row / p.Lq) % p.H] : neg_inf();
    row_max = max(row_max, sink);
    float local_sum = 0.0;
    if (row_valid && !all_masked) {
        for (uint j = tid; j < p.Lk; j += WG) {
            local_sum += exp(s_data[base + j] - row_max);
        }
    }
    float row_sum = reduce_sum(local_sum);
    if (sink != neg_inf()) {
        row_sum += exp(sink - row_max);
    }

    if (row_valid) {
        const float factor = p.head_factors != 0u ? head_factor_data[p.head_factors - 1u + p.bh_begin + row / p.Lq] : 1.0;
        const float inv_sum = all_masked ? 0.0 : factor / row_sum;
        const uint out_base = p.out_offset + base;
        for (uint j = tid; j < p.Lk; j += WG) {
            const float prob = all_masked ? 0.0 : exp(s_data[base + j] - row_max) * inv_sum;
            s_data[base + j] = prob;
            if (p.copy_out != 0u) {
                weights_data[out_base + j] = prob;
            }
        }
    }
}
