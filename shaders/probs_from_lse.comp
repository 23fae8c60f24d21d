// need_weights on the fused path: turns a chunk of scores (as scores.comp writes them: scaled, masked,
// -inf when masked) into probabilities p = exp(s - lse) in place, using the LSE that attention.comp
// wrote, so no max/sum pass over the scores is needed. Optionally copies them out like softmax.comp.
//
// Specialization constants:
//   constant_id 0  local_size_x  default 128  invocations per row (any size >= 1)
// Dispatch: one workgroup per row: (min(rows, 65535), ceil(rows / min(rows, 65535)), 1);
//   row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x, rows past `rows` do nothing.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/mask.glsl"

layout(local_size_x = 128, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 0) in;

const uint WG = gl_WorkGroupSize.x;

layout(std430, set = 0, binding = 0) buffer Scores { float s_data[]; }; // chunk-local [rows, Lk], in place
// [rows, Lk] from out_offset; bound to any valid buffer when copy_out is 0.
layout(std430, set = 0, binding = 1) writeonly buffer WeightsOut { float weights_data[]; };
layout(std430, set = 0, binding = 2) readonly buffer InputLse { float lse_data[]; }; // [B, H, Lq]
// The head mask (1.3): factors [B, H] (index bh) from word head_factors - 1; read when head_factors != 0.
layout(std430, set = 0, binding = 3) readonly buffer HeadFactors { float head_factor_data[]; };

layout(push_constant) uniform Params {
    uint rows;       // bh_count * Lq
    uint Lk;
    uint copy_out;   // nonzero: also write each probability to weights_data[out_offset + row * Lk + j]
    uint out_offset; // elements
    uint bh_begin;   // row r of the chunk is bh = bh_begin + r / Lq, query i = r % Lq
    uint Lq;
    uint head_factors; // nonzero: each probability times its head's factor (Hugging Face's head_mask)
} p;

void main()
{
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) {
        return; // no barriers in this kernel
    }
    const uint bh = p.bh_begin + row / p.Lq;
    const float lse = lse_data[bh * p.Lq + row % p.Lq];
    // lse = -inf marks a row with no allowed key: zeros, as softmax.comp writes them.
    const float factor = p.head_factors != 0u ? head_factor_data[p.head_factors - 1u + bh] : 1.0;
    const bool all_masked = lse == neg_inf() || factor == 0.0;
    const uint base = row * p.Lk;
    const uint out_base = p.out_offset + base;
    for (uint j = gl_LocalInvocationID.x; j < p.Lk; j += WG) {
        const float s = s_data[base + j];
        const float prob = (all_masked || s == neg_inf()) ? 0.0 : exp(s - lse) * factor;
        s_data[base + j] = prob;
        if (p.copy_out != 0u) {
            weights_data[out_base + j] = prob;
        }
    }
}
