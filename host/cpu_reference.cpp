// CPU reference for multi-head / grouped-query attention: every dot product is accumulated in double, in
// index order, so the result depends only on the math in docs/DESIGN.md and not on blocking or threads.
#include "cpu_reference.h"

#include "rope.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace vkmha {
namespace {

Error invalid(std::string message) { return make_error(ErrorCode::invalid_argument, std::move(message)); }

std::string str(uint64_t v) { return std::to_string(v); }

// Shortest readable form of a float option for messages: "-1", "0.5", "nan", "inf".
std::string num(double v) {
    std::ostringstream out;
    out << v;
    return out.str();
}

// Product of sizes, or false when it does not fit in size_t (a vector of it could never be allocated).
bool checked_product(std::initializer_list<size_t> factors, size_t& out) {
    size_t total = 1;
    for (size_t f : factors)
        if (__builtin_mul_overflow(total, f, &total)) return false;
    out = total;
    return true;
}

bool is_known_mask_kind(MaskKind kind) {
    return kind == MaskKind::none || kind == MaskKind::boolean || kind == MaskKind::additive;
}

Status check_size(const char* name, const std::vector<float>& tensor, size_t expected, const std::string& shape_text,
                  bool may_be_empty) {
    if (tensor.size() == expected) return {};
    if (may_be_empty && tensor.empty()) return {};
    return invalid(std::string(name) + " has " + str(tensor.size()) + " elements, expected " + str(expected) + " (" +
                   shape_text + (may_be_empty ? ") or none" : ")"));
}

// out(i, j) = sum_p a[i*k + p] * b[j*k + p] (A times B transposed, both row-major, B in PyTorch's [out, in]
// layout), handed to emit(i, j, value). A 4x4 register block gives 16 independent accumulator chains for
// speed; each chain still sums its own dot product sequentially in double, so blocking does not change results.
template <typename Emit>
void matmul_transposed(const float* a, size_t m, size_t k, const float* b, size_t n, Emit&& emit) {
    constexpr size_t block = 4;
    for (size_t i0 = 0; i0 < m; i0 += block) {
        const size_t rows = std::min(block, m - i0);
        for (size_t j0 = 0; j0 < n; j0 += block) {
            const size_t cols = std::min(block, n - j0);
            if (rows == block && cols == block) {
                // Named scalars rather than acc[4][4]: without full unrolling (-O1, sanitizer builds) an array
                // stays in memory and every access is checked, which made those builds ~5x slower.
                const float *a0 = a + i0 * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
                const float *b0 = b + j0 * k, *b1 = b0 + k, *b2 = b1 + k, *b3 = b2 + k;
                double c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
                double c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
                for (size_t p = 0; p < k; ++p) {
                    const double x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
                    const double y0 = b0[p], y1 = b1[p], y2 = b2[p], y3 = b3[p];
                    c00 += x0 * y0, c01 += x0 * y1, c02 += x0 * y2, c03 += x0 * y3;
                    c10 += x1 * y0, c11 += x1 * y1, c12 += x1 * y2, c13 += x1 * y3;
                    c20 += x2 * y0, c21 += x2 * y1, c22 += x2 * y2, c23 += x2 * y3;
                    c30 += x3 * y0, c31 += x3 * y1, c32 += x3 * y2, c33 += x3 * y3;
                }
                emit(i0, j0, c00), emit(i0, j0 + 1, c01), emit(i0, j0 + 2, c02), emit(i0, j0 + 3, c03);
                emit(i0 + 1, j0, c10), emit(i0 + 1, j0 + 1, c11), emit(i0 + 1, j0 + 2, c12), emit(i0 + 1, j0 + 3, c13);
                emit(i0 + 2, j0, c20), emit(i0 + 2, j0 + 1, c21), emit(i0 + 2, j0 + 2, c22), emit(i0 + 2, j0 + 3, c23);
                emit(i0 + 3, j0, c30), emit(i0 + 3, j0 + 1, c31), emit(i0 + 3, j0 + 2, c32), emit(i0 + 3, j0 + 3, c33);
            } else {
                for (size_t r = 0; r < rows; ++r)
                    for (size_t c = 0; c < cols; ++c) {
                        const float* x = a + (i0 + r) * k;
                        const float* y = b + (j0 + c) * k;
                        double acc = 0.0;
                        for (size_t p = 0; p < k; ++p) acc += static_cast<double>(x[p]) * static_cast<double>(y[p]);
                        emit(i0 + r, j0 + c, acc);
                    }
            }
        }
    }
}

// Y = X W^T + b for X [batch * len, in], written head-major: [batch, heads, len, head_dim].
void project_head_major(const float* x, size_t batch, size_t len, size_t in, const std::vector<float>& w,
                        const std::vector<float>& bias, size_t heads, size_t head_dim, std::vector<float>& out) {
    const size_t width = heads * head_dim;
    out.assign(batch * heads * len * head_dim, 0.0f);
    matmul_transposed(x, batch * len, in, w.data(), width, [&](size_t row, size_t col, double acc) {
        const size_t b = row / len, l = row % len, h = col / head_dim, d = col % head_dim;
        const double value = acc + (bias.empty() ? 0.0 : static_cast<double>(bias[col]));
        out[((b * heads + h) * len + l) * head_dim + d] = static_cast<float>(value);
    });
}

Status validate_head_mask(const AttentionConfig& config, const AttentionShape& shape, const AttentionInputs& inputs) {
    const size_t count = inputs.head_mask.size();
    if (count != 0 && count != config.num_heads && count != size_t(shape.batch) * config.num_heads)
        return invalid("head_mask has " + std::to_string(count) + " factors, not num_heads " + str(config.num_heads) +
                       " or batch x num_heads");
    return {};
}

Status validate_inputs(const AttentionConfig& config, const AttentionShape& shape, const AttentionOptions& options,
                       const AttentionInputs& inputs) {
    if (!inputs.query) return invalid("query is null");
    if (!inputs.key) {
        if (shape.lk != shape.lq)
            return invalid("key is null (self-attention) but lk " + str(shape.lk) + " != lq " + str(shape.lq));
        if (config.kdim != config.embed_dim)
            return invalid("key is null (self-attention) but kdim " + str(config.kdim) + " != embed_dim " +
                           str(config.embed_dim));
    }
    if (!inputs.value) {
        const uint32_t source_width = inputs.key ? config.kdim : config.embed_dim;
        if (config.vdim != source_width)
            return invalid("value is null (reads " + std::string(inputs.key ? "key" : "query") + ") but vdim " +
                           str(config.vdim) + " != its width " + str(source_width));
    }
    if (options.key_padding == MaskKind::boolean && !inputs.key_padding_mask)
        return invalid("key_padding is boolean but key_padding_mask is null");
    if (options.attn_mask != MaskKind::none && !inputs.attn_mask)
        return invalid("attn_mask kind is " + str(static_cast<uint32_t>(options.attn_mask)) +
                       " but the attn_mask pointer is null");
    return validate_head_mask(config, shape, inputs);
}

struct Dims {
    size_t batch, lq, lk, embed, heads, kv_heads, head_dim, kdim, vdim, group;
    size_t q_width; // H * D: Q and the concatenated heads
};

Dims dims_of(const AttentionConfig& config, const AttentionShape& shape) {
    Dims n{};
    n.batch = shape.batch;
    n.lq = shape.lq;
    n.lk = shape.lk;
    n.embed = config.embed_dim;
    n.q_width = config.q_width();
    n.heads = config.num_heads;
    n.kv_heads = config.num_kv_heads;
    n.head_dim = config.head_dim();
    n.kdim = config.kdim;
    n.vdim = config.vdim;
    n.group = config.group_size();
    return n;
}

// What the caller wants kept beyond q/k/v/concat/output.
struct Keep {
    std::vector<float>* scores = nullptr;  // [B, H, Lq, Lk] or null
    std::vector<float>* probs = nullptr;   // [B, H, Lq, Lk] or null
    std::vector<float>* weights = nullptr; // per options.need_weights / average_weights, or null
};

// Qwen3's QK-norm: every D-wide head row becomes x / sqrt(mean(x^2) + eps) * w. Hugging Face normalises in fp32;
// double here keeps the reference free of its own rounding.
void rms_norm_rows(std::vector<float>& x, size_t head_dim, const std::vector<float>& w, double eps) {
    for (size_t row = 0; row < x.size(); row += head_dim) {
        float* r = x.data() + row;
        double sum_sq = 0.0;
        for (size_t d = 0; d < head_dim; ++d) sum_sq += static_cast<double>(r[d]) * static_cast<double>(r[d]);
        const double inv_rms = 1.0 / std::sqrt(sum_sq / static_cast<double>(head_dim) + eps);
        for (size_t d = 0; d < head_dim; ++d) r[d] = static_cast<float>(r[d] * inv_rms * w[d]);
    }
}

// RoPE positions. Without position_ids the queries are the last Lq of Lk tokens (a decode step over a cache), as
// the causal mask aligns them; self-attention keys are the query tokens, so they share position_ids.
int64_t query_position(const Dims& n, const AttentionInputs& in, size_t b, size_t i) {
    if (in.position_ids) return in.position_ids[b * n.lq + i];
    return static_cast<int64_t>(n.lk) - static_cast<int64_t>(n.lq) + static_cast<int64_t>(i);
}
int64_t key_position(const Dims& n, const AttentionInputs& in, size_t b, size_t j) {
    if (!in.key && in.position_ids) return in.position_ids[b * n.lq + j]; // self-attention: lk == lq
    if (in.key_position_ids) return in.key_position_ids[b * n.lk + j];
    return static_cast<int64_t>(j);
}

// Rotates every head row of Q and K at its token's position, after QK-norm and before any score.
void rotate_rows(const AttentionConfig& c, const Dims& n, const AttentionInputs& in, AttentionStages& st) {
    const std::vector<float> inv_freq = rope_inv_freq(c.rope, c.rotary_dims());
    const float factor = rope_attention_factor(c.rope);
    const uint32_t d = c.head_dim();
    for (size_t b = 0; b < n.batch; ++b) {
        for (size_t h = 0; h < n.heads; ++h)
            for (size_t i = 0; i < n.lq; ++i)
                rope_rotate(st.q.data() + ((b * n.heads + h) * n.lq + i) * d, d, c.rope, inv_freq, factor,
                            query_position(n, in, b, i));
        for (size_t g = 0; g < n.kv_heads; ++g)
            for (size_t j = 0; j < n.lk; ++j)
                rope_rotate(st.k.data() + ((b * n.kv_heads + g) * n.lk + j) * d, d, c.rope, inv_freq, factor,
                            key_position(n, in, b, j));
    }
}

// Steps 1-3 of the math: projections (bias added), QK-norm, RoPE. Stages q and k end normed, rotated, unscaled.
void project_inputs(const AttentionConfig& c, const Dims& n, const AttentionWeights& w, const AttentionInputs& in,
                    AttentionStages& st) {
    const float* key = in.key ? in.key : in.query;
    const float* value = in.value ? in.value : key;
    project_head_major(in.query, n.batch, n.lq, n.embed, w.wq, w.bq, n.heads, n.head_dim, st.q);
    project_head_major(key, n.batch, n.lk, n.kdim, w.wk, w.bk, n.kv_heads, n.head_dim, st.k);
    project_head_major(value, n.batch, n.lk, n.vdim, w.wv, w.bv, n.kv_heads, n.head_dim, st.v);
    if (c.qk_norm) {
        rms_norm_rows(st.q, n.head_dim, w.q_norm, c.norm_eps);
        rms_norm_rows(st.k, n.head_dim, w.k_norm, c.norm_eps);
    }
    if (c.rope.enabled()) rotate_rows(c, n, in, st);
}

// Whether key j is hidden from query i, which sits at index position i_pos = i + Lk - Lq (bottom-right aligned).
bool is_masked(const AttentionConfig& c, const Dims& n, const AttentionOptions& o, const AttentionInputs& in, size_t b,
               size_t mask_index, int64_t i_pos, size_t j) {
    const auto key = static_cast<int64_t>(j);
    if (o.causal && key > i_pos) return true;
    if (c.window > 0 && key <= i_pos - static_cast<int64_t>(c.window)) return true;
    if (o.key_padding == MaskKind::boolean && in.key_padding_mask[b * n.lk + j] != 0) return true;
    return o.attn_mask == MaskKind::boolean && static_cast<const uint8_t*>(in.attn_mask)[mask_index] != 0;
}

// Scores of one (batch, head) into block [Lq, Lk], in the documented order: softmax_scale * q.k, soft-cap, ALiBi,
// additive mask; masked keys become -inf. Masks and ALiBi use index positions, never position_ids, because they
// describe the sequence's layout while position_ids only feed RoPE.
void score_block(const AttentionConfig& c, const Dims& n, const AttentionOptions& o, const AttentionInputs& in,
                 size_t b, size_t h, const float* q, const float* k, std::vector<double>& block) {
    const double scale = c.softmax_scale(), cap = c.softcap;
    // Scaling the double dot product equals scaling Q first (the GPU order) up to one double rounding.
    matmul_transposed(q, n.lq, n.head_dim, k, n.lk, [&](size_t i, size_t j, double dot) {
        const double s = dot * scale;
        block[i * n.lk + j] = cap > 0.0 ? cap * std::tanh(s / cap) : s;
    });
    const double slope = c.alibi ? alibi_slope(static_cast<uint32_t>(h), static_cast<uint32_t>(n.heads)) : 0.0;
    const int64_t offset = static_cast<int64_t>(n.lk) - static_cast<int64_t>(n.lq);
    const size_t mask_base = o.attn_mask_per_head ? (b * n.heads + h) * n.lq * n.lk : 0;
    const auto* add_mask = static_cast<const float*>(in.attn_mask);
    for (size_t i = 0; i < n.lq; ++i) {
        const int64_t i_pos = static_cast<int64_t>(i) + offset;
        for (size_t j = 0; j < n.lk; ++j) {
            double& s = block[i * n.lk + j];
            const size_t mask_index = mask_base + i * n.lk + j;
            if (is_masked(c, n, o, in, b, mask_index, i_pos, j)) {
                s = -std::numeric_limits<double>::infinity();
                continue;
            }
            if (c.alibi) s += slope * static_cast<double>(static_cast<int64_t>(j) - i_pos);
            if (o.attn_mask == MaskKind::additive) s += static_cast<double>(add_mask[mask_index]);
        }
    }
}

// Row softmax in place. A sink logit joins the denominator only (gpt-oss): the row then sums to less than 1. A row
// whose keys are all masked becomes zeros (not PyTorch's NaN, the documented difference), with or without a sink.
void softmax_row(double* row, size_t lk, const float* sink) {
    const double row_max = *std::max_element(row, row + lk);
    if (row_max == -std::numeric_limits<double>::infinity()) {
        std::fill(row, row + lk, 0.0);
        return;
    }
    const double m = sink ? std::max(row_max, static_cast<double>(*sink)) : row_max;
    double sum = 0.0;
    for (size_t j = 0; j < lk; ++j) {
        row[j] = std::exp(row[j] - m);
        sum += row[j];
    }
    if (sink) sum += std::exp(static_cast<double>(*sink) - m);
    for (size_t j = 0; j < lk; ++j) row[j] /= sum;
}

void store(const double* row, size_t count, float* dst) {
    std::transform(row, row + count, dst, [](double x) { return static_cast<float>(x); });
}

// concat[b, i, h*D + d] = sum_j P[i, j] v[j, d], summing over j in order (V rows read contiguously).
void apply_values(const Dims& n, size_t b, size_t h, const std::vector<double>& probs, const float* v,
                  std::vector<double>& acc, std::vector<float>& concat) {
    for (size_t i = 0; i < n.lq; ++i) {
        const double* row = probs.data() + i * n.lk;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (size_t j = 0; j < n.lk; ++j) {
            const double p = row[j];
            if (p == 0.0) continue; // masked keys contribute nothing (and skip 0 * inf)
            const float* v_row = v + j * n.head_dim;
            for (size_t d = 0; d < n.head_dim; ++d) acc[d] += p * static_cast<double>(v_row[d]);
        }
        float* out = concat.data() + (b * n.lq + i) * n.q_width + h * n.head_dim;
        for (size_t d = 0; d < n.head_dim; ++d) out[d] = static_cast<float>(acc[d]);
    }
}

void attend(const AttentionConfig& c, const Dims& n, const AttentionWeights& w, const AttentionOptions& options,
            const AttentionInputs& in, AttentionStages& st, const Keep& keep);

// The whole forward pass. Scores, softmax and P V for one (batch, head) stay in double in `block`; only the
// stage vectors are rounded to fp32, because that is what a GPU pass stores.
void run_attention(const AttentionConfig& c, const Dims& n, const AttentionWeights& w, const AttentionOptions& options,
                   const AttentionInputs& in, AttentionStages& st, const Keep& keep) {
    project_inputs(c, n, w, in, st);
    attend(c, n, w, options, in, st, keep);
    st.output.assign(n.batch * n.lq * n.embed, 0.0f);
    matmul_transposed(st.concat.data(), n.batch * n.lq, n.q_width, w.wo.data(), n.embed,
                      [&](size_t row, size_t col, double dot) {
                          const double bias = w.bo.empty() ? 0.0 : static_cast<double>(w.bo[col]);
                          st.output[row * n.embed + col] = static_cast<float>(dot + bias);
                      });
}

// Steps 4-6 on projected (normed, rotated) Q, K and V: scores, masks, softmax with sinks, P V into the concatenated
// heads; weights and intermediate blocks as `keep` asks.
void attend(const AttentionConfig& c, const Dims& n, const AttentionWeights& w, const AttentionOptions& options,
            const AttentionInputs& in, AttentionStages& st, const Keep& keep) {
    const size_t block_size = n.lq * n.lk;
    if (keep.scores) keep.scores->assign(n.batch * n.heads * block_size, 0.0f);
    if (keep.probs) keep.probs->assign(n.batch * n.heads * block_size, 0.0f);
    const bool average = options.need_weights && options.average_weights;
    const bool per_head = options.need_weights && !options.average_weights;
    if (keep.weights && options.need_weights)
        keep.weights->assign(n.batch * (average ? 1 : n.heads) * block_size, 0.0f);
    st.concat.assign(n.batch * n.lq * n.q_width, 0.0f);

    std::vector<double> block(block_size);
    std::vector<double> weight_sum(average ? block_size : 0);
    std::vector<double> acc(n.head_dim);
    for (size_t b = 0; b < n.batch; ++b) {
        std::fill(weight_sum.begin(), weight_sum.end(), 0.0);
        for (size_t h = 0; h < n.heads; ++h) {
            const size_t bh = b * n.heads + h, kv_offset = (b * n.kv_heads + h / n.group) * n.lk * n.head_dim;
            score_block(c, n, options, in, b, h, st.q.data() + bh * n.lq * n.head_dim, st.k.data() + kv_offset, block);
            if (keep.scores) store(block.data(), block_size, keep.scores->data() + bh * block_size);
            const float* sink = c.sinks ? &w.sinks[h] : nullptr;
            for (size_t i = 0; i < n.lq; ++i) softmax_row(block.data() + i * n.lk, n.lk, sink);
            if (keep.probs) store(block.data(), block_size, keep.probs->data() + bh * block_size);
            if (!in.head_mask.empty()) {
                const double factor = in.head_mask[in.head_mask.size() == n.heads ? h : bh];
                for (double& p : block) p *= factor;
            }
            if (keep.weights && per_head) store(block.data(), block_size, keep.weights->data() + bh * block_size);
            if (keep.weights && average)
                for (size_t e = 0; e < block_size; ++e) weight_sum[e] += block[e];
            apply_values(n, b, h, block, st.v.data() + kv_offset, acc, st.concat);
        }
        if (keep.weights && average) {
            const double inv_heads = 1.0 / static_cast<double>(n.heads);
            float* dst = keep.weights->data() + b * block_size;
            for (size_t e = 0; e < block_size; ++e) dst[e] = static_cast<float>(weight_sum[e] * inv_heads);
        }
    }
}

// The options of real model families (QK-norm, RoPE, scale, soft-cap, sinks): values in range and the weights they
// read present. q_norm, k_norm and sinks are ignored, so may hold anything, while their option is off.
Status validate_model_options(const AttentionConfig& config, const AttentionWeights& weights) {
    const uint32_t d = config.head_dim();
    if (config.qk_norm) {
        VKMHA_TRY(check_size("q_norm", weights.q_norm, d, "head_dim " + str(d) + ", qk_norm is on", false));
        VKMHA_TRY(check_size("k_norm", weights.k_norm, d, "head_dim " + str(d) + ", qk_norm is on", false));
        if (!(config.norm_eps > 0.0f) || !std::isfinite(config.norm_eps))
            return invalid("norm_eps " + num(config.norm_eps) + " must be finite and > 0");
    }
    if (config.sinks)
        VKMHA_TRY(check_size("sinks", weights.sinks, config.num_heads,
                             "num_heads " + str(config.num_heads) + ", sinks is on", false));
    VKMHA_TRY(validate_rope(config.rope, d));
    if (!(config.scale >= 0.0f) || !std::isfinite(config.scale))
        return invalid("scale " + num(config.scale) + " must be finite and >= 0 (0 = 1/sqrt(head_dim))");
    if (!(config.softcap >= 0.0f) || !std::isfinite(config.softcap))
        return invalid("softcap " + num(config.softcap) + " must be finite and >= 0 (0 = off)");
    return {};
}

// Attention only: the head counts and shape, the model options, and the Q/K/V pointers (no projection weights).
Status validate_qkv(const AttentionConfig& config, const AttentionWeights& weights, const AttentionShape& shape,
                    const AttentionOptions& options, const AttentionInputs& inputs) {
    if (config.num_heads == 0 || config.num_kv_heads == 0 || config.head_dim() == 0)
        return invalid("num_heads " + str(config.num_heads) + ", num_kv_heads " + str(config.num_kv_heads) +
                       " and head_dim " + str(config.head_dim()) + " must be nonzero");
    if (config.num_heads % config.num_kv_heads != 0)
        return invalid("num_heads " + str(config.num_heads) + " is not divisible by num_kv_heads " +
                       str(config.num_kv_heads));
    if (shape.batch == 0 || shape.lq == 0 || shape.lk == 0) return invalid("shape has a zero");
    if (!inputs.query || !inputs.key || !inputs.value) return invalid("attention only needs q, k and v");
    if (options.key_padding == MaskKind::boolean && !inputs.key_padding_mask)
        return invalid("key_padding is boolean but key_padding_mask is null");
    if (options.attn_mask != MaskKind::none && !inputs.attn_mask) return invalid("attn_mask pointer is null");
    return validate_model_options(config, weights);
}

// Runs `body` and turns the only exceptions it can raise (allocation) into an Error, so nothing escapes.
template <typename T, typename Body> Result<T> no_throw(Body&& body) {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return make_error(ErrorCode::out_of_memory, "cpu reference: host allocation failed");
    } catch (const std::length_error&) {
        return make_error(ErrorCode::out_of_memory, "cpu reference: host allocation too large");
    }
}

} // namespace

Status validate_attention(const AttentionConfig& config, const AttentionWeights& weights, const AttentionShape& shape,
                          const AttentionOptions& options) {
    if (config.embed_dim == 0) return invalid("embed_dim is 0");
    if (config.num_heads == 0) return invalid("num_heads is 0");
    if (config.num_kv_heads == 0) return invalid("num_kv_heads is 0");
    if (config.kdim == 0) return invalid("kdim is 0");
    if (config.vdim == 0) return invalid("vdim is 0");
    if (config.explicit_head_dim == 0 && config.embed_dim % config.num_heads != 0)
        return invalid("embed_dim " + str(config.embed_dim) + " is not divisible by num_heads " +
                       str(config.num_heads) + " (give the head dim)");
    if (config.num_heads % config.num_kv_heads != 0)
        return invalid("num_heads " + str(config.num_heads) + " is not divisible by num_kv_heads " +
                       str(config.num_kv_heads));
    if (shape.batch == 0) return invalid("batch is 0");
    if (shape.lq == 0) return invalid("lq is 0");
    if (shape.lk == 0) return invalid("lk is 0");
    if (!is_known_mask_kind(options.key_padding))
        return invalid("key_padding mask kind " + str(static_cast<uint32_t>(options.key_padding)) + " is unknown");
    if (options.key_padding == MaskKind::additive)
        return invalid("key_padding mask kind must be boolean or none, got additive");
    if (!is_known_mask_kind(options.attn_mask))
        return invalid("attn_mask kind " + str(static_cast<uint32_t>(options.attn_mask)) + " is unknown");

    const size_t e = config.embed_dim, qw = config.q_width(), kv = config.kv_width(), kdim = config.kdim,
                 vdim = config.vdim;
    size_t count = 0;
    if (!checked_product({qw, e}, count) || !checked_product({kv, std::max(kdim, vdim)}, count))
        return invalid("weight sizes for embed_dim " + str(e) + ", kdim " + str(kdim) + ", vdim " + str(vdim) +
                       " overflow size_t");
    const std::string e_text = str(e), qw_text = str(qw), kv_text = str(kv);
    VKMHA_TRY(check_size("wq", weights.wq, qw * e, qw_text + " x " + e_text, false));
    VKMHA_TRY(check_size("wk", weights.wk, kv * kdim, kv_text + " x kdim " + str(kdim), false));
    VKMHA_TRY(check_size("wv", weights.wv, kv * vdim, kv_text + " x vdim " + str(vdim), false));
    VKMHA_TRY(check_size("wo", weights.wo, e * qw, e_text + " x " + qw_text, false));
    VKMHA_TRY(check_size("bq", weights.bq, qw, qw_text, true));
    VKMHA_TRY(check_size("bk", weights.bk, kv, kv_text, true));
    VKMHA_TRY(check_size("bv", weights.bv, kv, kv_text, true));
    VKMHA_TRY(check_size("bo", weights.bo, e, e_text, true));
    VKMHA_TRY(validate_model_options(config, weights));

    // Every buffer the reference (or a caller) would size from this shape must be countable in size_t.
    const size_t b = shape.batch, lq = shape.lq, lk = shape.lk, h = config.num_heads;
    if (!checked_product({b, lq, e}, count) || !checked_product({b, lk, std::max(kdim, vdim)}, count) ||
        !checked_product({b, h, lq, lk}, count) || !checked_product({b, h, lq, lk, sizeof(double)}, count))
        return invalid("shape batch " + str(b) + " x lq " + str(lq) + " x lk " + str(lk) + " x heads " + str(h) +
                       " overflows size_t");
    return {};
}

Result<AttentionStages> reference_attention_stages(const AttentionConfig& config, const AttentionWeights& weights,
                                                   const AttentionShape& shape, const AttentionOptions& options,
                                                   const AttentionInputs& inputs) {
    VKMHA_TRY(validate_attention(config, weights, shape, options));
    VKMHA_TRY(validate_inputs(config, shape, options, inputs));
    return no_throw<AttentionStages>([&]() -> Result<AttentionStages> {
        AttentionStages stages;
        Keep keep;
        keep.scores = &stages.scores;
        keep.probs = &stages.probs;
        run_attention(config, dims_of(config, shape), weights, options, inputs, stages, keep);
        return stages;
    });
}

Result<AttentionOutputs> reference_attention(const AttentionConfig& config, const AttentionWeights& weights,
                                             const AttentionShape& shape, const AttentionOptions& options,
                                             const AttentionInputs& inputs) {
    VKMHA_TRY(validate_attention(config, weights, shape, options));
    VKMHA_TRY(validate_inputs(config, shape, options, inputs));
    return no_throw<AttentionOutputs>([&]() -> Result<AttentionOutputs> {
        AttentionStages stages;
        AttentionOutputs outputs;
        Keep keep;
        keep.weights = &outputs.weights;
        run_attention(config, dims_of(config, shape), weights, options, inputs, stages, keep);
        outputs.output = std::move(stages.output);
        return outputs;
    });
}

Result<AttentionOutputs> reference_attention_qkv(const AttentionConfig& config, const AttentionWeights& weights,
                                                 const AttentionShape& shape, const AttentionOptions& options,
                                                 const AttentionInputs& inputs) {
    VKMHA_TRY(validate_qkv(config, weights, shape, options, inputs));
    VKMHA_TRY(validate_head_mask(config, shape, inputs));
    return no_throw<AttentionOutputs>([&]() -> Result<AttentionOutputs> {
        const Dims n = dims_of(config, shape);
        AttentionStages st;
        st.q.assign(inputs.query, inputs.query + n.batch * n.heads * n.lq * n.head_dim);
        st.k.assign(inputs.key, inputs.key + n.batch * n.kv_heads * n.lk * n.head_dim);
        st.v.assign(inputs.value, inputs.value + n.batch * n.kv_heads * n.lk * n.head_dim);
        if (config.qk_norm) {
            rms_norm_rows(st.q, n.head_dim, weights.q_norm, config.norm_eps);
            rms_norm_rows(st.k, n.head_dim, weights.k_norm, config.norm_eps);
        }
        if (config.rope.enabled()) rotate_rows(config, n, inputs, st);
        AttentionOutputs outputs;
        Keep keep;
        keep.weights = &outputs.weights;
        attend(config, n, weights, options, inputs, st, keep);
        // The concatenated heads [B, Lq, H, D] as scaled_dot_product_attention returns O: [B, H, Lq, D].
        outputs.output.resize(st.concat.size());
        for (size_t b = 0; b < n.batch; ++b)
            for (size_t i = 0; i < n.lq; ++i)
                for (size_t h = 0; h < n.heads; ++h)
                    std::copy_n(st.concat.data() + ((b * n.lq + i) * n.heads + h) * n.head_dim, n.head_dim,
                                outputs.output.data() + ((b * n.heads + h) * n.lq + i) * n.head_dim);
        return outputs;
    });
}

} // namespace vkmha
