// The CPU reference against the attention of real model families (Llama 3, Qwen3, Gemma 2, gpt-oss, Bloom, GPT-J,
// GPT-NeoX): fixtures written by tests/fixtures/make_model_fixtures.py from an independent PyTorch oracle. Each
// family's options are spelled out here as C++ would set them and cross-checked against the file's __metadata__,
// so the table below and the script's table cannot drift apart silently.
#include "cpu_reference.h"
#include "io/safetensors.h"
#include "io/weight_map.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#ifndef VKMHA_FIXTURE_DIR
#define VKMHA_FIXTURE_DIR "tests/fixtures"
#endif

using namespace vkmha;

namespace {

struct ModelFixture {
    std::string name;   // file stem: <name>.weights / .input / .expected.safetensors
    std::string family; // __metadata__ "family"
    AttentionConfig config;
    bool causal = true;
    bool position_ids = false; // the input file holds position_ids
    bool key_padding = false;  // the input file holds key_padding_mask
};

ModelFixture fixture(std::string name, std::string family, uint32_t embed, uint32_t heads, uint32_t kv_heads) {
    ModelFixture f;
    f.name = std::move(name);
    f.family = std::move(family);
    f.config.embed_dim = f.config.kdim = f.config.vdim = embed;
    f.config.num_heads = heads;
    f.config.num_kv_heads = kv_heads;
    return f;
}

// The families, as make_model_fixtures.py's table states them.
std::vector<ModelFixture> model_fixtures() {
    std::vector<ModelFixture> out;
    ModelFixture f = fixture("model_llama3", "llama3", 128, 8, 2);
    f.config.rope = {.layout = RopeLayout::neox,
                     .theta = 500000.0,
                     .scaling = RopeScaling::llama3,
                     .factor = 8.0,
                     .low_freq_factor = 1.0,
                     .high_freq_factor = 4.0,
                     .original_max_positions = 8192};
    f.position_ids = true;
    out.push_back(f);

    f = fixture("model_qwen3", "qwen3", 48, 4, 2);
    f.config.explicit_head_dim = 16; // H * D = 64 != E = 48, as Qwen3's layers
    f.config.qk_norm = true;
    f.config.norm_eps = 1e-6f;
    f.config.rope = {.layout = RopeLayout::neox, .theta = 1000000.0};
    out.push_back(f);

    f = fixture("model_gemma2", "gemma2", 64, 4, 2);
    f.config.rope = {.layout = RopeLayout::neox, .theta = 10000.0};
    f.config.scale = static_cast<float>(1.0 / std::sqrt(24.0)); // query_pre_attn_scalar 24 != D = 16
    f.config.softcap = 50.0f;
    f.config.window = 4;
    out.push_back(f);

    f = fixture("model_gpt_oss", "gpt-oss", 64, 4, 2);
    f.config.rope = {.layout = RopeLayout::neox,
                     .theta = 150000.0,
                     .scaling = RopeScaling::yarn,
                     .factor = 32.0,
                     .original_max_positions = 4096,
                     .beta_fast = 32.0,
                     .beta_slow = 1.0,
                     .truncate = false};
    f.config.window = 5;
    f.config.sinks = true;
    f.position_ids = true;
    out.push_back(f);

    f = fixture("model_bloom", "bloom", 48, 6, 6);
    f.config.alibi = true;
    f.key_padding = true;
    out.push_back(f);

    f = fixture("model_gptj", "gptj", 64, 4, 4);
    f.config.rope = {.layout = RopeLayout::gptj, .dims = 8, .theta = 10000.0};
    f.position_ids = true;
    out.push_back(f);

    f = fixture("model_neox", "neox", 64, 4, 4);
    f.config.rope = {
        .layout = RopeLayout::neox, .dims = 4, .theta = 10000.0, .scaling = RopeScaling::linear, .factor = 2.0};
    out.push_back(f);
    return out;
}

// ---- __metadata__ of a safetensors file (host/io reads tensors only). The script writes compact JSON of ASCII
// strings, so a string scanner suffices.

std::map<std::string, std::string> read_metadata(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    REQUIRE_MESSAGE(file.good(), "cannot open ", path);
    uint64_t header_len = 0;
    file.read(reinterpret_cast<char*>(&header_len), 8);
    REQUIRE((file.good() && header_len < (1u << 20)));
    std::string header(static_cast<size_t>(header_len), '\0');
    file.read(header.data(), static_cast<std::streamsize>(header_len));
    REQUIRE(file.good());
    const std::string key = "\"__metadata__\":{";
    size_t pos = header.find(key);
    REQUIRE_MESSAGE(pos != std::string::npos, path, " has no __metadata__");
    pos += key.size();
    auto string_at = [&](size_t& p) {
        REQUIRE(header.at(p) == '"');
        const size_t end = header.find('"', p + 1);
        REQUIRE(end != std::string::npos);
        std::string s = header.substr(p + 1, end - p - 1);
        REQUIRE_MESSAGE(s.find('\\') == std::string::npos, "escapes in metadata are not expected: ", s);
        p = end + 1;
        return s;
    };
    std::map<std::string, std::string> out;
    while (header.at(pos) != '}') {
        const std::string k = string_at(pos);
        REQUIRE(header.at(pos++) == ':');
        out[k] = string_at(pos);
        if (header.at(pos) == ',') ++pos;
    }
    return out;
}

const char* bool_text(bool b) { return b ? "true" : "false"; }
const char* layout_text(RopeLayout l) {
    return l == RopeLayout::neox ? "neox" : l == RopeLayout::gptj ? "gptj" : "none";
}
const char* scaling_text(RopeScaling s) {
    switch (s) {
    case RopeScaling::none: return "none";
    case RopeScaling::linear: return "linear";
    case RopeScaling::llama3: return "llama3";
    case RopeScaling::yarn: return "yarn";
    }
    return "?";
}

// What the C++ table says, in the script's metadata keys; numbers as doubles, the rest as text.
struct Expected {
    std::map<std::string, std::string> text;
    std::map<std::string, double> number;
};

Expected expected_metadata(const ModelFixture& f) {
    const AttentionConfig& c = f.config;
    const RopeConfig& r = c.rope;
    Expected e;
    e.text = {{"family", f.family},
              {"qk_norm", bool_text(c.qk_norm)},
              {"rope", layout_text(r.layout)},
              {"rope_scaling", scaling_text(r.scaling)},
              {"rope_truncate", bool_text(r.truncate)},
              {"alibi", bool_text(c.alibi)},
              {"sinks", bool_text(c.sinks)},
              {"causal", bool_text(f.causal)}};
    e.number = {{"num_heads", c.num_heads},
                {"num_kv_heads", c.num_kv_heads},
                {"norm_eps", c.norm_eps},
                {"rope_dims", r.enabled() ? c.rotary_dims() : 0},
                {"rope_theta", r.theta},
                {"rope_factor", r.factor},
                {"rope_low_freq_factor", r.low_freq_factor},
                {"rope_high_freq_factor", r.high_freq_factor},
                {"rope_original_max_positions", r.original_max_positions},
                {"rope_beta_fast", r.beta_fast},
                {"rope_beta_slow", r.beta_slow},
                {"scale", c.scale},
                {"softcap", c.softcap},
                {"window", c.window}};
    return e;
}

void check_metadata(const ModelFixture& f, const std::map<std::string, std::string>& meta) {
    const Expected e = expected_metadata(f);
    CHECK(meta.size() == e.text.size() + e.number.size()); // no key the table does not spell out
    // Plain names, not structured bindings: clang before 16 (the ThreadSanitizer build) cannot capture those in
    // doctest's lambdas.
    for (const auto& text_entry : e.text) {
        const std::string& key = text_entry.first;
        const std::string& value = text_entry.second;
        CAPTURE(key);
        REQUIRE(meta.count(key) == 1);
        CHECK(meta.at(key) == value);
    }
    for (const auto& number_entry : e.number) {
        const std::string& key = number_entry.first;
        const double value = number_entry.second;
        CAPTURE(key);
        REQUIRE(meta.count(key) == 1);
        const std::string& text = meta.at(key);
        char* end = nullptr;
        const double parsed = std::strtod(text.c_str(), &end);
        CHECK_MESSAGE(*end == '\0', "not a number: ", text);
        // Relative 1e-6: float fields (norm_eps, scale) hold the script's doubles rounded to fp32.
        CHECK_MESSAGE(std::fabs(parsed - value) <= 1e-6 * std::max(1.0, std::fabs(value)), text, " != ", value);
    }
}

// ---- Loading.

struct Loaded {
    AttentionConfig config;
    AttentionWeights weights;
    AttentionShape shape;
    std::vector<float> query, expected;
    std::vector<int32_t> position_ids;
    std::vector<uint8_t> key_padding;
};

std::vector<io::Tensor> read_tensors(const std::string& path) {
    auto r = io::read_safetensors(path);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
    return std::move(r.value());
}

std::vector<float> floats_or_empty(const std::vector<io::Tensor>& tensors, const char* name, const std::string& file) {
    const io::Tensor* t = io::find_tensor(tensors, name);
    if (!t) return {};
    auto r = io::to_float(*t, file);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
    return std::move(r.value());
}

std::vector<int32_t> positions_or_empty(const std::vector<io::Tensor>& tensors) {
    const io::Tensor* t = io::find_tensor(tensors, "position_ids");
    if (!t) return {};
    REQUIRE(t->dtype == io::DType::i64);
    std::vector<int32_t> out(t->data.size() / 8);
    for (size_t i = 0; i < out.size(); ++i) {
        int64_t p = 0;
        std::memcpy(&p, t->data.data() + 8 * i, 8);
        REQUIRE((p >= 0 && p <= std::numeric_limits<int32_t>::max()));
        out[i] = static_cast<int32_t>(p);
    }
    return out;
}

Loaded load(const ModelFixture& f) {
    const std::string dir = std::string(VKMHA_FIXTURE_DIR) + "/" + f.name;
    const std::string weights_path = dir + ".weights.safetensors", input_path = dir + ".input.safetensors";
    const std::vector<io::Tensor> weights = read_tensors(weights_path);
    auto model = io::map_attention_weights(weights, f.config.num_heads, f.config.num_kv_heads, weights_path);
    REQUIRE_MESSAGE(model.ok(), (model.ok() ? std::string() : model.error().message));
    Loaded l;
    l.config = f.config;
    // The projections through the HF-name mapping; QK-norm weights and sinks by name (weight_map predates them).
    CHECK(model->config.embed_dim == f.config.embed_dim);
    CHECK(model->config.num_kv_heads == f.config.num_kv_heads);
    l.weights = model->weights;
    l.weights.q_norm = floats_or_empty(weights, "q_norm.weight", weights_path);
    l.weights.k_norm = floats_or_empty(weights, "k_norm.weight", weights_path);
    l.weights.sinks = floats_or_empty(weights, "sinks", weights_path);
    CHECK(l.weights.q_norm.empty() != f.config.qk_norm); // present exactly when the option is on
    CHECK(l.weights.k_norm.empty() != f.config.qk_norm);
    CHECK(l.weights.sinks.empty() != f.config.sinks);

    const std::vector<io::Tensor> input = read_tensors(input_path);
    const io::Tensor* query = io::find_tensor(input, "query");
    REQUIRE((query && query->shape.size() == 3 && query->shape[2] == f.config.embed_dim));
    l.shape = {static_cast<uint32_t>(query->shape[0]), static_cast<uint32_t>(query->shape[1]),
               static_cast<uint32_t>(query->shape[1])};
    l.query = floats_or_empty(input, "query", input_path);
    l.position_ids = positions_or_empty(input);
    CHECK(l.position_ids.empty() != f.position_ids);
    if (const io::Tensor* kpm = io::find_tensor(input, "key_padding_mask")) {
        auto bytes = io::to_bool_bytes(*kpm, input_path);
        REQUIRE(bytes.ok());
        l.key_padding = std::move(bytes.value());
    }
    CHECK(l.key_padding.empty() != f.key_padding);
    l.expected = floats_or_empty(read_tensors(dir + ".expected.safetensors"), "attn_output", dir);
    REQUIRE(l.expected.size() == l.query.size());
    return l;
}

// Elements outside |d| <= 2e-4 + 2e-3 |ref| (NaN counts as outside), and the largest |d|.
struct Mismatch {
    size_t count = 0;
    double max_abs = 0.0;
};

Mismatch mismatch(const std::vector<float>& got, const std::vector<float>& ref) {
    REQUIRE(got.size() == ref.size());
    Mismatch m;
    for (size_t i = 0; i < got.size(); ++i) {
        const double d = std::fabs(static_cast<double>(got[i]) - static_cast<double>(ref[i]));
        if (!(d <= 2e-4 + 2e-3 * std::fabs(static_cast<double>(ref[i])))) ++m.count;
        if (!(d <= m.max_abs)) m.max_abs = d;
    }
    return m;
}

std::vector<float> run(const Loaded& l, const AttentionConfig& config, bool causal, bool use_positions) {
    AttentionOptions options;
    options.causal = causal;
    AttentionInputs in;
    in.query = l.query.data();
    if (use_positions && !l.position_ids.empty()) in.position_ids = l.position_ids.data();
    if (!l.key_padding.empty()) {
        options.key_padding = MaskKind::boolean;
        in.key_padding_mask = l.key_padding.data();
    }
    auto r = reference_attention(config, l.weights, l.shape, options, in);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
    auto st = reference_attention_stages(config, l.weights, l.shape, options, in);
    REQUIRE(st.ok());
    CHECK(st->output == r->output); // both entry points run the same math
    return std::move(r->output);
}

// One option of the fixture changed: the output must then leave the tolerance, or the fixture proves nothing.
struct Mutation {
    const char* what;
    std::function<void(AttentionConfig&, bool& causal, bool& positions)> apply;
};

std::vector<Mutation> mutations_of(const ModelFixture& f) {
    const AttentionConfig& c = f.config;
    std::vector<Mutation> out;
    if (c.qk_norm) out.push_back({"qk_norm off", [](AttentionConfig& m, bool&, bool&) { m.qk_norm = false; }});
    if (c.rope.enabled()) {
        out.push_back({"rope off", [](AttentionConfig& m, bool&, bool&) { m.rope.layout = RopeLayout::none; }});
        out.push_back({"other rope layout", [](AttentionConfig& m, bool&, bool&) {
                           m.rope.layout = m.rope.layout == RopeLayout::neox ? RopeLayout::gptj : RopeLayout::neox;
                       }});
    }
    if (c.rope.enabled() && c.rope.scaling != RopeScaling::none)
        out.push_back(
            {"rope scaling off", [](AttentionConfig& m, bool&, bool&) { m.rope.scaling = RopeScaling::none; }});
    if (c.rope.scaling == RopeScaling::yarn)
        out.push_back(
            {"yarn truncate flipped", [](AttentionConfig& m, bool&, bool&) { m.rope.truncate = !m.rope.truncate; }});
    if (c.rope.dims != 0) out.push_back({"full rotary", [](AttentionConfig& m, bool&, bool&) { m.rope.dims = 0; }});
    if (f.position_ids) out.push_back({"position_ids ignored", [](AttentionConfig&, bool&, bool& p) { p = false; }});
    if (c.scale > 0.0f) out.push_back({"default scale", [](AttentionConfig& m, bool&, bool&) { m.scale = 0.0f; }});
    if (c.softcap > 0.0f) out.push_back({"softcap off", [](AttentionConfig& m, bool&, bool&) { m.softcap = 0.0f; }});
    if (c.alibi) out.push_back({"alibi off", [](AttentionConfig& m, bool&, bool&) { m.alibi = false; }});
    if (c.window > 0) out.push_back({"window off", [](AttentionConfig& m, bool&, bool&) { m.window = 0; }});
    if (c.sinks) out.push_back({"sinks off", [](AttentionConfig& m, bool&, bool&) { m.sinks = false; }});
    if (f.causal) out.push_back({"causal off", [](AttentionConfig&, bool& causal, bool&) { causal = false; }});
    return out;
}

} // namespace

TEST_SUITE("cpu_reference") {

    TEST_CASE("model fixtures: the reference matches the PyTorch oracle of each model family") {
        const std::vector<ModelFixture> fixtures = model_fixtures();
        REQUIRE(fixtures.size() == 7);
        for (const ModelFixture& f : fixtures) {
            CAPTURE(f.name);
            check_metadata(f, read_metadata(std::string(VKMHA_FIXTURE_DIR) + "/" + f.name + ".weights.safetensors"));
            const Loaded l = load(f);
            const Mismatch m = mismatch(run(l, l.config, f.causal, true), l.expected);
            MESSAGE(f.name, ": max abs error ", m.max_abs);
            CHECK_MESSAGE(m.count == 0, m.count, " of ", l.expected.size(), " outside tolerance, max abs error ",
                          m.max_abs);
        }
    }

    TEST_CASE("model fixtures: each option of each family is needed to match (the comparison can fail)") {
        for (const ModelFixture& f : model_fixtures()) {
            CAPTURE(f.name);
            const Loaded l = load(f);
            for (const Mutation& mutation : mutations_of(f)) {
                CAPTURE(mutation.what);
                AttentionConfig config = l.config;
                bool causal = f.causal, positions = true;
                mutation.apply(config, causal, positions);
                const Mismatch m = mismatch(run(l, config, causal, positions), l.expected);
                CHECK_MESSAGE(m.count >= l.expected.size() / 10, "only ", m.count, " elements moved");
            }
        }
    }

} // TEST_SUITE
