// Linear layer, lane tiles (CPU implementations, see attention_lanes.comp): see common/linear_common.glsl for the
// bindings, push constants and dispatch, which linear.comp (workgroup tiles) shares. No shared memory:
// local_size_y must be 1; the workgroup computes ROWS_PER_INVOCATION rows, invocation tx the columns
// n0 + tx + c * local_size_x (c < COLS_PER_INVOCATION), 4 K elements per step as vec4 loads (scalar loads where K
// or an offset is not a multiple of 4), every product in registers. TILE_K is unused. Same dispatch formula.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/linear_common.glsl"

// X and W again as vec4s, for the steps where K and the offsets are multiples of 4.
layout(std430, set = 0, binding = 0) readonly buffer InputX4 { X4_T x4_data[]; };
layout(std430, set = 0, binding = 1) readonly buffer InputW4 { W4_T w4_data[]; };

const uint R = ROWS_PER_INVOCATION;
const uint C = COLS_PER_INVOCATION;

void main()
{
    const uint tx = gl_LocalInvocationID.x;
    const uint m0 = linear_row_tile() * R;
    const uint n0 = gl_WorkGroupID.x * WG_X * C;
    // Rows and columns past the problem read the last one (always in range) and are never stored.
    uint x_row[R];
    uint w_row[C];
    [[unroll]] for (uint r = 0u; r < R; ++r) {
        x_row[r] = p.x_offset + min(m0 + r, p.M - 1u) * p.K;
    }
    [[unroll]] for (uint c = 0u; c < C; ++c) {
        w_row[c] = p.w_offset + min(n0 + tx + c * WG_X, p.N - 1u) * p.K;
    }
    const bool vec4_loads = p.K % 4u == 0u && p.x_offset % 4u == 0u && p.w_offset % 4u == 0u;
    vec4 acc[R * C];
    [[unroll]] for (uint e = 0u; e < R * C; ++e) {
        acc[e] = vec4(0.0);
    }
    for (uint k = 0u; k < p.K; k += 4u) {
        vec4 x[R];
        vec4 w[C];
        if (vec4_loads) {
            [[unroll]] for (uint r = 0u; r < R; ++r) {
                x[r] = vec4(x4_data[(x_row[r] + k) / 4u]);
            }
            [[unroll]] for (uint c = 0u; c < C; ++c) {
                w[c] = vec4(w4_data[(w_row[c] + k) / 4u]);
            }
        } else {
            // Zero past K, so the last step's padding adds nothing.
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                const bool in_k = k + i < p.K;
                [[unroll]] for (uint r = 0u; r < R; ++r) {
                    x[r][i] = in_k ? float(x_data[x_row[r] + k + i]) : 0.0;
                }
                [[unroll]] for (uint c = 0u; c < C; ++c) {
                    w[c][i] = in_k ? float(w_data[w_row[c] + k + i]) : 0.0;
                }
            }
        }
        [[unroll]] for (uint r = 0u; r < R; ++r) {
            [[unroll]] for (uint c = 0u; c < C; ++c) {
                acc[r * C + c] = fma(x[r], w[c], acc[r * C + c]);
            }
        }
    }
    [[unroll]] for (uint r = 0u; r < R; ++r) {
        [[unroll]] for (uint c = 0u; c < C; ++c) {
            const uint m = m0 + r;
            const uint n = n0 + tx + c * WG_X;
            const vec4 a = acc[r * C + c];
            if (m < p.M && n < p.N) {
                store(m, n, (a.x + a.y) + (a.z + a.w));
            }
        }
    }
}
