// Attention only: the caller's own Q, K and V (no projections) at any strides, with every model option, against the
// CPU reference's reference_attention_qkv; through the host path (contiguous [B, H, L, D]) and the record path
// ([B, L, H, D] at odd offsets, as an engine's own buffers would be).
#include "cpu_reference.h"
#include "host_submit.h"
#include "session.h"
#include "support/compare.h"
#include "support/gpu_context.h"
#include "support/one_shot.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace vkmha;
using vkmha::test::OneShot;
using vkmha::test::Tolerance;

const Tolerance kTol{1e-4, 1e-3, 1e-9};

template <typename R> std::string why(const R& r) { return r.ok() ? std::string() : r.error().message; }

struct QkvCase {
    const char* name;
    uint32_t H, G, D, B, Lq, Lk;
    bool causal = false, key_padding = false, need_weights = false, positions = false;
    void (*model)(AttentionConfig&) = nullptr;
};

struct QkvProblem {
    AttentionConfig config;
    AttentionWeights weights; // q_norm, k_norm, sinks only
    AttentionShape shape;
    AttentionOptions options;
    std::vector<float> q, k, v; // contiguous [B, H, Lq, D], [B, G, Lk, D]
    std::vector<uint8_t> kpm;
    std::vector<int32_t> positions, key_positions;
    AttentionInputs inputs() const {
        AttentionInputs in;
        in.query = q.data(), in.key = k.data(), in.value = v.data();
        in.key_padding_mask = kpm.empty() ? nullptr : kpm.data();
        in.position_ids = positions.empty() ? nullptr : positions.data();
        in.key_position_ids = key_positions.empty() ? nullptr : key_positions.data();
        return in;
    }
};

QkvProblem make_problem(const QkvCase& c, uint32_t seed) {
    QkvProblem p;
    std::mt19937 rng(seed);
    auto fill = [&](size_t n, float scale) {
        std::normal_distribution<float> d(0.0f, scale);
        std::vector<float> x(n);
        for (float& e : x) e = d(rng);
        return x;
    };
    AttentionConfig& cf = p.config;
    cf.num_heads = c.H, cf.num_kv_heads = c.G, cf.explicit_head_dim = c.D;
    cf.embed_dim = cf.kdim = cf.vdim = c.H * c.D;
    cf.attention_only = true;
    if (c.model) c.model(cf);
    if (cf.qk_norm) p.weights.q_norm = fill(c.D, 1.0f), p.weights.k_norm = fill(c.D, 1.0f);
    if (cf.sinks) p.weights.sinks = fill(c.H, 1.0f);
    p.shape = {c.B, c.Lq, c.Lk};
    p.q = fill(size_t(c.B) * c.H * c.Lq * c.D, 1.0f);
    p.k = fill(size_t(c.B) * c.G * c.Lk * c.D, 1.0f);
    p.v = fill(size_t(c.B) * c.G * c.Lk * c.D, 1.0f);
    p.options.causal = c.causal;
    p.options.need_weights = c.need_weights;
    p.options.average_weights = false;
    if (c.key_padding) {
        p.options.key_padding = MaskKind::boolean;
        p.kpm.resize(size_t(c.B) * c.Lk);
        std::bernoulli_distribution masked(0.3);
        for (auto& m : p.kpm) m = masked(rng) ? 1 : 0;
    }
    if (c.positions) {
        std::uniform_int_distribution<int32_t> pos(0, 30000);
        p.positions.resize(size_t(c.B) * c.Lq);
        p.key_positions.resize(size_t(c.B) * c.Lk);
        for (int32_t& x : p.positions) x = pos(rng);
        for (int32_t& x : p.key_positions) x = pos(rng);
    }
    return p;
}

std::unique_ptr<Model> make_model(Context& ctx, const QkvProblem& p) {
    auto model = Model::create(ctx, p.config, p.weights);
    REQUIRE_MESSAGE(model, why(model));
    return std::move(model.value());
}

std::unique_ptr<Session> make_session(Context& ctx, const Model& m, const QkvProblem& p) {
    SessionLimits limits;
    limits.max_shape = p.shape;
    limits.frames_in_flight = 1;
    limits.host_io = true;
    limits.host_weights = p.options.need_weights;
    auto session = Session::create(ctx, m, limits);
    REQUIRE_MESSAGE(session, why(session));
    return std::move(session.value());
}

void check(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
    auto cmp = vkmha::test::compare(got, want, kTol);
    CHECK_MESSAGE(cmp.ok, cmp.describe(what));
}

// The host path: contiguous [B, H, L, D] in and out.
void run_host(const QkvCase& c, AttentionPath path) {
    const std::string label = std::string(c.name) + (path == AttentionPath::fused ? " (fused)" : " (unfused)");
    INFO(label);
    vkmha::test::ValidationGuard guard;
    Context& ctx = vkmha::test::gpu_context();
    QkvProblem p = make_problem(c, 900 + c.D + c.Lq);
    p.options.path = path;
    auto ref = reference_attention_qkv(p.config, p.weights, p.shape, p.options, p.inputs());
    REQUIRE_MESSAGE(ref, why(ref));
    auto model = make_model(ctx, p);
    auto session = make_session(ctx, *model, p);
    HostInputs in;
    in.query = p.q.data(), in.key = p.k.data(), in.value = p.v.data();
    in.key_padding_mask = p.kpm.empty() ? nullptr : p.kpm.data();
    in.position_ids = p.positions.empty() ? nullptr : p.positions.data();
    in.key_position_ids = p.key_positions.empty() ? nullptr : p.key_positions.data();
    in.own_qkv = true;
    auto value = session->host_submitter()->submit(p.shape, p.options, in);
    REQUIRE_MESSAGE(value, why(value));
    REQUIRE(session->host_submitter()->wait(value.value(), UINT64_MAX));
    std::vector<float> out(ref->output.size()), weights(ref->weights.size());
    REQUIRE(session->host_submitter()->read_outputs(value.value(), out.data(), out.size(),
                                                    weights.empty() ? nullptr : weights.data(), weights.size()));
    check(out, ref->output, "O [B, H, Lq, D]");
    if (c.need_weights) check(weights, ref->weights, "weights per head");
}

// Copies a contiguous [B, heads, L, D] tensor into [B, L, heads, D] at `offset` floats of `dst`.
void to_row_major(const std::vector<float>& x, uint32_t B, uint32_t heads, uint32_t L, uint32_t D, float* dst) {
    for (uint32_t b = 0; b < B; ++b)
        for (uint32_t h = 0; h < heads; ++h)
            for (uint32_t l = 0; l < L; ++l)
                std::memcpy(dst + ((size_t(b) * L + l) * heads + h) * D,
                            x.data() + ((size_t(b) * heads + h) * L + l) * D, D * sizeof(float));
}

// The record path: Q, K, V and O in [B, L, heads, D] (the layout attention sees inside a transformer block), each
// 7 floats into its buffer; RoPE positions 4 bytes into theirs.
void run_record(const QkvCase& c) {
    const std::string label = std::string(c.name) + " (record, [B, L, H, D])";
    INFO(label);
    vkmha::test::ValidationGuard guard;
    Context& ctx = vkmha::test::gpu_context();
    QkvProblem p = make_problem(c, 700 + c.D + c.Lk);
    auto ref = reference_attention_qkv(p.config, p.weights, p.shape, p.options, p.inputs());
    REQUIRE_MESSAGE(ref, why(ref));
    auto model = make_model(ctx, p);
    auto session = make_session(ctx, *model, p);
    constexpr uint64_t kPad = 7; // floats before each tensor
    const uint64_t q_n = p.q.size(), kv_n = p.k.size();
    auto arena = Arena::create(
        ctx.device(), {{"q", (kPad + q_n) * 4, MemoryKind::host_visible},
                       {"k", (kPad + kv_n) * 4, MemoryKind::host_visible},
                       {"v", (kPad + kv_n) * 4, MemoryKind::host_visible},
                       {"o", (kPad + q_n) * 4, MemoryKind::host_visible},
                       {"positions", (p.shape.batch * (p.shape.lq + p.shape.lk) + 1) * 4, MemoryKind::host_visible}});
    REQUIRE_MESSAGE(arena, why(arena));
    const Arena& a = arena.value();
    auto at = [&](size_t i) { return static_cast<float*>(a[i].mapped) + kPad; };
    to_row_major(p.q, c.B, c.H, c.Lq, c.D, at(0));
    to_row_major(p.k, c.B, c.G, c.Lk, c.D, at(1));
    to_row_major(p.v, c.B, c.G, c.Lk, c.D, at(2));
    RecordArgs r;
    r.frame = 0;
    r.shape = p.shape;
    r.options = p.options;
    r.own_qkv = true;
    r.qkv.q = r.qkv.o = {c.Lq * c.H * c.D, c.D, c.H * c.D};
    r.qkv.k = r.qkv.v = {c.Lk * c.G * c.D, c.D, c.G * c.D};
    r.query = {a[0].buffer, kPad * 4, q_n * 4};
    r.key = {a[1].buffer, kPad * 4, kv_n * 4};
    r.value = {a[2].buffer, kPad * 4, kv_n * 4};
    r.output = {a[3].buffer, kPad * 4, q_n * 4};
    if (c.positions) {
        auto* words = static_cast<int32_t*>(a[4].mapped);
        std::memcpy(words + 1, p.positions.data(), p.positions.size() * 4);
        std::memcpy(words + 1 + p.positions.size(), p.key_positions.data(), p.key_positions.size() * 4);
        r.position_ids = {a[4].buffer, 4, p.positions.size() * 4};
        r.key_position_ids = {a[4].buffer, 4 + p.positions.size() * 4, p.key_positions.size() * 4};
    }
    REQUIRE_FALSE((c.key_padding || c.need_weights)); // the record path cases bind no masks or weights
    OneShot os(ctx.device());
    auto recorded = session->record(os.begin(), r);
    REQUIRE_MESSAGE(recorded, why(recorded));
    os.submit_and_wait();
    std::vector<float> got(q_n), want(q_n);
    std::memcpy(got.data(), at(3), q_n * 4);
    to_row_major(ref->output, c.B, c.H, c.Lq, c.D, want.data());
    check(got, want, "O [B, Lq, H, D]");
}

void llama(AttentionConfig& c) {
    c.rope = {.layout = RopeLayout::neox,
              .theta = 500000.0,
              .scaling = RopeScaling::llama3,
              .factor = 8.0,
              .original_max_positions = 8192};
}
void qwen3_window(AttentionConfig& c) {
    c.qk_norm = true;
    c.window = 5;
    c.rope = {.layout = RopeLayout::neox, .theta = 1000000.0};
}
void gpt_oss(AttentionConfig& c) {
    c.sinks = true;
    c.softcap = 8.0f;
    c.rope = {.layout = RopeLayout::neox, .scaling = RopeScaling::yarn, .factor = 32.0, .original_max_positions = 4096};
}
void bloom(AttentionConfig& c) {
    c.alibi = true;
    c.scale = 0.3f;
}
void gptj(AttentionConfig& c) { c.rope = {.layout = RopeLayout::gptj, .dims = 24}; }

const QkvCase kCases[] = {
    {"plain MHA H4 D16", 4, 4, 16, 2, 7, 7},
    {"llama3 GQA H8 G2 D64 positions", 8, 2, 64, 1, 9, 33, true, false, false, true, llama},
    {"qwen3 QK-norm window D128 causal key padding", 2, 1, 128, 2, 17, 17, true, true, false, false, qwen3_window},
    {"gpt-oss sinks soft-cap yarn D80 weights", 6, 2, 80, 1, 5, 40, true, false, true, true, gpt_oss},
    {"bloom ALiBi scale H6 D96 key padding", 6, 6, 96, 2, 13, 13, true, true, false, false, bloom},
    {"gpt-j partial R24 D32 decode", 4, 4, 32, 1, 1, 129, true, false, false, false, gptj},
};

} // namespace

TEST_SUITE("attention_only") {
    TEST_CASE("the caller's own Q, K, V ([B, H, L, D], host path) match the CPU reference") {
        for (const QkvCase& c : kCases) {
            run_host(c, AttentionPath::fused);
            run_host(c, AttentionPath::unfused);
        }
    }

    TEST_CASE("the caller's own Q, K, V ([B, L, H, D] at odd offsets, record path) match the CPU reference") {
        for (const QkvCase& c : kCases)
            if (!c.key_padding && !c.need_weights) run_record(c);
    }

    TEST_CASE("the caller's own K/V appended to a KV cache (then attended) equal the one-shot reference") {
        vkmha::test::ValidationGuard guard;
        Context& ctx = vkmha::test::gpu_context();
        const QkvCase c{"llama3 GQA cache", 8, 2, 32, 1, 70, 70, true, false, false, false, llama};
        QkvProblem p = make_problem(c, 31);
        p.config.window = 20; // the model's window masks inside the cache as in one shot
        auto model = make_model(ctx, p);
        auto session = make_session(ctx, *model, p);
        auto cache = KvCache::create(ctx, *model, {2, 128, 0});
        REQUIRE_MESSAGE(cache, why(cache));
        auto ref = reference_attention_qkv(p.config, p.weights, p.shape, p.options, p.inputs());
        REQUIRE_MESSAGE(ref, why(ref));
        // Per token [L, heads, D], as an engine's own projections would hand them over.
        std::vector<float> q(p.q.size()), k(p.k.size()), v(p.v.size()), want(p.q.size());
        to_row_major(p.q, 1, c.H, c.Lq, c.D, q.data());
        to_row_major(p.k, 1, c.G, c.Lk, c.D, k.data());
        to_row_major(p.v, 1, c.G, c.Lk, c.D, v.data());
        to_row_major(ref->output, 1, c.H, c.Lq, c.D, want.data());
        std::vector<float> got;
        for (uint32_t pos = 0; pos < c.Lq;) {
            const uint32_t n = std::min<uint32_t>(pos < 50 ? 1 + pos % 7 : 1, c.Lq - pos);
            HostInputs in;
            in.own_qkv = true;
            in.query = q.data() + size_t(pos) * c.H * c.D;
            in.key = k.data() + size_t(pos) * c.G * c.D;
            in.value = v.data() + size_t(pos) * c.G * c.D;
            const SequenceStep step{1, n};
            auto value = session->host_submitter()->submit_cached(*cache.value(), {&step, 1}, in);
            REQUIRE_MESSAGE(value, why(value));
            REQUIRE(session->host_submitter()->wait(value.value(), UINT64_MAX));
            std::vector<float> out(size_t(n) * c.H * c.D);
            REQUIRE(session->host_submitter()->read_outputs(value.value(), out.data(), out.size(), nullptr, 0));
            got.insert(got.end(), out.begin(), out.end());
            pos += n;
        }
        check(got, want, "incremental O [L, H, D] over the caller's own K/V rows");
    }

    TEST_CASE("attention-only models refuse projections, cached steps and bad strides by name") {
        vkmha::test::ValidationGuard guard;
        Context& ctx = vkmha::test::gpu_context();
        QkvProblem p = make_problem(kCases[0], 5);
        auto model = make_model(ctx, p);
        auto session = make_session(ctx, *model, p);
        HostInputs in;
        in.query = p.q.data();
        auto plain = session->host_submitter()->submit(p.shape, p.options, in);
        REQUIRE_FALSE(plain);
        CHECK(plain.error().message.find("attention-only") != std::string::npos);
        in.own_qkv = true;
        auto no_key = session->host_submitter()->submit(p.shape, p.options, in);
        REQUIRE_FALSE(no_key);
        CHECK(no_key.error().message.find("key and value") != std::string::npos);
        auto cache = KvCache::create(ctx, *model, {1, 16, 0});
        REQUIRE_MESSAGE(cache, why(cache));
        const SequenceStep step{0, 1};
        HostInputs cin;
        cin.query = p.q.data();
        auto cached =
            session->host_submitter()->submit_cached(*cache.value(), {&step, 1}, cin); // projections, not own K/V
        REQUIRE_FALSE(cached);
        CHECK(cached.error().message.find("attention-only") != std::string::npos);
        RecordArgs r;
        r.shape = p.shape;
        r.own_qkv = true;
        r.qkv.q = r.qkv.k = r.qkv.v = {4 * 7 * 16, 7 * 16, 16}; // kCases[0]: H = G = 4, L = 7, D = 16
        r.qkv.o = {4 * 7 * 16, 16, 16};                         // head stride = row stride: rows overlap
        auto arena = Arena::create(ctx.device(), {{"x", 4096, MemoryKind::host_visible}});
        REQUIRE_MESSAGE(arena, why(arena));
        r.query = r.key = r.value = r.output = {arena.value()[0].buffer, 0, 4096};
        OneShot os(ctx.device());
        auto bad = session->record(os.begin(), r);
        REQUIRE_FALSE(bad);
        CHECK(bad.error().message.find("output strides (batch 448, head 16, row 16) make rows of 16 floats overlap") !=
              std::string::npos);
        os.submit_and_wait();
        // The session stays usable.
        in.key = p.k.data(), in.value = p.v.data();
        auto good = session->host_submitter()->submit(p.shape, p.options, in);
        REQUIRE_MESSAGE(good, why(good));
        REQUIRE(session->host_submitter()->wait(good.value(), UINT64_MAX));
    }
}
