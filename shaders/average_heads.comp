// Attention weights averaged over heads (need_weights + average_attn_weights), one bh chunk at a time.
// Adds the chunk's probabilities, divided by H, into [B, Lq, Lk]; chunks may start and end mid-batch.
//
// Specialization constants:
//   constant_id 0  local_size_x  default 256  (1D)
// Dispatch: (min(ceil(Lq * Lk / local_size_x), 65535),
//            (bh_begin + bh_count - 1) / H - bh_begin / H + 1, 1)
//   x may be capped at any count >= 1: invocations stride over the Lq * Lk plane.
//   y = the batches the chunk touches; b = bh_begin / H + gl_WorkGroupID.y.
// Chunks of one call must be dispatched in order with a compute->compute barrier between them:
// the chunk holding head 0 of batch b overwrites Avg[b], later chunks accumulate into it.
#version 450

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer InputP { float p_data[]; }; // [bh_count, Lq, Lk]
layout(std430, set = 0, binding = 1) buffer Average { float avg_data[]; };        // [B, Lq, Lk] from out_offset

layout(push_constant) uniform Params {
    uint H;
    uint Lq;
    uint Lk;
    uint bh_begin;
    uint bh_count;
    uint out_offset; // elements: Avg[b] starts at out_offset + b * Lq * Lk
} p;

void main()
{
    const uint b = p.bh_begin / p.H + gl_WorkGroupID.y;
    // The chunk's heads of batch b: [head_begin, head_end) in global bh numbering.
    const uint head_begin = max(p.bh_begin, b * p.H);
    const uint head_end = min(p.bh_begin + p.bh_count, (b + 1u) * p.H);
    if (head_begin >= head_end) {
        return; // no barriers in this kernel; also absorbs an oversized y grid
    }
    // Writing instead of accumulating for the first chunk of a batch spares the host a clear pass.
    const bool first_chunk_of_batch = b * p.H >= p.bh_begin;
    const float inv_heads = 1.0 / float(p.H);
    const uint plane = p.Lq * p.Lk;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;

    for (uint e = gl_GlobalInvocationID.x; e < plane; e += stride) {
        float sum = 0.0;
        for (uint bh = head_begin; bh < head_end; ++bh) {
            sum += p_data[(bh - p.bh_begin) * plane + e];
        }
        sum *= inv_heads;
        const uint dst = p.out_offset + b * plane + e;
        avg_data[dst] = first_chunk_of_batch ? sum : avg_data[dst] + sum;
    }
}
