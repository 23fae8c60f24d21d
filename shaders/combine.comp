// Split-K merge for attention.comp (decode shapes): the exact log-sum-exp combination of the per-split
// partial records into the normalized output (concatenated heads) and, optionally, the row's LSE. With sinks, the
// head's sink logit joins the denominator here, once (gpt-oss), and the LSE includes it.
//
// Specialization constants:
//   constant_id 0  local_size_x  default 64  (1D, any size >= 1)
// Dispatch: one invocation per output element, n = B * H * Lq * D, groups = ceil(n / local_size_x):
//   (min(groups, 65535), ceil(groups / min(groups, 65535)), 1); element
//   (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * local_size_x + local id; extra ones do nothing.
//   No grid-stride loop: lavapipe caps the loop iterations of one invocation (see shaders/README.md).
// No shared memory.
//
// Storage variant (shaders/CMakeLists.txt): ACT_F16 stores O as fp16 (GL_EXT_shader_16bit_storage), rounded once on
// store; partials and LSE stay fp32, as does all arithmetic.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef ACT_F16
#extension GL_EXT_shader_16bit_storage : require
#define ACT_T float16_t
#else
#define ACT_T float
#endif
#include "common/score_modifiers.glsl"

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 0) in;

const uint WG = gl_WorkGroupSize.x;

// Record r = ((s * B + b) * H + h) * Lq + i at element r * (D + 2): acc[0..D-1], m, l.
layout(std430, set = 0, binding = 0) readonly buffer Partials { float part_data[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputO { ACT_T o_data[]; };     // [B, Lq, H * D] from o_offset
layout(std430, set = 0, binding = 2) writeonly buffer OutputLse { float lse_data[]; }; // [B, H, Lq]
layout(std430, set = 0, binding = 3) readonly buffer Sinks { float sink_data[]; };     // [H]; read when sinks != 0
// The head mask (1.3): factors [B, H] from word head_factors - 1; read when head_factors != 0.
layout(std430, set = 0, binding = 4) readonly buffer HeadFactors { float head_factor_data[]; };

layout(push_constant) uniform Params {
    uint B;
    uint H;
    uint Lq;
    uint D;
    uint split_count;
    uint write_lse; // nonzero: LSE[(b * H + h) * Lq + i] = M + log(L)
    uint o_offset;  // elements: O's first element inside binding 1
    uint sinks;     // nonzero: fold each head's sink logit into its rows' denominators
    uint head_factors; // nonzero: scale each head's output by its factor (the LSE stays the head's own)
} p;

void main()
{
    const uint rows = p.B * p.H * p.Lq; // row = (b * H + h) * Lq + i, the LSE index too
    const uint total = rows * p.D;
    const uint record = p.D + 2u;
    const uint split_stride = rows * record;
    const uint idx = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationID.x;
    if (idx >= total) {
        return; // no barriers in this kernel
    }
    const uint row = idx / p.D;
    const uint d = idx % p.D;

    // Each output re-derives its row's M and L: split_count is small for the shapes that split, and
    // it saves a pass and a barrier.
    float m_all = neg_inf();
    for (uint s = 0u; s < p.split_count; ++s) {
        m_all = max(m_all, part_data[s * split_stride + row * record + p.D]);
    }
    float l_all = 0.0;
    float acc = 0.0;
    if (m_all != neg_inf()) { // every split fully masked: zeros, never NaN
        for (uint s = 0u; s < p.split_count; ++s) {
            const uint base = s * split_stride + row * record;
            const float m_s = part_data[base + p.D];
            // A fully masked split has m = -inf, l = 0, acc = 0: weight it 0 without evaluating exp(-inf).
            const float w = m_s == neg_inf() ? 0.0 : exp(m_s - m_all);
            l_all += part_data[base + p.D + 1u] * w;
            acc += part_data[base + d] * w;
        }
    }
    const uint b = row / (p.H * p.Lq);
    const uint h = (row / p.Lq) % p.H;
    const uint i = row % p.Lq;
    if (p.sinks != 0u) {
        acc *= fold_sink(m_all, l_all, sink_data[h]);
    }
    const float factor = p.head_factors != 0u ? head_factor_data[p.head_factors - 1u + b * p.H + h] : 1.0;
    const float out_value = l_all > 0.0 ? acc * factor / l_all : 0.0;
    const float lse = l_all > 0.0 ? m_all + log(l_all) : neg_inf();

    o_data[p.o_offset + (b * p.Lq + i) * (p.H * p.D) + h * p.D + d] = ACT_T(out_value);
    if (p.write_lse != 0u && d == 0u) {
        lse_data[row] = lse;
    }
}
