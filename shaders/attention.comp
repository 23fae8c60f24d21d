// Fused attention, workgroup tiles (GPUs): see common/attention_common.glsl for the modes, rows, bindings, push
// constants and dispatch, which attention_lanes.comp shares.
//
// Work split: every invocation loops over all ROWS rows, 4 rows per vec4, so Q and P are read from shared
// memory at workgroup-uniform addresses (a broadcast on GPUs). Invocation t owns the tile's keys t + WG*c
// (c < BC/WG) while scoring and the head-dim columns t + WG*k (k < ceil(D_MAX/WG)) while accumulating; its
// accumulators stay in registers. K goes through shared memory so that the global reads are coalesced; V
// is read straight from global memory: consecutive invocations read consecutive columns of one key and each
// V element has exactly one consumer, so staging it would only add a copy and a barrier.
//
// Constraints on the specialization constants (the host checks them; see shaders/README.md): ROWS a multiple of 4
// with WG % ROWS == 0, BC a multiple of WG, DC a multiple of 4.
// Shared: 4 * (DC*ROWS + DC*(BC+1) + BC*ROWS + WG) bytes (14720 by default).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/attention_common.glsl"

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

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const vec4 neg_inf4 = vec4(neg_inf());
    AttentionWork w = attention_work();
    skip_masked_heads(w);

    // The row this invocation masks in the mask pass (PARTS invocations per row, interleaved keys).
    const uint part = tid % PARTS;
    const uint mask_r = tid / PARTS;
    const MaskRow mrow = mask_row(w, w.row0 + mask_r);

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
    if (p.state_mode == 2u && w.valid) {
        // Resume: the previous slices' running max, sum and accumulators of every row.
        [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
            const uint row = w.row0 + r;
            if (row < w.row_count) {
                const uint h = w.g * w.group + row % w.group;
                const uint rec = ((w.qb * p.H + h) * p.Lq + w.q_off + row / w.group) * (p.D + 2u);
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

    [[dont_unroll]] for (uint j0 = w.key_begin; j0 < w.key_end; j0 += BC) {
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
                    const uint row = w.row0 + r;
                    const uint d = d0 + c;
                    float v = 0.0; // zero padding: rows/columns outside the problem add nothing
                    if (w.valid && row < w.row_count && d < p.D) {
                        const uint h = w.g * w.group + row % w.group;
                        const uint i = w.q_off + row / w.group;
                        const uint q_row = p.q_row_major != 0u ? (w.qb * p.Lq + i) * p.H + h : (w.qb * p.H + h) * p.Lq + i;
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
                        if (j < w.key_end && d < p.D) {
                            v = float(k_data[w.kv_base + kv_row(j, w.ring_base, w.kv_rows) * p.D + d]);
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
                    sc = key_masked(j, w.key_end, w.kv_seq, kv_row(j, w.ring_base, w.kv_rows)) ? neg_inf()
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
                    if (j < w.key_end && d < p.D) {
                        v_val[k] = float(v_data[w.kv_base + kv_row(j, w.ring_base, w.kv_rows) * p.D + d]);
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
        const uint row = w.row0 + r;
        if (!w.valid || row >= w.row_count) {
            continue;
        }
        const uint i = w.q_off + row / w.group; // the packed row in the [QB, H, Lq] layouts
        const uint h = w.g * w.group + row % w.group;
        float m = row_m[r / 4u][r % 4u];
        float l = row_l[r / 4u][r % 4u];
        if (p.split_count == 1u && p.state_mode == 0u) {
            const float sink_scale = p.sinks != 0u ? fold_sink(m, l, sink_data[h]) : 1.0;
            // A row with no allowed key (and no sink) has l == 0: zeros and lse = -inf, never NaN.
            const float inv_l = l > 0.0 ? sink_scale * head_factor(w.qb, h) / l : 0.0;
            const uint o_base = p.o_offset + (w.qb * p.Lq + i) * (p.H * p.D) + h * p.D;
            [[unroll]] for (uint k = 0u; k < COLS_PER_INVOCATION; ++k) {
                const uint d = k * WG + tid;
                if (d < p.D) {
                    o_data[o_base + d] = ACT_T(acc[(r / 4u) * COLS_PER_INVOCATION + k][r % 4u] * inv_l);
                }
            }
            if (p.write_lse != 0u && tid == r) {
                lse_data[(w.qb * p.H + h) * p.Lq + i] = l > 0.0 ? m + log(l) : neg_inf();
            }
        } else {
            const uint rec = (((w.split * w.QB + w.qb) * p.H + h) * p.Lq + i) * (p.D + 2u);
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
