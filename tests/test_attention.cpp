// GPU conformance: every stage of the recorded forward pass (Q/K/V projections, scores+softmax, P·V with head
// concatenation, output projection, attention weights) against the CPU reference, over a sweep of awkward shapes,
// mask kinds and GQA ratios, with the validation layer on.
#include "cpu_reference.h"
#include "host_submit.h"
#include "io/half.h"
#include "plan/plan_common.h"
#include "session.h"
#include "support/compare.h"
#include "support/gpu_context.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>

namespace {

using namespace vkmha;
using vkmha::test::Tolerance;

struct Case {
    const char* name;
    uint32_t E, H, G, B, Lq, Lk;
    bool cross = false;          // separate key/value inputs (Lk may differ from Lq)
    uint32_t kdim = 0, vdim = 0; // cross only: 0 = E
    bool bias = true;
    bool key_padding = false;
    MaskKind mask = MaskKind::none;
    bool mask_per_head = false;
    bool causal = false;
    bool need_weights = false;
    bool average = true;
    uint64_t scores_budget = 0;                // > 0 forces the chunked path
    void (*model)(AttentionConfig&) = nullptr; // the attention of a model family (RoPE, QK-norm, soft-cap, ...)
    bool position_ids = false;                 // random RoPE positions per token, some past 8192
};

// fp32 GPU vs double reference. Projections accumulate up to 1024 fp32 products of O(1) values.
const Tolerance kTol{1e-4, 1e-3, 1e-9};
// fp16 storage GPU vs the same double reference, which keeps the weights unrounded. Each weight, bias and Q/K/V/concat
// element is rounded to fp16 once (relative error <= u = 2^-11 ~ 4.9e-4; accumulation stays fp32), so a stored value
// v is off by up to u*|v| from its own rounding plus the propagated rounding of its inputs: ~u*sqrt(sum of squared
// products), independent of |v| (for these O(1) inputs and 1/sqrt(fan-in) weights, ~1e-4 rms). Measured over both
// sweeps on lavapipe: max|d| 7.3e-4 (projections, |v| up to ~1.5), 5.5e-4 concat, 2.9e-4 output; nmse <= 2.1e-7
// (about u^2 per rounding, a few roundings deep). This tolerance takes at most ~25% of its per-element bound and
// of its nmse bound, a 4-5x margin, while a missing bias (~0.2), a wrong head or an fp16 accumulator (~sqrt(K)*u*|v|,
// ~1e-2 at K = 512) is far outside it.
const Tolerance kTolF16{1.5e-3, 1.5e-3, 1e-6};

// The worst comparison of each stage over one test case's runs (for the report, and to keep the tolerances honest).
struct Worst {
    double max_abs = 0, nmse = 0, used = 0;
};
using WorstByStage = std::map<std::string, Worst>;

void report(const WorstByStage& worst, const char* label) {
    for (const auto& [stage, w] : worst)
        MESSAGE(std::string(label), " worst ", stage, ": max|d| ", w.max_abs, ", nmse ", w.nmse, ", tolerance used ",
                w.used);
}

struct Problem {
    AttentionConfig config;
    AttentionWeights weights;
    AttentionShape shape;
    AttentionOptions options;
    std::vector<float> query, key, value, mask_f;
    std::vector<uint8_t> kpm, mask_b;
    std::vector<int32_t> positions;
    AttentionInputs inputs() const {
        AttentionInputs in;
        in.position_ids = positions.empty() ? nullptr : positions.data();
        in.query = query.data();
        in.key = key.empty() ? nullptr : key.data();
        in.value = value.empty() ? nullptr : value.data();
        in.key_padding_mask = kpm.empty() ? nullptr : kpm.data();
        in.attn_mask = options.attn_mask == MaskKind::boolean    ? static_cast<const void*>(mask_b.data())
                       : options.attn_mask == MaskKind::additive ? static_cast<const void*>(mask_f.data())
                                                                 : nullptr;
        return in;
    }
};

Problem make_problem(const Case& c, uint32_t seed) {
    Problem p;
    std::mt19937 rng(seed);
    auto fill = [&](size_t n, float scale) {
        std::uniform_real_distribution<float> d(-scale, scale);
        std::vector<float> v(n);
        for (float& x : v) x = d(rng);
        return v;
    };
    AttentionConfig& cf = p.config;
    cf.embed_dim = c.E, cf.num_heads = c.H, cf.num_kv_heads = c.G;
    cf.kdim = c.cross && c.kdim ? c.kdim : c.E;
    cf.vdim = c.cross && c.vdim ? c.vdim : c.E;
    if (c.model) c.model(cf);
    const uint64_t KV = cf.kv_width(), QW = cf.q_width();
    const float wb = 1.0f / std::sqrt(float(c.E));
    p.weights.wq = fill(QW * c.E, wb);
    p.weights.wk = fill(KV * cf.kdim, 1.0f / std::sqrt(float(cf.kdim)));
    p.weights.wv = fill(KV * cf.vdim, 1.0f / std::sqrt(float(cf.vdim)));
    p.weights.wo = fill(size_t(c.E) * QW, 1.0f / std::sqrt(float(QW)));
    if (c.bias) {
        p.weights.bq = fill(QW, 0.2f), p.weights.bk = fill(KV, 0.2f), p.weights.bv = fill(KV, 0.2f);
        p.weights.bo = fill(c.E, 0.2f);
    }
    if (c.model) {
        const uint32_t D = cf.head_dim();
        if (cf.qk_norm) p.weights.q_norm = fill(D, 1.0f), p.weights.k_norm = fill(D, 1.0f);
        if (cf.sinks) p.weights.sinks = fill(c.H, 2.0f);
    }
    if (c.position_ids) {
        std::uniform_int_distribution<int32_t> pos(0, 20000);
        p.positions.resize(size_t(c.B) * c.Lq);
        for (int32_t& x : p.positions) x = pos(rng);
    }
    p.shape = {c.B, c.Lq, c.Lk};
    p.query = fill(size_t(c.B) * c.Lq * c.E, 1.0f);
    if (c.cross) {
        p.key = fill(size_t(c.B) * c.Lk * cf.kdim, 1.0f);
        p.value = fill(size_t(c.B) * c.Lk * cf.vdim, 1.0f);
    }
    AttentionOptions& o = p.options;
    o.causal = c.causal, o.need_weights = c.need_weights, o.average_weights = c.average;
    o.attn_mask = c.mask, o.attn_mask_per_head = c.mask_per_head;
    std::bernoulli_distribution masked(0.3);
    if (c.key_padding) {
        o.key_padding = MaskKind::boolean;
        p.kpm.resize(size_t(c.B) * c.Lk);
        for (auto& m : p.kpm) m = masked(rng) ? 1 : 0;
        // Batch 0 always has a fully padded row of keys when B > 1: its outputs must be exactly bo.
        if (c.B > 1)
            for (uint32_t j = 0; j < c.Lk; ++j) p.kpm[j] = 1;
    }
    const size_t mask_n = size_t(c.mask_per_head ? c.B * c.H : 1) * c.Lq * c.Lk;
    if (c.mask == MaskKind::boolean) {
        p.mask_b.resize(mask_n);
        for (auto& m : p.mask_b) m = masked(rng) ? 1 : 0;
    } else if (c.mask == MaskKind::additive) {
        p.mask_f = fill(mask_n, 2.0f);
        for (size_t i = 0; i < mask_n; i += 5) p.mask_f[i] = -std::numeric_limits<float>::infinity();
    }
    return p;
}

// Reads n elements of a host-visible scratch buffer as floats: binary16 for the q/k/v/concat scratch of an fp16
// model, else fp32.
std::vector<float> read(const BufferView& v, uint64_t n, Precision precision = Precision::fp32) {
    std::vector<float> out(n);
    if (precision == Precision::fp16) {
        std::vector<uint16_t> bits(n);
        std::memcpy(bits.data(), v.mapped, n * sizeof(uint16_t));
        std::transform(bits.begin(), bits.end(), out.begin(), vkmha::io::half_to_float);
    } else {
        std::memcpy(out.data(), v.mapped, n * sizeof(float));
    }
    return out;
}

// Runs one case through a session and checks it against the reference: every stage on the unfused path (its
// scratch holds each intermediate), the projections and outputs on the fused path. With `worst`, records each
// stage's worst error there.
void run_case(const Case& c, AttentionPath path, bool split_k = true, Precision precision = Precision::fp32,
              WorstByStage* worst = nullptr, Context* context = nullptr) {
    const char* path_name = path == AttentionPath::fused ? (split_k ? "fused" : "fused, no split-K") : "unfused";
    INFO("case ", std::string(c.name), " (", std::string(path_name), ", ", std::string(precision_name(precision)),
         "): E=", c.E, " H=", c.H, " G=", c.G, " B=", c.B, " Lq=", c.Lq, " Lk=", c.Lk);
    vkmha::test::ValidationGuard guard;
    Context& ctx = context ? *context : vkmha::test::gpu_context();
    const Tolerance& tol = precision == Precision::fp16 ? kTolF16 : kTol;
    Problem p = make_problem(c, 1234u + c.E + c.Lq * 7u + c.Lk);
    p.options.path = path;
    p.options.split_k = split_k;

    auto ref = reference_attention_stages(p.config, p.weights, p.shape, p.options, p.inputs());
    REQUIRE_MESSAGE(ref.ok(), (ref.ok() ? "" : ref.error().message));
    auto ref_out = reference_attention(p.config, p.weights, p.shape, p.options, p.inputs());
    REQUIRE(ref_out.ok());

    auto model = Model::create(ctx, p.config, p.weights, precision);
    REQUIRE_MESSAGE(model.ok(), (model.ok() ? "" : model.error().message));
    SessionLimits limits;
    limits.max_shape = p.shape;
    limits.frames_in_flight = 1;
    limits.host_io = true;
    limits.host_weights = c.need_weights;
    limits.host_per_head_mask = c.mask_per_head;
    limits.host_visible_scratch = true;
    limits.scores_budget_bytes = c.scores_budget;
    auto session = Session::create(ctx, *model.value(), limits);
    REQUIRE_MESSAGE(session.ok(), (session.ok() ? "" : session.error().message));
    Session& s = *session.value();

    HostInputs in{p.query.data(),
                  p.key.empty() ? nullptr : p.key.data(),
                  p.value.empty() ? nullptr : p.value.data(),
                  p.kpm.empty() ? nullptr : p.kpm.data(),
                  p.inputs().attn_mask,
                  p.inputs().position_ids};
    auto value = s.host_submitter()->submit(p.shape, p.options, in);
    REQUIRE_MESSAGE(value.ok(), (value.ok() ? "" : value.error().message));
    REQUIRE(s.host_submitter()->wait(value.value(), UINT64_MAX).ok());
    std::vector<float> output(ref->output.size());
    std::vector<float> weights(ref_out->weights.size());
    REQUIRE(s.host_submitter()
                ->read_outputs(value.value(), output.data(), output.size(), weights.empty() ? nullptr : weights.data(),
                               weights.size())
                .ok());

    const uint64_t frame = value.value() - 1;
    auto check = [&](const std::string& what, const std::vector<float>& got, const std::vector<float>& want) {
        auto cmp = vkmha::test::compare(got, want, tol);
        INFO(cmp.describe(what));
        CHECK_MESSAGE(cmp.ok, cmp.describe(what));
        if (worst) {
            Worst& w = (*worst)[what];
            w.max_abs = std::max(w.max_abs, cmp.max_abs);
            w.nmse = std::max(w.nmse, cmp.nmse);
            w.used = std::max(w.used, cmp.used);
        }
        return cmp;
    };
    // The fused path without weights projects Q into the concat buffer and attends in place: its Q is gone by now
    // (and a wrong Q still fails the output checks).
    if (path == AttentionPath::unfused || p.options.need_weights)
        check("q projection", read(s.scratch(frame, BufferRole::q), ref->q.size(), precision), ref->q);
    check("k projection", read(s.scratch(frame, BufferRole::k), ref->k.size(), precision), ref->k);
    check("v projection", read(s.scratch(frame, BufferRole::v), ref->v.size(), precision), ref->v);
    // With one chunk the unfused path's in-place softmax leaves every head's probabilities in the scores scratch.
    const uint64_t all_probs = ref->probs.size();
    if (path == AttentionPath::unfused && s.scratch(frame, BufferRole::scores).size >= all_probs * sizeof(float))
        check("scores+softmax", read(s.scratch(frame, BufferRole::scores), all_probs), ref->probs);
    check(path == AttentionPath::fused ? "fused attention concat" : "P·V concat",
          read(s.scratch(frame, BufferRole::concat), ref->concat.size(), precision), ref->concat);
    auto out_cmp = check("output", output, ref->output);
    MESSAGE(std::string(c.name), " (", std::string(path_name), ", ", std::string(precision_name(precision)),
            "): output max|d| ", out_cmp.max_abs, ", nmse ", out_cmp.nmse);
    if (c.need_weights) check(c.average ? "weights (averaged)" : "weights (per head)", weights, ref_out->weights);
    if (c.key_padding && c.B > 1) {
        // Batch 0 has every key padded: each of its output rows is exactly the output bias (as the model stores it).
        for (uint32_t i = 0; i < c.Lq; ++i)
            for (uint32_t e = 0; e < c.E; ++e) {
                const float bo = c.bias ? p.weights.bo[e] : 0.0f;
                REQUIRE(output[size_t(i) * c.E + e] ==
                        (precision == Precision::fp16 ? vkmha::io::half_to_float(vkmha::io::float_to_half(bo)) : bo));
            }
    }
}

// The sweep: every E in {8, 64, 96, 512, 1024}, H in {1, 2, 3, 8, 16}, head dims 8..256, lengths in
// {1, 7, 64, 127, 129, 512}, B in {1, 3}, every mask kind, GQA ratios 1/2/4/H. Pairwise, not a full product.
const Case kCases[] = {
    {"tiny E8 H1", 8, 1, 1, 1, 1, 1},
    {"E8 H2 MQA causal B3", 8, 2, 1, 3, 7, 7, false, 0, 0, true, false, MaskKind::none, false, true},
    {"E64 H2 L64 key padding B3", 64, 2, 2, 3, 64, 64, false, 0, 0, true, true},
    {"E96 H3 cross kdim/vdim bool mask weights", 96, 3, 3, 3, 127, 129, true, 40, 24, true, false, MaskKind::boolean,
     false, false, true, true},
    {"E96 H3 MQA additive per-head mask per-head weights", 96, 3, 1, 1, 129, 127, true, 0, 0, true, false,
     MaskKind::additive, true, false, true, false},
    {"E512 H2 D256 decode-ish causal no bias", 512, 2, 2, 1, 7, 512, true, 0, 0, false, false, MaskKind::none, false,
     true},
    {"E512 H16 G4 key padding causal weights B3", 512, 16, 4, 3, 64, 129, true, 0, 0, true, true, MaskKind::none, false,
     true, true, true},
    {"E1024 H16 G8 L129", 1024, 16, 8, 1, 129, 129},
    {"E1024 H8 D128 L512 causal", 1024, 8, 8, 1, 512, 512, false, 0, 0, true, false, MaskKind::none, false, true},
    {"E64 H8 G2 D8 Lq1 Lk512 key padding B3", 64, 8, 2, 3, 1, 512, true, 0, 0, true, true},
    {"E96 H16 D6 bool per-head mask", 96, 16, 4, 3, 7, 64, true, 0, 0, true, false, MaskKind::boolean, true},
    {"E48 H3 D16 additive 2D mask weights", 48, 3, 3, 3, 129, 7, true, 0, 0, true, false, MaskKind::additive, false,
     false, true, true},
};

// Chunked scores: a small score budget forces several (batch, head) chunks, chunks that end mid-batch, and the
// averaged weights accumulated across chunks.
const Case kChunked[] = {
    {"chunked: 3 bh per chunk, B3 H4, weights averaged", 64, 4, 2, 3, 33, 40, true, 0, 0, true, true, MaskKind::boolean,
     false, true, true, true, 3 * 33 * 40 * 4},
    {"chunked: 1 bh per chunk, per-head weights", 32, 2, 2, 3, 17, 9, true, 0, 0, true, false, MaskKind::additive, true,
     false, true, false, 17 * 9 * 4},
};

// Decode shapes (few query rows, many keys): the fused path splits the keys across workgroups and merges the
// partial results exactly; each runs with and without split-K.
const Case kDecode[] = {
    {"decode Lq1 Lk1000 H8 D64 key padding", 512, 8, 8, 1, 1, 1000, true, 0, 0, true, true},
    {"decode Lq3 Lk700 GQA H16 G2 causal weights", 256, 16, 2, 2, 3, 700, true, 0, 0, true, false, MaskKind::none,
     false, true, true, true},
    {"decode Lq1 Lk513 MQA additive mask per head", 128, 4, 1, 1, 1, 513, true, 0, 0, true, false, MaskKind::additive,
     true},
};

// The head dims real models use that are no power of two, on the GPU tiles that stage Q and K 8 or 32 columns at a
// time (D = 80 and 96 leave a partial last step of 32).
const Case kGpuHeadDims[] = {
    {"E240 H3 D80 L127 causal", 240, 3, 3, 1, 127, 127, false, 0, 0, true, false, MaskKind::none, false, true},
    {"E384 H4 G2 D96 Lq7 Lk129 key padding B3", 384, 4, 2, 3, 7, 129, true, 0, 0, true, true},
};

// The attention of real model families, each option alone and in the combinations models use.
void llama3(AttentionConfig& c) {
    c.rope = {.layout = RopeLayout::neox,
              .theta = 500000.0,
              .scaling = RopeScaling::llama3,
              .factor = 8.0,
              .low_freq_factor = 1.0,
              .high_freq_factor = 4.0,
              .original_max_positions = 8192};
}
void qwen3(AttentionConfig& c) {
    c.qk_norm = true;
    c.rope = {.layout = RopeLayout::neox, .theta = 1000000.0};
}
void gemma2(AttentionConfig& c) {
    c.scale = 0.125f;
    c.softcap = 5.0f;
    c.window = 5;
}
void gpt_oss(AttentionConfig& c) {
    c.sinks = true;
    c.window = 9;
    c.rope = {.layout = RopeLayout::neox,
              .theta = 150000.0,
              .scaling = RopeScaling::yarn,
              .factor = 32.0,
              .original_max_positions = 4096};
}
void bloom(AttentionConfig& c) { c.alibi = true; }
void gptj(AttentionConfig& c) { c.rope = {.layout = RopeLayout::gptj, .dims = 4}; }
void neox_partial(AttentionConfig& c) {
    c.rope = {.layout = RopeLayout::neox, .dims = 6, .scaling = RopeScaling::linear, .factor = 2.0};
}
// Head dim independent of the hidden size (Gemma, Qwen3): H * D = 4 * 32 = 128 for E = 48.
void gemma3_head_dim(AttentionConfig& c) {
    c.explicit_head_dim = 32;
    c.qk_norm = true;
    c.window = 6;
    c.rope = {.layout = RopeLayout::neox, .theta = 1000000.0};
}
void sinks_softcap_alibi(AttentionConfig& c) {
    c.sinks = true;
    c.softcap = 3.0f;
    c.alibi = true;
}

// Head dims 16, 80, 96, 8, 12; odd lengths; GQA; key padding; per-token positions. Causal where models are.
const Case kModels[] = {
    {"llama3 RoPE GQA H8 G2 D16 positions",
     128,
     8,
     2,
     2,
     7,
     7,
     false,
     0,
     0,
     true,
     false,
     MaskKind::none,
     false,
     true,
     false,
     true,
     0,
     llama3,
     true},
    {"qwen3 QK-norm RoPE D80 L33", 160, 2, 1, 1, 33, 33, false, 0, 0, false, false, MaskKind::none, false, true, false,
     true, 0, qwen3},
    {"gemma2 scale soft-cap window D96 key padding", 192, 2, 2, 3, 19, 19, false, 0, 0, true, true, MaskKind::none,
     false, true, false, true, 0, gemma2},
    {"gpt-oss sinks window yarn H6 G2 weights", 48, 6, 2, 1, 20, 20, false, 0, 0, true, false, MaskKind::none, false,
     true, true, false, 0, gpt_oss},
    {"bloom ALiBi H6 key padding B3", 48, 6, 6, 3, 13, 13, false, 0, 0, true, true, MaskKind::none, false, true, true,
     true, 0, bloom},
    {"gpt-j partial interleaved R4 D8 cross", 32, 4, 4, 2, 5, 11, true, 0, 0, true, false, MaskKind::none, false, false,
     false, true, 0, gptj},
    {"neox partial R6 D12 linear scaling decode", 48, 4, 2, 1, 1, 300, true, 0, 0, true, false, MaskKind::none, false,
     true, false, true, 0, neox_partial},
    {"gemma3 H*D != E: E48 H4 G2 D32 QK-norm RoPE window", 48, 4, 2, 2, 17, 17, false, 0, 0, true, false,
     MaskKind::none, false, true, true, true, 0, gemma3_head_dim},
    {"sinks soft-cap ALiBi additive mask weights", 64, 4, 2, 2, 9, 9, false, 0, 0, true, false, MaskKind::additive,
     true, false, true, false, 0, sinks_softcap_alibi},
};

} // namespace

TEST_SUITE("attention") {
    TEST_CASE("model options: RoPE, QK-norm, scale, soft-cap, window, ALiBi and sinks match the CPU reference") {
        for (const Case& c : kModels) {
            run_case(c, AttentionPath::fused, true);
            run_case(c, AttentionPath::fused, false);
            run_case(c, AttentionPath::unfused);
            run_case(c, AttentionPath::fused, true, Precision::fp32, nullptr, &vkmha::test::gpu_context_portable());
            if (vkmha::test::gpu_context().device().storage16())
                run_case(c, AttentionPath::fused, true, Precision::fp16);
        }
    }

    TEST_CASE("unfused: every stage matches the CPU reference over the sweep") {
        for (const Case& c : kCases) run_case(c, AttentionPath::unfused);
    }

    TEST_CASE("unfused: the subgroup-free softmax matches the CPU reference too") {
        // The default context uses softmax_subgroup where the device supports subgroup arithmetic; this one does not.
        Context& plain = vkmha::test::gpu_context_portable();
        MESSAGE("default context uses subgroup arithmetic: ",
                vkmha::test::gpu_context().kernel_policy().subgroup_arithmetic);
        CHECK_FALSE(plain.kernel_policy().subgroup_arithmetic);
        for (const Case& c : kCases) run_case(c, AttentionPath::unfused, true, Precision::fp32, nullptr, &plain);
    }

    TEST_CASE("unfused: chunked scores match the CPU reference") {
        for (const Case& c : kChunked) run_case(c, AttentionPath::unfused);
    }

    TEST_CASE("fused: output and weights match the CPU reference over the sweep") {
        for (const Case& c : kCases) run_case(c, AttentionPath::fused);
        for (const Case& c : kChunked) run_case(c, AttentionPath::fused);
    }

    TEST_CASE("fused: split-K decode matches the CPU reference, with and without splitting") {
        for (const Case& c : kDecode) {
            run_case(c, AttentionPath::fused, true);
            run_case(c, AttentionPath::fused, false);
        }
    }

    TEST_CASE("fused: workgroup tiles match the CPU reference too (lane tiles are the CPU default)") {
        Context& portable = vkmha::test::gpu_context_portable();
        const bool default_lanes = vkmha::test::gpu_context().kernel_policy().cpu_tiling;
        MESSAGE("default context uses lane tiles where the head dim allows: ", default_lanes);
        CHECK_FALSE(portable.kernel_policy().cpu_tiling);
        for (const Case& c : kCases) run_case(c, AttentionPath::fused, true, Precision::fp32, nullptr, &portable);
        for (const Case& c : kDecode) {
            run_case(c, AttentionPath::fused, true, Precision::fp32, nullptr, &portable);
            run_case(c, AttentionPath::fused, false, Precision::fp32, nullptr, &portable);
            if (portable.device().storage16()) {
                run_case(c, AttentionPath::fused, true, Precision::fp16, nullptr, &portable);
            }
        }
    }

    TEST_CASE("fused: compact GPU tiles (AMD, mobile) match the CPU reference too") {
        // The compact tiles differ from the portable ones above in DC only (8 columns per step: D = 6, 8, 80, 96 and
        // 256 end in a partial or a many-step chunk), so a part of the sweep covers them: lavapipe runs workgroup
        // tiles slowly, and this suite runs three times in CI (subgroup sizes 4, 8 and 16).
        Context& compact = vkmha::test::gpu_context_compact();
        REQUIRE(compact.kernel_policy().tile_class == TileClass::compact);
        REQUIRE_FALSE(compact.kernel_policy().cpu_tiling);
        const bool fp16 = compact.device().storage16();
        for (size_t i : {1u, 3u, 5u, 9u, 10u})
            run_case(kCases[i], AttentionPath::fused, true, Precision::fp32, nullptr, &compact);
        for (const Case& c : kGpuHeadDims) {
            run_case(c, AttentionPath::fused, true, Precision::fp32, nullptr, &compact);
            if (fp16) run_case(c, AttentionPath::fused, true, Precision::fp16, nullptr, &compact);
        }
        run_case(kDecode[1], AttentionPath::fused, true, Precision::fp32, nullptr, &compact);
        if (fp16) run_case(kDecode[2], AttentionPath::fused, true, Precision::fp16, nullptr, &compact);
    }

    // fp16 storage: the same sweeps through the kernels' fp16 variants, within kTolF16.
    TEST_CASE("unfused fp16: every stage matches the CPU reference over the sweep") {
        if (!vkmha::test::gpu_context().device().storage16()) {
            MESSAGE("skipped: the device has no storageBuffer16BitAccess");
            return;
        }
        WorstByStage worst;
        for (const Case& c : kCases) run_case(c, AttentionPath::unfused, true, Precision::fp16, &worst);
        for (const Case& c : kChunked) run_case(c, AttentionPath::unfused, true, Precision::fp16, &worst);
        report(worst, "unfused fp16");
    }

    TEST_CASE("fused fp16: output, weights and split-K decode match the CPU reference over the sweep") {
        if (!vkmha::test::gpu_context().device().storage16()) {
            MESSAGE("skipped: the device has no storageBuffer16BitAccess");
            return;
        }
        WorstByStage worst;
        for (const Case& c : kCases) run_case(c, AttentionPath::fused, true, Precision::fp16, &worst);
        for (const Case& c : kChunked) run_case(c, AttentionPath::fused, true, Precision::fp16, &worst);
        for (const Case& c : kDecode) {
            run_case(c, AttentionPath::fused, true, Precision::fp16, &worst);
            run_case(c, AttentionPath::fused, false, Precision::fp16, &worst);
        }
        report(worst, "fused fp16");
    }
}

TEST_SUITE("attention_plan") {
    TEST_CASE("tiling: CPU devices get lane tiles for head dims that are multiples of 4 up to 128") {
        DeviceLimits cpu;
        cpu.cpu_implementation = true;
        cpu.subgroup_size = 8;
        cpu.max_compute_shared_memory = 32768;
        cpu.max_workgroup_invocations = 1024;
        for (uint32_t d : {4u, 8u, 64u, 100u, 128u}) {
            INFO("head dim ", d);
            const AttentionTiling t = ShaderLibrary::choose_attention_tiling(cpu, choose_kernel_policy(cpu), d);
            CHECK(t.lanes);
            CHECK(t.max_head_dim == d); // the kernel's vec4 rows need D == D_MAX
            CHECK(t.workgroup == 8);
            CHECK(t.keys == t.workgroup);
            CHECK(t.rows * d <= 512);
            CHECK(t.rows >= 1);
            const AttentionTiling decode = ShaderLibrary::choose_decode_tiling(cpu, choose_kernel_policy(cpu), d);
            CHECK(decode.lanes);
            CHECK(decode.rows == 1);
        }
        for (uint32_t d : {1u, 6u, 130u, 132u, 256u}) {
            INFO("head dim ", d);
            CHECK_FALSE(ShaderLibrary::choose_attention_tiling(cpu, choose_kernel_policy(cpu), d).lanes);
        }
        DeviceLimits narrow = cpu;
        narrow.subgroup_size = 4;
        CHECK(ShaderLibrary::choose_attention_tiling(narrow, choose_kernel_policy(narrow), 64).workgroup == 4);
        DeviceLimits wide = cpu;
        wide.subgroup_size = 64;
        CHECK(ShaderLibrary::choose_attention_tiling(wide, choose_kernel_policy(wide), 64).workgroup == 16);
        DeviceLimits small = cpu;
        small.max_compute_shared_memory = 2048; // the lanes' merge buffer (4 * (2 * 8 + 8 * 64) bytes) does not fit
        CHECK_FALSE(ShaderLibrary::choose_attention_tiling(small, choose_kernel_policy(small), 64).lanes);
        DeviceLimits gpu = cpu;
        gpu.cpu_implementation = false;
        CHECK_FALSE(ShaderLibrary::choose_attention_tiling(gpu, choose_kernel_policy(gpu), 64).lanes);
        CHECK(ShaderLibrary::choose_decode_tiling(gpu, choose_kernel_policy(gpu), 64).rows == 4);
    }

    TEST_CASE("plan: decode shapes split the keys and merge them, long queries and NO_SPLIT_K do not") {
        vkmha::test::ValidationGuard guard;
        const DeviceLimits& limits = vkmha::test::gpu_context().device().limits();
        PlanInputs in;
        in.model.config = {512, 8, 8, 512, 512};
        in.shape = {1, 1, 4096};
        in.scores_capacity = 0; // fused only
        in.partials_capacity = 1u << 22;
        in.model.tiling =
            ShaderLibrary::choose_attention_tiling(limits, vkmha::test::gpu_context().kernel_policy(), 64);
        auto kernels = [](const AttentionPlan& p) {
            std::string k;
            for (const Pass& pass : p.passes) k += std::string(kernel_name(pass.kernel)) + " ";
            return k;
        };
        auto split = plan_attention(in, limits);
        REQUIRE(split.ok());
        CHECK(split->fused);
        CHECK(split->split_count > 1);
        CHECK(kernels(split.value()) == "linear linear linear attention combine linear ");

        // Sized from the compute units where the device reports them (VK_AMD_shader_core_properties, ...): a Steam
        // Deck's 8 (32 workgroups, so 4 splits of 8 heads) splits less than the 256-workgroup default.
        DeviceLimits deck = limits;
        deck.compute_units = 8;
        CHECK(plan_build::split_target_workgroups(deck) == 32);
        auto fewer = plan_attention(in, deck);
        REQUIRE(fewer.ok());
        CHECK(fewer->split_count == 4);
        DeviceLimits unknown = limits;
        unknown.compute_units = 0;
        CHECK(plan_build::split_target_workgroups(unknown) == plan_build::kSplitTargetWorkgroups);

        in.options.split_k = false;
        auto whole = plan_attention(in, limits);
        REQUIRE(whole.ok());
        CHECK(whole->split_count == 1);
        CHECK(kernels(whole.value()) == "linear linear linear attention linear ");

        // An fp16 model's plan runs the fp16 storage variants: fp32 input -> fp16 Q/K/V, fp16 attention and combine,
        // fp16 concat -> fp32 output. fp32 plans run only the fp32 variants.
        auto variants = [](const AttentionPlan& p) {
            std::string v;
            for (const Pass& pass : p.passes)
                v += pass.variant == Variant::f16 ? "f16 " : pass.variant == Variant::f16_in ? "f16_in " : "f32 ";
            return v;
        };
        CHECK(variants(whole.value()) == "f32 f32 f32 f32 f32 ");
        in.model.precision = Precision::fp16;
        in.options.split_k = true;
        auto split16 = plan_attention(in, limits);
        REQUIRE(split16.ok());
        CHECK(kernels(split16.value()) == "linear linear linear attention combine linear ");
        CHECK(variants(split16.value()) == "f16 f16 f16 f16 f16 f16_in ");
        in.options.path = AttentionPath::unfused;
        in.scores_capacity = 1u << 20;
        auto unfused16 = plan_attention(in, limits);
        REQUIRE(unfused16.ok());
        CHECK(kernels(unfused16.value()) == "linear linear linear scores softmax apply linear ");
        CHECK(variants(unfused16.value()) == "f16 f16 f16 f16 f32 f16 f16_in ");
        in.model.precision = Precision::fp32;
        in.options.path = AttentionPath::fused;
        in.scores_capacity = 0;

        in.options.split_k = true;
        in.shape = {1, 512, 512};
        auto prefill = plan_attention(in, limits);
        REQUIRE(prefill.ok());
        CHECK(prefill->split_count == 1);

        // A driver that stops long-running invocations (llvmpipe) gets very long key ranges split even for prefill.
        DeviceLimits capped = limits;
        capped.max_invocation_loop_iterations = 65535;
        in.model.config = {256, 1, 1, 256, 256}; // D = 256
        in.model.tiling =
            ShaderLibrary::choose_attention_tiling(capped, vkmha::test::gpu_context().kernel_policy(), 256);
        in.shape = {1, 64, 40000};
        in.partials_capacity = uint64_t(1) << 24;
        const uint32_t required = min_key_splits(capped, in.model.tiling, 256, 40000);
        CHECK(required > 1);
        CHECK(min_key_splits(capped, in.model.tiling, 256, 1000) == 1);
        DeviceLimits uncapped = limits;
        uncapped.max_invocation_loop_iterations = 0;
        CHECK(min_key_splits(uncapped, in.model.tiling, 256, 40000) == 1);
        auto long_keys = plan_attention(in, capped);
        REQUIRE_MESSAGE(long_keys.ok(), (long_keys.ok() ? "" : long_keys.error().message));
        CHECK(long_keys->split_count >= required);
        in.partials_capacity = 1; // and a session without room for them is refused, not run wrong
        CHECK_FALSE(plan_attention(in, capped).ok());

        in.model.config = {512, 8, 8, 512, 512};
        in.model.tiling =
            ShaderLibrary::choose_attention_tiling(limits, vkmha::test::gpu_context().kernel_policy(), 64);
        in.shape = {1, 512, 512};
        in.options.need_weights = true; // a fused-only session has no score scratch for the weights
        auto refused = plan_attention(in, limits);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.error().message.find("need_weights") != std::string::npos);
    }

    // docs/PERFORMANCE.md's memory target: L = 16384, H = 8, D = 64 self-attention in < 64 MiB of device memory
    // beyond inputs, weights and outputs. A fused-only session attends Q in place in the concat buffer, so it holds
    // K, V, concat and the split-K partials; with fp16 storage that is ~49 MiB.
    TEST_CASE("memory: a fused-only fp16 session runs L=16384 H=8 D=64 in under 64 MiB") {
        vkmha::test::ValidationGuard guard;
        Context& ctx = vkmha::test::gpu_context();
        const AttentionConfig c{512, 8, 8, 512, 512};
        AttentionWeights w;
        w.wq.assign(size_t(512) * 512, 0.0f);
        w.wk = w.wv = w.wo = w.wq;
        SessionLimits l;
        l.max_shape = {1, 16384, 16384};
        l.fused_only = true;
        l.frames_in_flight = 1; // each further frame in flight holds its own scratch
        for (Precision precision : {Precision::fp32, Precision::fp16}) {
            if (precision == Precision::fp16 && !ctx.device().storage16()) continue;
            auto model = Model::create(ctx, c, w, precision);
            REQUIRE(model.ok());
            auto bytes = Session::memory_required(ctx, *model.value(), l);
            REQUIRE_MESSAGE(bytes.ok(), (bytes.ok() ? "" : bytes.error().message));
            const double mib = double(bytes.value()) / (1 << 20);
            MESSAGE(std::string(precision_name(precision)), " fused-only session at L16384 H8 D64: ", mib, " MiB");
            if (precision == Precision::fp16) CHECK(mib < 64.0);
            // K + V + concat at 4 or 2 bytes, and little else.
            CHECK(mib < 3 * 16384.0 * 512 * precision_bytes(precision) / (1 << 20) + 4);
        }
    }

    TEST_CASE("plan: cached steps write the cache before attending, decode splits keys, prefill pieces resume") {
        vkmha::test::ValidationGuard guard;
        const DeviceLimits& limits = vkmha::test::gpu_context().device().limits();
        auto kernels = [](const AttentionPlan& p) {
            std::string k;
            for (const Pass& pass : p.passes)
                k += std::string(pass.barrier_before ? "| " : "") + kernel_name(pass.kernel) + " ";
            return k;
        };
        CachedStepInputs in;
        in.base.model.config = {512, 8, 2, 512, 512};
        in.base.capacity = 4096;
        in.base.model.tiling =
            ShaderLibrary::choose_attention_tiling(limits, vkmha::test::gpu_context().kernel_policy(), 64);
        in.tokens = 3;
        in.records = 3;
        in.max_new_tokens = 1;
        in.max_keys = 4096;
        in.kv_map_offset = 12;
        in.partials_capacity = 1u << 22;
        // Decode: three sequences, one token each, long caches: the keys are split and merged.
        auto decode = plan_cached_step(in, limits);
        REQUIRE_MESSAGE(decode.ok(), (decode.ok() ? "" : decode.error().message));
        CHECK(decode->split_count > 1);
        CHECK(kernels(decode.value()) == "linear linear linear | attention | combine | linear ");
        // The K/V projections write the cache through the row map, and the attention reads the cache.
        const Pass& k_proj = decode->passes[1];
        CHECK(k_proj.bindings[3] == BufferRole::cache_k);
        CHECK(k_proj.bindings[4] == BufferRole::records);
        const Pass& attention = decode->passes[3];
        CHECK(attention.bindings[1] == BufferRole::cache_k);
        CHECK(attention.bindings[2] == BufferRole::cache_v);
        CHECK(attention.groups[1] == 3 * 2); // records x KV heads

        in.split_k = false;
        auto whole = plan_cached_step(in, limits);
        REQUIRE(whole.ok());
        CHECK(whole->split_count == 1);
        in.split_k = true;
        in.max_new_tokens = 300; // a long step: enough workgroups without splitting
        in.tokens = 600;
        auto long_step = plan_cached_step(in, limits);
        REQUIRE(long_step.ok());
        CHECK(long_step->split_count == 1);

        PrefillItemInputs piece;
        piece.base = in.base;
        piece.tokens = 200;
        piece.item.phase = PrefillPhase::project;
        piece.item.begin = 10;
        piece.item.end = 20;
        auto project = plan_prefill_item(piece, limits);
        REQUIRE(project.ok());
        CHECK(kernels(project.value()) == "linear linear linear ");
        piece.item.phase = PrefillPhase::attend;
        piece.item.begin = 64;
        piece.item.end = 128;
        piece.item.row_begin = 50;
        piece.item.row_end = 100;
        auto attend = plan_prefill_item(piece, limits);
        REQUIRE(attend.ok());
        REQUIRE(attend->passes.size() == 1);
        CHECK(attend->passes[0].bindings[7] == BufferRole::partials); // the running state
        CHECK(attend->passes[0].groups[1] == 2);                      // one record x KV heads
        piece.item.begin = piece.item.end;
        CHECK_FALSE(plan_prefill_item(piece, limits).ok()); // an empty piece is refused
    }
}

TEST_SUITE("attention") {
    // The subgroup-size runs (tests/CMakeLists.txt) set VKMHA_EXPECT_SUBGROUP_SIZE with lavapipe's
    // LP_NATIVE_VECTOR_WIDTH; this fails if the driver ignored it, so those runs really cover sizes 4 and 16.
    TEST_CASE("device: the subgroup size is the one this run asked for") {
        const char* expected = std::getenv("VKMHA_EXPECT_SUBGROUP_SIZE");
        const uint32_t size = vkmha::test::gpu_context().device().limits().subgroup_size;
        MESSAGE("subgroup size ", size);
        CHECK(size >= 1);
        if (expected) CHECK(size == static_cast<uint32_t>(std::atoi(expected)));
    }
}
