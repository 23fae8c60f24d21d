// metrics.h: what vkmha-heads says about each head from its attention probabilities (issue 14's definitions). Pure
// functions on host data, so the tests can feed them the CPU reference's probabilities.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace vkmha::heads {

// Per head, over one input's rows (every batch item's query rows; rows with no visible key excluded).
struct HeadMetrics {
    double entropy = 0;            // mean of -sum_j p ln p (nats)
    double normalized_entropy = 0; // mean of the same / ln(visible keys), over rows with at least two visible keys
    double mean_distance = 0;      // mean of sum_j p |pos_i - pos_j|, query i at i + Lk - Lq
    double top1 = 0;               // mean of max_j p
    int most_similar_head = -1;    // the other head with the highest similarity (-1 with one head)
    double similarity = 0;         // mean over rows of 1 - JS(p_h, p_h') / ln 2
    double importance = 0;         // filled by the caller: ||O - O_-h|| / ||O||
};

// How many keys query row i of batch item b may see for head h (the masks: causal, padding, attn_mask). Only counts:
// a masked key's probability is 0, so the sums over keys need no mask.
using VisibleKeys = std::function<uint32_t(uint32_t b, uint32_t h, uint32_t i)>;

// probs: [B, H, Lq, Lk] row-major, as NEED_WEIGHTS | PER_HEAD_WEIGHTS returns them.
std::vector<HeadMetrics> head_metrics(const std::vector<float>& probs, uint32_t B, uint32_t H, uint32_t Lq, uint32_t Lk,
                                      const VisibleKeys& count_visible);

// Jensen-Shannon divergence of two distributions of n values, in nats (0 .. ln 2).
double js_divergence(const float* p, const float* q, uint32_t n);

// ||a - b||_F / ||b||_F (0 when both are zero).
double relative_error(const std::vector<float>& a, const std::vector<float>& b);

} // namespace vkmha::heads
