// Attention output O_h = P_h V_g for a chunk of (batch, head) pairs, with head concatenation (unfused path).
// Writes straight into [B, Lq, H * D], the layout the output projection reads, so no concat pass is needed.
//
// Specialization constants:
//   constant_id 0  local_size_x  default 16  invocations along the head dim (d)
//   constant_id 1  local_size_y  default 16  invocations along queries (i)
//   constant_id 2  TILE_J        default 16  keys staged in shared memory per step
// Dispatch: (ceil(D / local_size_x), ceil(Lq / local_size_y), bh_count)
//
// Storage variant (shaders/CMakeLists.txt): ACT_F16 stores V and O as fp16 (GL_EXT_shader_16bit_storage); P stays
// fp32. Values are converted to float on load and O is rounded once on store; all arithmetic is fp32.
#version 450
#ifdef ACT_F16
#extension GL_EXT_shader_16bit_storage : require
#define ACT_T float16_t
#else
#define ACT_T float
#endif

layout(local_size_x = 16, local_size_y = 16, local_size_z = 1) in;
layout(local_size_x_id = 0, local_size_y_id = 1) in;

layout(constant_id = 2) const uint TILE_J = 16u;

const uint WG_X = gl_WorkGroupSize.x;
const uint WG_Y = gl_WorkGroupSize.y;

layout(std430, set = 0, binding = 0) readonly buffer InputP { float p_data[]; };  // [bh_count, Lq, Lk]
layout(std430, set = 0, binding = 1) readonly buffer InputV { ACT_T v_data[]; };  // [B, G, Lk, D]
layout(std430, set = 0, binding = 2) writeonly buffer OutputO { ACT_T o_data[]; }; // [B, Lq, H * D]

layout(push_constant) uniform Params {
    uint H;
    uint G;
    uint Lq;
    uint Lk;
    uint D;
    uint bh_begin;
    uint bh_count;
} p;

// P rows are read as a broadcast, V rows with consecutive invocations on consecutive words:
// both tiles keep their global layout and need no padding.
shared float p_tile[WG_Y][TILE_J];
shared float v_tile[TILE_J][WG_X];

void main()
{
    const uint tx = gl_LocalInvocationID.x;
    const uint ty = gl_LocalInvocationID.y;
    const uint tid = ty * WG_X + tx;
    const uint threads = WG_X * WG_Y;
    const uint d0 = gl_WorkGroupID.x * WG_X;
    const uint i0 = gl_WorkGroupID.y * WG_Y;
    const uint d = d0 + tx;
    const uint i = i0 + ty;

    // Uniform over the workgroup (local_size_z is 1), so it may guard loads around barriers.
    const uint z = gl_WorkGroupID.z;
    const bool bh_valid = z < p.bh_count;
    const uint bh = p.bh_begin + z;
    const uint b = bh / p.H;
    const uint h = bh % p.H;
    const uint g = h / (p.H / p.G);
    const uint p_base = z * p.Lq * p.Lk;
    const uint v_base = (b * p.G + g) * p.Lk * p.D;

    float acc = 0.0;
    for (uint j0 = 0u; j0 < p.Lk; j0 += TILE_J) {
        for (uint idx = tid; idx < WG_Y * TILE_J; idx += threads) {
            const uint r = idx / TILE_J;
            const uint c = idx % TILE_J;
            const uint row = i0 + r;
            const uint key = j0 + c;
            float v = 0.0; // zero padding: partial tiles add nothing
            if (bh_valid && row < p.Lq && key < p.Lk) {
                v = p_data[p_base + row * p.Lk + key];
            }
            p_tile[r][c] = v;
        }
        for (uint idx = tid; idx < TILE_J * WG_X; idx += threads) {
            const uint r = idx / WG_X;
            const uint c = idx % WG_X;
            const uint key = j0 + r;
            const uint col = d0 + c;
            float v = 0.0;
            if (bh_valid && key < p.Lk && col < p.D) {
                v = float(v_data[v_base + key * p.D + col]);
            }
            v_tile[r][c] = v;
        }
        barrier();

        for (uint jj = 0u; jj < TILE_J; ++jj) {
            acc += p_tile[ty][jj] * v_tile[jj][tx];
        }
        barrier(); // the next iteration overwrites the tiles
    }

    // Past the last barrier, so invocations outside the output may leave.
    if (!bh_valid || i >= p.Lq || d >= p.D) {
        return;
    }
    o_data[(b * p.Lq + i) * (p.H * p.D) + h * p.D + d] = ACT_T(acc);
}
