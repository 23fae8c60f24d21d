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
// Specialization constants (the host checks the constraints; see shaders/README.md):
//   constant_id 0  local_size_x  default 64   WG invocations, 1D
//   constant_id 1  ROWS          default 16   rows per workgroup; multiple of 4, WG % ROWS == 0
//   constant_id 2  BC            default 64   keys per K/V tile; multiple of WG
//   constant_id 3  DC            default 32   head-dim columns of Q/K staged per step; multiple of 4
//   constant_id 4  D_MAX         default 256  largest head dim D the pipeline accepts
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
#else
#define ACT_T float
#endif
#include "common/mask.glsl"

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 0) in;

layout(constant_id = 1) const uint ROWS = 16u;
layout(constant_id = 2) const uint BC = 64u;
layout(constant_id = 3) const uint DC = 32u;
layout(constant_id = 4) const uint D_MAX = 256u;

// Inner loops run UNROLL steps per iteration: few enough loop iterations per key tile for lavapipe's
// per-invocation loop budget, little enough code for its compile time (see "Loops" in shaders/README.md).
#define UNROLL 4u

const uint WG = gl_WorkGroupSize.x;
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

// [B, H, Lq, D], or [B, Lq, H, D] with q_row_major: then the host may bind O's buffer here too, since each row's Q is
// read only by the workgroup that writes that row's O, after its last read (or by combine.comp, a later pass).
layout(std430, set = 0, binding = 0) readonly buffer InputQ { ACT_T q_data[]; };
layout(std430, set = 0, binding = 1) readonly buffer InputK { ACT_T k_data[]; };   // [B, G, Lk, D]
layout(std430, set = 0, binding = 2) readonly buffer InputV { ACT_T v_data[]; };   // [B, G, Lk, D]
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
    uint window;               // cache_mode 1: > 0 masks keys j <= i_pos - window (sliding window)
    uint key_lo;               // keys [key_lo, key_hi) only (frame-budget slices); 0 and ~0 for all
    uint key_hi;
    uint state_mode;           // 0 none; 1 start (acc, m, l) fresh and write it to binding 7; 2 resume from it
    uint q_row_major;          // Q is [B, Lq, H, D] (the O layout) instead of [B, H, Lq, D]
} p;

// Key position j's K/V row: j % rows, for j in [ring_base, ring_base + 2 * rows).
uint kv_row(uint j, uint ring_base, uint rows)
{
    const uint t = j - ring_base;
    return t >= rows ? t - rows : t;
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

    // The row this invocation masks in the mask pass (PARTS invocations per row, interleaved keys).
    const uint part = tid % PARTS;
    const uint mask_r = tid / PARTS;
    const uint mask_row = row0 + mask_r;
    const bool mask_row_valid = wg_valid && mask_row < row_count;
    const uint mask_i = mask_row / group;
    const uint mask_bh = b * p.H + g * group + mask_row % group;
    const uint mask_row_base = p.attn_mask_offset + mask_bh * p.attn_mask_bh_stride + mask_i * p.Lk;
    const int mask_position = int(mask_i) + causal_offset; // the row's query position among the keys

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
                    bool masked = !mask_row_valid || j >= key_end;
                    if (!masked) {
                        const uint mask_e = mask_row_base + j;
                        if (p.attn_mask_mode == 1u) {
                            masked = mask_byte(mask_u[mask_e >> 2u], mask_e) != 0u;
                        } else if (p.attn_mask_mode == 2u) {
                            sc += mask_f[mask_e];
                        }
                        if (p.kpm_mode == 1u) {
                            const uint kpm_e = p.kpm_offset + kv_seq * p.kpm_stride + kv_row(j, ring_base, kv_rows);
                            masked = masked || mask_byte(kpm_u[kpm_e >> 2u], kpm_e) != 0u;
                        }
                        if (p.causal != 0u && int(j) > mask_position) {
                            masked = true;
                        }
                        if (p.window != 0u && int(j + p.window) <= mask_position) {
                            masked = true;
                        }
                    }
                    sc = masked ? neg_inf() : sc;
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
        const float m = row_m[r / 4u][r % 4u];
        const float l = row_l[r / 4u][r % 4u];
        if (p.split_count == 1u && p.state_mode == 0u) {
            // A row with no allowed key has l == 0: zeros and lse = -inf, never NaN.
            const float inv_l = l > 0.0 ? 1.0 / l : 0.0;
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
}
