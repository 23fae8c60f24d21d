// metrics.cpp: per-head entropy, distance, top-1, similarity; relative errors (see metrics.h).
#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace vkmha::heads {
namespace {

// Sums over the rows of one head: what the row means divide.
struct RowSums {
    double entropy = 0, normalized = 0, distance = 0, top1 = 0;
    uint64_t rows = 0, normalized_rows = 0;
};

void add_row(RowSums& s, const float* p, uint32_t Lk, int64_t position, uint32_t visible_keys) {
    double entropy = 0, distance = 0, top = 0;
    for (uint32_t j = 0; j < Lk; ++j) {
        const double v = p[j];
        if (v > 0) entropy -= v * std::log(v);
        distance += v * double(std::llabs(position - int64_t(j)));
        top = std::max(top, v);
    }
    s.entropy += entropy;
    s.distance += distance;
    s.top1 += top;
    ++s.rows;
    if (visible_keys >= 2) {
        s.normalized += entropy / std::log(double(visible_keys));
        ++s.normalized_rows;
    }
}

} // namespace

double js_divergence(const float* p, const float* q, uint32_t n) {
    double js = 0;
    for (uint32_t j = 0; j < n; ++j) {
        const double a = p[j], b = q[j], m = 0.5 * (a + b);
        if (a > 0) js += 0.5 * a * std::log(a / m);
        if (b > 0) js += 0.5 * b * std::log(b / m);
    }
    return std::max(js, 0.0);
}

std::vector<HeadMetrics> head_metrics(const std::vector<float>& probs, uint32_t B, uint32_t H, uint32_t Lq, uint32_t Lk,
                                      const VisibleKeys& count_visible) {
    std::vector<RowSums> sums(H);
    // Similarity sums per ordered pair (symmetric, filled for both), over rows that both heads can see from.
    std::vector<double> similarity(size_t(H) * H, 0.0);
    std::vector<uint64_t> pair_rows(size_t(H) * H, 0);
    const int64_t offset = int64_t(Lk) - int64_t(Lq);
    std::vector<uint32_t> visible_keys(H), support_end(H);
    for (uint32_t b = 0; b < B; ++b)
        for (uint32_t i = 0; i < Lq; ++i) {
            for (uint32_t h = 0; h < H; ++h) {
                const uint32_t n = count_visible(b, h, i);
                visible_keys[h] = n;
                if (n == 0) continue;
                const float* p = probs.data() + ((size_t(b) * H + h) * Lq + i) * Lk;
                add_row(sums[h], p, Lk, int64_t(i) + offset, n);
                // Past its last nonzero probability a row adds nothing to a divergence (causal rows end early).
                uint32_t end = Lk;
                while (end > 0 && p[end - 1] == 0.0f) --end;
                support_end[h] = end;
            }
            for (uint32_t h = 0; h < H; ++h)
                for (uint32_t g = h + 1; g < H; ++g) {
                    if (visible_keys[h] == 0 || visible_keys[g] == 0) continue;
                    const float* p = probs.data() + ((size_t(b) * H + h) * Lq + i) * Lk;
                    const float* q = probs.data() + ((size_t(b) * H + g) * Lq + i) * Lk;
                    const uint32_t n = std::max(support_end[h], support_end[g]);
                    const double s = 1.0 - js_divergence(p, q, n) / std::log(2.0);
                    for (size_t k : {size_t(h) * H + g, size_t(g) * H + h}) {
                        similarity[k] += s;
                        ++pair_rows[k];
                    }
                }
        }
    std::vector<HeadMetrics> out(H);
    for (uint32_t h = 0; h < H; ++h) {
        const RowSums& s = sums[h];
        const double rows = s.rows ? double(s.rows) : 1.0;
        out[h].entropy = s.entropy / rows;
        out[h].mean_distance = s.distance / rows;
        out[h].top1 = s.top1 / rows;
        out[h].normalized_entropy = s.normalized_rows ? s.normalized / double(s.normalized_rows) : 0.0;
        for (uint32_t g = 0; g < H; ++g) {
            if (g == h) continue;
            const size_t k = size_t(h) * H + g;
            const double mean = pair_rows[k] ? similarity[k] / double(pair_rows[k]) : 0.0;
            if (out[h].most_similar_head < 0 || mean > out[h].similarity) { // ties keep the lower index
                out[h].most_similar_head = int(g);
                out[h].similarity = mean;
            }
        }
    }
    return out;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        norm += double(b[i]) * b[i];
    }
    return norm > 0 ? std::sqrt(diff / norm) : (diff > 0 ? INFINITY : 0.0);
}

} // namespace vkmha::heads
