// Recognises the naming scheme of an attention checkpoint, checks every shape, and splits/converts to fp32.
#include "io/weight_map.h"

#include <algorithm>
#include <exception>
#include <limits>
#include <new>
#include <span>
#include <string_view>
#include <utility>

namespace vkmha::io {

namespace {

constexpr size_t max_names_in_messages = 8;

constexpr std::string_view torch_packed_scheme = "PyTorch nn.MultiheadAttention (packed in_proj_weight)";
constexpr std::string_view torch_separate_scheme = "PyTorch nn.MultiheadAttention (separate q/k/v_proj_weight)";
constexpr std::string_view llama_scheme = "Hugging Face Llama";

constexpr std::string_view torch_names[] = {"in_proj_weight", "in_proj_bias",    "q_proj_weight", "k_proj_weight",
                                            "v_proj_weight",  "out_proj.weight", "out_proj.bias"};
constexpr std::string_view torch_separate_names[] = {"q_proj_weight", "k_proj_weight", "v_proj_weight"};
constexpr std::string_view llama_names[] = {"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight",
                                            "q_proj.bias",   "k_proj.bias",   "v_proj.bias",   "o_proj.bias"};

std::string names_found(const std::vector<Tensor>& tensors) {
    if (tensors.empty()) return "the file has no tensors";
    std::vector<std::string_view> names;
    names.reserve(tensors.size());
    for (const Tensor& tensor : tensors) names.push_back(tensor.name);
    std::sort(names.begin(), names.end());
    std::string out = "found ";
    for (size_t i = 0; i < names.size() && i < max_names_in_messages; ++i) {
        if (i > 0) out += ", ";
        out += quote_for_message(names[i]);
    }
    if (names.size() > max_names_in_messages)
        out += " and " + std::to_string(names.size() - max_names_in_messages) + " more";
    return out;
}

const Tensor* first_present(const std::vector<Tensor>& tensors, std::span<const std::string_view> names) {
    for (const std::string_view name : names)
        if (const Tensor* tensor = find_tensor(tensors, name)) return tensor;
    return nullptr;
}

// Looks tensors up under one scheme, checking shapes and converting to float; messages name the file.
class SchemeReader {
  public:
    SchemeReader(const std::vector<Tensor>& tensors, const std::string& file, std::string_view scheme)
        : m_tensors(tensors), m_file(file), m_scheme(scheme) {}

    Error error(ErrorCode code, const std::string& what) const {
        return make_error(code, printable_for_message(m_file, 1024) + ": " + what);
    }

    // A tensor that must exist with the given rank; its dimensions then define the others.
    Result<const Tensor*> require_rank(std::string_view name, size_t rank, std::string_view symbolic_shape) const {
        const Tensor* tensor = find_tensor(m_tensors, name);
        if (!tensor)
            return error(ErrorCode::io, std::string(m_scheme) + " weights: missing " + quote_for_message(name) + " " +
                                            std::string(symbolic_shape));
        if (tensor->shape.size() != rank)
            return error(ErrorCode::io, "tensor " + quote_for_message(name) + ": expected shape " +
                                            std::string(symbolic_shape) + ", got " + shape_to_string(tensor->shape));
        return tensor;
    }

    // A dimension that becomes a uint32_t AttentionConfig field.
    Result<uint32_t> dimension(const Tensor& tensor, size_t axis, std::string_view meaning) const {
        const uint64_t value = tensor.shape[axis];
        if (value == 0 || value > std::numeric_limits<uint32_t>::max())
            return error(ErrorCode::io, "tensor " + quote_for_message(tensor.name) + " " +
                                            shape_to_string(tensor.shape) + ": " + std::string(meaning) + " " +
                                            std::to_string(value) + " is out of range (1 to 2^32-1)");
        return static_cast<uint32_t>(value);
    }

    Result<std::vector<float>> required(std::string_view name, const std::vector<uint64_t>& shape,
                                        std::string_view symbolic_shape) const {
        const Tensor* tensor = find_tensor(m_tensors, name);
        if (!tensor)
            return error(ErrorCode::io, std::string(m_scheme) + " weights: missing " + quote_for_message(name) + " " +
                                            std::string(symbolic_shape) + " = " + shape_to_string(shape));
        return convert(*tensor, shape, symbolic_shape);
    }

    // Empty when absent, which AttentionWeights reads as a zero bias.
    Result<std::vector<float>> optional(std::string_view name, const std::vector<uint64_t>& shape,
                                        std::string_view symbolic_shape) const {
        const Tensor* tensor = find_tensor(m_tensors, name);
        if (!tensor) return std::vector<float>{};
        return convert(*tensor, shape, symbolic_shape);
    }

  private:
    const std::vector<Tensor>& m_tensors;
    const std::string& m_file;
    std::string_view m_scheme;

    Result<std::vector<float>> convert(const Tensor& tensor, const std::vector<uint64_t>& shape,
                                       std::string_view symbolic_shape) const {
        if (tensor.shape != shape)
            return error(ErrorCode::io, "tensor " + quote_for_message(tensor.name) + ": expected shape " +
                                            shape_to_string(shape) + " " + std::string(symbolic_shape) + ", got " +
                                            shape_to_string(tensor.shape));
        return to_float(tensor, m_file);
    }
};

// Rows [first, first + count) of a row-major matrix with `columns` columns (a bias is one column).
std::vector<float> rows(const std::vector<float>& matrix, uint64_t columns, uint64_t first, uint64_t count) {
    if (matrix.empty()) return {};
    const auto begin = matrix.begin() + static_cast<std::ptrdiff_t>(first * columns);
    return std::vector<float>(begin, begin + static_cast<std::ptrdiff_t>(count * columns));
}

Error heads_do_not_divide(const SchemeReader& reader, uint32_t embed_dim, std::string_view source, uint32_t num_heads) {
    return reader.error(ErrorCode::invalid_argument, "embed_dim " + std::to_string(embed_dim) + " (from " +
                                                         std::string(source) + ") is not divisible by num_heads " +
                                                         std::to_string(num_heads));
}

Result<LoadedModel> map_torch_packed(const std::vector<Tensor>& tensors, uint32_t num_heads, const std::string& file) {
    const SchemeReader reader(tensors, file, torch_packed_scheme);
    auto in_proj = reader.require_rank("in_proj_weight", 2, "[3E, E]");
    if (!in_proj) return in_proj.take_error();
    auto embed = reader.dimension(**in_proj, 1, "E (columns)");
    if (!embed) return embed.take_error();
    const uint32_t e = *embed;
    if (e % num_heads != 0) return heads_do_not_divide(reader, e, "in_proj_weight columns", num_heads);

    LoadedModel model;
    model.config = {e, num_heads, num_heads, e, e};
    auto weight = reader.required("in_proj_weight", {3ull * e, e}, "[3E, E]");
    if (!weight) return weight.take_error();
    auto bias = reader.optional("in_proj_bias", {3ull * e}, "[3E]");
    if (!bias) return bias.take_error();
    auto out_weight = reader.required("out_proj.weight", {e, e}, "[E, E]");
    if (!out_weight) return out_weight.take_error();
    auto out_bias = reader.optional("out_proj.bias", {e}, "[E]");
    if (!out_bias) return out_bias.take_error();

    AttentionWeights& w = model.weights;
    w.wq = rows(*weight, e, 0, e);
    w.wk = rows(*weight, e, e, e);
    w.wv = rows(*weight, e, 2ull * e, e);
    w.bq = rows(*bias, 1, 0, e);
    w.bk = rows(*bias, 1, e, e);
    w.bv = rows(*bias, 1, 2ull * e, e);
    w.wo = std::move(out_weight.value());
    w.bo = std::move(out_bias.value());
    return model;
}

Result<LoadedModel> map_torch_separate(const std::vector<Tensor>& tensors, uint32_t num_heads,
                                       const std::string& file) {
    const SchemeReader reader(tensors, file, torch_separate_scheme);
    auto q = reader.require_rank("q_proj_weight", 2, "[E, E]");
    if (!q) return q.take_error();
    auto k = reader.require_rank("k_proj_weight", 2, "[E, kdim]");
    if (!k) return k.take_error();
    auto v = reader.require_rank("v_proj_weight", 2, "[E, vdim]");
    if (!v) return v.take_error();
    auto embed = reader.dimension(**q, 0, "E (rows)");
    if (!embed) return embed.take_error();
    auto kdim = reader.dimension(**k, 1, "kdim (columns)");
    if (!kdim) return kdim.take_error();
    auto vdim = reader.dimension(**v, 1, "vdim (columns)");
    if (!vdim) return vdim.take_error();
    const uint32_t e = *embed;
    if (e % num_heads != 0) return heads_do_not_divide(reader, e, "q_proj_weight rows", num_heads);

    LoadedModel model;
    model.config = {e, num_heads, num_heads, *kdim, *vdim};
    AttentionWeights& w = model.weights;
    auto wq = reader.required("q_proj_weight", {e, e}, "[E, E]");
    if (!wq) return wq.take_error();
    auto wk = reader.required("k_proj_weight", {e, *kdim}, "[E, kdim]");
    if (!wk) return wk.take_error();
    auto wv = reader.required("v_proj_weight", {e, *vdim}, "[E, vdim]");
    if (!wv) return wv.take_error();
    // PyTorch keeps the biases packed even when the weights are separate.
    auto bias = reader.optional("in_proj_bias", {3ull * e}, "[3E]");
    if (!bias) return bias.take_error();
    auto out_weight = reader.required("out_proj.weight", {e, e}, "[E, E]");
    if (!out_weight) return out_weight.take_error();
    auto out_bias = reader.optional("out_proj.bias", {e}, "[E]");
    if (!out_bias) return out_bias.take_error();

    w.wq = std::move(wq.value());
    w.wk = std::move(wk.value());
    w.wv = std::move(wv.value());
    w.bq = rows(*bias, 1, 0, e);
    w.bk = rows(*bias, 1, e, e);
    w.bv = rows(*bias, 1, 2ull * e, e);
    w.wo = std::move(out_weight.value());
    w.bo = std::move(out_bias.value());
    return model;
}

Result<LoadedModel> map_llama(const std::vector<Tensor>& tensors, uint32_t num_heads, uint32_t num_kv_heads,
                              const std::string& file) {
    const SchemeReader reader(tensors, file, llama_scheme);
    auto q = reader.require_rank("q_proj.weight", 2, "[H*D, E]");
    if (!q) return q.take_error();
    auto k = reader.require_rank("k_proj.weight", 2, "[G*D, E]");
    if (!k) return k.take_error();
    const Tensor& q_tensor = **q;
    // The head dim comes from q_proj.weight's rows (H*D), which need not equal the hidden size (columns): Gemma and
    // Qwen3 layers have H*D != E.
    auto q_rows = reader.dimension(q_tensor, 0, "H*D (rows)");
    if (!q_rows) return q_rows.take_error();
    auto embed = reader.dimension(q_tensor, 1, "E (columns)");
    if (!embed) return embed.take_error();
    const uint32_t e = *embed, qw = *q_rows;
    if (qw % num_heads != 0)
        return reader.error(ErrorCode::invalid_argument, "q_proj.weight rows " + std::to_string(qw) +
                                                             " (num_heads * head_dim) are not divisible by num_heads " +
                                                             std::to_string(num_heads));
    const uint32_t head_dim = qw / num_heads;

    uint32_t kv_heads = num_kv_heads;
    if (kv_heads == 0) {
        const uint64_t kv_rows = (*k)->shape[0];
        if (kv_rows == 0 || kv_rows % head_dim != 0 || kv_rows / head_dim > num_heads ||
            num_heads % (kv_rows / head_dim) != 0)
            return reader.error(ErrorCode::io, "tensor 'k_proj.weight' has " + std::to_string(kv_rows) +
                                                   " rows, which is not num_kv_heads * head_dim " +
                                                   std::to_string(head_dim) + " (q_proj rows " + std::to_string(qw) +
                                                   " / num_heads " + std::to_string(num_heads) +
                                                   ") for any num_kv_heads dividing num_heads");
        kv_heads = static_cast<uint32_t>(kv_rows / head_dim);
    } else if (num_heads % kv_heads != 0) {
        return reader.error(ErrorCode::invalid_argument, "num_heads " + std::to_string(num_heads) +
                                                             " is not divisible by num_kv_heads " +
                                                             std::to_string(kv_heads));
    }
    const uint64_t kv_width = uint64_t{kv_heads} * head_dim;

    LoadedModel model;
    model.config = {e, num_heads, kv_heads, e, e};
    if (qw != e) model.config.explicit_head_dim = head_dim;
    AttentionWeights& w = model.weights;
    struct Projection {
        std::string_view weight_name, bias_name;
        uint64_t rows, columns;
        std::string_view weight_shape, bias_shape;
        std::vector<float>*weight, *bias;
    };
    const Projection projections[] = {
        {"q_proj.weight", "q_proj.bias", qw, e, "[H*D, E]", "[H*D]", &w.wq, &w.bq},
        {"k_proj.weight", "k_proj.bias", kv_width, e, "[G*D, E]", "[G*D]", &w.wk, &w.bk},
        {"v_proj.weight", "v_proj.bias", kv_width, e, "[G*D, E]", "[G*D]", &w.wv, &w.bv},
        {"o_proj.weight", "o_proj.bias", e, qw, "[E, H*D]", "[E]", &w.wo, &w.bo},
    };
    for (const Projection& p : projections) {
        auto weight = reader.required(p.weight_name, {p.rows, p.columns}, p.weight_shape);
        if (!weight) return weight.take_error();
        auto bias = reader.optional(p.bias_name, {p.rows}, p.bias_shape);
        if (!bias) return bias.take_error();
        *p.weight = std::move(weight.value());
        *p.bias = std::move(bias.value());
    }
    return model;
}

Result<LoadedModel> map_projections(const std::vector<Tensor>& tensors, uint32_t num_heads, uint32_t num_kv_heads,
                                    const std::string& file) {
    const SchemeReader reader(tensors, file, "");
    if (num_heads == 0) return reader.error(ErrorCode::invalid_argument, "num_heads must be at least 1");
    for (const std::string_view name : {std::string_view("bias_k"), std::string_view("bias_v")})
        if (find_tensor(tensors, name))
            return reader.error(ErrorCode::unsupported,
                                "tensor " + quote_for_message(name) +
                                    ": nn.MultiheadAttention(add_bias_kv=True) is not supported");

    const Tensor* torch_tensor = first_present(tensors, torch_names);
    const Tensor* llama_tensor = first_present(tensors, llama_names);
    if (torch_tensor && llama_tensor)
        return reader.error(ErrorCode::io, "both PyTorch (" + quote_for_message(torch_tensor->name) + ") and Llama (" +
                                               quote_for_message(llama_tensor->name) +
                                               ") attention names are present; cannot tell which to load");
    if (llama_tensor) return map_llama(tensors, num_heads, num_kv_heads, file);
    if (!torch_tensor)
        return reader.error(ErrorCode::io,
                            "no attention weights recognised: expected PyTorch nn.MultiheadAttention names "
                            "(in_proj_weight or q_proj_weight/k_proj_weight/v_proj_weight, out_proj.weight) or "
                            "Llama names (q_proj.weight, k_proj.weight, v_proj.weight, o_proj.weight); " +
                                names_found(tensors));

    if (num_kv_heads != 0 && num_kv_heads != num_heads)
        return reader.error(ErrorCode::invalid_argument,
                            "num_kv_heads " + std::to_string(num_kv_heads) + " != num_heads " +
                                std::to_string(num_heads) +
                                ": PyTorch nn.MultiheadAttention weights have no grouped-query attention");
    const bool packed = find_tensor(tensors, "in_proj_weight") != nullptr;
    const Tensor* separate = first_present(tensors, torch_separate_names);
    if (packed && separate)
        return reader.error(ErrorCode::io, "both 'in_proj_weight' and " + quote_for_message(separate->name) +
                                               " are present; cannot tell packed from separate projections");
    if (packed) return map_torch_packed(tensors, num_heads, file);
    if (separate) return map_torch_separate(tensors, num_heads, file);
    return reader.error(ErrorCode::io, std::string(torch_packed_scheme) +
                                           " weights: missing 'in_proj_weight' [3E, E] (or q_proj_weight, "
                                           "k_proj_weight and v_proj_weight); " +
                                           names_found(tensors));
}

// QK-norm ([D] each, both or neither) and attention sinks ([H]) go with any naming scheme, so they are read once
// the projections have fixed D and H.
Status map_norms_and_sinks(const std::vector<Tensor>& tensors, const std::string& file, LoadedModel& model) {
    const SchemeReader reader(tensors, file, "QK-norm");
    AttentionConfig& c = model.config;
    AttentionWeights& w = model.weights;
    const bool q = find_tensor(tensors, "q_norm.weight") != nullptr,
               k = find_tensor(tensors, "k_norm.weight") != nullptr;
    if (q != k)
        return reader.error(ErrorCode::io, std::string("tensor ") + (q ? "'q_norm.weight'" : "'k_norm.weight'") +
                                               " is given without " + (q ? "'k_norm.weight'" : "'q_norm.weight'") +
                                               " (QK-norm needs both, [D] each)");
    if (q) {
        auto q_norm = reader.required("q_norm.weight", {c.head_dim()}, "[D]");
        if (!q_norm) return q_norm.take_error();
        auto k_norm = reader.required("k_norm.weight", {c.head_dim()}, "[D]");
        if (!k_norm) return k_norm.take_error();
        w.q_norm = std::move(q_norm.value());
        w.k_norm = std::move(k_norm.value());
        c.qk_norm = true;
    }
    auto sinks = reader.optional("sinks", {c.num_heads}, "[H]");
    if (!sinks) return sinks.take_error();
    w.sinks = std::move(sinks.value());
    c.sinks = !w.sinks.empty();
    return {};
}

Result<LoadedModel> map_weights(const std::vector<Tensor>& tensors, uint32_t num_heads, uint32_t num_kv_heads,
                                const std::string& file) {
    auto model = map_projections(tensors, num_heads, num_kv_heads, file);
    if (model) VKMHA_TRY(map_norms_and_sinks(tensors, file, model.value()));
    return model;
}

} // namespace

Result<LoadedModel> map_attention_weights(const std::vector<Tensor>& tensors, uint32_t num_heads, uint32_t num_kv_heads,
                                          const std::string& file) {
    try {
        return map_weights(tensors, num_heads, num_kv_heads, file);
    } catch (const std::bad_alloc&) {
        return make_error(ErrorCode::out_of_memory, printable_for_message(file, 1024) + ": out of host memory");
    } catch (const std::exception& e) {
        return make_error(ErrorCode::internal, printable_for_message(file, 1024) +
                                                   ": unexpected exception: " + printable_for_message(e.what(), 200));
    }
}

} // namespace vkmha::io
