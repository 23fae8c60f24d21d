// The head mask (API 1.3, Hugging Face's head_mask): per-head factors on each head's attention output before the
// output projection, against the CPU reference on every path (fused, unfused, split-K decode, need_weights, cached
// steps, sliced prefill, the caller's own Q/K/V), with GQA and awkward shapes; proof that a zero factor's head computes
// no scores in the fused kernel; and the C ABI's VkmhaHeadMaskInfo, accepted and refused by name.
#include "context.h"
#include "cpu_reference.h"
#include "host_submit.h"
#include "kv_cache.h"
#include "model.h"
#include "prefill_job.h"
#include "session.h"
#include "support/gpu_context.h"
#include "support/host_io.h"
#include "support/one_shot.h"
#include "support/run_inputs.h"
#include "vulkan/arena.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace vkmha;
using vkmha::test::OneShot;

template <typename R> std::string why(const R& r) { return r.ok() ? std::string() : r.error().message; }

std::vector<float> random_vec(size_t count, std::mt19937& rng, float scale = 1.0f) {
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> v(count);
    for (float& x : v) x = u(rng);
    return v;
}

AttentionWeights random_weights(const AttentionConfig& c, std::mt19937& rng) {
    const uint32_t qw = c.q_width(), kv = c.kv_width();
    const float s = 1.0f / std::sqrt(float(c.embed_dim));
    AttentionWeights w;
    w.wq = random_vec(size_t(qw) * c.embed_dim, rng, s);
    w.wk = random_vec(size_t(kv) * c.kdim, rng, s);
    w.wv = random_vec(size_t(kv) * c.vdim, rng, s);
    w.bq = random_vec(qw, rng, 0.1f);
    w.bk = random_vec(kv, rng, 0.1f);
    w.bv = random_vec(kv, rng, 0.1f);
    w.wo = random_vec(size_t(c.embed_dim) * qw, rng, s);
    w.bo = random_vec(c.embed_dim, rng, 0.1f);
    return w;
}

// The fp32 bound the GPU-against-reference tests use (docs/DESIGN.md, "Numerics").
void check_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
    REQUIRE(got.size() == want.size());
    double worst = 0;
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double d = std::fabs(double(got[i]) - want[i]);
        worst = std::max(worst, std::isnan(d) ? std::numeric_limits<double>::infinity() : d);
        if (!(d <= 1e-4 + 1e-3 * std::fabs(want[i]))) ++bad;
    }
    INFO(what, ": max |d| ", worst);
    CHECK(bad == 0);
}

struct Rig {
    Context* ctx = nullptr;
    AttentionConfig c;
    AttentionWeights w;
    std::unique_ptr<Model> model;
    std::unique_ptr<Session> session;
};

std::unique_ptr<Rig> make_rig(Context& ctx, const AttentionConfig& c, const AttentionWeights& w,
                              AttentionShape max_shape) {
    auto r = std::make_unique<Rig>();
    r->ctx = &ctx;
    r->c = c;
    r->w = w;
    auto model = Model::create(ctx, c, w, Precision::fp32);
    REQUIRE_MESSAGE(model, why(model));
    r->model = std::move(model.value());
    SessionLimits sl;
    sl.max_shape = max_shape;
    sl.host_io = true;
    sl.host_weights = true;
    auto session = Session::create(ctx, *r->model, sl);
    REQUIRE_MESSAGE(session, why(session));
    r->session = std::move(session.value());
    return r;
}

// One plain submit; returns the output and (with need_weights) the weights.
AttentionOutputs run(Rig& r, AttentionShape shape, AttentionOptions o, const std::vector<float>& x,
                     std::span<const float> mask) {
    HostInputs in;
    in.query = x.data();
    in.head_factors = mask;
    auto value = r.session->host_submitter()->submit(shape, o, in);
    REQUIRE_MESSAGE(value, why(value));
    REQUIRE(r.session->host_submitter()->wait(value.value(), UINT64_MAX));
    AttentionOutputs out;
    out.output.resize(size_t(shape.batch) * shape.lq * r.c.embed_dim);
    if (o.need_weights)
        out.weights.resize(size_t(shape.batch) * (o.average_weights ? 1 : r.c.num_heads) * shape.lq * shape.lk);
    auto read = r.session->host_submitter()->read_outputs(value.value(), out.output.data(), out.output.size(),
                                                          out.weights.empty() ? nullptr : out.weights.data(),
                                                          out.weights.size());
    REQUIRE_MESSAGE(read, why(read));
    return out;
}

AttentionOutputs reference(const Rig& r, AttentionShape shape, AttentionOptions o, const std::vector<float>& x,
                           std::span<const float> mask) {
    AttentionInputs in;
    in.query = x.data();
    in.head_mask = mask;
    auto ref = reference_attention(r.c, r.w, shape, o, in);
    REQUIRE_MESSAGE(ref, why(ref));
    return std::move(ref.value());
}

// Factors with zeros, fractions and a negative one: [H], or [B, H] when per_batch.
std::vector<float> mask_for(uint32_t heads, uint32_t batch, bool per_batch) {
    std::vector<float> m(size_t(per_batch ? batch : 1) * heads);
    for (size_t i = 0; i < m.size(); ++i) m[i] = i % 3 == 0 ? 0.0f : i % 3 == 1 ? 1.0f : 0.5f - float(i % 5) * 0.4f;
    return m;
}

} // namespace

TEST_SUITE("head_mask") {
    TEST_CASE("one-shot: fused, unfused, split-K decode and need_weights match the CPU reference") {
        vkmha::test::ValidationGuard guard;
        struct Case {
            AttentionConfig c;
            AttentionShape shape;
            bool causal;
        };
        const Case cases[] = {
            {{24, 3, 3, 24, 24}, {2, 7, 7}, true},         // MHA, 3 heads, length 7
            {{48, 6, 2, 48, 48}, {1, 1, 129}, false},      // GQA 6/2, decode over 129 keys (split-K)
            {{32, 4, 1, 32, 32}, {3, 127, 127}, true},     // MQA, length 127
            {{240, 3, 3, 240, 240}, {1, 129, 129}, false}, // head dim 80
            {{192, 2, 2, 192, 192}, {2, 1, 1}, false},     // head dim 96, length 1
        };
        std::mt19937 rng(7);
        for (Context* ctx : {&vkmha::test::gpu_context(), &vkmha::test::gpu_context_portable()}) {
            for (const Case& k : cases) {
                const AttentionConfig& c = k.c;
                auto rig = make_rig(*ctx, c, random_weights(c, rng), k.shape);
                const auto x = random_vec(size_t(k.shape.batch) * k.shape.lq * c.embed_dim, rng);
                const auto keys = random_vec(size_t(k.shape.batch) * k.shape.lk * c.embed_dim, rng);
                for (bool per_batch : {false, true}) {
                    const auto mask = mask_for(c.num_heads, k.shape.batch, per_batch);
                    for (int variant = 0; variant < 4; ++variant) {
                        AttentionOptions o;
                        o.causal = k.causal;
                        o.path = variant == 1 ? AttentionPath::unfused : AttentionPath::fused;
                        o.need_weights = variant >= 2;
                        o.average_weights = variant == 3;
                        INFO("H ", c.num_heads, " G ", c.num_kv_heads, " D ", c.head_dim(), " B ", k.shape.batch,
                             " Lq ", k.shape.lq, " Lk ", k.shape.lk, " per_batch ", per_batch, " variant ", variant);
                        AttentionOutputs got, want;
                        if (k.shape.lq == k.shape.lk) {
                            got = run(*rig, k.shape, o, x, mask);
                            want = reference(*rig, k.shape, o, x, mask);
                        } else {
                            HostInputs in;
                            in.query = x.data();
                            in.key = keys.data();
                            in.head_factors = mask;
                            auto value = rig->session->host_submitter()->submit(k.shape, o, in);
                            REQUIRE_MESSAGE(value, why(value));
                            REQUIRE(rig->session->host_submitter()->wait(value.value(), UINT64_MAX));
                            got.output.resize(size_t(k.shape.batch) * k.shape.lq * c.embed_dim);
                            if (o.need_weights)
                                got.weights.resize(size_t(k.shape.batch) * (o.average_weights ? 1 : c.num_heads) *
                                                   k.shape.lq * k.shape.lk);
                            REQUIRE(rig->session->host_submitter()->read_outputs(
                                value.value(), got.output.data(), got.output.size(),
                                got.weights.empty() ? nullptr : got.weights.data(), got.weights.size()));
                            AttentionInputs ri;
                            ri.query = x.data();
                            ri.key = keys.data();
                            ri.head_mask = mask;
                            auto ref = reference_attention(c, rig->w, k.shape, o, ri);
                            REQUIRE_MESSAGE(ref, why(ref));
                            want = std::move(ref.value());
                        }
                        check_close(got.output, want.output, "output");
                        if (o.need_weights) check_close(got.weights, want.weights, "weights");
                    }
                }
                // The mask matters: unmasked output differs from the masked one.
                AttentionOptions plain;
                plain.causal = k.causal;
                if (k.shape.lq == k.shape.lk) {
                    const auto masked = reference(*rig, k.shape, plain, x, mask_for(c.num_heads, 1, false)).output;
                    const auto full = reference(*rig, k.shape, plain, x, {}).output;
                    CHECK(masked != full);
                }
            }
        }
    }

    TEST_CASE("model options and the caller's own Q/K/V take the mask") {
        vkmha::test::ValidationGuard guard;
        std::mt19937 rng(11);
        AttentionConfig c{32, 4, 2, 32, 32};
        c.rope.layout = RopeLayout::neox;
        c.alibi = true;
        c.softcap = 5.0f;
        c.sinks = true;
        AttentionWeights w = random_weights(c, rng);
        w.sinks = random_vec(c.num_heads, rng);
        auto rig = make_rig(vkmha::test::gpu_context(), c, w, {2, 9, 9});
        const AttentionShape shape{2, 9, 9};
        const auto x = random_vec(size_t(2) * 9 * c.embed_dim, rng);
        const auto mask = mask_for(c.num_heads, 2, true);
        AttentionOptions o;
        o.causal = true;
        check_close(run(*rig, shape, o, x, mask).output, reference(*rig, shape, o, x, mask).output, "model options");

        // Attention only: O [B, H, Lq, D] with each head scaled.
        const uint32_t D = c.head_dim(), H = c.num_heads, G = c.num_kv_heads;
        const auto q = random_vec(size_t(2) * H * 9 * D, rng), kk = random_vec(size_t(2) * G * 9 * D, rng),
                   v = random_vec(size_t(2) * G * 9 * D, rng);
        HostInputs in;
        in.own_qkv = true;
        in.query = q.data();
        in.key = kk.data();
        in.value = v.data();
        in.head_factors = mask;
        auto value = rig->session->host_submitter()->submit(shape, o, in);
        REQUIRE_MESSAGE(value, why(value));
        REQUIRE(rig->session->host_submitter()->wait(value.value(), UINT64_MAX));
        std::vector<float> got(size_t(2) * H * 9 * D);
        REQUIRE(rig->session->host_submitter()->read_outputs(value.value(), got.data(), got.size(), nullptr, 0));
        AttentionInputs ri;
        ri.query = q.data();
        ri.key = kk.data();
        ri.value = v.data();
        ri.head_mask = mask;
        auto ref = reference_attention_qkv(c, rig->w, shape, o, ri);
        REQUIRE_MESSAGE(ref, why(ref));
        check_close(got, ref.value().output, "own Q/K/V");
    }

    TEST_CASE("cached steps and a sliced prefill match the CPU reference with the mask") {
        vkmha::test::ValidationGuard guard;
        std::mt19937 rng(21);
        const AttentionConfig c{48, 6, 2, 48, 48};
        auto rig = make_rig(vkmha::test::gpu_context(), c, random_weights(c, rng), {1, 64, 64});
        auto cache_r = KvCache::create(*rig->ctx, *rig->model, {2, 256, 0});
        REQUIRE_MESSAGE(cache_r, why(cache_r));
        KvCache& cache = *cache_r.value();
        const auto mask = mask_for(c.num_heads, 1, false);
        const uint32_t E = c.embed_dim, T0 = 7, T = 130;
        const auto hist = random_vec(size_t(T0 + T + 1) * E, rng);
        AttentionOptions causal;
        causal.causal = true;
        auto ref_rows = [&](uint32_t len) {
            return reference(*rig, {1, len, len}, causal, std::vector<float>(hist.begin(), hist.begin() + len * E),
                             mask)
                .output;
        };
        // Steps: 7 tokens, then a prefill of 130 tokens in pieces, then one decode token.
        SequenceStep step{0, T0};
        HostInputs in;
        in.query = hist.data();
        in.head_factors = mask;
        auto value = rig->session->host_submitter()->submit_cached(cache, {&step, 1}, in);
        REQUIRE_MESSAGE(value, why(value));
        REQUIRE(rig->session->host_submitter()->wait(value.value(), UINT64_MAX));
        std::vector<float> got(size_t(T0) * E);
        REQUIRE(rig->session->host_submitter()->read_outputs(value.value(), got.data(), got.size(), nullptr, 0));
        check_close(got, ref_rows(T0), "cached step of 7 tokens");

        Context& ctx = *rig->ctx;
        auto arena = Arena::create(ctx.device(), {{"prompt", uint64_t(T) * E * 4, MemoryKind::host_visible},
                                                  {"output", uint64_t(T) * E * 4, MemoryKind::host_visible}});
        REQUIRE_MESSAGE(arena, why(arena));
        const BufferView qv = arena.value()[0], ov = arena.value()[1];
        std::memcpy(qv.mapped, hist.data() + size_t(T0) * E, size_t(T) * E * 4);
        auto job = PrefillJob::create(ctx, cache, {0, T});
        REQUIRE_MESSAGE(job, why(job));
        OneShot os(ctx.device());
        uint64_t frame = 100;
        const auto other_mask = mask_for(c.num_heads, 2, true);
        for (uint32_t pieces = 0; !job.value()->done() && pieces < 2000; ++pieces) {
            VkCommandBuffer cmd = os.begin();
            PrefillRecordArgs a;
            a.frame = frame;
            a.completed_frame = frame - 1;
            a.job = job.value().get();
            a.max_rows = 48;
            a.max_keys = 64;
            a.query = {qv.buffer, 0, uint64_t(T) * E * 4};
            a.output = {ov.buffer, 0, uint64_t(T) * E * 4};
            a.head_factors = mask;
            if (pieces == 1) { // a different mask mid-job is refused, naming why
                PrefillRecordArgs b = a;
                const std::vector<float> ones(c.num_heads, 1.0f);
                b.head_factors = ones;
                auto refused = rig->session->record_prefill(cmd, b);
                REQUIRE_FALSE(refused);
                CHECK(refused.error().message.find("head mask differs") != std::string::npos);
            }
            auto item = rig->session->record_prefill(cmd, a);
            REQUIRE_MESSAGE(item, why(item));
            os.submit_and_wait();
            ++frame;
        }
        REQUIRE(job.value()->done());
        std::vector<float> prompt_out(size_t(T) * E);
        std::memcpy(prompt_out.data(), ov.mapped, prompt_out.size() * 4);
        const auto full = ref_rows(T0 + T);
        check_close(prompt_out, std::vector<float>(full.begin() + size_t(T0) * E, full.end()), "sliced prefill");
        job.value().reset();

        step = {0, 1};
        in.query = hist.data() + size_t(T0 + T) * E;
        value = rig->session->host_submitter()->submit_cached(cache, {&step, 1}, in);
        REQUIRE_MESSAGE(value, why(value));
        REQUIRE(rig->session->host_submitter()->wait(value.value(), UINT64_MAX));
        std::vector<float> last(E);
        REQUIRE(rig->session->host_submitter()->read_outputs(value.value(), last.data(), E, nullptr, 0));
        const auto all = ref_rows(T0 + T + 1);
        check_close(last, std::vector<float>(all.end() - E, all.end()), "decode step after the prefill");

        // A cached step takes [H] only.
        in.head_factors = other_mask;
        auto refused = rig->session->host_submitter()->submit_cached(cache, {&step, 1}, in);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message.find("12 factors") != std::string::npos);
    }

    TEST_CASE("a zero factor skips the head in the fused kernel: it computes no score") {
        // What the skip saves is performance, measured where performance lives: vkmha-heads times each pruned
        // configuration (its "prune" rows), never a timed test.
        vkmha::test::ValidationGuard guard;
        std::mt19937 rng(31);
        // Key/value head 0's K projection is NaN: any score it computed would make its rows NaN (0 * NaN is NaN), so
        // a finite output that matches the reference shows that the masked heads computed no score at all.
        const AttentionConfig c{32, 4, 2, 32, 32};
        AttentionWeights w = random_weights(c, rng);
        const AttentionWeights clean = w; // the reference's: the masked heads' K never matters there
        std::fill(w.wk.begin(), w.wk.begin() + size_t(c.head_dim()) * c.kdim, std::numeric_limits<float>::quiet_NaN());
        const std::vector<float> mask{0.0f, 0.0f, 1.0f, 0.5f}; // heads 0 and 1 share key/value head 0
        for (Context* ctx : {&vkmha::test::gpu_context(), &vkmha::test::gpu_context_portable()}) {
            for (AttentionShape shape : {AttentionShape{2, 33, 33}, AttentionShape{1, 1, 1}}) {
                auto rig = make_rig(*ctx, c, w, shape);
                auto ref_rig = std::make_unique<Rig>();
                ref_rig->c = c;
                ref_rig->w = clean;
                const auto x = random_vec(size_t(shape.batch) * shape.lq * c.embed_dim, rng);
                AttentionOptions o;
                o.causal = true;
                const auto got = run(*rig, shape, o, x, mask).output;
                for (float v : got) REQUIRE(std::isfinite(v));
                check_close(got, reference(*ref_rig, shape, o, x, mask).output, "poisoned head masked");
            }
        }
    }

    TEST_CASE("bad masks are refused by name") {
        vkmha::test::ValidationGuard guard;
        std::mt19937 rng(41);
        const AttentionConfig c{24, 3, 3, 24, 24};
        auto rig = make_rig(vkmha::test::gpu_context(), c, random_weights(c, rng), {2, 4, 4});
        const auto x = random_vec(size_t(2) * 4 * 24, rng);
        HostInputs in;
        in.query = x.data();
        const std::vector<float> four(4, 1.0f);
        in.head_factors = four;
        auto r = rig->session->host_submitter()->submit({2, 4, 4}, {}, in);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ErrorCode::invalid_argument);
        CHECK(r.error().message.find("head mask of 4 factors") != std::string::npos);
        const std::vector<float> nan{1.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
        in.head_factors = nan;
        r = rig->session->host_submitter()->submit({2, 4, 4}, {}, in);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("factor 1") != std::string::npos);
        // The session still works.
        in.head_factors = {};
        check_close(run(*rig, {2, 4, 4}, {}, x, {}).output, reference(*rig, {2, 4, 4}, {}, x, {}).output, "after");
    }
}

TEST_SUITE("plugin_head_mask") {
    TEST_CASE("VkmhaHeadMaskInfo: submit and submitCached take it, bad ones are refused by name") {
        using namespace vkmha::test;
        VkmhaSessionCreateInfo si{VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO};
        si.maxBatch = 2;
        si.maxQueryLength = 5;
        si.maxKeyLength = 5;
        si.hostIo = VK_TRUE;
        OwnSetup s({.embed = 16, .heads = 4, .kv_heads = 2, .naming = Naming::llama}, si);
        AttentionOptions o;
        o.causal = true;
        const RunInputs in = make_inputs(s.host.config, {2, 5, 5}, o, false, false, 5);
        const std::vector<float> factors{1.0f, 0.0f, 0.25f, 1.0f, 0.0f, 1.0f, 1.0f, 2.0f}; // [B, H]
        VkmhaHeadMaskInfo mask{VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO};
        mask.factorCount = 8;
        mask.pFactors = factors.data();
        VkmhaHostSubmitInfo hi{VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO};
        hi.pNext = &mask;
        hi.batch = 2;
        hi.queryLength = hi.keyLength = 5;
        hi.flags = VKMHA_ATTENTION_CAUSAL_BIT;
        hi.pQuery = in.query.data();
        uint64_t value = 0;
        REQUIRE_VKMHA(api().submit(s.session.get(), &hi, &value));
        REQUIRE_VKMHA(api().wait(s.session.get(), value, UINT64_MAX));
        std::vector<float> out(output_count(s.host.config, in));
        REQUIRE_VKMHA(api().readOutputs(s.session.get(), value, out.data(), out.size(), nullptr, 0));
        AttentionInputs ri;
        ri.query = in.query.data();
        ri.head_mask = factors;
        auto ref = reference_attention(s.host.config, s.host.weights, {2, 5, 5}, o, ri);
        REQUIRE_MESSAGE(ref, why(ref));
        check_matches(out.data(), ref.value().output, "submit with a [B, H] head mask");

        mask.factorCount = 3;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().submit(s.session.get(), &hi, &value), "3 factors");
        mask.factorCount = 4;
        mask.pFactors = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().submit(s.session.get(), &hi, &value), "pFactors",
                       "VkmhaHostSubmitInfo");
        VkmhaHeadMaskInfo twice{VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO};
        twice.pNext = &mask;
        hi.pNext = &twice;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().submit(s.session.get(), &hi, &value), "VkmhaHeadMaskInfo",
                       "twice");
        // A chain that other structs refuse names the head mask too.
        VkmhaSessionCreateInfo chained = si;
        chained.pNext = &mask;
        VkmhaSession refused = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().createSession(s.model.get(), &chained, &refused),
                       "VkmhaHeadMaskInfo");
        s.check_still_works("after refused head masks");
    }
}
