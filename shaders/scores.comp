// Attention scores S = (Q_h * scale) K_g^T, soft-capped, plus ALiBi and masks, for a chunk of (batch, head) pairs
// (unfused path; the need_weights recomputation of the fused path).
//
// Specialization constants:
//   constant_id 0  local_size_x  default 16  invocations along keys (j)
//   constant_id 1  local_size_y  default 16  invocations along queries (i)
//   constant_id 2  TILE_D        default 16  head-dim elements staged in shared memory per step
// Dispatch: (ceil(Lk / local_size_x), ceil(Lq / local_size_y), bh_count)
//
// Storage variant (shaders/CMakeLists.txt): ACT_F16 reads Q and K as fp16 (GL_EXT_shader_16bit_storage), converted
// to float on load (Q before scaling); S and all arithmetic stay fp32.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef ACT_F16
#extension GL_EXT_shader_16bit_storage : require
#define ACT_T float16_t
#else
#define ACT_T float
#endif
#include "common/score_modifiers.glsl"

layout(local_size_x = 16, local_size_y = 16, local_size_z = 1) in;
layout(local_size_x_id = 0, local_size_y_id = 1) in;

layout(constant_id = 2) const uint TILE_D = 16u;

const uint WG_X = gl_WorkGroupSize.x;
const uint WG_Y = gl_WorkGroupSize.y;

layout(std430, set = 0, binding = 0) readonly buffer InputQ { ACT_T q_data[]; };  // [B, H, Lq, D]
layout(std430, set = 0, binding = 1) readonly buffer InputK { ACT_T k_data[]; };  // [B, G, Lk, D]
layout(std430, set = 0, binding = 2) writeonly buffer OutputS { float s_data[]; }; // [bh_count, Lq, Lk]
// One binding, two views: the mask is bytes or floats depending on attn_mask_mode.
layout(std430, set = 0, binding = 3) readonly buffer MaskU { uint mask_u[]; };
layout(std430, set = 0, binding = 3) readonly buffer MaskF { float mask_f[]; };
layout(std430, set = 0, binding = 4) readonly buffer KeyPadding { uint kpm_u[]; }; // bytes [B, Lk]

layout(push_constant) uniform Params {
    uint B;
    uint H;
    uint G;
    uint Lq;
    uint Lk;
    uint D;
    uint bh_begin;
    uint bh_count;
    float scale;               // 1 / sqrt(D), applied to Q before the dot product
    uint attn_mask_mode;       // 0 none, 1 bytes (nonzero = masked), 2 additive floats
    uint attn_mask_offset;     // elements (bytes for mode 1, floats for mode 2)
    uint attn_mask_bh_stride;  // elements between (b, h) planes; 0 broadcasts one [Lq, Lk] mask
    uint kpm_mode;             // 0 none, 1 bytes [B, Lk] (nonzero = masked)
    uint kpm_offset;           // bytes
    uint causal;               // nonzero: mask j > i + causal_offset
    int causal_offset;         // Lk - Lq (bottom-right aligned)
    float softcap;             // > 0: s <- softcap * tanh(s / softcap) before the masks
    uint alibi;                // nonzero: s += alibi_slope(h, H) * (j - (i + causal_offset))
    uint window;               // > 0: mask j <= i + causal_offset - window
} p;

// Q rows are read as a broadcast; K is stored transposed (padded by one against bank conflicts
// on the transposing store) so consecutive invocations read consecutive words.
shared float q_tile[WG_Y][TILE_D];
shared float k_tile[TILE_D][WG_X + 1u];

void main()
{
    const uint tx = gl_LocalInvocationID.x;
    const uint ty = gl_LocalInvocationID.y;
    const uint tid = ty * WG_X + tx;
    const uint threads = WG_X * WG_Y;
    const uint i0 = gl_WorkGroupID.y * WG_Y;
    const uint j0 = gl_WorkGroupID.x * WG_X;
    const uint i = i0 + ty;
    const uint j = j0 + tx;

    // Uniform over the workgroup (local_size_z is 1), so it may guard loads around barriers.
    const uint z = gl_WorkGroupID.z;
    const bool bh_valid = z < p.bh_count;
    const uint bh = p.bh_begin + z;
    const uint b = bh / p.H;
    const uint h = bh % p.H;
    const uint g = h / (p.H / p.G);
    const uint q_base = bh * p.Lq * p.D;
    const uint k_base = (b * p.G + g) * p.Lk * p.D;

    float acc = 0.0;
    for (uint d0 = 0u; d0 < p.D; d0 += TILE_D) {
        for (uint idx = tid; idx < WG_Y * TILE_D; idx += threads) {
            const uint r = idx / TILE_D;
            const uint c = idx % TILE_D;
            const uint row = i0 + r;
            const uint d = d0 + c;
            float v = 0.0; // zero padding: partial tiles add nothing
            if (bh_valid && row < p.Lq && d < p.D) {
                v = float(q_data[q_base + row * p.D + d]) * p.scale;
            }
            q_tile[r][c] = v;
        }
        for (uint idx = tid; idx < WG_X * TILE_D; idx += threads) {
            const uint r = idx / TILE_D;
            const uint c = idx % TILE_D;
            const uint key = j0 + r;
            const uint d = d0 + c;
            float v = 0.0;
            if (bh_valid && key < p.Lk && d < p.D) {
                v = float(k_data[k_base + key * p.D + d]);
            }
            k_tile[c][r] = v;
        }
        barrier();

        for (uint dd = 0u; dd < TILE_D; ++dd) {
            acc += q_tile[ty][dd] * k_tile[dd][tx];
        }
        barrier(); // the next iteration overwrites the tiles
    }

    // Past the last barrier, so invocations outside the output may leave.
    if (!bh_valid || i >= p.Lq || j >= p.Lk) {
        return;
    }

    // Masked scores are forced to -inf at the end rather than accumulated, so no inf - inf or
    // NaN from the dot product can leak through a masked position.
    bool masked = false;
    const int position = int(i) + p.causal_offset;
    float s = soft_cap(acc, p.softcap);
    if (p.alibi != 0u) {
        s += alibi_slope(bh % p.H, p.H) * float(int(j) - position);
    }
    const uint mask_e = p.attn_mask_offset + bh * p.attn_mask_bh_stride + i * p.Lk + j;
    if (p.attn_mask_mode == 1u) {
        masked = mask_byte(mask_u[mask_e >> 2u], mask_e) != 0u;
    } else if (p.attn_mask_mode == 2u) {
        s += mask_f[mask_e];
    }
    if (p.kpm_mode == 1u) {
        const uint kpm_e = p.kpm_offset + b * p.Lk + j;
        masked = masked || mask_byte(kpm_u[kpm_e >> 2u], kpm_e) != 0u;
    }
    if (p.causal != 0u && int(j) > position) {
        masked = true;
    }
    if (p.window != 0u && int(j + p.window) <= position) {
        masked = true;
    }
    s_data[(z * p.Lq + i) * p.Lk + j] = masked ? neg_inf() : s;
}
