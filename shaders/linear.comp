// Linear layer Y = X * W^T + b (torch.nn.Linear; W is [N, K] row-major): the Q/K/V/output projections.
// Writes Y row-major, or head-major [B, N / head_dim, rows_per_batch, head_dim] so Q/K/V come out ready
// for the attention kernels without a transpose pass, or head-major at the rows a row map names (out_mode 2: the
// KV cache's slots, where each packed token row lands in its own sequence's slot).
// Packed Q/K/V (q_cols > 0): W is [Wq; Wk; Wv] and one dispatch projects all three: columns [0, q_cols) go to Q at
// binding 3 by q_out_mode (0 row-major, 1 head-major with q_rows_per_batch rows), the next (N - q_cols) / 2 to K at
// binding 5 and the rest to V at binding 6, both by out_mode.
//
// Specialization constants:
//   constant_id 0  local_size_x         default 16  invocations along N
//   constant_id 1  local_size_y         default 16  invocations along M
//   constant_id 2  TILE_K               default 16  K elements staged in shared memory per step
//   constant_id 3  ROWS_PER_INVOCATION  default 1   register tile along M
//   constant_id 4  COLS_PER_INVOCATION  default 1   register tile along N
// Dispatch: (ceil(N / (local_size_x * COLS_PER_INVOCATION)),
//            ceil(M / (local_size_y * ROWS_PER_INVOCATION)), 1)
//
// Storage variants (shaders/CMakeLists.txt): X_F16, W_F16 (weights and bias), Y_F16 make that binding fp16
// (GL_EXT_shader_16bit_storage); each value is converted to float on load and the sum is always fp32.
//
// Lane tiles (-DLANE_TILES, the linear_lanes variants; CPU implementations, see attention.comp): no shared memory.
// local_size_y must be 1; the workgroup computes ROWS_PER_INVOCATION rows, invocation tx the columns
// n0 + tx + c * local_size_x (c < COLS_PER_INVOCATION), 4 K elements per step as vec4 loads (scalar loads where K
// or an offset is not a multiple of 4), every product in registers. TILE_K is unused. Same dispatch formula.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if defined(X_F16) || defined(W_F16) || defined(Y_F16)
#extension GL_EXT_shader_16bit_storage : require
#endif
#ifdef X_F16
#define X_T float16_t
#define X4_T f16vec4
#else
#define X_T float
#define X4_T vec4
#endif
#ifdef W_F16
#define W_T float16_t
#define W4_T f16vec4
#else
#define W_T float
#define W4_T vec4
#endif
#ifdef Y_F16
#define Y_T float16_t
#else
#define Y_T float
#endif

layout(local_size_x = 16, local_size_y = 16, local_size_z = 1) in;
layout(local_size_x_id = 0, local_size_y_id = 1) in;

layout(constant_id = 2) const uint TILE_K = 16u;
layout(constant_id = 3) const uint ROWS_PER_INVOCATION = 1u;
layout(constant_id = 4) const uint COLS_PER_INVOCATION = 1u;

const uint WG_X = gl_WorkGroupSize.x;
const uint WG_Y = gl_WorkGroupSize.y;
const uint BLOCK_M = WG_Y * ROWS_PER_INVOCATION;
const uint BLOCK_N = WG_X * COLS_PER_INVOCATION;

layout(std430, set = 0, binding = 0) readonly buffer InputX { X_T x_data[]; };
layout(std430, set = 0, binding = 1) readonly buffer InputW { W_T w_data[]; };
#ifdef LANE_TILES
layout(std430, set = 0, binding = 0) readonly buffer InputX4 { X4_T x4_data[]; };
layout(std430, set = 0, binding = 1) readonly buffer InputW4 { W4_T w4_data[]; };
#endif
layout(std430, set = 0, binding = 2) readonly buffer InputBias { W_T bias_data[]; };
layout(std430, set = 0, binding = 3) writeonly buffer OutputY { Y_T y_data[]; };
// out_mode 2: row m goes to head-major row row_map[map_offset + m] = batch * rows_per_batch + row.
layout(std430, set = 0, binding = 4) readonly buffer RowMap { uint row_map[]; };
layout(std430, set = 0, binding = 5) writeonly buffer OutputK { Y_T k_data[]; }; // packed Q/K/V only
layout(std430, set = 0, binding = 6) writeonly buffer OutputV { Y_T v_data[]; };

layout(push_constant) uniform Params {
    uint M;
    uint N;
    uint K;
    uint x_offset;
    uint w_offset;
    uint b_offset;
    uint y_offset;
    uint has_bias;
    uint out_mode;       // 0 row-major [M, N]; 1 head-major, row m = batch * rows_per_batch + l; 2 head-major, mapped
    uint rows_per_batch; // out_mode 1, 2: rows of one batch (L; the cache capacity for mode 2)
    uint head_dim;       // out_mode 1, 2: D
    uint num_out_heads;  // out_mode 1, 2: N / D
    uint map_offset;     // out_mode 2: row m's entry in row_map
    uint q_cols;           // > 0: packed Q/K/V; Q's columns (the rest split evenly between K and V)
    uint q_out_mode;       // packed: 0 row-major, 1 head-major
    uint q_rows_per_batch; // packed, q_out_mode 1
} p;

// Y[dst(row m, column n)] for a layout: mode 0 row-major with `width` columns, 1 head-major with `rows` rows per
// batch, 2 head-major at the mapped row.
uint destination(uint mode, uint m, uint n, uint width, uint rows, uint heads)
{
    if (mode == 0u) {
        return m * width + n;
    }
    const uint row = mode == 2u ? row_map[p.map_offset + m] : m;
    const uint b = row / rows;
    const uint l = row % rows;
    const uint h = n / p.head_dim;
    const uint d = n % p.head_dim;
    return ((b * heads + h) * rows + l) * p.head_dim + d;
}

// Writes Y(m, n) = v + bias where the output layout puts it.
void store(uint m, uint n, float v)
{
    if (p.has_bias != 0u) {
        v += float(bias_data[p.b_offset + n]);
    }
    if (p.q_cols == 0u) {
        y_data[p.y_offset + destination(p.out_mode, m, n, p.N, p.rows_per_batch, p.num_out_heads)] = Y_T(v);
        return;
    }
    const uint kv_cols = (p.N - p.q_cols) / 2u;
    if (n < p.q_cols) {
        y_data[p.y_offset + destination(p.q_out_mode, m, n, p.q_cols, p.q_rows_per_batch, p.q_cols / p.head_dim)] =
            Y_T(v);
    } else if (n < p.q_cols + kv_cols) {
        k_data[destination(p.out_mode, m, n - p.q_cols, kv_cols, p.rows_per_batch, p.num_out_heads)] = Y_T(v);
    } else {
        v_data[destination(p.out_mode, m, n - p.q_cols - kv_cols, kv_cols, p.rows_per_batch, p.num_out_heads)] = Y_T(v);
    }
}

#ifdef LANE_TILES
const uint R = ROWS_PER_INVOCATION;
const uint C = COLS_PER_INVOCATION;

void main()
{
    const uint tx = gl_LocalInvocationID.x;
    const uint m0 = gl_WorkGroupID.y * R;
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
#else
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
    const uint m0 = gl_WorkGroupID.y * BLOCK_M;
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
#endif
