// layer.cpp: MHA->GQA conversion by mean-pooling and the Llama-named tensors of a layer (see layer.h).
#include "layer.h"

namespace vkmha::heads {
namespace {

// Rows [old G * D, cols] (or a bias, cols 1) averaged in runs of `pool` heads of D rows.
std::vector<float> pool_heads(const std::vector<float>& rows, uint32_t old_heads, uint32_t D, uint32_t cols,
                              uint32_t pool) {
    if (rows.empty()) return rows;
    const uint32_t new_heads = old_heads / pool;
    std::vector<float> out(size_t(new_heads) * D * cols, 0.0f);
    for (uint32_t g = 0; g < new_heads; ++g)
        for (uint32_t k = 0; k < pool; ++k)
            for (size_t e = 0; e < size_t(D) * cols; ++e)
                out[size_t(g) * D * cols + e] += rows[(size_t(g) * pool + k) * D * cols + e] / float(pool);
    return out;
}

} // namespace

AttentionWeights convert_to_gqa(const AttentionConfig& c, const AttentionWeights& w, uint32_t kv_heads) {
    const uint32_t D = c.head_dim(), G = c.num_kv_heads, pool = G / kv_heads;
    AttentionWeights out = w;
    out.wk = pool_heads(w.wk, G, D, c.kdim, pool);
    out.wv = pool_heads(w.wv, G, D, c.vdim, pool);
    out.bk = pool_heads(w.bk, G, D, 1, pool);
    out.bv = pool_heads(w.bv, G, D, 1, pool);
    return out;
}

std::vector<io::Tensor> llama_tensors(const AttentionConfig& c, const AttentionWeights& w, uint32_t kv_heads) {
    using io::make_f32_tensor;
    const uint64_t E = c.embed_dim, QW = c.q_width(), KV = uint64_t(kv_heads) * c.head_dim();
    std::vector<io::Tensor> t;
    t.push_back(make_f32_tensor("q_proj.weight", {QW, E}, w.wq));
    t.push_back(make_f32_tensor("k_proj.weight", {KV, E}, w.wk));
    t.push_back(make_f32_tensor("v_proj.weight", {KV, E}, w.wv));
    t.push_back(make_f32_tensor("o_proj.weight", {E, QW}, w.wo));
    if (!w.bq.empty()) {
        t.push_back(make_f32_tensor("q_proj.bias", {QW}, w.bq));
        t.push_back(make_f32_tensor("k_proj.bias", {KV}, w.bk));
        t.push_back(make_f32_tensor("v_proj.bias", {KV}, w.bv));
    }
    if (!w.bo.empty()) t.push_back(make_f32_tensor("o_proj.bias", {E}, w.bo));
    if (c.qk_norm) {
        t.push_back(make_f32_tensor("q_norm.weight", {c.head_dim()}, w.q_norm));
        t.push_back(make_f32_tensor("k_norm.weight", {c.head_dim()}, w.k_norm));
    }
    if (c.sinks) t.push_back(make_f32_tensor("sinks", {c.num_heads}, w.sinks));
    return t;
}

} // namespace vkmha::heads
