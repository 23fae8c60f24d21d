// metrics.h: the work a row does (FLOPs, bytes) and the statistics the bench reports, in one place so the table,
// the JSON and the plot agree.
#pragma once

#include "sweep.h"

#include "vkmha/vkmha.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace bench {

// Query/key pairs a causal mask leaves (key j allowed for query i when j <= i + Lk - Lq): about half of Lq·Lk when
// Lq == Lk, nearly all of it for a short decode query block. Without the mask, all Lq·Lk.
inline double scored_pairs(const Config& c, uint32_t lq, uint32_t lk) {
    if (!c.causal) return double(lq) * lk;
    double pairs = 0;
    for (uint32_t i = 0; i < lq; ++i)
        pairs += double(std::clamp<int64_t>(int64_t(i) + 1 + int64_t(lk) - int64_t(lq), 0, int64_t(lk)));
    return pairs;
}

// Scores and P·V: two products of 2 FLOPs per multiply-add, 4·B·H·Lq·Lk·D, counting only the pairs that a causal
// mask leaves.
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

// Everything but the projections: scores, softmax, apply and weight averaging (unfused) or attention and the
// split-K combine (fused).
inline bool is_core_stage(VkmhaStage s) {
    return s != VKMHA_STAGE_Q_PROJ && s != VKMHA_STAGE_K_PROJ && s != VKMHA_STAGE_V_PROJ && s != VKMHA_STAGE_QKV_PROJ &&
           s != VKMHA_STAGE_OUT_PROJ;
}

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t mid = v.size() / 2;
    return v.size() % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

inline double per_second(double amount, double ms) { return ms > 0 ? amount / (ms * 1e-3) : 0; }

} // namespace bench
