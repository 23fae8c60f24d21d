// attention_inputs.cpp: reads and checks the input tensors; the messages are part of vkmha-run's interface
// (tests/test_cli.cpp holds them).
#include "attention_inputs.h"

#include "io/safetensors.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

namespace vkmha::samples {
namespace {

using io::DType;
using io::Tensor;

Error invalid(std::string message) { return make_error(ErrorCode::invalid_argument, std::move(message)); }

std::string shape_text(const std::vector<uint64_t>& s) { return io::shape_to_string(s); }

// Moves `r`'s value to `out`, or passes its error on (for VKMHA_TRY).
template <typename T> Status take(Result<T> r, T* out) {
    if (!r) return r.take_error();
    *out = std::move(r).value();
    return {};
}

Status require_rank3(const std::string& file, const Tensor& t) {
    if (t.shape.size() != 3)
        return invalid(file + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) + ", expected rank 3");
    for (uint64_t d : t.shape)
        if (d == 0 || d > (1u << 24))
            return invalid(file + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) +
                           " with an empty or huge dimension");
    return {};
}

Result<std::vector<float>> floats(const std::string& file, const Tensor& t) {
    if (t.dtype != DType::f32 && t.dtype != DType::f16 && t.dtype != DType::bf16)
        return invalid(file + ": tensor '" + t.name + "' has dtype " + std::string(io::dtype_name(t.dtype)) +
                       ", expected F32, F16 or BF16");
    return io::to_float(t, file);
}

// `name` [rows, cols], I32 or I64, as int32 (the API's type): an I64 value outside int32 is refused by value.
Status load_int_positions(const std::string& file, const Tensor& t, uint32_t rows, uint32_t cols,
                          std::vector<int32_t>& out) {
    const std::string name = "'" + t.name + "'";
    if (t.dtype != DType::i32 && t.dtype != DType::i64)
        return invalid(file + ": tensor " + name + " has dtype " + std::string(io::dtype_name(t.dtype)) +
                       ", expected I32 or I64");
    if (t.shape != std::vector<uint64_t>{rows, cols})
        return invalid(file + ": tensor " + name + " has shape " + shape_text(t.shape) + ", expected [" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "]");
    const size_t count = size_t(rows) * cols, size = io::dtype_size(t.dtype);
    if (t.data.size() != count * size) return invalid(file + ": tensor " + name + " has the wrong byte count");
    out.resize(count);
    for (size_t i = 0; i < count; ++i) {
        int64_t v = 0;
        if (size == 4) {
            int32_t narrow = 0;
            std::memcpy(&narrow, t.data.data() + i * size, size); // safetensors is little-endian, as is the host
            v = narrow;
        } else {
            std::memcpy(&v, t.data.data() + i * size, size);
        }
        if (v < INT32_MIN || v > INT32_MAX)
            return invalid(file + ": tensor " + name + " holds " + std::to_string(v) + " at [" +
                           std::to_string(i / cols) + ", " + std::to_string(i % cols) + "], outside int32");
        out[i] = static_cast<int32_t>(v);
    }
    return {};
}

// head_mask [heads] or [batch, heads], F32 and finite, when present.
Status load_head_mask(const std::string& file, const std::vector<Tensor>& ts, uint32_t heads, InputTensors& in) {
    const Tensor* m = io::find_tensor(ts, "head_mask");
    if (!m) return {};
    const std::vector<uint64_t> one{heads}, two{in.batch, heads};
    if (m->shape != one && m->shape != two)
        return invalid(file + ": tensor 'head_mask' has shape " + shape_text(m->shape) + ", expected " +
                       shape_text(one) + " or " + shape_text(two));
    if (m->dtype != DType::f32)
        return invalid(file + ": tensor 'head_mask' has dtype " + std::string(io::dtype_name(m->dtype)) +
                       ", expected F32");
    VKMHA_TRY(take(floats(file, *m), &in.head_mask));
    for (size_t i = 0; i < in.head_mask.size(); ++i)
        if (!std::isfinite(in.head_mask[i]))
            return invalid(file + ": tensor 'head_mask' holds " + std::to_string(in.head_mask[i]) + " at index " +
                           std::to_string(i) + ", not a finite factor");
    return {};
}

// key_padding_mask [batch, lk] and attn_mask [lq, lk] or [batch * heads, lq, lk], when present; the head mask.
Status load_masks(const std::string& file, const std::vector<Tensor>& ts, uint32_t heads, InputTensors& in) {
    VKMHA_TRY(load_head_mask(file, ts, heads, in));
    if (const Tensor* m = io::find_tensor(ts, "key_padding_mask")) {
        if (m->dtype != DType::boolean && m->dtype != DType::u8)
            return invalid(file + ": tensor 'key_padding_mask' has dtype " + std::string(io::dtype_name(m->dtype)) +
                           ", expected BOOL or U8");
        if (m->shape != std::vector<uint64_t>{in.batch, in.lk})
            return invalid(file + ": tensor 'key_padding_mask' has shape " + shape_text(m->shape) + ", expected [" +
                           std::to_string(in.batch) + ", " + std::to_string(in.lk) + "]");
        VKMHA_TRY(take(io::to_bool_bytes(*m, file), &in.key_padding_mask));
    }
    if (const Tensor* m = io::find_tensor(ts, "attn_mask")) {
        const std::vector<uint64_t> two{in.lq, in.lk}, three{uint64_t(in.batch) * heads, in.lq, in.lk};
        if (m->shape == three)
            in.mask_per_head = true;
        else if (m->shape != two)
            return invalid(file + ": tensor 'attn_mask' has shape " + shape_text(m->shape) + ", expected " +
                           shape_text(two) + " or " + shape_text(three));
        if (m->dtype == DType::boolean || m->dtype == DType::u8) {
            VKMHA_TRY(take(io::to_bool_bytes(*m, file), &in.mask_bytes));
            in.mask_type = VKMHA_MASK_TYPE_BOOL;
        } else if (m->dtype == DType::f32) {
            VKMHA_TRY(take(floats(file, *m), &in.mask_floats));
            in.mask_type = VKMHA_MASK_TYPE_ADDITIVE;
        } else {
            return invalid(file + ": tensor 'attn_mask' has dtype " + std::string(io::dtype_name(m->dtype)) +
                           ", expected BOOL, U8 or F32");
        }
    }
    return {};
}

Status require_rank4(const std::string& file, const Tensor& t) {
    if (t.shape.size() != 4)
        return invalid(file + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) +
                       ", expected rank 4 ([B, heads, L, D], as scaled_dot_product_attention takes it)");
    for (uint64_t d : t.shape)
        if (d == 0 || d > (1u << 24))
            return invalid(file + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) +
                           " with an empty or huge dimension");
    return {};
}

} // namespace

Result<InputTensors> load_input_tensors(const std::string& file, uint32_t embed_dim, uint32_t kdim, uint32_t vdim,
                                        uint32_t heads) {
    auto read = io::read_safetensors(file);
    if (!read) return read.take_error();
    const std::vector<Tensor>& ts = read.value();
    InputTensors in;
    const Tensor* q = io::find_tensor(ts, "query");
    if (!q)
        return invalid(
            file + ": tensor 'query' is missing" +
            (io::find_tensor(ts, "q") ? " (it holds 'q': run with --qkv for the caller's own Q, K, V)" : ""));
    VKMHA_TRY(require_rank3(file, *q));
    if (q->shape[2] != embed_dim)
        return invalid(file + ": tensor 'query' has shape " + shape_text(q->shape) + ", expected [B, Lq, " +
                       std::to_string(embed_dim) + "]");
    in.batch = static_cast<uint32_t>(q->shape[0]);
    in.lq = static_cast<uint32_t>(q->shape[1]);
    in.lk = in.lq;
    VKMHA_TRY(take(floats(file, *q), &in.query));
    const Tensor* k = io::find_tensor(ts, "key");
    const Tensor* v = io::find_tensor(ts, "value");
    if (v && !k)
        return invalid(file + ": tensor 'value' is given without 'key' (give both, or neither for self-attention)");
    if (k && !v)
        return invalid(file + ": tensor 'key' is given without 'value' (give both, or neither for self-attention)");
    if (k) {
        VKMHA_TRY(require_rank3(file, *k));
        if (k->shape[0] != in.batch || k->shape[2] != kdim)
            return invalid(file + ": tensor 'key' has shape " + shape_text(k->shape) + ", expected [" +
                           std::to_string(in.batch) + ", Lk, " + std::to_string(kdim) + "]");
        in.lk = static_cast<uint32_t>(k->shape[1]);
        VKMHA_TRY(take(floats(file, *k), &in.key));
        in.has_key = true;
        const Tensor& vt = v ? *v : *k;
        if (v) VKMHA_TRY(require_rank3(file, *v));
        if (vt.shape[0] != in.batch || vt.shape[1] != in.lk || vt.shape[2] != vdim)
            return invalid(file + ": tensor '" + vt.name + "' has shape " + shape_text(vt.shape) + ", expected [" +
                           std::to_string(in.batch) + ", " + std::to_string(in.lk) + ", " + std::to_string(vdim) + "]");
        if (v) {
            VKMHA_TRY(take(floats(file, *v), &in.value));
            in.has_value = true;
        }
    } else if (kdim != embed_dim || vdim != embed_dim) {
        return invalid(file + ": tensor 'key' is missing (the weights have kdim " + std::to_string(kdim) + ", vdim " +
                       std::to_string(vdim) + ")");
    }
    VKMHA_TRY(load_masks(file, ts, heads, in));
    if (const Tensor* p = io::find_tensor(ts, "position_ids"))
        VKMHA_TRY(load_int_positions(file, *p, in.batch, in.lq, in.position_ids));
    return in;
}

Result<InputTensors> load_qkv_tensors(const std::string& file, uint32_t heads, uint32_t kv_heads) {
    auto read = io::read_safetensors(file);
    if (!read) return read.take_error();
    const std::vector<Tensor>& ts = read.value();
    InputTensors in;
    const Tensor* q = io::find_tensor(ts, "q");
    if (!q)
        return invalid(file + ": tensor 'q' is missing (--qkv reads q [B, H, Lq, D], k and v [B, G, Lk, D])" +
                       std::string(io::find_tensor(ts, "query") ? "; it holds 'query': run without --qkv" : ""));
    VKMHA_TRY(require_rank4(file, *q));
    if (q->shape[1] != heads)
        return invalid(file + ": tensor 'q' has shape " + shape_text(q->shape) + ", expected [B, " +
                       std::to_string(heads) + ", Lq, D] (--heads " + std::to_string(heads) + ")");
    in.batch = static_cast<uint32_t>(q->shape[0]);
    in.heads = heads;
    in.lq = static_cast<uint32_t>(q->shape[2]);
    in.head_dim = static_cast<uint32_t>(q->shape[3]);
    VKMHA_TRY(take(floats(file, *q), &in.query));
    for (const char* name : {"k", "v"}) {
        const Tensor* t = io::find_tensor(ts, name);
        if (!t) return invalid(file + ": tensor '" + name + "' is missing (--qkv reads k and v [B, G, Lk, D])");
        VKMHA_TRY(require_rank4(file, *t));
        const bool first = name[0] == 'k';
        if (first) {
            in.kv_heads = kv_heads ? kv_heads : static_cast<uint32_t>(t->shape[1]);
            in.lk = static_cast<uint32_t>(t->shape[2]);
        }
        const std::vector<uint64_t> want{in.batch, in.kv_heads, in.lk, in.head_dim};
        if (t->shape != want)
            return invalid(
                file + ": tensor '" + name + "' has shape " + shape_text(t->shape) + ", expected " + shape_text(want) +
                (first && kv_heads && t->shape[1] != kv_heads ? " (--kv-heads " + std::to_string(kv_heads) + ")"
                                                              : std::string(" (q's batch and head dim)")));
        VKMHA_TRY(take(floats(file, *t), first ? &in.key : &in.value));
    }
    if (heads % in.kv_heads != 0)
        return invalid(file + ": tensor 'k' has " + std::to_string(in.kv_heads) +
                       " heads, which does not divide --heads " + std::to_string(heads));
    in.has_key = in.has_value = true;
    VKMHA_TRY(load_masks(file, ts, heads, in));
    if (const Tensor* p = io::find_tensor(ts, "position_ids"))
        VKMHA_TRY(load_int_positions(file, *p, in.batch, in.lq, in.position_ids));
    if (const Tensor* p = io::find_tensor(ts, "key_position_ids"))
        VKMHA_TRY(load_int_positions(file, *p, in.batch, in.lk, in.key_position_ids));
    return in;
}

} // namespace vkmha::samples
