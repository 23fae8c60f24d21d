// Strided copy of [B, H, L, D] tensors: the caller's own Q, K and V into vkmha's head-major scratch (or a KV cache's
// rows), and the concatenated heads out to the caller's O, for the attention-only entries that skip the projections.
// Element (b, h, l, d) is read at src_offset + b * src_batch_stride + h * src_head_stride + l * src_row_stride + d and
// written at the same form of dst_*, or, with dst_mapped, at head-major row row_map[map_offset + b * L + l] (the
// cache's [sequences * capacity] rows, rows_per_batch = capacity), as linear.comp's out_mode 2.
//
// Specialization constants:
//   constant_id 0  local_size_x  default 64  (1D, any size >= 1)
// Dispatch: one invocation per element, n = B * H * L * D, groups = ceil(n / local_size_x):
//   (min(groups, 65535), ceil(groups / min(groups, 65535)), 1), as combine.comp.
//
// Storage variants (shaders/CMakeLists.txt): Y_F16 writes fp16 (into an fp16 model's scratch or cache), X_F16 reads
// fp16 (an fp16 model's concatenated heads); the caller's side is always fp32.
#version 450
#extension GL_GOOGLE_include_directive : require
#if defined(X_F16) || defined(Y_F16)
#extension GL_EXT_shader_16bit_storage : require
#endif
#ifdef X_F16
#define X_T float16_t
#else
#define X_T float
#endif
#ifdef Y_F16
#define Y_T float16_t
#else
#define Y_T float
#endif

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 0) in;

const uint WG = gl_WorkGroupSize.x;

layout(std430, set = 0, binding = 0) readonly buffer Source { X_T x_data[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Destination { Y_T y_data[]; };
layout(std430, set = 0, binding = 2) readonly buffer RowMap { uint row_map[]; }; // dst_mapped

layout(push_constant) uniform Params {
    uint B;
    uint H;
    uint L;
    uint D;
    uint src_offset;
    uint src_batch_stride;
    uint src_head_stride;
    uint src_row_stride;
    uint dst_offset;
    uint dst_batch_stride;
    uint dst_head_stride;
    uint dst_row_stride;
    uint dst_mapped;     // nonzero: the destination row comes from row_map (head-major, rows_per_batch rows)
    uint map_offset;
    uint rows_per_batch;
} p;

void main()
{
    const uint idx = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationID.x;
    if (idx >= p.B * p.H * p.L * p.D) {
        return;
    }
    const uint d = idx % p.D;
    const uint l = (idx / p.D) % p.L;
    const uint h = (idx / (p.D * p.L)) % p.H;
    const uint b = idx / (p.D * p.L * p.H);
    const uint src = p.src_offset + b * p.src_batch_stride + h * p.src_head_stride + l * p.src_row_stride + d;
    uint dst;
    if (p.dst_mapped != 0u) {
        const uint row = row_map[p.map_offset + b * p.L + l];
        dst = p.dst_offset + ((row / p.rows_per_batch * p.H + h) * p.rows_per_batch + row % p.rows_per_batch) * p.D + d;
    } else {
        dst = p.dst_offset + b * p.dst_batch_stride + h * p.dst_head_stride + l * p.dst_row_stride + d;
    }
    y_data[dst] = Y_T(float(x_data[src]));
}
