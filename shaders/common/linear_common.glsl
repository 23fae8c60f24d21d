// What the linear kernels share (linear.comp: workgroup tiles; linear_lanes.comp: lane tiles, for CPU
// implementations): types, specialization constants, bindings, the push block and the output layouts.
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
// Dispatch: (ceil(N / (local_size_x * COLS_PER_INVOCATION)), Y, Z) with Y * Z >= the row tiles
//            ceil(M / (local_size_y * ROWS_PER_INVOCATION)): tiles past the guaranteed 65535 per grid dimension fold
//            into z (linear_row_tile()); the extra workgroups of the last z layer store nothing.
//
// Storage variants (shaders/CMakeLists.txt): X_F16, W_F16 (weights and bias), Y_F16 make that binding fp16
// (GL_EXT_shader_16bit_storage); each value is converted to float on load and the sum is always fp32.
#ifndef VKMHA_COMMON_LINEAR_COMMON_GLSL
#define VKMHA_COMMON_LINEAR_COMMON_GLSL

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

// The row tile of this workgroup: y, folded over z when a projection has more row tiles than one grid dimension holds
// (the host's plan_common.cpp add_linear; the packed K/V outputs take no row offset, so one dispatch covers all rows).
uint linear_row_tile() { return gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y; }

#endif
