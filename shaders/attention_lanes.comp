// Fused attention, lane tiles (CPU implementations): see common/attention_common.glsl for the modes, rows, bindings,
// push constants and dispatch, which attention.comp (workgroup tiles) shares; same outputs.
//
// llvmpipe turns every load or store inside a loop into a loop over its SIMD lanes, so attention.comp's shared-memory
// tiles cost more than the arithmetic there. Instead each invocation owns keys j0 + u * WG + tid of each tile, loads
// their K and V rows itself (vec4s), and keeps the workgroup's Q rows, scores, running max/sum and accumulators in
// registers: no shared memory and no barrier inside the key loop. The lanes' states merge exactly after it (through
// shared memory, row by row).
//
// Constraints on the specialization constants (the host checks them): D == D_MAX, a multiple of 4; ROWS is any
// count >= 1 and BC a multiple of WG; DC is unused.
// Shared: 4 * (2 * WG + WG * D_MAX) bytes.
#version 450
#extension GL_GOOGLE_include_directive : require
#define QKV_T ACT_VEC4 // Q, K and V read as vec4s (D % 4 == 0): one load per four head-dim columns
#define CPU_WORK_ORDER // every CPU thread's range of workgroups holds every head and all kinds of row tile
#include "common/attention_common.glsl"

const uint KEYS_PER_LANE = BC / WG;          // keys each invocation scores per tile
const uint D4 = D_MAX / 4u;                  // vec4s per head-dim row (D == D_MAX, a multiple of 4)
const uint COLS_PER_LANE = (D4 + WG - 1u) / WG;

shared float merge_m[WG];
shared float merge_l[WG];
shared vec4 merge_acc[WG * D4];

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    AttentionWork w = attention_work();
    if (finish_skipped_workgroup(w, skip_masked_heads(w), tid, WG)) {
        return;
    }

    // ---- Lane tiles: invocation tid owns keys j0 + u * WG + tid (u < KEYS_PER_LANE) of each tile and keeps its own
    // running max, sum and accumulators for every row of the workgroup; the lanes' states merge exactly at the end.
    vec4 q[ROWS * D4]; // the workgroup's rows of Q, scaled; zero for rows past the problem
    vec4 acc[ROWS * D4];
    float row_m[ROWS];
    float row_l[ROWS];
    MaskRow rows[ROWS];
    [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        rows[r] = mask_row(w, w.row0 + r);
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
    [[dont_unroll]] for (uint r = 0u; r < ROWS && w.valid && w.row0 + r < w.row_count; ++r) {
        const uint row = w.row0 + r;
        const uint h = w.g * w.group + row % w.group;
        const uint i = w.q_off + row / w.group;
        const uint q_row = p.q_row_major != 0u ? (w.qb * p.Lq + i) * p.H + h : (w.qb * p.H + h) * p.Lq + i;
        vec4 row_q[D4];
        [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
            row_q[d4] = vec4(q_data[q_row * D4 + d4]) * p.scale;
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
            const uint rec = ((w.qb * p.H + h) * p.Lq + i) * (p.D + 2u);
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

    [[dont_unroll]] for (uint j0 = w.key_begin; j0 < w.key_end; j0 += BC) {
        // Scores of this lane's keys for every row. Keys past the range read the last key's row (always in range)
        // and are masked, so no load needs a branch.
        float s[KEYS_PER_LANE * ROWS];
        uint kv_index[KEYS_PER_LANE];
        [[unroll]] for (uint u = 0u; u < KEYS_PER_LANE; ++u) {
            const uint j = j0 + u * WG + tid;
            const uint slot = kv_row(min(j, w.key_end - 1u), w.ring_base, w.kv_rows);
            kv_index[u] = (w.kv_base + slot * p.D) / 4u;
            vec4 k[D4];
            [[unroll]] for (uint d4 = 0u; d4 < D4; ++d4) {
                k[d4] = vec4(k_data[kv_index[u] + d4]);
            }
            const bool off = key_masked(j, w.key_end, w.kv_seq, slot);
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
                v[d4] = vec4(v_data[kv_index[u] + d4]);
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
        const uint row = w.row0 + r;
        if (w.valid && row < w.row_count) {
            const uint i = w.q_off + row / w.group; // the packed row in the [QB, H, Lq] layouts
            const uint h = w.g * w.group + row % w.group;
            const bool normalize = p.split_count == 1u && p.state_mode == 0u;
            const float sink_scale = normalize && p.sinks != 0u ? fold_sink(m, l, sink_data[h]) : 1.0;
            // A row with no allowed key (and no sink) has l == 0: zeros and lse = -inf, never NaN.
            const float inv_l = l > 0.0 ? sink_scale * (normalize ? head_factor(w.qb, h) : 1.0) / l : 0.0;
            const uint o_base = p.o_offset + (w.qb * p.Lq + i) * (p.H * p.D) + h * p.D;
            const uint rec = (((w.split * w.QB + w.qb) * p.H + h) * p.Lq + i) * (p.D + 2u);
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
                    lse_data[(w.qb * p.H + h) * p.Lq + i] = l > 0.0 ? m + log(l) : neg_inf();
                }
            }
        }
        barrier(); // every lane has read merge_* before the next row overwrites them
    }
}
