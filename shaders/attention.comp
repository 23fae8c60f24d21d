// Fused attention (flash-attention style): scores, masks, online softmax and P·V in one pass over the
// key/value tiles, written straight into the concatenated-heads layout; no Lq x Lk buffer in device memory.
// Split-K (decode shapes): workgroup z = s handles one key range and writes unnormalized partial records
// that combine.comp merges.
//
// KV-cache mode (cache_mode 1): workgroup y = r * G + g serves sequence record r of a ragged batch (binding 4 holds
// the records: q_offset, q_len, k_len, cache_seq). Q and O are packed over the batch's tokens (B = 1 layout, Lq =
// tokens), K and V are the cache [sequences, G, capacity, D], key position j lives in slot j % capacity (a ring in
// sliding-window mode), the pass is causal with offset k_len - q_len per sequence, and the key padding mask is
// [sequences, capacity] bytes by slot.
// State mode (frame-budget slicing): each dispatch runs one key range [key_lo, key_hi) of every row and keeps
// (acc, m, l) in binding 7 between dispatches, records laid out as split 0's; combine.comp normalizes at the end.
//
// Rows: a workgroup owns ROWS consecutive rows of one (batch b, key/value head g), where the rows of g are
// its query positions times its H/G query heads, position-major: row = i * (H/G) + (h - g * (H/G)). So each
// K/V element the workgroup reads serves every query head of the group (GQA/MQA) and ROWS rows in all.
//
// Work split: every invocation loops over all ROWS rows, 4 rows per vec4, so Q and P are read from shared
// memory at workgroup-uniform addresses (a broadcast on GPUs). Invocation t owns the tile's keys t + WG*c
// (c < BC/WG) while scoring and the head-dim columns t + WG*k (k < ceil(D_MAX/WG)) while accumulating; its
// accumulators stay in registers. K goes through shared memory so that the global reads are coalesced; V
// is read straight from global memory: consecutive invocations read consecutive columns of one key and each
// V element has exactly one consumer, so staging it would only add a copy and a barrier.
//
// Lane tiles (-DLANE_TILES, the attention_lanes variants; CPU implementations): llvmpipe turns every load or store inside
// a loop into a loop over its SIMD lanes, so the shared-memory tiles above cost more than the arithmetic there.
// Instead each invocation owns keys j0 + u * WG + tid of each tile, loads their K and V rows itself (vec4s), and
// keeps the workgroup's Q rows, scores, running max/sum and accumulators in registers: no shared memory and no
// barrier inside the key loop. The lanes' states merge exactly after it (through shared memory, row by row). Needs
// D == D_MAX, a multiple of 4; ROWS is any count >= 1 and BC a multiple of WG. Same bindings, push constants,
// dispatch and outputs as the workgroup tiles.
//
// Specialization constants (the host checks the constraints; see shaders/README.md):
//   constant_id 0  local_size_x  default 64   WG invocations, 1D
//   constant_id 1  ROWS          default 16   rows per workgroup; multiple of 4, WG % ROWS == 0
//   constant_id 2  BC            default 64   keys per K/V tile; multiple of WG
//   constant_id 3  DC            default 32   head-dim columns of Q/K staged per step; multiple of 4
//   constant_id 4  D_MAX         default 256  largest head dim D the pipeline accepts
//   constant_id 5  SCORE_MODIFIERS default 3  bit 0: soft-cap, bit 1: ALiBi compiled in (the model's options)
// Dispatch: (ceil(Lq * (H/G) / ROWS), B * G, split_count); cache mode: (ceil(max q_len * (H/G) / ROWS), records * G,
// split_count)
// Shared: 4 * (DC*ROWS + DC*(BC+1) + BC*ROWS + WG) bytes (14720 by default).
//
// Storage variant (shaders/CMakeLists.txt): ACT_F16 stores Q, K, V and O as fp16 (GL_EXT_shader_16bit_storage); LSE
// and partials stay fp32. Values are converted to float on load (Q before scaling) and O is rounded once on store;
// scores, softmax statistics and accumulators are fp32.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef ACT_F16
#extension GL_EXT_shader_16bit_storage : require
#define ACT_T float16_t
#define ACT_VEC4 f16vec4
#else
#define ACT_T float
#define ACT_VEC4 vec4
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
#ifdef LANE_TILES
const uint KEYS_PER_LANE = BC / WG;          // keys each invocation scores per tile
const uint D4 = D_MAX / 4u;                  // vec4s per head-dim row (D == D_MAX, a multiple of 4)
const uint COLS_PER_LANE = (D4 + WG - 1u) / WG;

shared float merge_m[WG];
shared float merge_l[WG];
shared vec4 merge_acc[WG * D4];
#else
const uint R4 = ROWS / 4u;                   // vec4s per column of rows
const uint KEYS_PER_INVOCATION = BC / WG;
const uint COLS_PER_INVOCATION = (D_MAX + WG - 1u) / WG;
const uint PARTS = WG / ROWS;                // invocations per row in the mask + tile-max pass
const uint KEYS_PER_PART = BC / PARTS;
const uint KT_STRIDE = BC + 1u;              // padded: the transposing store hits distinct banks
const uint Q_LOAD_STEPS = (ROWS * DC + WG - 1u) / WG;
const uint K_LOAD_STEPS = (BC * DC + WG - 1u) / WG;

shared vec4 q_tile[DC * R4];          // Q chunk (scaled), [DC][ROWS], 4 rows per vec4
shared float kt_tile[DC * KT_STRIDE]; // K chunk transposed, [DC][BC + 1]
shared vec4 p_tile[BC * R4];          // the tile's scores, masked scores, then probabilities: [BC][ROWS]
shared float max_part[WG];            // partial row maxima, [ROWS][PARTS]
#endif

// [B, H, Lq, D], or [B, Lq, H, D] with q_row_major: then the host may bind O's buffer here too, since each row's Q is
// read only by the workgroup that writes that row's O, after its last read (or by combine.comp, a later pass).
layout(std430, set = 0, binding = 0) readonly buffer InputQ { ACT_T q_data[]; };
layout(std430, set = 0, binding = 1) readonly buffer InputK { ACT_T k_data[]; };   // [B, G, Lk, D]
layout(std430, set = 0, binding = 2) readonly buffer InputV { ACT_T v_data[]; };   // [B, G, Lk, D]
#ifdef LANE_TILES
// The same buffers as vec4s (lane tiles need D % 4 == 0): one load per four head-dim columns.
layout(std430, set = 0, binding = 0) readonly buffer InputQ4 { ACT_VEC4 q4_data[]; };
layout(std430, set = 0, binding = 1) readonly buffer InputK4 { ACT_VEC4 k4_data[]; };
layout(std430, set = 0, binding = 2) readonly buffer InputV4 { ACT_VEC4 v4_data[]; };
#endif
layout(std430, set = 0, binding = 3) writeonly buffer OutputO { ACT_T o_data[]; }; // [B, Lq, H * D] from o_offset
// One binding, two views: the mask is bytes or floats depending on attn_mask_mode.
layout(std430, set = 0, binding = 4) readonly buffer MaskU { uint mask_u[]; };
layout(std430, set = 0, binding = 4) readonly buffer MaskF { float mask_f[]; };
// cache_mode 1: per sequence record r, four words: q_offset, q_len, k_len, cache_seq.
layout(std430, set = 0, binding = 4) readonly buffer Records { uint seq_records[]; };
layout(std430, set = 0, binding = 5) readonly buffer KeyPadding { uint kpm_u[]; };    // bytes [B, kpm_stride]
layout(std430, set = 0, binding = 6) writeonly buffer OutputLse { float lse_data[]; }; // [B, H, Lq]
// Record r = ((s * B + b) * H + h) * Lq + i at element r * (D + 2): acc[0..D-1], m, l. Read back in state mode 2.
layout(std430, set = 0, binding = 7) buffer Partials { float part_data[]; };
layout(std430, set = 0, binding = 8) readonly buffer Sinks { float sink_data[]; }; // [H]; read when sinks != 0

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
} p;

// Key position j's K/V row: j % rows, for j in [ring_base, ring_base + 2 * rows).
uint kv_row(uint j, uint ring_base, uint rows)
{
    const uint t = j - ring_base;
    return t >= rows ? t - rows : t;
}

// What the masks need to know of one row: whether it exists, where its attn_mask row starts, its query position.
struct MaskRow {
    bool valid;
    uint mask_base; // attn_mask element of (row, key 0)
    int position;   // the row's query position among the keys (causal and window masks, ALiBi)
    float slope;    // ALiBi: the row's head's slope (0 without ALiBi)
};

MaskRow mask_row(uint row, bool wg_valid, uint row_count, uint b, uint g, uint group, int causal_offset)
{
    MaskRow m;
    m.valid = wg_valid && row < row_count;
    const uint i = row / group;
    m.mask_base = p.attn_mask_offset + (b * p.H + g * group + row % group) * p.attn_mask_bh_stride + i * p.Lk;
    m.position = int(i) + causal_offset;
    m.slope = (SCORE_MODIFIERS & 2u) != 0u && p.alibi != 0u ? alibi_slope(g * group + row % group, p.H) : 0.0;
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

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const vec4 neg_inf4 = vec4(neg_inf());

    // Everything up to the key range is uniform over the workgroup, so it may bound loops with barriers.
    const uint group = p.H / p.G; // query heads per key/value head
    const uint b = gl_WorkGroupID.y / p.G;
    const uint g = gl_WorkGroupID.y % p.G;
    const uint split = gl_WorkGroupID.z;
    const uint row0 = gl_WorkGroupID.x * ROWS;
    const bool cached = p.cache_mode != 0u;

    // Where this workgroup's batch (cache mode: sequence record) lives. Q, O, LSE and partial records are indexed
    // by (qb, h, q_off + i) in a [QB, H, Lq] layout; keys by position j in [k_lo, k_len), K/V row slot(j).
    uint q_len = p.Lq;
    uint k_len = p.Lk;
    uint q_off = 0u;
    uint qb = b;
    uint kv_seq = b;     // the K/V (and key padding) batch row
    uint kv_rows = p.Lk; // K/V rows per (batch, head); the cache capacity
    int causal_offset = p.causal_offset;
    if (cached && b < p.B) {
        q_off = seq_records[4u * b];
        q_len = seq_records[4u * b + 1u];
        k_len = seq_records[4u * b + 2u];
        kv_seq = seq_records[4u * b + 3u];
        kv_rows = p.capacity;
        qb = 0u;
        causal_offset = int(k_len) - int(q_len);
    }
    const uint QB = cached ? 1u : p.B;
    const uint row_count = q_len * group;
    const bool wg_valid = b < p.B && split < p.split_count && row0 < row_count;
    const uint kv_base = (kv_seq * p.G + g) * kv_rows * p.D;

    // The oldest position a ring still holds, then the slice's range, the window, the split, causality.
    uint range_begin = max(k_len > kv_rows ? k_len - kv_rows : 0u, p.key_lo);
    const uint range_end = min(k_len, p.key_hi);
    if (p.window != 0u && wg_valid) {
        // The workgroup's first query position bounds the oldest key any of its rows may see.
        const int first_needed = int(row0 / group) + causal_offset - int(p.window) + 1;
        range_begin = max(range_begin, uint(max(first_needed, 0)));
    }
    range_begin = min(range_begin, range_end);
    uint key_begin = range_begin;
    uint key_end = range_end;
    if (p.split_count > 1u) {
        key_begin = range_end - range_begin > split * p.keys_per_split ? range_begin + split * p.keys_per_split
                                                                          : range_end;
        key_end = range_end - key_begin > p.keys_per_split ? key_begin + p.keys_per_split : range_end;
    }
    if (p.causal != 0u && wg_valid) {
        // Causality is monotone in j, so the workgroup's last query position bounds every key it needs:
        // tiles past it are fully masked for all its rows and are never loaded.
        const uint last_position = (min(row0 + ROWS, row_count) - 1u) / group;
        const int causal_end = int(last_position) + causal_offset + 1;
        key_end = causal_end <= int(key_begin) ? key_begin : min(key_end, uint(causal_end));
    }
    if (!wg_valid) {
        key_end = key_begin;
    }
    // Key position -> K/V row: j % kv_rows, with one division per workgroup (the range spans < 2 * kv_rows).
    const uint ring_base = range_begin - range_begin % kv_rows;

#ifdef LANE_TILES
    // ---- Lane tiles: invocation tid owns keys j0 + u * WG + tid (u < KEYS_PER_LANE) of each tile and keeps its own
    // running max, sum and accumulators for every row of the workgroup; the lanes' states merge exactly at the end.
    vec4 q[ROWS * D4]; // the workgroup's rows of Q, scaled; zero for rows past the problem
    vec4 acc[ROWS * D4];
    float row_m[ROWS];
    float row_l[ROWS];
    MaskRow rows[ROWS];
    [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        rows[r] = mask_row(row0 + r, wg_valid, row_count, b, g, group, causal_offset);
        row_m[r] = neg_inf();
        row_l[r] = 0.0;
        [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
            q[r * D4 + d4] = vec4(0.0);
            acc[r * D4 + d4] = vec4(0.0);
        }
    }
    // Rows load one at a time in a real loop and land in the register arrays through selects on constant indices:
    // unrolled over rows, each load would be its own per-lane loop in llvmpipe's code, and LLVM took minutes to
    // compile that. Valid rows are a prefix of the workgroup's.
    [[dont_unroll]] for (uint r = 0u; r < ROWS && wg_valid && row0 + r < row_count; ++r) {
        const uint row = row0 + r;
        const uint h = g * group + row % group;
        const uint i = q_off + row / group;
        const uint q_row = p.q_row_major != 0u ? (qb * p.Lq + i) * p.H + h : (qb * p.H + h) * p.Lq + i;
        vec4 row_q[D4];
        [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
            row_q[d4] = vec4(q4_data[q_row * D4 + d4]) * p.scale;
        }
        // Resume: lane 0 takes the previous slices' merged state of the row, the other lanes start empty.
        const bool resume = p.state_mode == 2u && tid == 0u;
        float m0 = neg_inf();
        float l0 = 0.0;
        vec4 row_acc[D4];
        [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
            row_acc[d4] = vec4(0.0);
        }
        if (resume) {
            const uint rec = ((qb * p.H + h) * p.Lq + i) * (p.D + 2u);
            m0 = part_data[rec + p.D];
            l0 = part_data[rec + p.D + 1u];
            [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
                row_acc[d4] = vec4(part_data[rec + 4u * d4], part_data[rec + 4u * d4 + 1u],
                                   part_data[rec + 4u * d4 + 2u], part_data[rec + 4u * d4 + 3u]);
            }
        }
        [[unroll]] for (uint rr = 0u; rr < ROWS; ++rr) {
            row_m[rr] = rr == r ? m0 : row_m[rr];
            row_l[rr] = rr == r ? l0 : row_l[rr];
            [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
                q[rr * D4 + d4] = rr == r ? row_q[d4] : q[rr * D4 + d4];
                acc[rr * D4 + d4] = rr == r ? row_acc[d4] : acc[rr * D4 + d4];
            }
        }
    }

    [[dont_unroll]] for (uint j0 = key_begin; j0 < key_end; j0 += BC) {
        // Scores of this lane's keys for every row. Keys past the range read the last key's row (always in range)
        // and are masked, so no load needs a branch.
        float s[KEYS_PER_LANE * ROWS];
        uint kv_index[KEYS_PER_LANE];
        [[unroll]] for (uint u = 0u; u < KEYS_PER_LANE; ++u) {
            const uint j = j0 + u * WG + tid;
            const uint slot = kv_row(min(j, key_end - 1u), ring_base, kv_rows);
            kv_index[u] = (kv_base + slot * p.D) / 4u;
            vec4 k[D4];
            [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
                k[d4] = vec4(k4_data[kv_index[u] + d4]);
            }
            const bool off = key_masked(j, key_end, kv_seq, slot);
            [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
                vec4 dot4 = vec4(0.0);
                [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
                    dot4 = fma(q[r * D4 + d4], k[d4], dot4);
                }
                const float sc = (dot4.x + dot4.y) + (dot4.z + dot4.w);
                s[u * ROWS + r] = off ? neg_inf() : masked_score(sc, rows[r], j);
            }
        }
        // Online softmax per row over this lane's keys; selects, not arithmetic, on the -inf cases (as above).
        [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
            float tile_max = s[r];
            [[unroll]] for (uint u = 1u; u < KEYS_PER_LANE; ++u) {
                tile_max = max(tile_max, s[u * ROWS + r]);
            }
            const float m_new = max(row_m[r], tile_max);
            const float alpha = row_m[r] == neg_inf() ? 0.0 : exp(row_m[r] - m_new);
            row_m[r] = m_new;
            row_l[r] *= alpha;
            [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
                acc[r * D4 + d4] *= alpha;
            }
            [[unroll]] for (uint u = 0u; u < KEYS_PER_LANE; ++u) {
                const float sc = s[u * ROWS + r];
                s[u * ROWS + r] = sc == neg_inf() ? 0.0 : exp(sc - m_new);
                row_l[r] += s[u * ROWS + r];
            }
        }
        [[unroll]] for (uint u = 0u; u < KEYS_PER_LANE; ++u) {
            vec4 v[D4];
            [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
                v[d4] = vec4(v4_data[kv_index[u] + d4]);
            }
            [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
                [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
                    acc[r * D4 + d4] = fma(vec4(s[u * ROWS + r]), v[d4], acc[r * D4 + d4]);
                }
            }
        }
    }

    // Merge the lanes' states row by row through shared memory (uniform control flow: every invocation reaches the
    // barriers), then write as the workgroup-tiled kernel does; invocation tid writes head-dim vec4s tid + WG * k.
    // A real loop over rows again, each row's state picked out by selects (see the loads above).
    [[dont_unroll]] for (uint r = 0u; r < ROWS; ++r) {
        float lane_m = row_m[0];
        float lane_l = row_l[0];
        vec4 lane_acc[D4];
        [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
            lane_acc[d4] = acc[d4];
        }
        [[unroll]] for (uint rr = 1u; rr < ROWS; ++rr) {
            lane_m = rr == r ? row_m[rr] : lane_m;
            lane_l = rr == r ? row_l[rr] : lane_l;
            [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
                lane_acc[d4] = rr == r ? acc[rr * D4 + d4] : lane_acc[d4];
            }
        }
        merge_m[tid] = lane_m;
        barrier();
        float m = neg_inf();
        [[unroll]] for (uint w = 0u; w < WG; ++w) {
            m = max(m, merge_m[w]);
        }
        const float weight = lane_m == neg_inf() ? 0.0 : exp(lane_m - m);
        merge_l[tid] = lane_l * weight;
        [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
            merge_acc[tid * D4 + d4] = lane_acc[d4] * weight;
        }
        barrier();
        float l = 0.0;
        [[unroll]] for (uint w = 0u; w < WG; ++w) {
            l += merge_l[w];
        }
        const uint row = row0 + r;
        if (wg_valid && row < row_count) {
            const uint i = q_off + row / group; // the packed row in the [QB, H, Lq] layouts
            const uint h = g * group + row % group;
            const bool normalize = p.split_count == 1u && p.state_mode == 0u;
            const float sink_scale = normalize && p.sinks != 0u ? fold_sink(m, l, sink_data[h]) : 1.0;
            // A row with no allowed key (and no sink) has l == 0: zeros and lse = -inf, never NaN.
            const float inv_l = l > 0.0 ? sink_scale / l : 0.0;
            const uint o_base = p.o_offset + (qb * p.Lq + i) * (p.H * p.D) + h * p.D;
            const uint rec = (((split * QB + qb) * p.H + h) * p.Lq + i) * (p.D + 2u);
            [[unroll]] for (uint k = 0u; k < COLS_PER_LANE; ++k) {
                const uint d4 = k * WG + tid;
                if (d4 < D4) {
                    vec4 a = vec4(0.0);
                    [[unroll]] for (uint w = 0u; w < WG; ++w) {
                        a += merge_acc[w * D4 + d4];
                    }
                    [[unroll]] for (uint c = 0u; c < 4u; ++c) {
                        if (normalize) {
                            o_data[o_base + 4u * d4 + c] = ACT_T(a[c] * inv_l);
                        } else {
                            part_data[rec + 4u * d4 + c] = a[c];
                        }
                    }
                }
            }
            if (tid == 0u) {
                if (!normalize) {
                    part_data[rec + p.D] = m;
                    part_data[rec + p.D + 1u] = l;
                } else if (p.write_lse != 0u) {
                    lse_data[(qb * p.H + h) * p.Lq + i] = l > 0.0 ? m + log(l) : neg_inf();
                }
            }
        }
        barrier(); // every lane has read merge_* before the next row overwrites them
    }
#else
    // The row this invocation masks in the mask pass (PARTS invocations per row, interleaved keys).
    const uint part = tid % PARTS;
    const uint mask_r = tid / PARTS;
    const MaskRow mrow = mask_row(row0 + mask_r, wg_valid, row_count, b, g, group, causal_offset);

    // Running max m, running sum l and the accumulators, 4 rows per vec4; m and l are computed
    // identically by every invocation.
    vec4 acc[R4 * COLS_PER_INVOCATION];
    vec4 row_m[R4];
    vec4 row_l[R4];
    [[unroll]] for (uint r4 = 0u; r4 < R4; ++r4) {
        row_m[r4] = neg_inf4;
        row_l[r4] = vec4(0.0);
        [[unroll]] for (uint k = 0u; k < COLS_PER_INVOCATION; ++k) {
            acc[r4 * COLS_PER_INVOCATION + k] = vec4(0.0);
        }
    }
    if (p.state_mode == 2u && wg_valid) {
        // Resume: the previous slices' running max, sum and accumulators of every row.
        [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
            const uint row = row0 + r;
            if (row < row_count) {
                const uint h = g * group + row % group;
                const uint rec = ((qb * p.H + h) * p.Lq + q_off + row / group) * (p.D + 2u);
                row_m[r / 4u][r % 4u] = part_data[rec + p.D];
                row_l[r / 4u][r % 4u] = part_data[rec + p.D + 1u];
                [[unroll]] for (uint k = 0u; k < COLS_PER_INVOCATION; ++k) {
                    const uint d = k * WG + tid;
                    if (d < p.D) {
                        acc[(r / 4u) * COLS_PER_INVOCATION + k][r % 4u] = part_data[rec + d];
                    }
                }
            }
        }
    }

    [[dont_unroll]] for (uint j0 = key_begin; j0 < key_end; j0 += BC) {
        // ---- S = (Q * scale) K^T for this tile, DC head-dim columns at a time.
        vec4 s[R4 * KEYS_PER_INVOCATION];
        [[unroll]] for (uint e = 0u; e < R4 * KEYS_PER_INVOCATION; ++e) {
            s[e] = vec4(0.0);
        }
        [[dont_unroll]] for (uint d0 = 0u; d0 < p.D; d0 += DC) {
            if (d0 > 0u) {
                barrier(); // the previous chunk's reads are done before it is overwritten
            }
            [[unroll]] for (uint step = 0u; step < Q_LOAD_STEPS; ++step) {
                const uint idx = step * WG + tid;
                if (idx < ROWS * DC) {
                    const uint r = idx / DC;
                    const uint c = idx % DC;
                    const uint row = row0 + r;
                    const uint d = d0 + c;
                    float v = 0.0; // zero padding: rows/columns outside the problem add nothing
                    if (wg_valid && row < row_count && d < p.D) {
                        const uint h = g * group + row % group;
                        const uint i = q_off + row / group;
                        const uint q_row = p.q_row_major != 0u ? (qb * p.Lq + i) * p.H + h : (qb * p.H + h) * p.Lq + i;
                        v = float(q_data[q_row * p.D + d]) * p.scale;
                    }
                    q_tile[c * R4 + r / 4u][r % 4u] = v;
                }
            }
            [[dont_unroll]] for (uint step0 = 0u; step0 < K_LOAD_STEPS; step0 += UNROLL) {
                [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {
                    const uint idx = (step0 + u) * WG + tid;
                    if (idx < BC * DC) {
                        const uint k = idx / DC;
                        const uint c = idx % DC;
                        const uint j = j0 + k;
                        const uint d = d0 + c;
                        float v = 0.0;
                        if (j < key_end && d < p.D) {
                            v = float(k_data[kv_base + kv_row(j, ring_base, kv_rows) * p.D + d]);
                        }
                        kt_tile[c * KT_STRIDE + k] = v;
                    }
                }
            }
            barrier();

            // Columns past D are zero in both tiles, so the chunk always runs DC steps.
            [[dont_unroll]] for (uint dd0 = 0u; dd0 < DC; dd0 += UNROLL) {
                [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {
                    const uint dd = dd0 + u;
                    float k_val[KEYS_PER_INVOCATION];
                    [[unroll]] for (uint c = 0u; c < KEYS_PER_INVOCATION; ++c) {
                        k_val[c] = kt_tile[dd * KT_STRIDE + c * WG + tid];
                    }
                    [[unroll]] for (uint r4 = 0u; r4 < R4; ++r4) {
                        const vec4 q4 = q_tile[dd * R4 + r4];
                        [[unroll]] for (uint c = 0u; c < KEYS_PER_INVOCATION; ++c) {
                            s[r4 * KEYS_PER_INVOCATION + c] += q4 * k_val[c];
                        }
                    }
                }
            }
        }
        [[unroll]] for (uint c = 0u; c < KEYS_PER_INVOCATION; ++c) {
            [[unroll]] for (uint r4 = 0u; r4 < R4; ++r4) {
                p_tile[(c * WG + tid) * R4 + r4] = s[r4 * KEYS_PER_INVOCATION + c];
            }
        }
        barrier();

        // ---- Masks, exactly as scores.comp (a masked score is -inf, set last so no NaN leaks through),
        // and the per-row tile max: PARTS invocations per row, each on every PARTS-th key.
        float part_max = neg_inf();
        [[dont_unroll]] for (uint k0 = 0u; k0 < KEYS_PER_PART; k0 += UNROLL) {
            [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {
                const uint key = (k0 + u) * PARTS + part;
                if (k0 + u < KEYS_PER_PART) {
                    const uint j = j0 + key;
                    float sc = p_tile[key * R4 + mask_r / 4u][mask_r % 4u];
                    sc = key_masked(j, key_end, kv_seq, kv_row(j, ring_base, kv_rows)) ? neg_inf()
                                                                                       : masked_score(sc, mrow, j);
                    p_tile[key * R4 + mask_r / 4u][mask_r % 4u] = sc;
                    part_max = max(part_max, sc);
                }
            }
        }
        max_part[tid] = part_max; // = [mask_r][part]
        barrier();

        // ---- Online softmax: new running max, rescale factor, this invocation's keys' probabilities.
        // m_new >= every score of its row, so m_new == -inf implies every score is -inf and p = 0 covers it.
        // Selects, not arithmetic, on the -inf cases: exp(-inf - -inf) is NaN.
        vec4 alpha[R4];
        [[unroll]] for (uint r4 = 0u; r4 < R4; ++r4) {
            vec4 tile_max = neg_inf4;
            [[unroll]] for (uint q = 0u; q < PARTS; ++q) {
                tile_max = max(tile_max, vec4(max_part[(r4 * 4u + 0u) * PARTS + q], max_part[(r4 * 4u + 1u) * PARTS + q],
                                              max_part[(r4 * 4u + 2u) * PARTS + q], max_part[(r4 * 4u + 3u) * PARTS + q]));
            }
            const vec4 m_new = max(row_m[r4], tile_max);
            const vec4 rescale = mix(exp(row_m[r4] - m_new), vec4(0.0), equal(row_m[r4], neg_inf4));
            alpha[r4] = mix(rescale, vec4(1.0), equal(m_new, neg_inf4));
            row_m[r4] = m_new;
            [[unroll]] for (uint c = 0u; c < KEYS_PER_INVOCATION; ++c) {
                const uint key = c * WG + tid;
                const vec4 sc = p_tile[key * R4 + r4];
                p_tile[key * R4 + r4] = mix(exp(sc - m_new), vec4(0.0), equal(sc, neg_inf4));
            }
        }
        barrier();

        // ---- acc = alpha * acc + P V, l = alpha * l + sum P.
        // "k * WG < p.D" is uniform: GPUs skip the columns a pipeline with D_MAX > D does not need.
        [[unroll]] for (uint r4 = 0u; r4 < R4; ++r4) {
            row_l[r4] *= alpha[r4];
            [[unroll]] for (uint k = 0u; k < COLS_PER_INVOCATION; ++k) {
                if (k * WG < p.D) {
                    acc[r4 * COLS_PER_INVOCATION + k] *= alpha[r4];
                }
            }
        }
        [[dont_unroll]] for (uint jj0 = 0u; jj0 < BC; jj0 += UNROLL) {
            [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {
                const uint jj = jj0 + u;
                const uint j = j0 + jj;
                float v_val[COLS_PER_INVOCATION];
                [[unroll]] for (uint k = 0u; k < COLS_PER_INVOCATION; ++k) {
                    const uint d = k * WG + tid;
                    v_val[k] = 0.0; // keys past the range must be zero, not garbage: 0 * NaN is NaN
                    if (j < key_end && d < p.D) {
                        v_val[k] = float(v_data[kv_base + kv_row(j, ring_base, kv_rows) * p.D + d]);
                    }
                }
                [[unroll]] for (uint r4 = 0u; r4 < R4; ++r4) {
                    const vec4 prob = p_tile[jj * R4 + r4];
                    row_l[r4] += prob;
                    [[unroll]] for (uint k = 0u; k < COLS_PER_INVOCATION; ++k) {
                        if (k * WG < p.D) {
                            acc[r4 * COLS_PER_INVOCATION + k] += prob * v_val[k];
                        }
                    }
                }
            }
        }
        // No barrier here: the next tile rewrites q_tile/kt_tile (last read before this tile's first
        // softmax barrier) and p_tile/max_part only after its own chunk barrier.
    }

    // Past the last barrier, so invocations may now diverge freely.
    [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        const uint row = row0 + r;
        if (!wg_valid || row >= row_count) {
            continue;
        }
        const uint i = q_off + row / group; // the packed row in the [QB, H, Lq] layouts
        const uint h = g * group + row % group;
        float m = row_m[r / 4u][r % 4u];
        float l = row_l[r / 4u][r % 4u];
        if (p.split_count == 1u && p.state_mode == 0u) {
            const float sink_scale = p.sinks != 0u ? fold_sink(m, l, sink_data[h]) : 1.0;
            // A row with no allowed key (and no sink) has l == 0: zeros and lse = -inf, never NaN.
            const float inv_l = l > 0.0 ? sink_scale / l : 0.0;
            const uint o_base = p.o_offset + (qb * p.Lq + i) * (p.H * p.D) + h * p.D;
            [[unroll]] for (uint k = 0u; k < COLS_PER_INVOCATION; ++k) {
                const uint d = k * WG + tid;
                if (d < p.D) {
                    o_data[o_base + d] = ACT_T(acc[(r / 4u) * COLS_PER_INVOCATION + k][r % 4u] * inv_l);
                }
            }
            if (p.write_lse != 0u && tid == r) {
                lse_data[(qb * p.H + h) * p.Lq + i] = l > 0.0 ? m + log(l) : neg_inf();
            }
        } else {
            const uint rec = (((split * QB + qb) * p.H + h) * p.Lq + i) * (p.D + 2u);
            [[unroll]] for (uint k = 0u; k < COLS_PER_INVOCATION; ++k) {
                const uint d = k * WG + tid;
                if (d < p.D) {
                    part_data[rec + d] = acc[(r / 4u) * COLS_PER_INVOCATION + k][r % 4u];
                }
            }
            if (tid == r) {
                part_data[rec + p.D] = m;
                part_data[rec + p.D + 1u] = l;
            }
        }
    }
#endif
}
