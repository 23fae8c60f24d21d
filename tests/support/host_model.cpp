// Random layers under each naming scheme for the C ABI suites; see host_model.h.
#include "support/host_model.h"

#include "io/half.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace vkmha::test {
namespace {

// Rounds `values` through `dtype` in place and returns the tensor holding them.
io::Tensor make_tensor(std::string name, std::vector<uint64_t> shape, std::vector<float>& values, io::DType dtype) {
    io::Tensor t;
    t.name = std::move(name);
    t.dtype = dtype;
    t.shape = std::move(shape);
    if (dtype == io::DType::f32) {
        t.data.resize(values.size() * 4);
        std::memcpy(t.data.data(), values.data(), t.data.size());
        return t;
    }
    t.data.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t bits = dtype == io::DType::f16 ? io::float_to_half(values[i]) : io::float_to_bf16(values[i]);
        values[i] = dtype == io::DType::f16 ? io::half_to_float(bits) : io::bf16_to_float(bits);
        std::memcpy(t.data.data() + 2 * i, &bits, 2);
    }
    return t;
}

std::vector<float> concat(std::initializer_list<const std::vector<float>*> parts) {
    std::vector<float> out;
    for (const std::vector<float>* p : parts) out.insert(out.end(), p->begin(), p->end());
    return out;
}

std::vector<float> slice(const std::vector<float>& v, size_t first, size_t count) {
    return std::vector<float>(v.begin() + static_cast<std::ptrdiff_t>(first),
                              v.begin() + static_cast<std::ptrdiff_t>(first + count));
}

VkmhaDataType data_type(io::DType d) {
    switch (d) {
    case io::DType::f16: return VKMHA_DATA_TYPE_F16;
    case io::DType::bf16: return VKMHA_DATA_TYPE_BF16;
    default: return VKMHA_DATA_TYPE_F32;
    }
}

} // namespace

HostModel make_model(const ModelSpec& s) {
    HostModel m;
    const uint32_t E = s.embed, H = s.heads, D = E / H;
    const uint32_t G = s.naming == Naming::llama && s.kv_heads ? s.kv_heads : H;
    const uint32_t kdim = s.naming == Naming::torch_separate && s.kdim ? s.kdim : E;
    const uint32_t vdim = s.naming == Naming::torch_separate && s.vdim ? s.vdim : E;
    m.config = {E, H, G, kdim, vdim};
    const uint32_t KV = G * D;
    std::mt19937 rng(s.seed);
    const float bound = 1.0f / std::sqrt(static_cast<float>(E));
    AttentionWeights& w = m.weights;
    w.wq = random_floats(rng, size_t(E) * E, bound);
    w.wk = random_floats(rng, size_t(KV) * kdim, bound);
    w.wv = random_floats(rng, size_t(KV) * vdim, bound);
    w.wo = random_floats(rng, size_t(E) * E, bound);
    if (s.bias) {
        w.bq = random_floats(rng, E, 0.2f);
        w.bk = random_floats(rng, KV, 0.2f);
        w.bv = random_floats(rng, KV, 0.2f);
        w.bo = random_floats(rng, E, 0.2f);
    }
    auto& t = m.tensors;
    switch (s.naming) {
    case Naming::torch_packed: {
        std::vector<float> in_proj = concat({&w.wq, &w.wk, &w.wv});
        t.push_back(make_tensor("in_proj_weight", {3ull * E, E}, in_proj, s.dtype));
        w.wq = slice(in_proj, 0, size_t(E) * E);
        w.wk = slice(in_proj, size_t(E) * E, size_t(E) * E);
        w.wv = slice(in_proj, 2 * size_t(E) * E, size_t(E) * E);
        if (s.bias) {
            std::vector<float> in_bias = concat({&w.bq, &w.bk, &w.bv});
            t.push_back(make_tensor("in_proj_bias", {3ull * E}, in_bias, s.dtype));
            w.bq = slice(in_bias, 0, E);
            w.bk = slice(in_bias, E, E);
            w.bv = slice(in_bias, 2 * size_t(E), E);
        }
        t.push_back(make_tensor("out_proj.weight", {E, E}, w.wo, s.dtype));
        if (s.bias) t.push_back(make_tensor("out_proj.bias", {E}, w.bo, s.dtype));
        break;
    }
    case Naming::torch_separate: {
        t.push_back(make_tensor("q_proj_weight", {E, E}, w.wq, s.dtype));
        t.push_back(make_tensor("k_proj_weight", {E, kdim}, w.wk, s.dtype));
        t.push_back(make_tensor("v_proj_weight", {E, vdim}, w.wv, s.dtype));
        if (s.bias) {
            std::vector<float> in_bias = concat({&w.bq, &w.bk, &w.bv});
            t.push_back(make_tensor("in_proj_bias", {3ull * E}, in_bias, s.dtype));
            w.bq = slice(in_bias, 0, E);
            w.bk = slice(in_bias, E, E);
            w.bv = slice(in_bias, 2 * size_t(E), E);
        }
        t.push_back(make_tensor("out_proj.weight", {E, E}, w.wo, s.dtype));
        if (s.bias) t.push_back(make_tensor("out_proj.bias", {E}, w.bo, s.dtype));
        break;
    }
    case Naming::llama:
        t.push_back(make_tensor("q_proj.weight", {E, E}, w.wq, s.dtype));
        t.push_back(make_tensor("k_proj.weight", {KV, E}, w.wk, s.dtype));
        t.push_back(make_tensor("v_proj.weight", {KV, E}, w.wv, s.dtype));
        t.push_back(make_tensor("o_proj.weight", {E, E}, w.wo, s.dtype));
        if (s.bias) {
            t.push_back(make_tensor("q_proj.bias", {E}, w.bq, s.dtype));
            t.push_back(make_tensor("k_proj.bias", {KV}, w.bk, s.dtype));
            t.push_back(make_tensor("v_proj.bias", {KV}, w.bv, s.dtype));
            t.push_back(make_tensor("o_proj.bias", {E}, w.bo, s.dtype));
        }
        break;
    }
    return m;
}

void Fp32Tensors::add(std::string name, const std::vector<uint64_t>& shape, const std::vector<float>& data) {
    REQUIRE(shape.size() <= 4);
    m_names.push_back(std::move(name));
    VkmhaTensor t{};
    t.pName = m_names.back().c_str();
    t.dataType = VKMHA_DATA_TYPE_F32;
    t.rank = static_cast<uint32_t>(shape.size());
    for (size_t r = 0; r < shape.size(); ++r) t.shape[r] = shape[r];
    t.pData = data.data();
    m_views.push_back(t);
}

std::vector<VkmhaTensor> tensor_views(const std::vector<io::Tensor>& tensors) {
    std::vector<VkmhaTensor> views;
    for (const io::Tensor& t : tensors) {
        VkmhaTensor v{};
        v.pName = t.name.c_str();
        v.dataType = data_type(t.dtype);
        v.rank = static_cast<uint32_t>(t.shape.size());
        for (size_t i = 0; i < t.shape.size() && i < 4; ++i) v.shape[i] = t.shape[i];
        v.pData = t.data.data();
        views.push_back(v);
    }
    return views;
}

VkmhaModelCreateInfo model_info(uint32_t heads, const std::vector<VkmhaTensor>& views) {
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.numHeads = heads;
    mi.tensorCount = static_cast<uint32_t>(views.size());
    mi.pTensors = views.data();
    return mi;
}

void create_model(VkmhaContext context, const HostModel& m, ModelHandle& out) {
    const std::vector<VkmhaTensor> views = tensor_views(m.tensors);
    const VkmhaModelCreateInfo mi = model_info(m.config.num_heads, views);
    REQUIRE_VKMHA(api().createModel(context, &mi, out.out()));
}

void check_model_properties(VkmhaModel model, const HostModel& m) {
    VkmhaModelProperties p{};
    REQUIRE_VKMHA(api().getModelProperties(model, &p));
    CHECK(p.embedDim == m.config.embed_dim);
    CHECK(p.numHeads == m.config.num_heads);
    CHECK(p.numKvHeads == m.config.num_kv_heads);
    CHECK(p.headDim == m.config.head_dim());
    CHECK(p.kdim == m.config.kdim);
    CHECK(p.vdim == m.config.vdim);
    CHECK(p.hasInputBias == (m.weights.bq.empty() ? VK_FALSE : VK_TRUE));
    CHECK(p.hasOutputBias == (m.weights.bo.empty() ? VK_FALSE : VK_TRUE));
    CHECK(p.deviceMemoryBytes > 0);
    CHECK(p.precision == VKMHA_PRECISION_FP32); // the default
}

} // namespace vkmha::test
