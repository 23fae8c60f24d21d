// What the fused attention kernels share (attention.comp: workgroup tiles; attention_lanes.comp: lane tiles, for
// CPU implementations), like ggml's flash_attn_base.glsl: specialization constants, bindings, the push block, the
// sequence record, the masks and score modifiers, and which rows and keys a workgroup attends. Both kernels take the
// same bindings, push constants and dispatch and write the same outputs; the host picks one by
// AttentionTiling::lanes. Flash-attention style: scores, masks, online softmax and P·V in one pass over the
// key/value tiles, written straight into the concatenated-heads layout; no Lq x Lk buffer in device memory.
// Split-K (decode shapes): workgroup z = s handles one key range and writes unnormalized partial records
// that combine.comp merges.
//
// KV-cache mode (cache_mode 1): workgroup y = r * G + g serves sequence record r of a ragged batch (binding 9 holds
// the records, SequenceRecord below). Q and O are packed over the batch's tokens (B = 1 layout, Lq = tokens), K and V
// are the cache [sequences, G, capacity, D], key position j lives in slot j % capacity (a ring in sliding-window
// mode), the pass is causal with offset k_len - q_len per sequence, and the key padding mask is
// [sequences, capacity] bytes by slot.
// State mode (frame-budget slicing): each dispatch runs one key range [key_lo, key_hi) of every row and keeps
// (acc, m, l) in binding 7 between dispatches, records laid out as split 0's; combine.comp normalizes at the end.
//
// Rows: a workgroup owns ROWS consecutive rows of one (batch b, key/value head g), where the rows of g are
// its query positions times its H/G query heads, position-major: row = i * (H/G) + (h - g * (H/G)). So each
// K/V element the workgroup reads serves every query head of the group (GQA/MQA) and ROWS rows in all.
//
// Specialization constants (the host checks the constraints; see each kernel and shaders/README.md):
//   constant_id 0  local_size_x  default 64   WG invocations, 1D
//   constant_id 1  ROWS          default 16   rows per workgroup
//   constant_id 2  BC            default 64   keys per K/V tile; multiple of WG
//   constant_id 3  DC            default 32   head-dim columns of Q/K staged per step (workgroup tiles only)
//   constant_id 4  D_MAX         default 256  largest head dim D the pipeline accepts
//   constant_id 5  SCORE_MODIFIERS default 3  bit 0: soft-cap, bit 1: ALiBi compiled in (the model's options)
// Dispatch: (ceil(Lq * (H/G) / ROWS), B * G, split_count); cache mode: (ceil(max q_len * (H/G) / ROWS), records * G,
// split_count)
//
// Storage variant (shaders/CMakeLists.txt): ACT_F16 stores Q, K, V and O as fp16 (GL_EXT_shader_16bit_storage); LSE
// and partials stay fp32. Values are converted to float on load (Q before scaling) and O is rounded once on store;
// scores, softmax statistics and accumulators are fp32.
//
// The including kernel may define QKV_T, the element its Q, K and V bindings are read as (default ACT_T; the lane
// tiles read vec4s).
#ifndef VKMHA_COMMON_ATTENTION_COMMON_GLSL
#define VKMHA_COMMON_ATTENTION_COMMON_GLSL

#extension GL_EXT_control_flow_attributes : require
#ifdef ACT_F16
#extension GL_EXT_shader_16bit_storage : require
#define ACT_T float16_t
#define ACT_VEC4 f16vec4
#else
#define ACT_T float
#define ACT_VEC4 vec4
#endif
#ifndef QKV_T
#define QKV_T ACT_T
#endif
#include "common/score_modifiers.glsl"

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 0) in;

layout(constant_id = 1) const uint ROWS = 16u;
layout(constant_id = 2) const uint BC = 64u;
layout(constant_id = 3) const uint DC = 32u;
layout(constant_id = 4) const uint D_MAX = 256u;
// The model's score modifiers, so a model without them pays nothing per score: bit 0 soft-cap, bit 1 ALiBi (their
// values still come from the push constants).
layout(constant_id = 5) const uint SCORE_MODIFIERS = 3u;

// Inner loops run UNROLL steps per iteration: few enough loop iterations per key tile for lavapipe's
// per-invocation loop budget, little enough code for its compile time (see "Loops" in shaders/README.md).
#define UNROLL 4u

const uint WG = gl_WorkGroupSize.x;

// One sequence of a ragged cached step or a prefill piece (cache_mode 1), as host/sequence_record.h writes it.
struct SequenceRecord {
    uint q_offset; // its first query row among the packed Q/O rows
    uint q_len;    // its query rows
    uint k_len;    // its keys: positions [0, k_len) of the cache, the causal end of its last query row
    uint kv_seq;   // its cache sequence: the K/V and key padding rows
};

// Q: [B, H, Lq, D], or [B, Lq, H, D] with q_row_major: then the host may bind O's buffer here too, since each row's Q
// is read only by the workgroup that writes that row's O, after its last read (or by combine.comp, a later pass).
layout(std430, set = 0, binding = 0) readonly buffer InputQ { QKV_T q_data[]; };
layout(std430, set = 0, binding = 1) readonly buffer InputK { QKV_T k_data[]; }; // [B, G, Lk, D]
layout(std430, set = 0, binding = 2) readonly buffer InputV { QKV_T v_data[]; }; // [B, G, Lk, D]
layout(std430, set = 0, binding = 3) writeonly buffer OutputO { ACT_T o_data[]; }; // [B, Lq, H * D] from o_offset
// Binding 4: the attn_mask, read as bytes (boolean masks, 4 per word) or floats (additive) by attn_mask_mode.
layout(std430, set = 0, binding = 4) readonly buffer MaskU { uint mask_u[]; };
layout(std430, set = 0, binding = 4) readonly buffer MaskF { float mask_f[]; };
layout(std430, set = 0, binding = 5) readonly buffer KeyPadding { uint kpm_u[]; };    // bytes [B, kpm_stride]
layout(std430, set = 0, binding = 6) writeonly buffer OutputLse { float lse_data[]; }; // [B, H, Lq]
// Record r = ((s * B + b) * H + h) * Lq + i at element r * (D + 2): acc[0..D-1], m, l. Read back in state mode 2.
layout(std430, set = 0, binding = 7) buffer Partials { float part_data[]; };
layout(std430, set = 0, binding = 8) readonly buffer Sinks { float sink_data[]; }; // [H]; read when sinks != 0
layout(std430, set = 0, binding = 9) readonly buffer Records { SequenceRecord seq_records[]; }; // cache_mode 1
// The head mask (1.3): per-head factors [QB, H] from word head_factors - 1 of binding 9 (after the records in cache
// mode), written by the host; a zero factor's rows are skipped, nonzero ones scale the head's output.
layout(std430, set = 0, binding = 9) readonly buffer HeadFactors { float head_factor_data[]; };

layout(push_constant) uniform Params {
    uint B;
    uint H;
    uint G;
    uint Lq;
    uint Lk;
    uint D;                    // 1 ..= D_MAX
    float scale;               // 1 / sqrt(D), applied to Q before the dot product
    uint attn_mask_mode;       // 0 none, 1 bytes (nonzero = masked), 2 additive floats
    uint attn_mask_offset;     // elements (bytes for mode 1, floats for mode 2)
    uint attn_mask_bh_stride;  // elements between (b, h) planes; 0 broadcasts one [Lq, Lk] mask
    uint kpm_mode;             // 0 none, 1 bytes [B, Lk] (nonzero = masked)
    uint kpm_offset;           // bytes
    uint kpm_stride;           // bytes between batch (cache mode: cache sequence) rows: Lk, or the cache capacity
    uint causal;               // nonzero: mask j > i + causal_offset
    int causal_offset;         // Lk - Lq (bottom-right aligned)
    uint split_count;          // >= 1; 1 writes O (and LSE), > 1 writes partial records
    uint keys_per_split;       // split s: keys [s * keys_per_split, (s + 1) * keys_per_split); unused for 1 split
    uint write_lse;            // nonzero (single split only): LSE = m + log(l) per row
    uint o_offset;             // elements: O's first element inside binding 3
    uint cache_mode;           // 0: B batches of Lq x Lk; 1: ragged sequence records over a KV cache (B records)
    uint capacity;             // cache_mode 1: slots per cached sequence
    uint window;               // > 0 masks keys j <= i_pos - window (sliding window; the KV ring in cache_mode 1)
    uint key_lo;               // keys [key_lo, key_hi) only (frame-budget slices); 0 and ~0 for all
    uint key_hi;
    uint state_mode;           // 0 none; 1 start (acc, m, l) fresh and write it to binding 7; 2 resume from it
    uint q_row_major;          // Q is [B, Lq, H, D] (the O layout) instead of [B, H, Lq, D]
    float softcap;             // > 0: s <- softcap * tanh(s / softcap) on the scaled score, before the masks
    uint alibi;                // nonzero: s += alibi_slope(h, H) * (j - the row's query position)
    uint sinks;                // nonzero: the head's sink logit joins the denominator where a row is normalized
    uint head_factors;         // 0: no head mask; else 1 + the word of binding 9 where the [QB, H] factors start
} p;

// Key position j's K/V row: j % rows, for j in [ring_base, ring_base + 2 * rows).
uint kv_row(uint j, uint ring_base, uint rows)
{
    const uint t = j - ring_base;
    return t >= rows ? t - rows : t;
}

// What one workgroup attends: its batch (cache mode: sequence record), key/value head, split and rows, and the key
// range its rows may need. Uniform over the workgroup, so it may bound loops with barriers.
struct AttentionWork {
    uint group; // query heads per key/value head
    uint b;     // batch, or sequence record in cache mode
    uint g;     // key/value head
    uint split;
    uint row0;  // the workgroup's first row
    // Q, O, LSE and partial records are indexed by (qb, h, q_off + i) in a [QB, H, Lq] layout.
    uint q_off;
    uint qb;
    uint QB;
    uint kv_seq;  // the K/V (and key padding) batch row
    uint kv_rows; // K/V rows per (batch, head); the cache capacity
    uint kv_base; // K/V element of (kv_seq, g, row 0)
    int causal_offset;
    uint row_count; // rows of (b, g): q_len * group
    bool valid;     // the workgroup has rows and a split to work on
    // Keys by position j in [key_begin, key_end), K/V row kv_row(j, ring_base, kv_rows).
    uint key_begin;
    uint key_end;
    uint ring_base;
};

// Which (batch, key/value head) pair and which row tile a workgroup takes. GPUs hand out workgroups as their cores
// free up, and the grid is read as it is: x the row tile, y the pair. Lane-tile kernels (CPU implementations) define
// CPU_WORK_ORDER: llvmpipe gives each of its threads one contiguous range of the grid's linear index (x fastest), so
// read as it is, one thread's range held some heads and another's the rest (a head mask saved nothing when the
// masked heads were the other thread's), and with a single pair one range held the cheap causal row tiles and
// another the dear ones. Instead the linear index runs over the pairs fastest, then over the row tiles in zigzag
// order (0, X-1, 1, X-2, ...): every range holds every pair, and cheap and dear tiles alike.
uvec2 pair_and_row_tile()
{
#ifdef CPU_WORK_ORDER
    const uint X = gl_NumWorkGroups.x;
    const uint Y = gl_NumWorkGroups.y;
    const uint linear = gl_WorkGroupID.y * X + gl_WorkGroupID.x;
    const uint t = linear / Y;
    return uvec2(linear % Y, (t & 1u) == 0u ? t >> 1 : X - 1u - (t >> 1));
#else
    return uvec2(gl_WorkGroupID.y, gl_WorkGroupID.x);
#endif
}

AttentionWork attention_work()
{
    AttentionWork w;
    w.group = p.H / p.G;
    const uvec2 pair_tile = pair_and_row_tile();
    w.b = pair_tile.x / p.G;
    w.g = pair_tile.x % p.G;
    w.split = gl_WorkGroupID.z;
    w.row0 = pair_tile.y * ROWS;
    const bool cached = p.cache_mode != 0u;

    uint q_len = p.Lq;
    uint k_len = p.Lk;
    w.q_off = 0u;
    w.qb = w.b;
    w.kv_seq = w.b;
    w.kv_rows = p.Lk;
    w.causal_offset = p.causal_offset;
    if (cached && w.b < p.B) {
        const SequenceRecord record = seq_records[w.b];
        w.q_off = record.q_offset;
        q_len = record.q_len;
        k_len = record.k_len;
        w.kv_seq = record.kv_seq;
        w.kv_rows = p.capacity;
        w.qb = 0u;
        w.causal_offset = int(k_len) - int(q_len);
    }
    w.QB = cached ? 1u : p.B;
    w.row_count = q_len * w.group;
    w.valid = w.b < p.B && w.split < p.split_count && w.row0 < w.row_count;
    w.kv_base = (w.kv_seq * p.G + w.g) * w.kv_rows * p.D;

    // The oldest position a ring still holds, then the slice's range, the window, the split, causality.
    uint range_begin = max(k_len > w.kv_rows ? k_len - w.kv_rows : 0u, p.key_lo);
    const uint range_end = min(k_len, p.key_hi);
    if (p.window != 0u && w.valid) {
        // The workgroup's first query position bounds the oldest key any of its rows may see.
        const int first_needed = int(w.row0 / w.group) + w.causal_offset - int(p.window) + 1;
        range_begin = max(range_begin, uint(max(first_needed, 0)));
    }
    range_begin = min(range_begin, range_end);
    w.key_begin = range_begin;
    w.key_end = range_end;
    if (p.split_count > 1u) {
        w.key_begin = range_end - range_begin > w.split * p.keys_per_split ? range_begin + w.split * p.keys_per_split
                                                                            : range_end;
        w.key_end = range_end - w.key_begin > p.keys_per_split ? w.key_begin + p.keys_per_split : range_end;
    }
    if (p.causal != 0u && w.valid) {
        // Causality is monotone in j, so the workgroup's last query position bounds every key it needs:
        // tiles past it are fully masked for all its rows and are never loaded.
        const uint last_position = (min(w.row0 + ROWS, w.row_count) - 1u) / w.group;
        const int causal_end = int(last_position) + w.causal_offset + 1;
        w.key_end = causal_end <= int(w.key_begin) ? w.key_begin : min(w.key_end, uint(causal_end));
    }
    if (!w.valid) {
        w.key_end = w.key_begin;
    }
    // Key position -> K/V row: j % kv_rows, with one division per workgroup (the range spans < 2 * kv_rows).
    w.ring_base = range_begin - range_begin % w.kv_rows;
    return w;
}

// The head mask's factor of head h of batch qb (1 without a mask).
float head_factor(uint qb, uint h)
{
    return p.head_factors == 0u ? 1.0 : head_factor_data[p.head_factors - 1u + qb * p.H + h];
}

// A workgroup whose rows all belong to zero-factor heads computes nothing: an empty key range leaves its rows with
// l = 0, so they are written as zeros (or as empty partial records), which is what a zero factor makes of them.
// Returns whether it emptied the range (the same for every invocation: w is the workgroup's).
bool skip_masked_heads(inout AttentionWork w)
{
    if (p.head_factors == 0u || !w.valid) {
        return false;
    }
    const uint rows = min(ROWS, w.row_count - w.row0);
    for (uint r = 0u; r < rows && r < w.group; ++r) {
        if (head_factor(w.qb, w.g * w.group + (w.row0 + r) % w.group) != 0.0) {
            return false;
        }
    }
    w.key_end = w.key_begin;
    return true;
}

// A workgroup skip_masked_heads emptied, in a pass that writes final rows (one split, no slice state): writes what
// the merge of no key writes (zero rows; the LSE of no key, the sink's where there are sinks) without running the
// merge, whose per-row barriers cost CPU implementations as much as a short key range. Invocation `lane` of `lanes`
// writes columns lane + lanes * k. Returns whether it wrote the rows (the caller then returns: uniform, before any
// barrier).
bool finish_skipped_workgroup(AttentionWork w, bool skipped, uint lane, uint lanes)
{
    if (!skipped || p.split_count != 1u || p.state_mode != 0u) {
        return false;
    }
    for (uint row = w.row0; row < min(w.row0 + ROWS, w.row_count); ++row) {
        const uint i = w.q_off + row / w.group; // the packed row in the [QB, H, Lq] layouts
        const uint h = w.g * w.group + row % w.group;
        const uint o_base = p.o_offset + (w.qb * p.Lq + i) * (p.H * p.D) + h * p.D;
        for (uint d = lane; d < p.D; d += lanes) {
            o_data[o_base + d] = ACT_T(0.0);
        }
        if (p.write_lse != 0u && lane == 0u) {
            float m = neg_inf();
            float l = 0.0;
            if (p.sinks != 0u) {
                fold_sink(m, l, sink_data[h]);
            }
            lse_data[(w.qb * p.H + h) * p.Lq + i] = l > 0.0 ? m + log(l) : neg_inf();
        }
    }
    return true;
}

// What the masks need to know of one row: whether it exists, where its attn_mask row starts, its query position.
struct MaskRow {
    bool valid;
    uint mask_base; // attn_mask element of (row, key 0)
    int position;   // the row's query position among the keys (causal and window masks, ALiBi)
    float slope;    // ALiBi: the row's head's slope (0 without ALiBi)
};

MaskRow mask_row(AttentionWork w, uint row)
{
    MaskRow m;
    m.valid = w.valid && row < w.row_count;
    const uint i = row / w.group;
    const uint h = w.g * w.group + row % w.group;
    m.mask_base = p.attn_mask_offset + (w.b * p.H + h) * p.attn_mask_bh_stride + i * p.Lk;
    m.position = int(i) + w.causal_offset;
    m.slope = (SCORE_MODIFIERS & 2u) != 0u && p.alibi != 0u ? alibi_slope(h, p.H) : 0.0;
    return m;
}

// Whether key position j (K/V row `slot`) is masked for every row: past the range, or key padding.
bool key_masked(uint j, uint key_end, uint kv_seq, uint slot)
{
    if (j >= key_end) {
        return true;
    }
    if (p.kpm_mode == 1u) {
        const uint e = p.kpm_offset + kv_seq * p.kpm_stride + slot;
        return mask_byte(kpm_u[e >> 2u], e) != 0u;
    }
    return false;
}

// A score after the row's masks, exactly as scores.comp: the additive mask added, and -inf where masked (set last, so
// no NaN leaks through). Only for keys that key_masked() lets through: it reads the mask at (row, j).
float masked_score(float sc, MaskRow row, uint j)
{
    if ((SCORE_MODIFIERS & 1u) != 0u) {
        sc = soft_cap(sc, p.softcap);
    }
    if ((SCORE_MODIFIERS & 2u) != 0u) {
        sc += row.slope * float(int(j) - row.position);
    }
    bool masked = !row.valid;
    if (!masked) {
        const uint e = row.mask_base + j;
        if (p.attn_mask_mode == 1u) {
            masked = mask_byte(mask_u[e >> 2u], e) != 0u;
        } else if (p.attn_mask_mode == 2u) {
            sc += mask_f[e];
        }
        if (p.causal != 0u && int(j) > row.position) {
            masked = true;
        }
        if (p.window != 0u && int(j + p.window) <= row.position) {
            masked = true;
        }
    }
    return masked ? neg_inf() : sc;
}

#endif
