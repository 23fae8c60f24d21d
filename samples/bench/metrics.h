// metrics.h: the work a row does (FLOPs, bytes) and the statistics the bench reports, in one place so the table,
// the JSON and the plot agree.
#pragma once

#include "sweep.h"

#include "vkmha/vkmha.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace bench {

// Query/key pairs the masks leave, with i_pos = i + Lk - Lq the query's position: a causal mask allows key j when
// j <= i_pos (about half of Lq·Lk when Lq == Lk, nearly all of it for a short decode query block), the window
// option when j > i_pos - W (the fused kernel skips key tiles that neither allows). Without either, all Lq·Lk.
inline double scored_pairs(const Config& c, uint32_t lq, uint32_t lk) {
    const bool window = c.options.window;
    if (!c.causal && !window) return double(lq) * lk;
    double pairs = 0;
    for (uint32_t i = 0; i < lq; ++i) {
        const int64_t pos = int64_t(i) + int64_t(lk) - int64_t(lq);
        const int64_t first = window ? std::max<int64_t>(0, pos - int64_t(kWindow) + 1) : 0;
        const int64_t end = c.causal ? std::min<int64_t>(pos + 1, lk) : int64_t(lk);
        pairs += double(std::max<int64_t>(0, end - first));
    }
    return pairs;
}

// Scores and P·V: two products of 2 FLOPs per multiply-add, 4·B·H·Lq·Lk·D, counting only the pairs that the causal
// mask and the window leave.
inline double attention_core_flops(const Config& c, uint32_t lq, uint32_t lk) {
    return 4.0 * c.batch * c.heads * c.head_dim * scored_pairs(c, lq, lk);
}

// Q and output projections (Lq·E·E each) and the K and V projections (Lk·kdim·G·D each).
inline double projection_flops(const Config& c, uint32_t lq, uint32_t lk) {
    const double E = c.embed_dim(), kdim = E, GD = double(c.kv_heads) * c.head_dim;
    return 2.0 * c.batch * (lq * E * E + 2.0 * lk * kdim * GD + lq * E * E);
}

// Inputs, weights and outputs, each once: the least traffic a pass can have. I/O is fp32 in the C API.
inline double pass_bytes(const Config& c, uint32_t lq, uint32_t lk, uint64_t weight_bytes) {
    const double E = c.embed_dim();
    const double inputs = double(c.batch) * E * (lq + (c.decode() ? 2.0 * lk : 0.0));
    const double outputs = double(c.batch) * lq * E;
    return 4.0 * (inputs + outputs) + double(weight_bytes);
}

// Everything but the projections and the per-token QK-norm/RoPE pass: scores, softmax, apply and weight averaging
// (unfused) or attention and the split-K combine (fused), the work attention_core_flops counts. Soft-cap, ALiBi,
// the window and sinks happen inside these stages, so their cost shows in the core; QK-norm and RoPE in `rope`.
inline bool is_core_stage(VkmhaStage s) {
    return s != VKMHA_STAGE_Q_PROJ && s != VKMHA_STAGE_K_PROJ && s != VKMHA_STAGE_V_PROJ && s != VKMHA_STAGE_QKV_PROJ &&
           s != VKMHA_STAGE_OUT_PROJ && s != VKMHA_STAGE_ROPE;
}

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t mid = v.size() / 2;
    return v.size() % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

inline double per_second(double amount, double ms) { return ms > 0 ? amount / (ms * 1e-3) : 0; }

} // namespace bench
