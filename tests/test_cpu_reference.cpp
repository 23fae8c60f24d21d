// Tests of the CPU attention reference: against PyTorch fixtures (tests/fixtures) and against properties of the math.
#include "cpu_reference.h"
#include "rope.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <numbers>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#ifndef VKMHA_FIXTURE_DIR
#define VKMHA_FIXTURE_DIR "tests/fixtures"
#endif

using namespace vkmha;

namespace {

static_assert(std::endian::native == std::endian::little, "the fixture reader copies little-endian data as is");

// ---- A tiny safetensors reader: only what make_torch_fixtures.py writes (F32 and BOOL, no metadata needed). It
// lives here so this suite does not depend on host/io, which is tested on its own.

struct Tensor {
    std::string dtype;
    std::vector<size_t> shape;
    std::vector<uint8_t> bytes;

    [[nodiscard]] size_t count() const {
        size_t n = 1;
        for (size_t s : shape) n *= s;
        return n;
    }
    [[nodiscard]] std::vector<float> floats() const {
        REQUIRE(dtype == "F32");
        std::vector<float> out(bytes.size() / sizeof(float));
        std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
        return out;
    }
};
using TensorMap = std::map<std::string, Tensor>;

struct JsonCursor {
    const std::string& text;
    size_t pos = 0;

    void skip_space() {
        while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
    }
    bool consume(char c) {
        skip_space();
        if (pos < text.size() && text[pos] == c) {
            ++pos;
            return true;
        }
        return false;
    }
    void expect(char c) { REQUIRE_MESSAGE(consume(c), "safetensors header: expected '", c, "' at ", pos); }
    std::string string() {
        expect('"');
        std::string out;
        while (pos < text.size() && text[pos] != '"') {
            if (text[pos] == '\\') ++pos; // names here never need more than a literal escape
            if (pos < text.size()) out += text[pos++];
        }
        expect('"');
        return out;
    }
    uint64_t number() {
        skip_space();
        size_t start = pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
        REQUIRE_MESSAGE(pos > start, "safetensors header: expected a number at ", start);
        return std::stoull(text.substr(start, pos - start));
    }
    std::vector<size_t> numbers() {
        std::vector<size_t> out;
        expect('[');
        if (consume(']')) return out;
        do out.push_back(static_cast<size_t>(number()));
        while (consume(','));
        expect(']');
        return out;
    }
    void skip_string_map() { // __metadata__: {"k": "v", ...}
        expect('{');
        if (consume('}')) return;
        do {
            string();
            expect(':');
            string();
        } while (consume(','));
        expect('}');
    }
};

TensorMap read_safetensors(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    REQUIRE_MESSAGE(file.good(), "cannot open fixture ", path);
    std::string data((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    REQUIRE_MESSAGE(data.size() >= 8, path, " is shorter than the 8-byte header length");
    uint64_t header_len = 0;
    std::memcpy(&header_len, data.data(), 8);
    REQUIRE_MESSAGE(header_len <= data.size() - 8, path, ": header length ", header_len, " past end of file");
    const std::string header = data.substr(8, static_cast<size_t>(header_len));
    const size_t data_start = 8 + static_cast<size_t>(header_len);

    TensorMap tensors;
    JsonCursor json{header};
    json.expect('{');
    if (json.consume('}')) return tensors;
    do {
        const std::string name = json.string();
        json.expect(':');
        if (name == "__metadata__") {
            json.skip_string_map();
            continue;
        }
        Tensor tensor;
        std::vector<size_t> offsets;
        json.expect('{');
        do {
            const std::string field = json.string();
            json.expect(':');
            if (field == "dtype")
                tensor.dtype = json.string();
            else if (field == "shape")
                tensor.shape = json.numbers();
            else if (field == "data_offsets")
                offsets = json.numbers();
            else
                FAIL("safetensors header: unexpected field ", field, " in ", path);
        } while (json.consume(','));
        json.expect('}');
        REQUIRE_MESSAGE(offsets.size() == 2, path, ": ", name, " has no data_offsets");
        REQUIRE_MESSAGE((offsets[0] <= offsets[1] && offsets[1] <= data.size() - data_start), path, ": ", name,
                        " data_offsets out of the file");
        tensor.bytes.assign(data.begin() + static_cast<std::ptrdiff_t>(data_start + offsets[0]),
                            data.begin() + static_cast<std::ptrdiff_t>(data_start + offsets[1]));
        const size_t elem = tensor.dtype == "F32" ? 4 : tensor.dtype == "BOOL" ? 1 : 0;
        REQUIRE_MESSAGE(elem != 0, path, ": ", name, " has unsupported dtype ", tensor.dtype);
        REQUIRE_MESSAGE(tensor.count() * elem == tensor.bytes.size(), path, ": ", name, " size mismatch");
        tensors.emplace(name, std::move(tensor));
    } while (json.consume(','));
    json.expect('}');
    return tensors;
}

// ---- Comparison with a stated metric: |got - ref| <= 2e-5 + 1e-4 * |ref| per element.

struct Comparison {
    double max_abs_error = 0.0;
    size_t failures = 0;
    size_t first_failure = 0;
};

Comparison compare(const std::vector<float>& got, const std::vector<float>& ref, double atol = 2e-5,
                   double rtol = 1e-4) {
    Comparison c;
    REQUIRE(got.size() == ref.size());
    for (size_t i = 0; i < got.size(); ++i) {
        const double diff = std::fabs(static_cast<double>(got[i]) - static_cast<double>(ref[i]));
        if (!(diff <= atol + rtol * std::fabs(static_cast<double>(ref[i])))) { // NaN counts as a failure
            if (c.failures++ == 0) c.first_failure = i;
        }
        if (!(diff <= c.max_abs_error)) c.max_abs_error = diff;
    }
    return c;
}

// ---- Fixture cases, as listed in tests/fixtures/cases.txt.

struct FixtureCase {
    std::string name;
    uint32_t heads = 0, kv_heads = 0;
    bool causal = false, need_weights = false, no_average = false;
};

std::vector<FixtureCase> read_cases(const std::string& path) {
    std::ifstream file(path);
    REQUIRE_MESSAGE(file.good(), "cannot open ", path);
    std::vector<FixtureCase> cases;
    std::string line;
    while (std::getline(file, line)) {
        if (line.empty()) continue;
        std::istringstream words(line);
        FixtureCase c;
        words >> c.name;
        std::string word;
        while (words >> word) {
            const size_t eq = word.find('=');
            REQUIRE_MESSAGE(eq != std::string::npos, "cases.txt: bad field ", word);
            const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
            if (key == "heads")
                c.heads = static_cast<uint32_t>(std::stoul(value));
            else if (key == "kv_heads")
                c.kv_heads = static_cast<uint32_t>(std::stoul(value));
            else if (key == "flags") {
                std::istringstream flags(value);
                std::string flag;
                while (std::getline(flags, flag, ',')) {
                    if (flag == "causal")
                        c.causal = true;
                    else if (flag == "need_weights")
                        c.need_weights = true;
                    else if (flag == "no_average")
                        c.no_average = true;
                    else
                        FAIL("cases.txt: unknown flag ", flag);
                }
            } else
                FAIL("cases.txt: unknown field ", key);
        }
        cases.push_back(c);
    }
    return cases;
}

const Tensor& get(const TensorMap& map, const std::string& name) {
    auto it = map.find(name);
    REQUIRE_MESSAGE(it != map.end(), "fixture tensor ", name, " missing");
    return it->second;
}
std::vector<float> get_optional(const TensorMap& map, const std::string& name) {
    auto it = map.find(name);
    return it == map.end() ? std::vector<float>{} : it->second.floats();
}
std::vector<float> slice(const std::vector<float>& v, size_t part, size_t parts) {
    const size_t n = v.size() / parts;
    return {v.begin() + static_cast<std::ptrdiff_t>(part * n), v.begin() + static_cast<std::ptrdiff_t>((part + 1) * n)};
}

// Maps PyTorch MultiheadAttention and Llama state_dict names onto AttentionWeights, and the widths onto the config.
void load_weights(const TensorMap& w, AttentionConfig& config, AttentionWeights& weights) {
    if (w.count("in_proj_weight")) {
        const std::vector<float> packed = get(w, "in_proj_weight").floats();
        weights.wq = slice(packed, 0, 3);
        weights.wk = slice(packed, 1, 3);
        weights.wv = slice(packed, 2, 3);
        config.embed_dim = config.kdim = config.vdim = static_cast<uint32_t>(get(w, "in_proj_weight").shape[1]);
    } else if (w.count("q_proj_weight")) {
        weights.wq = get(w, "q_proj_weight").floats();
        weights.wk = get(w, "k_proj_weight").floats();
        weights.wv = get(w, "v_proj_weight").floats();
        config.embed_dim = static_cast<uint32_t>(get(w, "q_proj_weight").shape[1]);
        config.kdim = static_cast<uint32_t>(get(w, "k_proj_weight").shape[1]);
        config.vdim = static_cast<uint32_t>(get(w, "v_proj_weight").shape[1]);
    }
    if (w.count("in_proj_weight") || w.count("q_proj_weight")) {
        const std::vector<float> bias = get_optional(w, "in_proj_bias");
        if (!bias.empty()) {
            weights.bq = slice(bias, 0, 3);
            weights.bk = slice(bias, 1, 3);
            weights.bv = slice(bias, 2, 3);
        }
        weights.wo = get(w, "out_proj.weight").floats();
        weights.bo = get_optional(w, "out_proj.bias");
        return;
    }
    weights.wq = get(w, "q_proj.weight").floats();
    weights.wk = get(w, "k_proj.weight").floats();
    weights.wv = get(w, "v_proj.weight").floats();
    weights.wo = get(w, "o_proj.weight").floats();
    weights.bq = get_optional(w, "q_proj.bias");
    weights.bk = get_optional(w, "k_proj.bias");
    weights.bv = get_optional(w, "v_proj.bias");
    weights.bo = get_optional(w, "o_proj.bias");
    config.embed_dim = static_cast<uint32_t>(get(w, "q_proj.weight").shape[1]);
    config.kdim = static_cast<uint32_t>(get(w, "k_proj.weight").shape[1]);
    config.vdim = static_cast<uint32_t>(get(w, "v_proj.weight").shape[1]);
}

// ---- Random problems for the property tests.

std::vector<float> random_vector(size_t n, std::mt19937& rng, float scale = 1.0f) {
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

AttentionWeights random_weights(const AttentionConfig& c, std::mt19937& rng, bool bias = true) {
    AttentionWeights w;
    const size_t e = c.embed_dim, kv = c.kv_width();
    w.wq = random_vector(e * e, rng, 1.5f / std::sqrt(static_cast<float>(e)));
    w.wk = random_vector(kv * c.kdim, rng, 1.5f / std::sqrt(static_cast<float>(c.kdim)));
    w.wv = random_vector(kv * c.vdim, rng, 1.5f / std::sqrt(static_cast<float>(c.vdim)));
    w.wo = random_vector(e * e, rng, 1.5f / std::sqrt(static_cast<float>(e)));
    if (bias) {
        w.bq = random_vector(e, rng, 0.5f);
        w.bk = random_vector(kv, rng, 0.5f);
        w.bv = random_vector(kv, rng, 0.5f);
        w.bo = random_vector(e, rng, 0.5f);
    }
    return w;
}

AttentionConfig make_config(uint32_t embed, uint32_t heads, uint32_t kv_heads, uint32_t kdim = 0, uint32_t vdim = 0) {
    AttentionConfig c;
    c.embed_dim = embed;
    c.num_heads = heads;
    c.num_kv_heads = kv_heads;
    c.kdim = kdim ? kdim : embed;
    c.vdim = vdim ? vdim : embed;
    return c;
}

bool is_single_line(const std::string& message) { return !message.empty() && message.find('\n') == std::string::npos; }

// ---- Problems for the model-option properties: a random layer with its inputs kept alive.

struct Problem {
    AttentionConfig config;
    AttentionWeights weights;
    AttentionShape shape;
    AttentionOptions options;
    std::vector<float> query, key;
    std::vector<int32_t> position_ids, key_position_ids;

    [[nodiscard]] AttentionInputs inputs() const {
        AttentionInputs in;
        in.query = query.data();
        in.key = key.empty() ? nullptr : key.data();
        in.position_ids = position_ids.empty() ? nullptr : position_ids.data();
        in.key_position_ids = key_position_ids.empty() ? nullptr : key_position_ids.data();
        return in;
    }
};

// Self-attention when lq == lk and !cross, else a separate key (value = key).
Problem make_problem(uint32_t embed, uint32_t heads, uint32_t kv_heads, AttentionShape shape, bool cross, unsigned seed,
                     float qk_scale = 1.0f) {
    std::mt19937 rng(seed);
    Problem p;
    p.config = make_config(embed, heads, kv_heads);
    p.weights = random_weights(p.config, rng);
    for (float& x : p.weights.wq) x *= qk_scale;
    for (float& x : p.weights.wk) x *= qk_scale;
    p.shape = shape;
    p.query = random_vector(size_t{shape.batch} * shape.lq * embed, rng);
    if (cross || shape.lq != shape.lk) p.key = random_vector(size_t{shape.batch} * shape.lk * embed, rng);
    return p;
}

AttentionStages stages_of(const Problem& p) {
    auto r = reference_attention_stages(p.config, p.weights, p.shape, p.options, p.inputs());
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
    return std::move(r.value());
}

AttentionOutputs outputs_of(const Problem& p) {
    auto r = reference_attention(p.config, p.weights, p.shape, p.options, p.inputs());
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
    return std::move(r.value());
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
    return m;
}

RopeConfig neox_rope(uint32_t dims = 0, double theta = 10000.0) {
    RopeConfig r;
    r.layout = RopeLayout::neox;
    r.dims = dims;
    r.theta = theta;
    return r;
}

// Hugging Face's default inv_freq, written out here: 1 / theta^(2i / R).
double default_inv_freq(double theta, uint32_t dims, uint32_t i) {
    return 1.0 / std::pow(theta, 2.0 * i / static_cast<double>(dims));
}

} // namespace

TEST_SUITE("cpu_reference") {

    TEST_CASE("reference: matches PyTorch nn.MultiheadAttention fixtures") {
        const std::string dir = VKMHA_FIXTURE_DIR;
        const std::vector<FixtureCase> cases = read_cases(dir + "/cases.txt");
        REQUIRE(cases.size() >= 10); // every case make_torch_fixtures.py writes; a missing dir must not pass silently

        for (const FixtureCase& fc : cases) {
            CAPTURE(fc.name);
            const TensorMap weights_file = read_safetensors(dir + "/" + fc.name + ".weights.safetensors");
            const TensorMap input = read_safetensors(dir + "/" + fc.name + ".input.safetensors");
            const TensorMap expected = read_safetensors(dir + "/" + fc.name + ".expected.safetensors");

            AttentionConfig config;
            AttentionWeights weights;
            load_weights(weights_file, config, weights);
            config.num_heads = fc.heads;
            config.num_kv_heads = fc.kv_heads;

            const Tensor& query = get(input, "query");
            REQUIRE(query.shape.size() == 3);
            AttentionShape shape;
            shape.batch = static_cast<uint32_t>(query.shape[0]);
            shape.lq = static_cast<uint32_t>(query.shape[1]);
            shape.lk = input.count("key") ? static_cast<uint32_t>(get(input, "key").shape[1]) : shape.lq;

            AttentionOptions options;
            options.causal = fc.causal;
            options.need_weights = fc.need_weights;
            options.average_weights = !fc.no_average;

            const std::vector<float> query_data = query.floats();
            const std::vector<float> key_data = get_optional(input, "key");
            const std::vector<float> value_data = get_optional(input, "value");
            AttentionInputs inputs;
            inputs.query = query_data.data();
            inputs.key = key_data.empty() ? nullptr : key_data.data();
            inputs.value = value_data.empty() ? nullptr : value_data.data();
            std::vector<float> mask_floats;
            if (input.count("key_padding_mask")) {
                const Tensor& kpm = get(input, "key_padding_mask");
                REQUIRE(kpm.dtype == "BOOL");
                options.key_padding = MaskKind::boolean;
                inputs.key_padding_mask = kpm.bytes.data();
            }
            if (input.count("attn_mask")) {
                const Tensor& mask = get(input, "attn_mask");
                options.attn_mask_per_head = mask.shape.size() == 3;
                if (mask.dtype == "BOOL") {
                    options.attn_mask = MaskKind::boolean;
                    inputs.attn_mask = mask.bytes.data();
                } else {
                    options.attn_mask = MaskKind::additive;
                    mask_floats = mask.floats();
                    inputs.attn_mask = mask_floats.data();
                }
            }

            auto result = reference_attention(config, weights, shape, options, inputs);
            REQUIRE_MESSAGE(result.ok(), (result.ok() ? std::string() : result.error().message));

            const std::vector<float> ref_output = get(expected, "attn_output").floats();
            REQUIRE(result->output.size() == ref_output.size());
            const Comparison out = compare(result->output, ref_output);
            MESSAGE(fc.name, ": output max abs error ", out.max_abs_error);
            CHECK_MESSAGE(out.failures == 0, out.failures, " output elements out of tolerance, first at ",
                          out.first_failure, ", max abs error ", out.max_abs_error);

            CHECK(fc.need_weights == (expected.count("attn_output_weights") == 1));
            if (fc.need_weights && expected.count("attn_output_weights")) {
                const std::vector<float> ref_weights = get(expected, "attn_output_weights").floats();
                REQUIRE(result->weights.size() == ref_weights.size());
                const Comparison w = compare(result->weights, ref_weights);
                MESSAGE(fc.name, ": weights max abs error ", w.max_abs_error);
                CHECK_MESSAGE(w.failures == 0, w.failures, " weights out of tolerance, first at ", w.first_failure);
            } else {
                CHECK(result->weights.empty());
            }

            // The stages entry point must give the same output (it is what GPU stage tests compare against).
            auto stages = reference_attention_stages(config, weights, shape, options, inputs);
            REQUIRE(stages.ok());
            CHECK(stages->output == result->output);
        }
    }

    TEST_CASE("reference: a hand-computed one-dimensional case") {
        // E = H = D = 1 and identity projections: scores are q * k = {0, ln 3}, so softmax is {1/4, 3/4} and the
        // output is 3/4 * ln 3 + bo.
        const AttentionConfig config = make_config(1, 1, 1);
        AttentionWeights w;
        w.wq = w.wk = w.wv = w.wo = {1.0f};
        w.bo = {0.5f};
        const float ln3 = std::log(3.0f);
        const std::vector<float> query = {1.0f}, key = {0.0f, ln3};
        AttentionInputs in;
        in.query = query.data();
        in.key = key.data();
        AttentionShape shape{1, 1, 2};
        AttentionOptions options;
        auto st = reference_attention_stages(config, w, shape, options, in);
        REQUIRE(st.ok());
        CHECK(st->scores[1] == doctest::Approx(ln3).epsilon(1e-7));
        CHECK(st->probs[0] == doctest::Approx(0.25).epsilon(1e-6));
        CHECK(st->probs[1] == doctest::Approx(0.75).epsilon(1e-6));
        CHECK(st->output[0] == doctest::Approx(0.75 * static_cast<double>(ln3) + 0.5).epsilon(1e-6));
    }

    TEST_CASE("reference: stages have the documented layouts and agree with each other") {
        std::mt19937 rng(7);
        const AttentionConfig config = make_config(12, 3, 3, 5, 7);
        const AttentionWeights w = random_weights(config, rng);
        const AttentionShape shape{2, 4, 6};
        const size_t e = 12, h_count = 3, d_count = 4;
        const std::vector<float> query = random_vector(2 * 4 * 12, rng), key = random_vector(2 * 6 * 5, rng),
                                 value = random_vector(2 * 6 * 7, rng);
        std::vector<float> mask = random_vector(2 * 3 * 4 * 6, rng);
        mask[5] = -std::numeric_limits<float>::infinity();
        std::vector<uint8_t> padding(2 * 6, 0);
        padding[1 * 6 + 2] = 1;
        AttentionInputs in{query.data(), key.data(), value.data(), padding.data(), mask.data()};
        AttentionOptions options;
        options.key_padding = MaskKind::boolean;
        options.attn_mask = MaskKind::additive;
        options.attn_mask_per_head = true;
        options.need_weights = true;

        auto st = reference_attention_stages(config, w, shape, options, in);
        REQUIRE(st.ok());
        auto out = reference_attention(config, w, shape, options, in);
        REQUIRE(out.ok());
        CHECK(st->output == out->output);
        REQUIRE(st->q.size() == 2u * 3 * 4 * 4);
        REQUIRE(st->k.size() == 2u * 3 * 6 * 4);
        REQUIRE(st->scores.size() == 2u * 3 * 4 * 6);
        REQUIRE(st->concat.size() == 2u * 4 * 12);

        // q[b, h, l, d] = X[b, l, :] . wq[h*D + d, :] + bq[h*D + d] (head-major, unscaled).
        const size_t b = 1, h = 2, l = 3, d = 1;
        double q_ref = w.bq[h * d_count + d];
        for (size_t i = 0; i < e; ++i) q_ref += double(query[(b * 4 + l) * e + i]) * w.wq[(h * d_count + d) * e + i];
        CHECK(st->q[((b * h_count + h) * 4 + l) * d_count + d] == doctest::Approx(q_ref).epsilon(1e-6));

        // scores[b, h, i, j] = q . k / sqrt(D) + mask[b*H + h, i, j]; padded and -inf entries stay -inf.
        const size_t i = 2, j = 4;
        double s_ref = 0.0;
        for (size_t x = 0; x < d_count; ++x)
            s_ref +=
                double(st->q[((b * h_count + h) * 4 + i) * d_count + x]) * st->k[((b * 3 + h) * 6 + j) * d_count + x];
        s_ref = s_ref / 2.0 + mask[((b * h_count + h) * 4 + i) * 6 + j];
        CHECK(st->scores[((b * h_count + h) * 4 + i) * 6 + j] == doctest::Approx(s_ref).epsilon(1e-6));
        CHECK(std::isinf(st->scores[5]));
        CHECK(st->probs[5] == 0.0f);
        for (size_t hh = 0; hh < h_count; ++hh)
            for (size_t ii = 0; ii < 4; ++ii) {
                CHECK(st->scores[((1 * h_count + hh) * 4 + ii) * 6 + 2] == -std::numeric_limits<float>::infinity());
                CHECK(st->probs[((1 * h_count + hh) * 4 + ii) * 6 + 2] == 0.0f);
            }

        // Every row of probs sums to 1 and the averaged weights are the mean over heads.
        for (size_t row = 0; row < 2 * 3 * 4; ++row) {
            double sum = 0.0;
            for (size_t jj = 0; jj < 6; ++jj) sum += st->probs[row * 6 + jj];
            CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
        }
        REQUIRE(out->weights.size() == 2u * 4 * 6);
        for (size_t x = 0; x < out->weights.size(); ++x) {
            const size_t bb = x / 24, rest = x % 24;
            double mean = 0.0;
            for (size_t hh = 0; hh < h_count; ++hh) mean += st->probs[(bb * h_count + hh) * 24 + rest];
            CHECK(out->weights[x] == doctest::Approx(mean / 3.0).epsilon(1e-6));
        }

        // concat[b, i, h*D + d] = sum_j probs[b, h, i, j] v[b, h, j, d].
        double c_ref = 0.0;
        for (size_t jj = 0; jj < 6; ++jj)
            c_ref +=
                double(st->probs[((b * h_count + h) * 4 + i) * 6 + jj]) * st->v[((b * 3 + h) * 6 + jj) * d_count + d];
        CHECK(st->concat[(b * 4 + i) * e + h * d_count + d] == doctest::Approx(c_ref).epsilon(1e-6));
    }

    TEST_CASE("gqa: equals multi-head attention with each key/value head repeated for its query group") {
        for (uint32_t kv_heads : {1u, 2u, 4u}) {
            CAPTURE(kv_heads);
            std::mt19937 rng(11 + kv_heads);
            const uint32_t e = 16, heads = 4, group = heads / kv_heads;
            const size_t d = 4;
            const AttentionConfig gqa = make_config(e, heads, kv_heads);
            const AttentionConfig mha = make_config(e, heads, heads);
            const AttentionWeights w = random_weights(gqa, rng);
            AttentionWeights expanded = w;
            expanded.wk.clear();
            expanded.wv.clear();
            expanded.bk.clear();
            expanded.bv.clear();
            for (uint32_t h = 0; h < heads; ++h) { // query head h reads key/value head h / group (repeat_interleave)
                const size_t g = h / group;
                auto rows = [&](const std::vector<float>& src, size_t width) {
                    return std::vector<float>(src.begin() + static_cast<std::ptrdiff_t>(g * d * width),
                                              src.begin() + static_cast<std::ptrdiff_t>((g + 1) * d * width));
                };
                for (auto [dst, src, width] :
                     {std::tuple{&expanded.wk, &w.wk, size_t{e}}, std::tuple{&expanded.wv, &w.wv, size_t{e}},
                      std::tuple{&expanded.bk, &w.bk, size_t{1}}, std::tuple{&expanded.bv, &w.bv, size_t{1}}}) {
                    const std::vector<float> part = rows(*src, width);
                    dst->insert(dst->end(), part.begin(), part.end());
                }
            }
            const AttentionShape shape{2, 5, 7};
            const std::vector<float> query = random_vector(size_t{2} * 5 * e, rng),
                                     key = random_vector(size_t{2} * 7 * e, rng);
            AttentionInputs in;
            in.query = query.data();
            in.key = key.data();
            AttentionOptions options;
            options.causal = true;
            options.need_weights = true;
            options.average_weights = false;
            auto a = reference_attention(gqa, w, shape, options, in);
            auto b = reference_attention(mha, expanded, shape, options, in);
            REQUIRE(a.ok());
            REQUIRE(b.ok());
            const Comparison out = compare(a->output, b->output, 1e-6, 0.0);
            CHECK_MESSAGE(out.failures == 0, "max abs error ", out.max_abs_error);
            CHECK(compare(a->weights, b->weights, 1e-7, 0.0).failures == 0);
        }
    }

    TEST_CASE("masks: a row whose keys are all masked gives bo and zero weights") {
        std::mt19937 rng(3);
        const AttentionConfig config = make_config(8, 2, 2);
        const AttentionWeights w = random_weights(config, rng);
        const AttentionShape shape{2, 4, 5};
        const std::vector<float> query = random_vector(2 * 4 * 8, rng), key = random_vector(2 * 5 * 8, rng);
        std::vector<uint8_t> padding(2 * 5, 0);
        std::fill(padding.begin() + 5, padding.end(), uint8_t{1}); // batch 1: every key padded
        std::vector<uint8_t> mask(4 * 5, 0);
        std::fill(mask.begin() + 2 * 5, mask.begin() + 3 * 5, uint8_t{1}); // query row 2: every key masked
        mask[0] = 1;                                                       // a partial mask elsewhere
        AttentionInputs in{query.data(), key.data(), nullptr, padding.data(), mask.data()};
        AttentionOptions options;
        options.key_padding = MaskKind::boolean;
        options.attn_mask = MaskKind::boolean;
        options.need_weights = true;

        auto result = reference_attention(config, w, shape, options, in);
        REQUIRE(result.ok());
        for (size_t b = 0; b < 2; ++b)
            for (size_t i = 0; i < 4; ++i) {
                CAPTURE(b);
                CAPTURE(i);
                const bool all_masked = b == 1 || i == 2;
                bool equals_bo = true;
                double weight_sum = 0.0;
                for (size_t x = 0; x < 8; ++x) {
                    CHECK(std::isfinite(result->output[(b * 4 + i) * 8 + x]));
                    equals_bo = equals_bo && result->output[(b * 4 + i) * 8 + x] == w.bo[x];
                }
                for (size_t j = 0; j < 5; ++j) weight_sum += result->weights[(b * 4 + i) * 5 + j];
                CHECK(equals_bo == all_masked);
                CHECK(weight_sum == doctest::Approx(all_masked ? 0.0 : 1.0).epsilon(1e-6));
            }
        CHECK(result->weights[0] == 0.0f); // masked entry of a partly masked row

        auto st = reference_attention_stages(config, w, shape, options, in);
        REQUIRE(st.ok());
        for (size_t j = 0; j < 5; ++j) {
            CHECK(st->scores[(0 * 4 + 2) * 5 + j] == -std::numeric_limits<float>::infinity());
            CHECK(st->probs[(0 * 4 + 2) * 5 + j] == 0.0f);
        }
    }

    TEST_CASE("causal: the flag equals an explicit bottom-right-aligned boolean mask") {
        struct Lengths {
            uint32_t lq, lk;
        };
        for (Lengths len : {Lengths{3, 7}, Lengths{6, 6}, Lengths{5, 3}, Lengths{1, 9}}) {
            CAPTURE(len.lq);
            CAPTURE(len.lk);
            std::mt19937 rng(5 + len.lq * 31 + len.lk);
            const AttentionConfig config = make_config(8, 2, 1);
            const AttentionWeights w = random_weights(config, rng);
            const AttentionShape shape{2, len.lq, len.lk};
            const std::vector<float> query = random_vector(size_t{2} * len.lq * 8, rng),
                                     key = random_vector(size_t{2} * len.lk * 8, rng);
            std::vector<uint8_t> mask(size_t{len.lq} * len.lk);
            const int64_t offset = int64_t{len.lk} - int64_t{len.lq};
            for (uint32_t i = 0; i < len.lq; ++i)
                for (uint32_t j = 0; j < len.lk; ++j) mask[i * len.lk + j] = int64_t{j} > int64_t{i} + offset ? 1 : 0;

            AttentionOptions flag;
            flag.causal = true;
            flag.need_weights = true;
            flag.average_weights = false;
            AttentionOptions explicit_mask = flag;
            explicit_mask.causal = false;
            explicit_mask.attn_mask = MaskKind::boolean;
            AttentionInputs in{query.data(), key.data(), nullptr, nullptr, nullptr};
            auto a = reference_attention(config, w, shape, flag, in);
            in.attn_mask = mask.data();
            auto b = reference_attention(config, w, shape, explicit_mask, in);
            REQUIRE(a.ok());
            REQUIRE(b.ok());
            CHECK(a->output == b->output);
            CHECK(a->weights == b->weights);

            // The mask really bites: weights are zero exactly where it says, and the last query sees every key.
            for (size_t bh = 0; bh < 2 * 2; ++bh)
                for (size_t i = 0; i < len.lq; ++i)
                    for (size_t j = 0; j < len.lk; ++j) {
                        const float p = a->weights[(bh * len.lq + i) * len.lk + j];
                        const bool row_has_key = int64_t(i) + offset >= 0;
                        CHECK((mask[i * len.lk + j] || !row_has_key) == (p == 0.0f));
                    }
            // lq > lk: query rows before lq - lk see no key at all and give bo.
            for (size_t i = 0; i < len.lq; ++i)
                if (int64_t(i) + offset < 0)
                    for (size_t x = 0; x < 8; ++x) CHECK(a->output[i * 8 + x] == w.bo[x]);
        }
    }

    TEST_CASE("validate: bad configs, weights, shapes and options get one-line invalid_argument errors") {
        std::mt19937 rng(1);
        const AttentionConfig good = make_config(8, 4, 2, 6, 5);
        const AttentionWeights good_weights = random_weights(good, rng);
        const AttentionShape good_shape{2, 3, 4};
        const AttentionOptions good_options;
        REQUIRE(validate_attention(good, good_weights, good_shape, good_options).ok());

        auto expect_error = [](const Status& status, std::initializer_list<const char*> mentions) {
            REQUIRE_FALSE(status.ok());
            CHECK(status.error().code == ErrorCode::invalid_argument);
            CHECK(is_single_line(status.error().message));
            for (const char* m : mentions)
                CHECK_MESSAGE(status.error().message.find(m) != std::string::npos, "'", status.error().message,
                              "' should mention '", std::string(m), "'");
        };

        SUBCASE("embed_dim not divisible by num_heads") {
            AttentionConfig c = make_config(10, 3, 3);
            expect_error(validate_attention(c, random_weights(make_config(10, 1, 1), rng), good_shape, good_options),
                         {"embed_dim 10", "num_heads 3"});
        }
        SUBCASE("num_heads not divisible by num_kv_heads") {
            AttentionConfig c = make_config(12, 4, 3);
            expect_error(validate_attention(c, random_weights(make_config(12, 4, 4), rng), good_shape, good_options),
                         {"num_heads 4", "num_kv_heads 3"});
        }
        SUBCASE("zero sizes") {
            AttentionConfig c = good;
            c.num_kv_heads = 0;
            expect_error(validate_attention(c, good_weights, good_shape, good_options), {"num_kv_heads"});
            c = good;
            c.embed_dim = 0;
            expect_error(validate_attention(c, good_weights, good_shape, good_options), {"embed_dim"});
            expect_error(validate_attention(good, good_weights, AttentionShape{0, 3, 4}, good_options), {"batch"});
            expect_error(validate_attention(good, good_weights, AttentionShape{2, 0, 4}, good_options), {"lq"});
            expect_error(validate_attention(good, good_weights, AttentionShape{2, 3, 0}, good_options), {"lk"});
        }
        SUBCASE("wrong weight sizes") {
            AttentionWeights w = good_weights;
            w.wq.pop_back();
            expect_error(validate_attention(good, w, good_shape, good_options), {"wq", "63", "64"});
            w = good_weights;
            w.wk.resize(8 * 6); // [E, kdim] instead of [G*D, kdim] = [4, 6]
            expect_error(validate_attention(good, w, good_shape, good_options), {"wk", "48", "24"});
            w = good_weights;
            w.wv.resize(4 * 6); // vdim 6 instead of 5
            expect_error(validate_attention(good, w, good_shape, good_options), {"wv", "24", "20"});
            w = good_weights;
            w.bv.resize(8);
            expect_error(validate_attention(good, w, good_shape, good_options), {"bv", "8", "4"});
            w = good_weights;
            w.wo.clear();
            expect_error(validate_attention(good, w, good_shape, good_options), {"wo", "0", "64"});
            w = good_weights;
            w.bq.clear();
            w.bk.clear();
            w.bv.clear();
            w.bo.clear();
            CHECK(validate_attention(good, w, good_shape, good_options).ok()); // biases are optional
        }
        SUBCASE("mask kinds") {
            AttentionOptions o;
            o.key_padding = MaskKind::additive;
            expect_error(validate_attention(good, good_weights, good_shape, o), {"key_padding", "additive"});
            o = AttentionOptions{};
            o.attn_mask = static_cast<MaskKind>(7);
            expect_error(validate_attention(good, good_weights, good_shape, o), {"attn_mask", "7"});
        }
        SUBCASE("model options") {
            AttentionConfig c = good; // D = 2, H = 4
            AttentionWeights w = good_weights;
            c.qk_norm = true;
            expect_error(validate_attention(c, w, good_shape, good_options), {"q_norm", "0", "2"}); // missing
            w.q_norm = {1.0f, 1.0f};
            w.k_norm = {1.0f, 1.0f, 1.0f};
            expect_error(validate_attention(c, w, good_shape, good_options), {"k_norm", "3", "2"});
            w.k_norm.pop_back();
            CHECK(validate_attention(c, w, good_shape, good_options).ok());
            c.norm_eps = 0.0f;
            expect_error(validate_attention(c, w, good_shape, good_options), {"norm_eps 0"});
            c.norm_eps = std::numeric_limits<float>::quiet_NaN();
            expect_error(validate_attention(c, w, good_shape, good_options), {"norm_eps nan"});
            c = good;
            w = good_weights;
            w.q_norm = {1.0f}; // ignored while qk_norm is off
            CHECK(validate_attention(c, w, good_shape, good_options).ok());
            c.sinks = true;
            w.sinks = {0.0f, 0.0f, 0.0f};
            expect_error(validate_attention(c, w, good_shape, good_options), {"sinks", "3", "4"});
            w.sinks.push_back(0.0f);
            CHECK(validate_attention(c, w, good_shape, good_options).ok());
            c = good;
            c.rope.layout = RopeLayout::neox;
            c.rope.dims = 3;
            expect_error(validate_attention(c, w, good_shape, good_options), {"RoPE", "3"});
            c = good;
            c.scale = -1.0f;
            expect_error(validate_attention(c, w, good_shape, good_options), {"scale -1"});
            c.scale = std::numeric_limits<float>::infinity();
            expect_error(validate_attention(c, w, good_shape, good_options), {"scale inf"});
            c = good;
            c.softcap = -2.0f;
            expect_error(validate_attention(c, w, good_shape, good_options), {"softcap -2"});
            c.softcap = std::numeric_limits<float>::quiet_NaN();
            expect_error(validate_attention(c, w, good_shape, good_options), {"softcap nan"});
        }
        SUBCASE("sizes that overflow") {
            expect_error(validate_attention(good, good_weights, AttentionShape{0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu},
                                            good_options),
                         {"overflows"});
        }
        SUBCASE("inputs") {
            const std::vector<float> x(2 * 4 * 8, 0.5f), y(2 * 4 * 6, 0.5f);
            AttentionInputs in;
            auto status_of = [&](const AttentionConfig& c, const AttentionWeights& w, const AttentionShape& s,
                                 const AttentionOptions& o) {
                auto r = reference_attention(c, w, s, o, in);
                return r.ok() ? Status{} : Status{r.error()};
            };
            expect_error(status_of(good, good_weights, good_shape, good_options), {"query"});
            in.query = x.data();
            expect_error(status_of(good, good_weights, good_shape, good_options), {"lk 4", "lq 3"}); // self, lk != lq
            const AttentionConfig self = make_config(8, 2, 2);
            const AttentionWeights self_weights = random_weights(self, rng);
            AttentionOptions o;
            o.attn_mask = MaskKind::additive;
            expect_error(status_of(self, self_weights, AttentionShape{2, 4, 4}, o), {"attn_mask"});
            o = AttentionOptions{};
            o.key_padding = MaskKind::boolean;
            expect_error(status_of(self, self_weights, AttentionShape{2, 4, 4}, o), {"key_padding_mask"});
            in.key = y.data(); // key given with kdim 6, value null: vdim 5 must equal it
            expect_error(status_of(good, good_weights, AttentionShape{2, 4, 4}, good_options), {"vdim 5", "6"});
        }
    }

    TEST_CASE("rope: inv_freq of each scaling against the formulas computed here") {
        const uint32_t dims = 16;
        RopeConfig r = neox_rope(0, 500000.0);
        auto base = [&](uint32_t i) { return default_inv_freq(r.theta, dims, i); };

        std::vector<float> f = rope_inv_freq(r, dims);
        REQUIRE(f.size() == dims / 2);
        for (uint32_t i = 0; i < dims / 2; ++i) CHECK(f[i] == doctest::Approx(base(i)).epsilon(1e-7));
        CHECK(rope_attention_factor(r) == 1.0f);

        r.scaling = RopeScaling::linear;
        r.factor = 2.5;
        f = rope_inv_freq(r, dims);
        for (uint32_t i = 0; i < dims / 2; ++i) CHECK(f[i] == doctest::Approx(base(i) / 2.5).epsilon(1e-7));
        CHECK(rope_attention_factor(r) == 1.0f);

        SUBCASE("llama3: high frequencies kept, low ones / factor, a blend between") {
            r.scaling = RopeScaling::llama3;
            r.factor = 8.0;
            r.low_freq_factor = 1.0;
            r.high_freq_factor = 4.0;
            r.original_max_positions = 8192;
            auto wavelen = [&](uint32_t i) { return 2.0 * std::numbers::pi / base(i); };
            // The premise: wavelengths 6.3 (pair 0), ~4443 (pair 4), ~6e5 (pair 7) against 8192/4 and 8192/1.
            REQUIRE(wavelen(0) < 2048.0);
            REQUIRE((wavelen(4) > 2048.0 && wavelen(4) < 8192.0));
            REQUIRE(wavelen(7) > 8192.0);
            f = rope_inv_freq(r, dims);
            CHECK(f[0] == doctest::Approx(base(0)).epsilon(1e-7));
            CHECK(f[7] == doctest::Approx(base(7) / 8.0).epsilon(1e-7));
            CHECK(f[4] > base(4) / 8.0 * (1 + 1e-3));
            CHECK(f[4] < base(4) * (1 - 1e-3));
            const double smooth = (8192.0 / wavelen(4) - 1.0) / (4.0 - 1.0);
            CHECK(f[4] == doctest::Approx((1 - smooth) * base(4) / 8.0 + smooth * base(4)).epsilon(1e-7));
        }
        SUBCASE("yarn: first pair kept, last pair / factor, the ramp between; attention factor 0.1 ln f + 1") {
            r = neox_rope(0, 150000.0);
            r.scaling = RopeScaling::yarn;
            r.factor = 32.0;
            r.original_max_positions = 4096;
            auto yarn_base = [&](uint32_t i) { return default_inv_freq(150000.0, dims, i); };
            // Correction range: dims ln(orig / (2 pi beta)) / (2 ln theta) for beta_fast 32 and beta_slow 1.
            auto correction = [&](double beta) {
                return dims * std::log(4096.0 / (beta * 2.0 * std::numbers::pi)) / (2.0 * std::log(150000.0));
            };
            const double low = std::floor(correction(32.0)), high = std::ceil(correction(1.0)); // 2 and 5
            REQUIRE((low == 2.0 && high == 5.0));
            f = rope_inv_freq(r, dims);
            CHECK(f[0] == doctest::Approx(yarn_base(0)).epsilon(1e-7));
            CHECK(f[7] == doctest::Approx(yarn_base(7) / 32.0).epsilon(1e-7));
            const double ramp = (3.0 - low) / (high - low);
            CHECK(f[3] == doctest::Approx(yarn_base(3) / 32.0 * ramp + yarn_base(3) * (1 - ramp)).epsilon(1e-7));
            CHECK(rope_attention_factor(r) == doctest::Approx(0.1 * std::log(32.0) + 1.0).epsilon(1e-7));

            r.truncate = false; // the unrounded range moves the ramp
            const std::vector<float> untruncated = rope_inv_freq(r, dims);
            const double ramp_untruncated = (3.0 - correction(32.0)) / (correction(1.0) - correction(32.0));
            CHECK(untruncated[3] ==
                  doctest::Approx(yarn_base(3) / 32.0 * ramp_untruncated + yarn_base(3) * (1 - ramp_untruncated))
                      .epsilon(1e-7));
            CHECK(untruncated[3] != f[3]);

            r.factor = 1.0; // no attention factor without extension
            CHECK(rope_attention_factor(r) == 1.0f);
        }
        SUBCASE("the attention factor scales cos and sin: position 0 multiplies the row by it") {
            std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
            const RopeConfig rope = neox_rope();
            rope_rotate(x.data(), 4, rope, rope_inv_freq(rope, 4), 1.5f, 0);
            CHECK(x == std::vector<float>{1.5f, 3.0f, 4.5f, 6.0f});
        }
    }

    TEST_CASE("rope: validate_rope refuses bad settings with a message naming the value") {
        auto refused = [](const RopeConfig& r, uint32_t head_dim, std::initializer_list<const char*> mentions) {
            const Status status = validate_rope(r, head_dim);
            REQUIRE_FALSE(status.ok());
            CHECK(status.error().code == ErrorCode::invalid_argument);
            CHECK(is_single_line(status.error().message));
            for (const char* m : mentions)
                CHECK_MESSAGE(status.error().message.find(m) != std::string::npos, "'", status.error().message,
                              "' should mention '", std::string(m), "'");
        };
        CHECK(validate_rope(neox_rope(), 16).ok());
        CHECK(validate_rope(neox_rope(6), 16).ok());
        RopeConfig off; // disabled: nothing else is read
        off.dims = 7;
        off.theta = 0.0;
        CHECK(validate_rope(off, 16).ok());

        refused(neox_rope(7), 16, {"7"});          // odd R
        refused(neox_rope(18), 16, {"18", "16"});  // R > D
        refused(neox_rope(0), 15, {"15"});         // R = D, odd
        refused(neox_rope(0, 1.0), 16, {"theta"}); // theta <= 1
        refused(neox_rope(0, 0.5), 16, {"theta", "0.5"});
        RopeConfig r = neox_rope();
        r.layout = static_cast<RopeLayout>(9);
        refused(r, 16, {"layout", "9"});
        r = neox_rope();
        r.scaling = RopeScaling::llama3;
        r.factor = 8.0;
        refused(r, 16, {"llama3", "original_max_position"}); // no original max positions
        r.original_max_positions = 8192;
        CHECK(validate_rope(r, 16).ok());
        r.high_freq_factor = r.low_freq_factor;
        refused(r, 16, {"high_freq_factor"});
        r = neox_rope();
        r.scaling = RopeScaling::yarn;
        r.factor = 32.0;
        refused(r, 16, {"yarn", "original_max_position"});
        r.scaling = RopeScaling::linear;
        r.factor = 0.0;
        refused(r, 16, {"factor"});
    }

    TEST_CASE("alibi: Bloom's slopes") {
        for (uint32_t h = 0; h < 8; ++h) CHECK(alibi_slope(h, 8) == std::ldexp(1.0f, -static_cast<int>(h + 1)));
        // H = 6: n = 4 gives 2^-2, 2^-4, 2^-6, 2^-8; the rest are the odd slopes of 2n = 8: 2^-1, 2^-3.
        const float six[] = {0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
        for (uint32_t h = 0; h < 6; ++h) CHECK(alibi_slope(h, 6) == six[h]);
        CHECK(alibi_slope(0, 1) == std::ldexp(1.0f, -8));
        // H = 12: 2^-1 .. 2^-8, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5.
        for (uint32_t h = 8; h < 12; ++h)
            CHECK(alibi_slope(h, 12) == doctest::Approx(std::exp2(-0.5 - (h - 8.0))).epsilon(1e-7));
    }

    TEST_CASE("rope: scores depend only on relative position") {
        Problem p = make_problem(16, 2, 1, AttentionShape{2, 6, 6}, false, 21);
        p.config.rope = neox_rope();
        p.options.causal = true;
        p.position_ids = {0, 1, 3, 4, 8, 9, 2, 3, 4, 5, 6, 7};
        const std::vector<float> base = outputs_of(p).output;
        for (int32_t& x : p.position_ids) x += 37;
        CHECK(max_abs_diff(outputs_of(p).output, base) <= 1e-4);
        p.position_ids = {0, 1, 3, 4, 8, 9, 9, 3, 4, 5, 6, 1}; // batch 1 no longer a shift: must move
        CHECK(max_abs_diff(outputs_of(p).output, base) > 1e-3);
        p.position_ids = {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5};
        const std::vector<float> explicit_default = outputs_of(p).output;
        p.position_ids.clear();
        CHECK(outputs_of(p).output == explicit_default); // absent = 0..L-1 for self-attention
    }

    TEST_CASE("rope: partial rotary leaves dims >= R untouched, neox and gptj pair different dims") {
        Problem p = make_problem(16, 2, 2, AttentionShape{1, 4, 4}, false, 22);
        p.position_ids = {3, 5, 8, 13};
        const AttentionStages plain = stages_of(p);
        const size_t d = 8, r = 4;
        std::vector<std::vector<float>> rotated_q;
        for (RopeLayout layout : {RopeLayout::neox, RopeLayout::gptj}) {
            CAPTURE(static_cast<int>(layout));
            p.config.rope = neox_rope(r);
            p.config.rope.layout = layout;
            const AttentionStages st = stages_of(p);
            bool first_dims_moved = false;
            for (size_t row = 0; row < st.q.size() / d; ++row)
                for (size_t x = 0; x < d; ++x) {
                    if (x >= r) CHECK(st.q[row * d + x] == plain.q[row * d + x]);
                    if (x < r && st.q[row * d + x] != plain.q[row * d + x]) first_dims_moved = true;
                }
            CHECK(first_dims_moved);
            rotated_q.push_back(st.q);
        }
        CHECK(max_abs_diff(rotated_q[0], rotated_q[1]) > 1e-2);

        // By hand, query row 1 (position 5) of head 0: pair 0 has inv_freq 1 and pairs dims (0, 2) for neox,
        // (0, 1) for gptj.
        const float angle = 5.0f;
        const double c = std::cos(angle), s = std::sin(angle);
        const float* x = plain.q.data() + 1 * d;
        CHECK(rotated_q[0][1 * d + 0] == doctest::Approx(x[0] * c - x[2] * s).epsilon(1e-6));
        CHECK(rotated_q[0][1 * d + 2] == doctest::Approx(x[2] * c + x[0] * s).epsilon(1e-6));
        CHECK(rotated_q[1][1 * d + 0] == doctest::Approx(x[0] * c - x[1] * s).epsilon(1e-6));
        CHECK(rotated_q[1][1 * d + 1] == doctest::Approx(x[1] * c + x[0] * s).epsilon(1e-6));
    }

    TEST_CASE("rope: positions of queries and keys (defaults, key_position_ids, self-attention)") {
        SUBCASE("without ids, query i sits at Lk - Lq + i and key j at j") {
            Problem p = make_problem(16, 2, 2, AttentionShape{2, 3, 7}, true, 23);
            p.config.rope = neox_rope();
            const std::vector<float> implicit = outputs_of(p).output;
            p.position_ids = {4, 5, 6, 4, 5, 6};
            p.key_position_ids = {0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6};
            CHECK(outputs_of(p).output == implicit);
            // Each key row is rotated at its own key_position_ids entry.
            p.key_position_ids = {9, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6};
            const AttentionStages st = stages_of(p);
            p.config.rope = RopeConfig{};
            const AttentionStages unrotated = stages_of(p);
            std::vector<float> row(unrotated.k.begin(), unrotated.k.begin() + 8); // batch 0, head 0, key 0
            rope_rotate(row.data(), 8, neox_rope(), rope_inv_freq(neox_rope(), 8), 1.0f, 9);
            CHECK(std::vector<float>(st.k.begin(), st.k.begin() + 8) == row);
        }
        SUBCASE("self-attention keys take position_ids, and equal a cross-attention with key_position_ids") {
            Problem p = make_problem(16, 4, 2, AttentionShape{2, 5, 5}, false, 24);
            p.config.rope = neox_rope();
            p.options.causal = true;
            p.position_ids = {7, 9, 12, 13, 20, 0, 1, 2, 30, 31};
            const std::vector<float> self = outputs_of(p).output;
            p.key_position_ids = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}; // ignored: self-attention keys use position_ids
            CHECK(outputs_of(p).output == self);
            p.key = p.query; // the same tokens as an explicit key
            p.key_position_ids = p.position_ids;
            CHECK(outputs_of(p).output == self);
        }
    }

    TEST_CASE("qk_norm: stage rows have the weight's rms, and RoPE rotates the normed rows") {
        Problem p = make_problem(16, 2, 1, AttentionShape{2, 4, 4}, false, 25, 3.0f);
        p.config.qk_norm = true;
        p.weights.q_norm.assign(8, 2.5f);
        p.weights.k_norm.assign(8, 0.5f);
        AttentionStages st = stages_of(p);
        auto rms = [](const float* x) {
            double sum = 0.0;
            for (size_t d = 0; d < 8; ++d) sum += double(x[d]) * x[d];
            return std::sqrt(sum / 8);
        };
        for (size_t row = 0; row < st.q.size() / 8; ++row) CHECK(rms(st.q.data() + row * 8) == doctest::Approx(2.5));
        for (size_t row = 0; row < st.k.size() / 8; ++row) CHECK(rms(st.k.data() + row * 8) == doctest::Approx(0.5));
        p.config.qk_norm = false;
        const AttentionStages raw = stages_of(p);
        const double raw_rms = rms(raw.q.data());
        CHECK(raw_rms != doctest::Approx(2.5).epsilon(0.05)); // the premise: far from it
        // eps sits inside the root: with eps = 1 the rms becomes w * sqrt(ms / (ms + 1)).
        p.config.qk_norm = true;
        p.config.norm_eps = 1.0f;
        const double ms = raw_rms * raw_rms;
        CHECK(rms(stages_of(p).q.data()) == doctest::Approx(2.5 * std::sqrt(ms / (ms + 1.0))));
        p.config.norm_eps = 1e-6f;

        // Uneven weights make the order matter (RMS alone is rotation invariant): norm first, then rotate.
        p.config.qk_norm = true;
        std::mt19937 rng(5);
        p.weights.q_norm = random_vector(8, rng);
        p.weights.k_norm = random_vector(8, rng);
        const AttentionStages normed = stages_of(p);
        p.config.rope = neox_rope();
        p.position_ids = {3, 4, 5, 6, 10, 11, 12, 13};
        st = stages_of(p);
        std::vector<float> row(normed.q.begin() + 8, normed.q.begin() + 16); // batch 0, head 0, query 1
        rope_rotate(row.data(), 8, p.config.rope, rope_inv_freq(p.config.rope, 8), 1.0f, 4);
        CHECK(std::vector<float>(st.q.begin() + 8, st.q.begin() + 16) == row);
    }

    TEST_CASE("scale and softcap: scores are scale * q.k, then capped to |s| <= c, before the additive mask") {
        Problem p = make_problem(16, 2, 2, AttentionShape{1, 4, 5}, true, 26, 3.0f);
        const AttentionStages plain = stages_of(p); // 1/sqrt(8)
        p.config.scale = 0.3f;
        const AttentionStages scaled = stages_of(p);
        for (size_t x = 0; x < plain.scores.size(); ++x)
            CHECK(scaled.scores[x] == doctest::Approx(plain.scores[x] * 0.3 * std::sqrt(8.0)).epsilon(1e-5));
        const float cap = 2.0f;
        REQUIRE(*std::max_element(scaled.scores.begin(), scaled.scores.end()) > 2 * cap); // the cap bites

        p.config.softcap = cap;
        std::vector<float> mask(4 * 5, 0.0f);
        mask[7] = 5.0f;
        p.options.attn_mask = MaskKind::additive;
        AttentionInputs in = p.inputs();
        in.attn_mask = mask.data();
        auto capped = reference_attention_stages(p.config, p.weights, p.shape, p.options, in);
        REQUIRE(capped.ok());
        for (size_t x = 0; x < plain.scores.size(); ++x) {
            CAPTURE(x);
            const double expected = cap * std::tanh(scaled.scores[x] / cap) + (x % 20 == 7 ? 5.0 : 0.0);
            CHECK(capped->scores[x] == doctest::Approx(expected).epsilon(1e-5));
            if (x % 20 != 7) CHECK(std::fabs(capped->scores[x]) <= cap);
        }
        CHECK(capped->scores[7] > cap); // the mask comes after the cap
    }

    TEST_CASE("sinks: a logit in each row's denominator, so rows sum to less than 1") {
        SUBCASE("by hand: scores {0, ln 3} and sink ln 2 give P = {1/6, 1/2}") {
            AttentionConfig config = make_config(1, 1, 1);
            config.sinks = true;
            AttentionWeights w;
            w.wq = w.wk = w.wv = w.wo = {1.0f};
            w.bo = {0.5f};
            w.sinks = {std::log(2.0f)};
            const float ln3 = std::log(3.0f);
            const std::vector<float> query = {1.0f}, key = {0.0f, ln3};
            AttentionInputs in;
            in.query = query.data();
            in.key = key.data();
            AttentionOptions options;
            options.need_weights = true;
            auto st = reference_attention_stages(config, w, AttentionShape{1, 1, 2}, options, in);
            REQUIRE(st.ok());
            CHECK(st->probs[0] == doctest::Approx(1.0 / 6).epsilon(1e-6));
            CHECK(st->probs[1] == doctest::Approx(0.5).epsilon(1e-6));
            CHECK(st->output[0] == doctest::Approx(0.5 * ln3 + 0.5).epsilon(1e-6)); // the sink adds no value
            auto out = reference_attention(config, w, AttentionShape{1, 1, 2}, options, in);
            REQUIRE(out.ok());
            CHECK(out->weights == st->probs);
        }
        SUBCASE("random: P_ij = exp(s_ij - m) / (sum_k exp(s_ik - m) + exp(sink_h - m)); all masked gives zeros") {
            Problem p = make_problem(16, 2, 1, AttentionShape{2, 3, 5}, true, 27);
            p.config.sinks = true;
            p.weights.sinks = {0.3f, 40.0f}; // head 1's sink dominates its rows' maximum
            std::vector<uint8_t> padding(2 * 5, 0);
            std::fill(padding.begin() + 5, padding.end(), uint8_t{1}); // batch 1: every key padded
            p.options.key_padding = MaskKind::boolean;
            p.options.need_weights = true;
            p.options.average_weights = false;
            AttentionInputs in = p.inputs();
            in.key_padding_mask = padding.data();
            auto st = reference_attention_stages(p.config, p.weights, p.shape, p.options, in);
            auto out = reference_attention(p.config, p.weights, p.shape, p.options, in);
            REQUIRE((st.ok() && out.ok()));
            CHECK(out->weights == st->probs);
            for (size_t h = 0; h < 2; ++h)
                for (size_t i = 0; i < 3; ++i) {
                    const float* s = st->scores.data() + (h * 3 + i) * 5; // batch 0
                    const float* prob = st->probs.data() + (h * 3 + i) * 5;
                    const double sink = p.weights.sinks[h];
                    const double m = std::max(sink, double(*std::max_element(s, s + 5)));
                    double denominator = std::exp(sink - m), sum = 0.0;
                    for (size_t j = 0; j < 5; ++j) denominator += std::exp(s[j] - m);
                    for (size_t j = 0; j < 5; ++j) {
                        CHECK(prob[j] == doctest::Approx(std::exp(s[j] - m) / denominator).epsilon(1e-5));
                        sum += prob[j];
                    }
                    CHECK(sum < 1.0);
                }
            for (size_t x = 2 * 3 * 5; x < st->probs.size(); ++x) CHECK(st->probs[x] == 0.0f); // batch 1
            for (size_t x = 3 * 16; x < out->output.size(); ++x) CHECK(out->output[x] == p.weights.bo[x % 16]);
        }
    }

    TEST_CASE("window and causal mask by index position, never by position_ids") {
        for (bool causal : {false, true}) {
            CAPTURE(causal);
            Problem p = make_problem(16, 2, 2, AttentionShape{2, 4, 9}, true, 28);
            p.config.window = 3;
            p.config.rope = neox_rope();
            p.position_ids = {100, 0, 50, 7, 1, 2, 3, 4}; // nothing like the index positions
            p.options.causal = causal;
            const AttentionStages st = stages_of(p);
            for (size_t bh = 0; bh < 4; ++bh)
                for (int64_t i = 0; i < 4; ++i)
                    for (int64_t j = 0; j < 9; ++j) {
                        const int64_t i_pos = i + 9 - 4;
                        const bool masked = j <= i_pos - 3 || (causal && j > i_pos);
                        CHECK(std::isinf(st.scores[(bh * 4 + i) * 9 + j]) == masked);
                        CHECK((st.probs[(bh * 4 + i) * 9 + j] == 0.0f) == masked);
                    }
        }
    }

    TEST_CASE("alibi: adds slope_h * (j - i_pos) at index positions") {
        Problem p = make_problem(16, 4, 2, AttentionShape{2, 3, 6}, true, 29);
        p.config.rope = neox_rope();
        p.position_ids = {40, 3, 17, 5, 5, 5}; // ALiBi must not read them
        p.options.causal = true;
        const AttentionStages plain = stages_of(p);
        p.config.alibi = true;
        const AttentionStages st = stages_of(p);
        for (size_t b = 0; b < 2; ++b)
            for (size_t h = 0; h < 4; ++h)
                for (int64_t i = 0; i < 3; ++i)
                    for (int64_t j = 0; j < 6; ++j) {
                        const size_t x = (((b * 4 + h) * 3) + static_cast<size_t>(i)) * 6 + static_cast<size_t>(j);
                        const int64_t i_pos = i + 6 - 3;
                        if (j > i_pos) {
                            CHECK(std::isinf(st.scores[x]));
                            continue;
                        }
                        const double slope = alibi_slope(static_cast<uint32_t>(h), 4);
                        CHECK(st.scores[x] - plain.scores[x] ==
                              doctest::Approx(slope * static_cast<double>(j - i_pos)).epsilon(1e-5));
                    }
    }

} // TEST_SUITE
