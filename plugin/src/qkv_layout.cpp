// The caller's own Q, K, V and O (1.2, attention only): layouts turned into the host's strides, and the bindings and
// pointers those calls require, each refusal naming the struct and field.
#include "qkv_layout.h"

#include "checked_math.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

namespace vkmha::plugin {
namespace {

// `owner::field` for messages.
std::string field_name(const char* owner, const char* field) { return std::string(owner) + "::" + field; }

} // namespace

// Strides [heads, L, D] packed, or an error when they do not fit the 32 bits the kernels take.
Result<TensorStrides> contiguous(uint32_t heads, uint32_t L, uint32_t D) {
    const uint64_t batch = uint64_t(heads) * L * D;
    if (batch > UINT32_MAX)
        return make_error(ErrorCode::out_of_range, "a tensor of " + std::to_string(heads) + " heads x " +
                                                       std::to_string(L) + " rows x " + std::to_string(D) +
                                                       " floats is over 2^32 elements");
    return TensorStrides{static_cast<uint32_t>(batch), L * D, D};
}

namespace {

// A caller's layout as the host's strides: all zero = `packed`; else every stride (but a cached step's batchStride,
// which must be 0) at least the head dim.
Result<TensorStrides> strides_of(const VkmhaTensorLayout& l, const TensorStrides& packed, uint32_t D,
                                 const std::string& field, bool cached) {
    if (cached && l.batchStride != 0)
        return make_error(ErrorCode::invalid_argument, field + ".batchStride is " + std::to_string(l.batchStride) +
                                                           "; a cached step's tensors have no batch: it must be 0");
    if (l.batchStride == 0 && l.headStride == 0 && l.rowStride == 0) return packed;
    const std::pair<const char*, uint32_t> all[] = {
        {"batchStride", l.batchStride}, {"headStride", l.headStride}, {"rowStride", l.rowStride}};
    for (const auto& [name, value] : all) {
        if (cached && std::string(name) == "batchStride") continue;
        if (value < D)
            return make_error(ErrorCode::invalid_argument, field + "." + name + " is " + std::to_string(value) +
                                                               ", below the head dim " + std::to_string(D) +
                                                               " (all strides 0: the contiguous layout)");
    }
    return TensorStrides{cached ? 0u : l.batchStride, l.headStride, l.rowStride};
}

// Refuses an output whose (b, h, l) rows of D floats could share a float (two invocations would write it): the strides,
// smallest first, must each step past everything the smaller ones span. Dimensions of size 1 never step.
Status check_output_rows(const TensorStrides& s, uint64_t B, uint64_t H, uint64_t L, uint32_t D,
                         const std::string& field) {
    std::array<std::pair<uint64_t, uint64_t>, 3> dims{{{s.batch, B}, {s.head, H}, {s.row, L}}};
    std::sort(dims.begin(), dims.end());
    uint64_t span = D;
    for (const auto& [stride, count] : dims) {
        if (count <= 1) continue;
        if (stride < span)
            return make_error(ErrorCode::invalid_argument,
                              field + " (batchStride " + std::to_string(s.batch) + ", headStride " +
                                  std::to_string(s.head) + ", rowStride " + std::to_string(s.row) +
                                  ") makes rows of the output overlap for [" + std::to_string(B) + ", " +
                                  std::to_string(H) + ", " + std::to_string(L) + ", " + std::to_string(D) + "]");
        // Saturating: a span past 2^64 must read as overlapping, never wrap to a small one that looks disjoint.
        span = vkmha::saturating_add(span, vkmha::saturating_mul(stride, count - 1));
    }
    return {};
}

} // namespace

// The four layouts of a Qkv record: Q and O of `H` heads over `lq` rows, K and V of G heads over `lk`; cached steps
// (no batch) pass lq = lk = 1 for the packed per-token layout [T, heads, D].
Result<OwnQkv> own_qkv(const AttentionConfig& c, const char* owner, const VkmhaTensorLayout* layouts[4], uint64_t B,
                       uint32_t lq, uint32_t lk, bool cached, uint64_t rows) {
    const uint32_t D = c.head_dim(), H = c.num_heads, G = c.num_kv_heads;
    Result<TensorStrides> packed_q = cached ? Result<TensorStrides>(TensorStrides{0, D, H * D}) : contiguous(H, lq, D);
    if (!packed_q) return packed_q.take_error();
    Result<TensorStrides> packed_kv = cached ? Result<TensorStrides>(TensorStrides{0, D, G * D}) : contiguous(G, lk, D);
    if (!packed_kv) return packed_kv.take_error();
    const char* names[4] = {"qLayout", "kLayout", "vLayout", "outputLayout"};
    TensorStrides* out[4];
    OwnQkv x;
    out[0] = &x.q, out[1] = &x.k, out[2] = &x.v, out[3] = &x.o;
    for (int i = 0; i < 4; ++i) {
        const bool kv = i == 1 || i == 2;
        auto st = strides_of(*layouts[i], kv ? *packed_kv : *packed_q, D, field_name(owner, names[i]), cached);
        if (!st) return st.take_error();
        *out[i] = *st;
    }
    VKMHA_TRY(check_output_rows(x.o, cached ? 1 : B, H, cached ? rows : lq, D, field_name(owner, "outputLayout")));
    return x;
}

// q, k, v and output: each required.
Status require_bound(const char* owner, std::initializer_list<std::pair<const char*, const VkmhaBufferBinding*>> all) {
    for (const auto& [name, b] : all)
        if (b->buffer == VK_NULL_HANDLE)
            return make_error(ErrorCode::invalid_argument,
                              field_name(owner, name) + " is not bound (q, k, v and output are required)");
    return {};
}

Status require_pointers(const char* owner, std::initializer_list<std::pair<const char*, const float*>> all) {
    for (const auto& [name, p] : all)
        if (!p) return make_error(ErrorCode::invalid_argument, field_name(owner, name) + " is NULL (required)");
    return {};
}

} // namespace vkmha::plugin
