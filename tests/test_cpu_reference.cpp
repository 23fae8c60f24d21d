// Tests of the CPU attention reference: against PyTorch fixtures (tests/fixtures) and against properties of the math.
#include "cpu_reference.h"

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

} // TEST_SUITE
