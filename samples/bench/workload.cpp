// workload.cpp: deterministic random weights, their named tensors, and inputs.
#include "workload.h"

#include "io/half.h"

#include <cmath>
#include <cstring>

namespace bench {
namespace {

// splitmix64: fast, seedable and the same on every platform (std::uniform_real_distribution is not).
class Random {
  public:
    explicit Random(uint64_t seed) : m_state(seed) {}
    float uniform(float scale) { // in [-scale, scale)
        uint64_t z = (m_state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        return scale * (static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f);
    }
    std::vector<float> fill(size_t count, float scale) {
        std::vector<float> v(count);
        for (float& x : v) x = uniform(scale);
        return v;
    }

  private:
    uint64_t m_state;
};

std::vector<uint8_t> encode(const std::vector<float>& values, VkmhaDataType type) {
    std::vector<uint8_t> bytes;
    if (type == VKMHA_DATA_TYPE_F16 || type == VKMHA_DATA_TYPE_BF16) {
        bytes.resize(values.size() * 2);
        for (size_t i = 0; i < values.size(); ++i) {
            const uint16_t h =
                type == VKMHA_DATA_TYPE_F16 ? vkmha::io::float_to_half(values[i]) : vkmha::io::float_to_bf16(values[i]);
            std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
    } else {
        bytes.resize(values.size() * 4);
        std::memcpy(bytes.data(), values.data(), bytes.size());
    }
    return bytes;
}

} // namespace

LayerWeights make_weights(const Config& c) {
    LayerWeights l;
    const uint32_t E = c.embed_dim(), GD = c.kv_heads * c.head_dim;
    l.config = {E, c.heads, c.kv_heads, E, E};
    Random rng(0x5EED0000ull + uint64_t(c.heads) * 1000003u + uint64_t(c.kv_heads) * 1009u + c.head_dim);
    const float w = 1.0f / std::sqrt(static_cast<float>(E));
    auto& x = l.weights;
    x.wq = rng.fill(size_t(E) * E, w);
    x.wk = rng.fill(size_t(GD) * E, w);
    x.wv = rng.fill(size_t(GD) * E, w);
    x.wo = rng.fill(size_t(E) * E, w);
    if (c.kv_heads == c.heads) { // PyTorch nn.MultiheadAttention has biases by default; Llama has none
        x.bq = rng.fill(E, w);
        x.bk = rng.fill(GD, w);
        x.bv = rng.fill(GD, w);
        x.bo = rng.fill(E, w);
    }
    // The model options (sweep.h), from a generator of their own so the projections stay those of the plain layer.
    const ModelOptions& o = c.options;
    Random extra(0x0B710A5ull + uint64_t(c.heads) * 1000003u + c.head_dim);
    if (o.qk_norm) {
        l.config.qk_norm = true;
        x.q_norm = extra.fill(c.head_dim, 0.25f);
        x.k_norm = extra.fill(c.head_dim, 0.25f);
        for (float& v : x.q_norm) v += 1.0f;
        for (float& v : x.k_norm) v += 1.0f;
    }
    if (o.sinks) {
        l.config.sinks = true;
        x.sinks = extra.fill(c.heads, 1.0f);
    }
    if (o.rope) {
        l.config.rope.layout = vkmha::RopeLayout::neox;
        l.config.rope.theta = kRopeTheta;
    }
    if (o.softcap) l.config.softcap = kSoftcap;
    l.config.alibi = o.alibi;
    if (o.window) l.config.window = kWindow;
    return l;
}

ModelTensors make_model_tensors(const LayerWeights& layer, const Precision& precision) {
    ModelTensors m;
    const auto& c = layer.config;
    const auto& x = layer.weights;
    const uint64_t E = c.embed_dim, GD = c.kv_width();
    auto add = [&](const char* name, std::vector<uint64_t> shape, const std::vector<float>& values) {
        m.names.emplace_back(name);
        m.storage.push_back(encode(values, precision.weight_type));
        m.bytes += m.storage.back().size();
        VkmhaTensor t{};
        t.dataType = precision.weight_type;
        t.rank = static_cast<uint32_t>(shape.size());
        for (size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
        m.tensors.push_back(t);
    };
    if (c.num_kv_heads == c.num_heads) {
        std::vector<float> in_proj = x.wq, in_bias = x.bq;
        in_proj.insert(in_proj.end(), x.wk.begin(), x.wk.end());
        in_proj.insert(in_proj.end(), x.wv.begin(), x.wv.end());
        in_bias.insert(in_bias.end(), x.bk.begin(), x.bk.end());
        in_bias.insert(in_bias.end(), x.bv.begin(), x.bv.end());
        add("in_proj_weight", {3 * E, E}, in_proj);
        add("in_proj_bias", {3 * E}, in_bias);
        add("out_proj.weight", {E, E}, x.wo);
        add("out_proj.bias", {E}, x.bo);
    } else {
        add("q_proj.weight", {E, E}, x.wq);
        add("k_proj.weight", {GD, E}, x.wk);
        add("v_proj.weight", {GD, E}, x.wv);
        add("o_proj.weight", {E, E}, x.wo);
    }
    if (c.qk_norm) { // the names vkmha reads with either naming scheme
        add("q_norm.weight", {c.head_dim()}, x.q_norm);
        add("k_norm.weight", {c.head_dim()}, x.k_norm);
    }
    if (c.sinks) add("sinks", {c.num_heads}, x.sinks);
    for (size_t i = 0; i < m.tensors.size(); ++i) { // after every push_back, so the pointers stay valid
        m.tensors[i].pName = m.names[i].c_str();
        m.tensors[i].pData = m.storage[i].data();
    }
    return m;
}

Inputs make_inputs(const Config& c, uint32_t lq, uint32_t lk) {
    Random rng(0x1A2B3C4Dull + uint64_t(c.batch) * 7919u + uint64_t(lq) * 131u + lk);
    const size_t E = c.embed_dim();
    Inputs in;
    in.query = rng.fill(size_t(c.batch) * lq * E, 1.0f);
    if (c.decode()) {
        in.key = rng.fill(size_t(c.batch) * lk * E, 1.0f);
        in.value = rng.fill(size_t(c.batch) * lk * E, 1.0f);
    }
    return in;
}

} // namespace bench
