// vkmha-heads (issue 14) as a user runs it: small layers written to safetensors (GQA, causal, key padding), the tool's
// --json checked key by key against the schema and metric by metric against a computation here from the CPU
// reference's probabilities and outputs (importance with the reference's head mask, the GQA error with weights
// mean-pooled here); the same run twice gives the same JSON but for the measured milliseconds; and the committed
// fixture from tests/fixtures/heads/make_heads_fixture.py (an independent pure-Python computation) agrees.
#include "cpu_reference.h"
#include "io/safetensors.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace vkmha;

// The "Done when" bound: 1e-3 relative or 1e-5 absolute.
void check_value(double got, double want, const std::string& what) {
    INFO(what, ": got ", got, ", want ", want);
    CHECK(std::fabs(got - want) <= std::max(1e-5, 1e-3 * std::fabs(want)));
}

std::vector<float> random_vec(size_t n, std::mt19937& rng, float scale) {
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
}

struct Layer {
    AttentionConfig c;
    AttentionWeights w;
};

// Llama names; `sharp` scales Wq so the heads' attention is far from uniform (the metrics then differ per head).
Layer make_layer(uint32_t E, uint32_t H, uint32_t G, uint32_t seed, float sharp) {
    std::mt19937 rng(seed);
    Layer l{{E, H, G, E, E}, {}};
    const uint32_t D = E / H;
    const float s = 1.0f / std::sqrt(float(E));
    l.w.wq = random_vec(size_t(E) * E, rng, s * sharp);
    l.w.wk = random_vec(size_t(G) * D * E, rng, s);
    l.w.wv = random_vec(size_t(G) * D * E, rng, s);
    l.w.wo = random_vec(size_t(E) * E, rng, s);
    l.w.bq = random_vec(E, rng, 0.1f);
    l.w.bk = random_vec(size_t(G) * D, rng, 0.1f);
    l.w.bv = random_vec(size_t(G) * D, rng, 0.1f);
    l.w.bo = random_vec(E, rng, 0.1f);
    return l;
}

void write_layer(const Layer& l, const std::string& path) {
    using io::make_f32_tensor;
    const uint64_t E = l.c.embed_dim, KV = l.c.kv_width();
    REQUIRE(io::write_safetensors(
        path, {make_f32_tensor("q_proj.weight", {E, E}, l.w.wq), make_f32_tensor("k_proj.weight", {KV, E}, l.w.wk),
               make_f32_tensor("v_proj.weight", {KV, E}, l.w.wv), make_f32_tensor("o_proj.weight", {E, E}, l.w.wo),
               make_f32_tensor("q_proj.bias", {E}, l.w.bq), make_f32_tensor("k_proj.bias", {KV}, l.w.bk),
               make_f32_tensor("v_proj.bias", {KV}, l.w.bv), make_f32_tensor("o_proj.bias", {E}, l.w.bo)}));
}

struct Input {
    uint32_t B = 1, L = 1;
    std::vector<float> query;
    std::vector<uint8_t> padding; // [B, L] or empty
};

Input write_input(const Layer& l, uint32_t B, uint32_t L, bool padded, uint32_t seed, const std::string& path) {
    std::mt19937 rng(seed);
    Input in{B, L, random_vec(size_t(B) * L * l.c.embed_dim, rng, 1.0f), {}};
    std::vector<io::Tensor> ts{io::make_f32_tensor("query", {B, L, l.c.embed_dim}, in.query)};
    if (padded) {
        in.padding.assign(size_t(B) * L, 0);
        for (uint32_t b = 0; b < B; ++b)
            for (uint32_t j = L - std::min(L - 1, b * 2); j < L; ++j) in.padding[size_t(b) * L + j] = 1;
        io::Tensor m;
        m.name = "key_padding_mask";
        m.dtype = io::DType::u8;
        m.shape = {B, L};
        m.data.assign(in.padding.begin(), in.padding.end());
        ts.push_back(std::move(m));
    }
    REQUIRE(io::write_safetensors(path, ts));
    return in;
}

AttentionOptions options_of(const Input& in, bool causal) {
    AttentionOptions o;
    o.causal = causal;
    if (!in.padding.empty()) o.key_padding = MaskKind::boolean;
    return o;
}

std::vector<float> reference_output(const Layer& l, const Input& in, bool causal, const std::vector<float>& mask) {
    AttentionInputs ai;
    ai.query = in.query.data();
    ai.key_padding_mask = in.padding.empty() ? nullptr : in.padding.data();
    ai.head_mask = mask;
    auto r = reference_attention(l.c, l.w, {in.B, in.L, in.L}, options_of(in, causal), ai);
    REQUIRE(r);
    return r.value().output;
}

double frobenius_rel(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0, n = 0;
    for (size_t i = 0; i < a.size(); ++i) d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), n += double(b[i]) * b[i];
    return std::sqrt(d / n);
}

// The per-head metrics of one input, from the reference's probabilities: plain loops, no shared code with the
// tool.
struct Expected {
    double entropy = 0, normalized = 0, distance = 0, top1 = 0, importance = 0;
    int most_similar = -1;
    double similarity = 0;
};

// Mean over the rows both heads see of 1 - JS(p_h, p_g) / ln 2, for every other head g; the best one (lowest index on
// ties).
void expected_similarity(const std::vector<float>& probs, const Input& in, bool causal, uint32_t H,
                         std::vector<Expected>& e) {
    const uint32_t L = in.L;
    for (uint32_t h = 0; h < H; ++h)
        for (uint32_t g = 0; g < H; ++g) {
            if (g == h) continue;
            double sum = 0, rows = 0;
            for (uint32_t b = 0; b < in.B; ++b)
                for (uint32_t i = 0; i < L; ++i) {
                    bool any = false;
                    for (uint32_t j = 0; j < L; ++j)
                        any = any || !((causal && j > i) || (!in.padding.empty() && in.padding[size_t(b) * L + j]));
                    if (!any) continue;
                    const float* p = probs.data() + ((size_t(b) * H + h) * L + i) * L;
                    const float* q = probs.data() + ((size_t(b) * H + g) * L + i) * L;
                    double js = 0;
                    for (uint32_t j = 0; j < L; ++j) {
                        const double m = 0.5 * (double(p[j]) + q[j]);
                        if (p[j] > 0) js += 0.5 * p[j] * std::log(p[j] / m);
                        if (q[j] > 0) js += 0.5 * q[j] * std::log(q[j] / m);
                    }
                    sum += 1.0 - js / std::log(2.0), rows += 1;
                }
            if (e[h].most_similar < 0 || sum / rows > e[h].similarity)
                e[h].most_similar = int(g), e[h].similarity = sum / rows;
        }
}
std::vector<Expected> expected_metrics(const Layer& l, const Input& in, bool causal) {
    AttentionInputs ai;
    ai.query = in.query.data();
    ai.key_padding_mask = in.padding.empty() ? nullptr : in.padding.data();
    auto st = reference_attention_stages(l.c, l.w, {in.B, in.L, in.L}, options_of(in, causal), ai);
    REQUIRE(st);
    const uint32_t H = l.c.num_heads, L = in.L;
    std::vector<Expected> e(H);
    const std::vector<float> full = reference_output(l, in, causal, {});
    for (uint32_t h = 0; h < H; ++h) {
        double rows = 0, norm_rows = 0;
        for (uint32_t b = 0; b < in.B; ++b)
            for (uint32_t i = 0; i < L; ++i) {
                uint32_t visible = 0;
                for (uint32_t j = 0; j < L; ++j)
                    visible += (causal && j > i) || (!in.padding.empty() && in.padding[size_t(b) * L + j]) ? 0 : 1;
                if (visible == 0) continue;
                const float* p = st.value().probs.data() + ((size_t(b) * H + h) * L + i) * L;
                double ent = 0, dist = 0, top = 0;
                for (uint32_t j = 0; j < L; ++j) {
                    if (p[j] > 0) ent -= double(p[j]) * std::log(double(p[j]));
                    dist += double(p[j]) * std::fabs(double(i) - double(j));
                    top = std::max(top, double(p[j]));
                }
                e[h].entropy += ent, e[h].distance += dist, e[h].top1 += top, rows += 1;
                if (visible >= 2) e[h].normalized += ent / std::log(double(visible)), norm_rows += 1;
            }
        e[h].entropy /= rows, e[h].distance /= rows, e[h].top1 /= rows, e[h].normalized /= norm_rows;
        std::vector<float> mask(H, 1.0f);
        mask[h] = 0.0f;
        e[h].importance = frobenius_rel(reference_output(l, in, causal, mask), full);
    }
    expected_similarity(st.value().probs, in, causal, H, e);
    return e;
}

// The GQA paper's conversion, written out here: new key/value head g averages old heads g*k .. g*k+k-1.
Layer pooled(const Layer& l, uint32_t g2) {
    Layer out = l;
    const uint32_t D = l.c.head_dim(), k = l.c.num_kv_heads / g2, E = l.c.embed_dim;
    out.c.num_kv_heads = g2;
    for (auto [dst, src, cols] : {std::tuple{&out.w.wk, &l.w.wk, E}, std::tuple{&out.w.wv, &l.w.wv, E},
                                  std::tuple{&out.w.bk, &l.w.bk, 1u}, std::tuple{&out.w.bv, &l.w.bv, 1u}}) {
        dst->assign(size_t(g2) * D * cols, 0.0f);
        for (uint32_t g = 0; g < g2; ++g)
            for (uint32_t m = 0; m < k; ++m)
                for (size_t e = 0; e < size_t(D) * cols; ++e)
                    (*dst)[size_t(g) * D * cols + e] += (*src)[(size_t(g) * k + m) * D * cols + e] / float(k);
    }
    return out;
}

std::string heads_tool() { return VKMHA_HEADS_PATH; }

// Runs vkmha-heads; returns its JSON (REQUIREs exit 0 and no validation message on stderr).
Json run_heads(const std::vector<std::string>& args, const fs::path& dir) {
    std::string cmd = "'" + heads_tool() + "'";
    for (const std::string& a : args) cmd += " '" + a + "'";
    const fs::path json = dir / "out.json", err = dir / "err.txt";
    cmd += " --json '" + json.string() + "' > /dev/null 2> '" + err.string() + "'";
    const int rc = std::system(cmd.c_str());
    std::ifstream e(err);
    const std::string stderr_text{std::istreambuf_iterator<char>(e), std::istreambuf_iterator<char>()};
    INFO(cmd, "\n", stderr_text);
    REQUIRE(rc == 0);
    CHECK(stderr_text.find("alidation") == std::string::npos);
    std::ifstream f(json);
    return Json::parse(f);
}

void check_schema(const Json& j, uint32_t heads, uint32_t inputs) {
    REQUIRE(j.is_object());
    CHECK(j.size() == 2);
    REQUIRE(j["heads"].size() == size_t(heads) * inputs);
    const std::vector<std::string> head_keys{"head",          "input", "entropy",    "normalized_entropy",
                                             "mean_distance", "top1",  "importance", "most_similar_head",
                                             "similarity"};
    for (const Json& h : j["heads"]) {
        CHECK(h.size() == head_keys.size());
        for (const std::string& k : head_keys) CHECK_MESSAGE(h.contains(k), k);
        CHECK(h["most_similar_head"].get<int>() != h["head"].get<int>());
    }
    const std::vector<std::string> config_keys{"kind",       "heads",          "kv_heads",       "relative_error",
                                               "prefill_ms", "decode_ms_1024", "decode_ms_4096", "kv_bytes_per_token"};
    REQUIRE(j["configs"].size() >= 2);
    CHECK(j["configs"][0]["kind"] == "baseline");
    for (const Json& c : j["configs"]) {
        CHECK(c.size() == config_keys.size());
        for (const std::string& k : config_keys) CHECK_MESSAGE(c.contains(k), k);
        const std::string kind = c["kind"];
        CHECK((kind == "baseline" || kind == "prune" || kind == "gqa"));
        CHECK(c["prefill_ms"].get<double>() >= 0);
    }
}

// The JSON without what is measured in milliseconds (the rest must not change between runs).
Json without_times(Json j) {
    for (Json& c : j["configs"])
        for (const char* k : {"prefill_ms", "decode_ms_1024", "decode_ms_4096"}) c.erase(k);
    return j;
}

struct Scratch {
    fs::path dir = fs::temp_directory_path() / ("vkmha-heads-" + std::to_string(::getpid()));
    Scratch() {
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

} // namespace

namespace {

// A sibling tool of vkmha-run in the build tree, run through the shell; returns its exit code and stderr.
int run_tool(const std::string& tool, const std::string& args, const fs::path& dir, std::string* err_text) {
    const std::string path = (fs::path(VKMHA_RUN_PATH).parent_path() / tool).string();
    const fs::path err = dir / "tool-err.txt";
    const int rc = std::system(("'" + path + "' " + args + " > /dev/null 2> '" + err.string() + "'").c_str());
    std::ifstream e(err);
    *err_text = {std::istreambuf_iterator<char>(e), std::istreambuf_iterator<char>()};
    return rc;
}

std::vector<float> read_output(const fs::path& file) {
    auto ts = io::read_safetensors(file.string());
    REQUIRE(ts);
    const io::Tensor* t = io::find_tensor(ts.value(), "attn_output");
    REQUIRE(t);
    auto f = io::to_float(*t, file.string());
    REQUIRE(f);
    return f.value();
}

} // namespace

TEST_SUITE("heads") {
    TEST_CASE("vkmha-run: the input's head_mask on the GPU, --incremental and --device cpu agree; bad ones refused") {
        Scratch s;
        const std::string p = (s.dir / "hm").string();
        std::string err;
        REQUIRE(run_tool("vkmha-make-example",
                         "--prefix '" + p +
                             "' --embed 48 --heads 6 --kv-heads 3 --batch 2 --lq 9 --head-mask 1,0,0.5,1,0,2",
                         s.dir, &err) == 0);
        const std::string common = "--weights '" + p + ".weights.safetensors' --input '" + p +
                                   ".input.safetensors' --heads 6 --causal --output ";
        for (const char* mode : {"cpu", "gpu", "incremental"}) {
            const std::string extra = std::string(mode) == "cpu"           ? " --device cpu"
                                      : std::string(mode) == "incremental" ? " --incremental"
                                                                           : "";
            INFO(mode, ": ", err);
            REQUIRE(run_tool("vkmha-run", common + "'" + p + "." + mode + ".safetensors'" + extra, s.dir, &err) == 0);
        }
        const auto cpu = read_output(p + ".cpu.safetensors");
        for (const char* mode : {"gpu", "incremental"}) {
            const auto got = read_output(p + "." + mode + ".safetensors");
            REQUIRE(got.size() == cpu.size());
            for (size_t i = 0; i < cpu.size(); ++i)
                REQUIRE_MESSAGE(std::fabs(got[i] - cpu[i]) <= 1e-4 + 1e-3 * std::fabs(cpu[i]), mode, " at ", i);
        }
        // The mask is read: without it the output differs.
        REQUIRE(run_tool("vkmha-make-example",
                         "--prefix '" + p + "' --embed 48 --heads 6 --kv-heads 3 --batch 2 --lq 9", s.dir, &err) == 0);
        REQUIRE(run_tool("vkmha-run", common + "'" + p + ".plain.safetensors' --device cpu", s.dir, &err) == 0);
        CHECK(read_output(p + ".plain.safetensors") != cpu);
        // A head_mask of the wrong shape is refused by name.
        io::Tensor q = io::make_f32_tensor("query", {1, 2, 48}, std::vector<float>(96, 0.5f));
        REQUIRE(io::write_safetensors(p + ".bad.safetensors",
                                      {q, io::make_f32_tensor("head_mask", {4}, std::vector<float>(4, 1.0f))}));
        CHECK(run_tool("vkmha-run",
                       "--weights '" + p + ".weights.safetensors' --input '" + p +
                           ".bad.safetensors' --heads 6 --output '" + p + ".x.safetensors'",
                       s.dir, &err) != 0);
        CHECK(err.find("head_mask") != std::string::npos);
        CHECK(err.find("[4]") != std::string::npos);
    }

    TEST_CASE("vkmha-heads: every metric, importance and the GQA error match the CPU reference") {
        Scratch s;
        struct Case {
            uint32_t E, H, G;
            bool causal;
            std::vector<std::pair<uint32_t, uint32_t>> inputs; // (batch, length)
            bool padded;
        };
        const Case cases[] = {{32, 4, 2, true, {{2, 7}, {1, 13}}, true}, {24, 3, 3, false, {{1, 5}}, false}};
        for (const Case& k : cases) {
            CAPTURE(k.H);
            const Layer l = make_layer(k.E, k.H, k.G, 3 + k.H, 4.0f);
            write_layer(l, (s.dir / "w.safetensors").string());
            std::vector<std::string> args{"--weights",  (s.dir / "w.safetensors").string(),
                                          "--heads",    std::to_string(k.H),
                                          "--kv-heads", std::to_string(k.G)};
            if (k.causal) args.push_back("--causal");
            std::vector<Input> inputs;
            for (size_t n = 0; n < k.inputs.size(); ++n) {
                const std::string path = (s.dir / ("in" + std::to_string(n) + ".safetensors")).string();
                inputs.push_back(
                    write_input(l, k.inputs[n].first, k.inputs[n].second, k.padded, 9 + uint32_t(n), path));
                args.insert(args.end(), {"--input", path});
            }
            const Json j = run_heads(args, s.dir);
            check_schema(j, k.H, uint32_t(inputs.size()));
            for (size_t n = 0; n < inputs.size(); ++n) {
                const std::vector<Expected> e = expected_metrics(l, inputs[n], k.causal);
                for (const Json& h : j["heads"]) {
                    if (h["input"].get<size_t>() != n) continue;
                    const uint32_t head = h["head"];
                    const std::string at = "input " + std::to_string(n) + " head " + std::to_string(head);
                    check_value(h["entropy"], e[head].entropy, at + " entropy");
                    check_value(h["normalized_entropy"], e[head].normalized, at + " normalized_entropy");
                    check_value(h["mean_distance"], e[head].distance, at + " mean_distance");
                    check_value(h["top1"], e[head].top1, at + " top1");
                    check_value(h["importance"], e[head].importance, at + " importance");
                    check_value(h["similarity"], e[head].similarity, at + " similarity");
                    CHECK(h["most_similar_head"].get<int>() == e[head].most_similar);
                }
            }
            for (const Json& c : j["configs"]) {
                if (c["kind"] != "gqa") continue;
                const Layer g = pooled(l, c["kv_heads"]);
                std::vector<float> got, want;
                for (const Input& in : inputs) {
                    const auto a = reference_output(g, in, k.causal, {}), b = reference_output(l, in, k.causal, {});
                    got.insert(got.end(), a.begin(), a.end());
                    want.insert(want.end(), b.begin(), b.end());
                }
                check_value(c["relative_error"], frobenius_rel(got, want), "gqa relative_error");
                CHECK(c["kv_bytes_per_token"] == 2ull * c["kv_heads"].get<uint64_t>() * l.c.head_dim() * 4);
            }
            if (k.G == 2) CHECK(j["configs"].size() == 4); // baseline, prune 2, prune 1, gqa 1
        }
    }

    TEST_CASE("vkmha-heads: a held-out layer matches the independent Python computation") {
        // tests/fixtures/heads/make_heads_fixture.py wrote the layer, the input and what it computed in plain Python.
        Scratch s;
        const std::string dir = VKMHA_HEADS_FIXTURE_DIR;
        const Json j = run_heads({"--weights", dir + "/heads.weights.safetensors", "--input",
                                  dir + "/heads.input.safetensors", "--heads", "4", "--causal"},
                                 s.dir);
        std::ifstream f(dir + "/heads.expected.json");
        const Json want = Json::parse(f);
        for (const Json& w : want["heads"]) {
            const Json& h = j["heads"][w["head"].get<size_t>()];
            REQUIRE(h["head"] == w["head"]);
            for (const char* k : {"entropy", "mean_distance", "top1", "importance"})
                check_value(h[k], w[k], "head " + w["head"].dump() + " " + k);
        }
        bool seen = false;
        for (const Json& c : j["configs"])
            if (c["kind"] == "gqa" && c["kv_heads"] == want["configs"][0]["kv_heads"]) {
                check_value(c["relative_error"], want["configs"][0]["relative_error"], "gqa relative_error");
                seen = true;
            }
        CHECK(seen);
    }

    TEST_CASE("vkmha-heads: the same inputs give the same JSON, times aside") {
        Scratch s;
        const Layer l = make_layer(32, 4, 4, 5, 3.0f);
        write_layer(l, (s.dir / "w.safetensors").string());
        write_input(l, 1, 9, false, 2, (s.dir / "in.safetensors").string());
        const std::vector<std::string> args{"--weights", (s.dir / "w.safetensors").string(), "--heads", "4", "--causal",
                                            "--input",   (s.dir / "in.safetensors").string()};
        const Json a = run_heads(args, s.dir), b = run_heads(args, s.dir);
        CHECK(without_times(a).dump() == without_times(b).dump());
    }

    TEST_CASE("vkmha-heads: weights read in query-row chunks give the same JSON as in one piece") {
        // A 1 MiB cap splits 600 causal queries x 600 keys x 4 heads (5.5 MiB) into 7 chunks, each cut at its causal
        // edge: the long-context path (lavapipe's 128 MiB binding at 4096 tokens) on a small input.
        Scratch s;
        const Layer l = make_layer(32, 4, 2, 6, 4.0f);
        write_layer(l, (s.dir / "w.safetensors").string());
        write_input(l, 1, 600, false, 4, (s.dir / "in.safetensors").string());
        std::vector<std::string> args{"--weights", (s.dir / "w.safetensors").string(), "--heads", "4", "--causal",
                                      "--input",   (s.dir / "in.safetensors").string()};
        const Json whole = run_heads(args, s.dir);
        args.insert(args.end(), {"--weights-mib", "1"});
        CHECK(without_times(run_heads(args, s.dir)).dump() == without_times(whole).dump());
    }
}
