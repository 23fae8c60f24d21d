// QK-norm and rotary position embeddings (RoPE), in place on projected Q or K rows, before the attention kernels
// read them and before K's rows are final in a KV cache (a cache holds rotated keys, as every decoder model's).
// One invocation per (token row m, head h): an RMSNorm over the head dim (Qwen3, OLMo 2) with the model's weights,
// then the first R dims rotated in pairs at the token's position; dims past R pass through (partial rotary).
// Angles are float(position) * inv_freq[i] in fp32, as Hugging Face computes them, then reduced exactly enough
// (Cody-Waite, 2*pi in four parts) that cos and sin stay within ~2.4e-7 of the fp32 angle's up to angles of about
// 2e5 (positions up to ~200k at the highest frequency), degrading past that as the fp32 angle itself does.
//
// Specialization constants:
//   constant_id 0  local_size_x  default 64  (1D, any size >= 1)
// Dispatch: one invocation per (m, h), n = rows * heads, groups = ceil(n / local_size_x):
//   (min(groups, 65535), ceil(groups / min(groups, 65535)), 1), as combine.comp.
// No shared memory.
//
// Storage variant (shaders/CMakeLists.txt): ACT_F16 stores the rows as fp16; the norm and rotation are fp32 and the
// result is rounded once on store.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef ACT_F16
#extension GL_EXT_shader_16bit_storage : require
#define ACT_T float16_t
#else
#define ACT_T float
#endif

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 0) in;

const uint WG = gl_WorkGroupSize.x;

layout(std430, set = 0, binding = 0) buffer Rows { ACT_T x_data[]; };               // Q or K, layout below
layout(std430, set = 0, binding = 1) readonly buffer Table { float table[]; };      // the model's fp32 table
layout(std430, set = 0, binding = 2) readonly buffer Positions { int positions[]; }; // pos_mode 1
layout(std430, set = 0, binding = 3) readonly buffer RowMap { uint row_map[]; };     // row_layout 2

layout(push_constant) uniform Params {
    uint rows;             // M token rows
    uint heads;            // head rows per token row
    uint D;                // head dim
    uint R;                // rotary dims (even, <= D); 0: QK-norm only
    uint pairing;          // 1 neox (dims i, i + R/2), 2 gptj (dims 2i, 2i + 1)
    uint norm;             // nonzero: RMSNorm with weights table[norm_offset .. + D)
    float eps;             // the norm's epsilon
    float attention_factor; // cos and sin are multiplied by it (yarn)
    uint freq_offset;      // inv_freq[i] = table[freq_offset + i], i < R/2
    uint norm_offset;
    uint row_layout;       // 0 row-major [M, heads * D]; 1 head-major, row m = batch * rows_per_batch + l;
                           // 2 head-major at row row_map[map_offset + m] (cache rows), as linear.comp's out_mode
    uint rows_per_batch;
    uint map_offset;
    uint data_offset;      // elements: the first row's start inside binding 0
    uint pos_mode;         // 0: position = pos_base + m % pos_period; 1: positions[pos_offset + m]
    uint pos_offset;
    int pos_base;
    uint pos_period;
} p;

uint row_start(uint m, uint h)
{
    if (p.row_layout == 0u) {
        return p.data_offset + (m * p.heads + h) * p.D;
    }
    const uint row = p.row_layout == 2u ? row_map[p.map_offset + m] : m;
    const uint b = row / p.rows_per_batch;
    const uint l = row % p.rows_per_batch;
    return p.data_offset + ((b * p.heads + h) * p.rows_per_batch + l) * p.D;
}

// x - k * 2pi for the nearest k, with 2pi split so that each k * part is exact in fp32 for k < 2^15.
float reduce_angle(float x)
{
    precise float k = round(x * 0.15915494309189535);
    precise float r = x - k * 6.28125;
    r = r - k * 0.001934051513671875;
    r = r - k * 1.255422830581665e-06;
    r = r - k * 2.430840251310684e-10;
    return r;
}

void main()
{
    const uint idx = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationID.x;
    if (idx >= p.rows * p.heads) {
        return;
    }
    const uint m = idx / p.heads;
    const uint base = row_start(m, idx % p.heads);

    float inv_rms = 1.0;
    if (p.norm != 0u) {
        float sum_sq = 0.0;
        for (uint d = 0u; d < p.D; ++d) {
            const float v = float(x_data[base + d]);
            sum_sq += v * v;
        }
        inv_rms = inversesqrt(sum_sq / float(p.D) + p.eps);
    }
    const float normed_scale = inv_rms; // per element: value * inv_rms * weight
    if (p.norm != 0u) {
        for (uint d = p.R; d < p.D; ++d) {
            x_data[base + d] = ACT_T(float(x_data[base + d]) * normed_scale * table[p.norm_offset + d]);
        }
    }

    const int position = p.pos_mode == 1u ? positions[p.pos_offset + m] : p.pos_base + int(m % p.pos_period);
    const uint half_r = p.R / 2u;
    for (uint i = 0u; i < half_r; ++i) {
        const uint a = p.pairing == 1u ? i : 2u * i;
        const uint b = p.pairing == 1u ? i + half_r : 2u * i + 1u;
        float xa = float(x_data[base + a]);
        float xb = float(x_data[base + b]);
        if (p.norm != 0u) {
            xa *= normed_scale * table[p.norm_offset + a];
            xb *= normed_scale * table[p.norm_offset + b];
        }
        precise float angle = float(position) * table[p.freq_offset + i];
        const float r = reduce_angle(angle);
        const float c = cos(r) * p.attention_factor;
        const float s = sin(r) * p.attention_factor;
        x_data[base + a] = ACT_T(xa * c - xb * s);
        x_data[base + b] = ACT_T(xb * c + xa * s);
    }
}
