// structured.cpp: the planted heads of vkmha-make-example --structured (see structured.h).
//
// An embedding is [content (96) | position (32)]: content dim 0 flags the first (BOS) token, dims 1..95 are the
// token's random vector; the position part is a sinusoidal code, 16 frequency pairs. Heads (D = 16, weights scaled so
// that the scaled scores are as stated):
//   0  previous token: q = R(-w) pos(i), k = pos(j) over 8 pairs, so q.k = sum cos(w (i - 1 - j)), peaked at j = i - 1
//   1  same token: q = k = 16 content dims, so a query matches earlier copies of its token (and itself)
//   2  same token again, on 16 dims of which 12 are head 1's: nearly head 1's attention (a redundant pair)
//   3  first token: a constant query that matches only the BOS flag
//   4-7 random projections: diffuse attention
#include "structured.h"

#include <cmath>
#include <random>

namespace vkmha::example {
namespace {

constexpr uint32_t E = kStructuredEmbed, H = kStructuredHeads, D = E / H, kContent = 96, kPairs = 16, kVocab = 50;

double frequency(uint32_t f) { return std::pow(1.0 / 1000.0, double(f) / kPairs); }

// Rows [h*D, (h+1)*D) of Wq (or Wk) for the planted heads; `key` picks Wk's.
void plant_heads(std::vector<float>& w, std::vector<float>& b, bool key) {
    auto at = [&](uint32_t h, uint32_t d, uint32_t col) -> float& { return w[size_t(h * D + d) * E + col]; };
    const float previous = 6.0f, same = 0.45f;
    for (uint32_t f = 0; f < 8; ++f) { // head 0: the 8 fastest pairs
        const uint32_t c = kContent + 2 * f, s = c + 1;
        const double theta = key ? 0.0 : -frequency(f);
        const float scale = key ? 1.0f : previous;
        at(0, 2 * f, c) = scale * float(std::cos(theta)), at(0, 2 * f, s) = -scale * float(std::sin(theta));
        at(0, 2 * f + 1, c) = scale * float(std::sin(theta)), at(0, 2 * f + 1, s) = scale * float(std::cos(theta));
    }
    for (uint32_t d = 0; d < D; ++d) {
        at(1, d, 1 + d) = std::sqrt(same * 4.0f);                   // content dims 1..16
        at(2, d, d < 12 ? 1 + d : 40 + d) = std::sqrt(same * 4.0f); // 12 shared, 4 of its own
    }
    if (key)
        at(3, 0, 0) = 1.0f; // the BOS flag
    else
        b[3 * D] = 6.0f; // a constant query
}

} // namespace

std::vector<io::Tensor> structured_weights(uint32_t seed) {
    std::mt19937 rng(seed);
    const float bound = 1.0f / std::sqrt(float(E));
    auto random = [&](size_t n, float scale) {
        std::uniform_real_distribution<float> u(-scale, scale);
        std::vector<float> v(n);
        for (float& x : v) x = u(rng);
        return v;
    };
    std::vector<float> wq(size_t(E) * E, 0.0f), wk(size_t(E) * E, 0.0f), bq(E, 0.0f), bk(E, 0.0f);
    // Heads 4-7: random projections, small enough to stay diffuse.
    const auto rq = random(size_t(E) * E, bound), rk = random(size_t(E) * E, bound);
    for (size_t i = size_t(4 * D) * E; i < size_t(E) * E; ++i) wq[i] = rq[i], wk[i] = rk[i];
    plant_heads(wq, bq, false);
    plant_heads(wk, bk, true);
    std::vector<float> in_w = wq;
    in_w.insert(in_w.end(), wk.begin(), wk.end());
    const auto wv = random(size_t(E) * E, bound);
    in_w.insert(in_w.end(), wv.begin(), wv.end());
    std::vector<float> in_b = bq;
    in_b.insert(in_b.end(), bk.begin(), bk.end());
    const auto bv = random(E, 0.1f);
    in_b.insert(in_b.end(), bv.begin(), bv.end());
    return {io::make_f32_tensor("in_proj_weight", {3ull * E, E}, in_w),
            io::make_f32_tensor("in_proj_bias", {3ull * E}, in_b),
            io::make_f32_tensor("out_proj.weight", {E, E}, random(size_t(E) * E, bound)),
            io::make_f32_tensor("out_proj.bias", {E}, random(E, 0.1f))};
}

std::vector<float> structured_query(uint32_t batch, uint32_t length, uint32_t seed) {
    std::mt19937 vocab_rng(seed * 7919u + 1u);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> vocab(size_t(kVocab) * kContent, 0.0f);
    for (uint32_t t = 0; t < kVocab; ++t)
        for (uint32_t d = 1; d < kContent; ++d) vocab[size_t(t) * kContent + d] = normal(vocab_rng);
    std::vector<float> x(size_t(batch) * length * E, 0.0f);
    for (uint32_t b = 0; b < batch; ++b) {
        std::mt19937 rng(seed + 101u * b);
        std::vector<uint32_t> tokens(length);
        for (uint32_t i = 0; i < length; ++i) // half the tokens repeat the one 8 back: phrases recur
            tokens[i] = i >= 8 && rng() % 2 ? tokens[i - 8] : static_cast<uint32_t>(rng() % kVocab);
        for (uint32_t i = 0; i < length; ++i) {
            float* row = x.data() + (size_t(b) * length + i) * E;
            if (i == 0)
                row[0] = 4.0f; // BOS
            else
                for (uint32_t d = 1; d < kContent; ++d) row[d] = vocab[size_t(tokens[i]) * kContent + d];
            for (uint32_t f = 0; f < kPairs; ++f) {
                row[kContent + 2 * f] = float(std::cos(frequency(f) * i));
                row[kContent + 2 * f + 1] = float(std::sin(frequency(f) * i));
            }
        }
    }
    return x;
}

} // namespace vkmha::example
