// Linear layer, workgroup tiles (GPUs): see common/linear_common.glsl for the bindings, push constants, dispatch and
// storage variants, which linear_lanes.comp (lane tiles, for CPU implementations) shares.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/linear_common.glsl"

// An invocation reads x_tile rows as a broadcast and w_tile along a row with consecutive
// invocations on consecutive words; w_tile is stored transposed (and padded by one so the
// transposing store does not hit one bank) to make that read conflict-free.
shared float x_tile[BLOCK_M][TILE_K];
shared float w_tile[TILE_K][BLOCK_N + 1u];

void main()
{
    const uint tx = gl_LocalInvocationID.x;
    const uint ty = gl_LocalInvocationID.y;
    const uint tid = ty * WG_X + tx;
    const uint threads = WG_X * WG_Y;
    const uint m0 = linear_row_tile() * BLOCK_M;
    const uint n0 = gl_WorkGroupID.x * BLOCK_N;

    float acc[ROWS_PER_INVOCATION][COLS_PER_INVOCATION];
    for (uint r = 0u; r < ROWS_PER_INVOCATION; ++r) {
        for (uint c = 0u; c < COLS_PER_INVOCATION; ++c) {
            acc[r][c] = 0.0;
        }
    }

    // K is uniform, so every invocation runs the same number of iterations and reaches each barrier.
    for (uint k0 = 0u; k0 < p.K; k0 += TILE_K) {
        for (uint idx = tid; idx < BLOCK_M * TILE_K; idx += threads) {
            const uint r = idx / TILE_K;
            const uint c = idx % TILE_K;
            const uint m = m0 + r;
            const uint k = k0 + c;
            float v = 0.0; // zero padding makes the partial tile contribute nothing
            if (m < p.M && k < p.K) {
                v = float(x_data[p.x_offset + m * p.K + k]);
            }
            x_tile[r][c] = v;
        }
        for (uint idx = tid; idx < BLOCK_N * TILE_K; idx += threads) {
            const uint r = idx / TILE_K;
            const uint c = idx % TILE_K;
            const uint n = n0 + r;
            const uint k = k0 + c;
            float v = 0.0;
            if (n < p.N && k < p.K) {
                v = float(w_data[p.w_offset + n * p.K + k]);
            }
            w_tile[c][r] = v;
        }
        barrier();

        for (uint kk = 0u; kk < TILE_K; ++kk) {
            for (uint r = 0u; r < ROWS_PER_INVOCATION; ++r) {
                const float a = x_tile[ty + r * WG_Y][kk];
                for (uint c = 0u; c < COLS_PER_INVOCATION; ++c) {
                    acc[r][c] += a * w_tile[kk][tx + c * WG_X];
                }
            }
        }
        barrier(); // the next iteration overwrites the tiles
    }

    for (uint r = 0u; r < ROWS_PER_INVOCATION; ++r) {
        const uint m = m0 + ty + r * WG_Y;
        for (uint c = 0u; c < COLS_PER_INVOCATION; ++c) {
            const uint n = n0 + tx + c * WG_X;
            if (m < p.M && n < p.N) {
                store(m, n, acc[r][c]);
            }
        }
    }
}
