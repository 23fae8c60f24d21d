// KV cache conformance: cached steps (incremental, ragged, windowed, split-K decode), sliced prefill and the error
// paths, each compared with the CPU reference's one-shot pass over the same history.
#include "cpu_reference.h"
#include "host_submit.h"
#include "io/half.h"
#include "session.h"
#include "support/compare.h"
#include "support/gpu_context.h"
#include "support/one_shot.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace vkmha;
using vkmha::test::OneShot;
using vkmha::test::Tolerance;

const Tolerance kTol{1e-4, 1e-3, 1e-9};
const Tolerance kTolF16{1.5e-3, 1.5e-3, 1e-6};

template <typename R> std::string why(const R& r) { return r.ok() ? std::string() : r.error().message; }

std::vector<float> random_vec(size_t count, std::mt19937& rng, float scale = 1.0f) {
    std::normal_distribution<float> n(0.0f, 1.0f);
    std::vector<float> v(count);
    for (float& x : v) x = n(rng) * scale;
    return v;
}

AttentionWeights random_weights(const AttentionConfig& c, std::mt19937& rng, bool bias = true) {
    const uint32_t E = c.embed_dim, KV = c.kv_width();
    AttentionWeights w;
    w.wq = random_vec(size_t(E) * E, rng, 1.0f / std::sqrt(float(E)));
    w.wk = random_vec(size_t(KV) * c.kdim, rng, 1.0f / std::sqrt(float(c.kdim)));
    w.wv = random_vec(size_t(KV) * c.vdim, rng, 1.0f / std::sqrt(float(c.vdim)));
    w.wo = random_vec(size_t(E) * E, rng, 1.0f / std::sqrt(float(E)));
    if (bias) {
        w.bq = random_vec(E, rng, 0.2f);
        w.bk = random_vec(KV, rng, 0.2f);
        w.bv = random_vec(KV, rng, 0.2f);
        w.bo = random_vec(E, rng, 0.2f);
    }
    if (c.qk_norm) w.q_norm = random_vec(c.head_dim(), rng), w.k_norm = random_vec(c.head_dim(), rng);
    if (c.sinks) w.sinks = random_vec(c.num_heads, rng, 2.0f);
    return w;
}

// The weights as an fp16 model stores them, so the reference sees the same parameters.
AttentionWeights as_stored(AttentionWeights w, Precision p) {
    if (p != Precision::fp16) return w;
    for (auto* v : {&w.wq, &w.wk, &w.wv, &w.bq, &w.bk, &w.bv, &w.wo, &w.bo})
        for (float& x : *v) x = io::half_to_float(io::float_to_half(x));
    return w;
}

// A model and a host-I/O session over it.
struct Rig {
    Context* ctx = nullptr;
    AttentionConfig c;
    AttentionWeights w; // as the model stores them
    Precision precision = Precision::fp32;
    Tolerance tol = kTol;
    std::unique_ptr<Model> model;
    std::unique_ptr<Session> session;
};

std::unique_ptr<Rig> make_rig(const AttentionConfig& c, uint32_t seed, bool bias = true, Precision p = Precision::fp32,
                              AttentionShape max_shape = {1, 256, 256}, uint32_t frames = 2,
                              Context* context = nullptr) {
    Context& ctx = context ? *context : vkmha::test::gpu_context();
    auto r = std::make_unique<Rig>();
    r->ctx = &ctx;
    std::mt19937 rng(seed);
    r->c = c;
    AttentionWeights w = random_weights(c, rng, bias);
    r->precision = p;
    r->tol = p == Precision::fp16 ? kTolF16 : kTol;
    auto model = Model::create(ctx, c, w, p);
    REQUIRE_MESSAGE(model, why(model));
    r->model = std::move(model.value());
    r->w = as_stored(std::move(w), p);
    SessionLimits sl;
    sl.max_shape = max_shape;
    sl.host_io = true;
    sl.frames_in_flight = frames;
    auto session = Session::create(ctx, *r->model, sl);
    REQUIRE_MESSAGE(session, why(session));
    r->session = std::move(session.value());
    return r;
}

std::unique_ptr<KvCache> make_cache(const Rig& r, KvCacheLimits l) {
    auto cache = KvCache::create(*r.ctx, *r.model, l);
    REQUIRE_MESSAGE(cache, why(cache));
    return std::move(cache.value());
}

// One cached step through the host path; returns its [T, E] outputs.
std::vector<float> run_step(Rig& r, KvCache& cache, const std::vector<SequenceStep>& steps, const float* q,
                            const float* k = nullptr, const float* v = nullptr, const uint8_t* kpm = nullptr,
                            uint64_t* value_out = nullptr, const int32_t* positions = nullptr) {
    size_t T = 0;
    for (const SequenceStep& s : steps) T += s.new_tokens;
    HostInputs in;
    in.query = q;
    in.key = k;
    in.value = v;
    in.key_padding_mask = kpm;
    in.position_ids = positions;
    auto value = r.session->host_submitter()->submit_cached(cache, steps, in);
    REQUIRE_MESSAGE(value, why(value));
    auto waited = r.session->host_submitter()->wait(value.value(), UINT64_MAX);
    REQUIRE_MESSAGE(waited, why(waited));
    std::vector<float> out(T * r.c.embed_dim);
    auto read = r.session->host_submitter()->read_outputs(value.value(), out.data(), out.size(), nullptr, 0);
    REQUIRE_MESSAGE(read, why(read));
    if (value_out) *value_out = value.value();
    return out;
}

// The reference over one sequence: lq query rows against lk keys (causal bottom-right unless a mask is given).
std::vector<float> reference(const Rig& r, uint32_t lq, uint32_t lk, const float* q, const float* k = nullptr,
                             const float* v = nullptr, const uint8_t* kpm = nullptr, const uint8_t* mask = nullptr,
                             const int32_t* positions = nullptr) {
    AttentionOptions o;
    o.causal = mask == nullptr;
    if (kpm) o.key_padding = MaskKind::boolean;
    if (mask) o.attn_mask = MaskKind::boolean;
    AttentionInputs in;
    in.query = q;
    in.key = k;
    in.value = v;
    in.key_padding_mask = kpm;
    in.attn_mask = mask;
    in.position_ids = positions;
    auto ref = reference_attention(r.c, r.w, {1, lq, lk}, o, in);
    REQUIRE_MESSAGE(ref, why(ref));
    return std::move(ref.value().output);
}

double g_worst[2] = {0, 0}; // the largest max |d| seen by check(): fp32 tolerance, fp16 tolerance

void check(const std::vector<float>& got, const std::vector<float>& want, const Tolerance& tol,
           const std::string& what) {
    auto cmp = vkmha::test::compare(got, want, tol);
    double& worst = g_worst[tol.atol > kTol.atol ? 1 : 0];
    worst = std::max(worst, cmp.max_abs);
    CHECK_MESSAGE(cmp.ok, cmp.describe(what));
}

// One cached step of fresh random tokens through the host path. Each sequence's new tokens are appended to its
// history (hist[sequence]); the cache's length must follow it, and the sequence's output rows must match its own
// reference over that history.
void step_and_check(Rig& r, KvCache& cache, std::mt19937& rng, std::vector<std::vector<float>>& hist,
                    const std::vector<SequenceStep>& steps, const std::string& what) {
    const uint32_t E = r.c.embed_dim;
    std::vector<float> in;
    std::vector<std::vector<float>> news;
    for (const SequenceStep& st : steps) {
        news.push_back(random_vec(size_t(st.new_tokens) * E, rng));
        in.insert(in.end(), news.back().begin(), news.back().end());
    }
    auto out = run_step(r, cache, steps, in.data());
    size_t row = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
        const SequenceStep& st = steps[i];
        auto& h = hist[st.sequence];
        h.insert(h.end(), news[i].begin(), news[i].end());
        const uint32_t lk = static_cast<uint32_t>(h.size() / E);
        CHECK(cache.length(st.sequence).value() == lk);
        auto want = reference(r, st.new_tokens, lk, news[i].data(), h.data());
        std::vector<float> g(out.begin() + row * E, out.begin() + (row + st.new_tokens) * E);
        check(g, want, r.tol,
              what + ": sequence " + std::to_string(st.sequence) + " (" + std::to_string(st.new_tokens) + " new of " +
                  std::to_string(lk) + ")");
        row += st.new_tokens;
    }
}

// Sliding-window mask for a one-shot pass: query i sees keys i - W < j <= i.
std::vector<uint8_t> window_mask(uint32_t L, uint32_t W) {
    std::vector<uint8_t> m(size_t(L) * L, 1);
    for (uint32_t i = 0; i < L; ++i)
        for (uint32_t j = 0; j <= i; ++j)
            if (j + W > i) m[size_t(i) * L + j] = 0;
    return m;
}

struct IncCase {
    uint32_t E, H, G, kdim, vdim;
    bool bias, fp16, separate_value;
    uint32_t L, max_chunk;
};

} // namespace

TEST_SUITE("kv_cache") {
    TEST_CASE("smoke: incremental equals one-shot") {
        vkmha::test::ValidationGuard guard;
        Context& ctx = vkmha::test::gpu_context();
        std::mt19937 rng(7);
        AttentionConfig c{16, 4, 2, 16, 16};
        auto w = random_weights(c, rng);
        auto model = Model::create(ctx, c, w);
        REQUIRE(model);
        SessionLimits sl;
        sl.max_shape = {1, 8, 64};
        sl.host_io = true;
        sl.frames_in_flight = 2;
        auto session = Session::create(ctx, *model.value(), sl);
        REQUIRE(session);
        auto cache = KvCache::create(ctx, *model.value(), {1, 64, 0});
        REQUIRE(cache);
        const uint32_t L = 20;
        std::normal_distribution<float> n(0.0f, 1.0f);
        std::vector<float> x(size_t(L) * c.embed_dim);
        for (float& v : x) v = n(rng);
        std::vector<float> got(x.size());
        const uint32_t chunks[] = {1, 3, 1, 5, 2, 8};
        uint32_t pos = 0;
        for (uint32_t k = 0; pos < L; ++k) {
            const uint32_t count = std::min(chunks[k % 6], L - pos);
            SequenceStep st{0, count};
            HostInputs in;
            in.query = x.data() + size_t(pos) * c.embed_dim;
            auto value = session.value()->host_submitter()->submit_cached(*cache.value(), {&st, 1}, in);
            REQUIRE_MESSAGE(value, why(value));
            REQUIRE(session.value()->host_submitter()->wait(value.value(), UINT64_MAX));
            REQUIRE(session.value()->host_submitter()->read_outputs(
                value.value(), got.data() + size_t(pos) * c.embed_dim, size_t(count) * c.embed_dim, nullptr, 0));
            pos += count;
        }
        AttentionOptions o;
        o.causal = true;
        AttentionInputs ri;
        ri.query = x.data();
        auto ref = reference_attention(c, w, {1, L, L}, o, ri);
        REQUIRE(ref);
        auto cmp = vkmha::test::compare(got, ref.value().output, {1e-4, 1e-3, 1e-9});
        CHECK_MESSAGE(cmp.ok, cmp.describe("incremental output"));
    }

    TEST_CASE("incremental equals one-shot: lengths, GQA ratios, head dims, biases, precisions, cross inputs") {
        const bool f16 = vkmha::test::gpu_context().device().storage16();
        const IncCase cases[] = {
            {16, 4, 4, 16, 16, true, false, false, 1, 1},      {16, 4, 2, 16, 16, true, false, false, 2, 1},
            {12, 4, 1, 12, 12, true, false, false, 17, 5},     {9, 3, 3, 9, 9, false, false, false, 17, 4},
            {32, 4, 1, 32, 32, true, false, false, 64, 16},    {64, 4, 4, 64, 64, false, false, false, 129, 40},
            {48, 8, 2, 48, 48, false, false, false, 300, 120}, {24, 8, 2, 24, 24, true, false, false, 129, 33},
            {32, 4, 2, 32, 32, true, true, false, 64, 20},     {12, 4, 1, 12, 12, false, true, false, 129, 33},
            {48, 6, 3, 48, 48, true, true, false, 300, 120},   {16, 4, 2, 7, 11, true, false, false, 64, 13},
            {24, 6, 3, 10, 10, false, false, true, 129, 50},   {32, 8, 2, 5, 19, true, true, false, 64, 17},
        };
        for (const IncCase& k : cases) {
            if (k.fp16 && !f16) continue;
            INFO("E=", k.E, " H=", k.H, " G=", k.G, " kdim=", k.kdim, " vdim=", k.vdim, " bias=", k.bias,
                 " fp16=", k.fp16, " L=", k.L);
            vkmha::test::ValidationGuard guard;
            const AttentionConfig c{k.E, k.H, k.G, k.kdim, k.vdim};
            const bool cross = k.kdim != k.E || k.vdim != k.E || k.separate_value;
            auto rig = make_rig(c, 100 + k.E + k.L, k.bias, k.fp16 ? Precision::fp16 : Precision::fp32);
            auto cache = make_cache(*rig, {1, k.L + 3, 0});
            std::mt19937 rng(k.L * 31 + k.E);
            const auto q = random_vec(size_t(k.L) * k.E, rng);
            const auto kin = cross ? random_vec(size_t(k.L) * k.kdim, rng) : std::vector<float>();
            const auto vin = cross && !k.separate_value ? random_vec(size_t(k.L) * k.vdim, rng) : std::vector<float>();
            std::vector<float> got;
            std::uniform_int_distribution<uint32_t> chunk(1, k.max_chunk);
            for (uint32_t pos = 0; pos < k.L;) {
                const uint32_t n = std::min(chunk(rng), k.L - pos);
                auto out = run_step(*rig, *cache, {{0, n}}, q.data() + size_t(pos) * k.E,
                                    cross ? kin.data() + size_t(pos) * k.kdim : nullptr,
                                    vin.empty() ? nullptr : vin.data() + size_t(pos) * k.vdim);
                got.insert(got.end(), out.begin(), out.end());
                pos += n;
            }
            CHECK(cache->length(0).value() == k.L);
            auto want =
                reference(*rig, k.L, k.L, q.data(), cross ? kin.data() : nullptr, vin.empty() ? nullptr : vin.data());
            check(got, want, rig->tol, "incremental output");
        }
    }

    TEST_CASE("key_padding_mask by slot equals one-shot with key padding") {
        vkmha::test::ValidationGuard guard;
        auto rig = make_rig({16, 4, 2, 16, 16}, 11);
        const uint32_t cap = 80, L[2] = {70, 45};
        auto cache = make_cache(*rig, {2, cap, 0});
        std::mt19937 rng(12);
        std::vector<uint8_t> mask(2 * cap, 0);
        std::bernoulli_distribution pad(0.3);
        for (uint32_t s = 0; s < 2; ++s)
            for (uint32_t j = 1; j < cap; ++j) mask[s * cap + j] = pad(rng) ? 1 : 0; // position 0 always visible
        std::vector<float> q[2], got[2];
        for (uint32_t s = 0; s < 2; ++s) q[s] = random_vec(size_t(L[s]) * 16, rng);
        uint32_t pos[2] = {0, 0};
        std::uniform_int_distribution<uint32_t> chunk(1, 9);
        while (pos[0] < L[0] || pos[1] < L[1]) {
            std::vector<SequenceStep> steps;
            std::vector<float> in;
            for (uint32_t s : {1u, 0u}) {
                if (pos[s] == L[s]) continue;
                const uint32_t n = std::min(chunk(rng), L[s] - pos[s]);
                steps.push_back({s, n});
                in.insert(in.end(), q[s].begin() + size_t(pos[s]) * 16, q[s].begin() + size_t(pos[s] + n) * 16);
            }
            auto out = run_step(*rig, *cache, steps, in.data(), nullptr, nullptr, mask.data());
            size_t row = 0;
            for (const SequenceStep& st : steps) {
                got[st.sequence].insert(got[st.sequence].end(), out.begin() + row * 16,
                                        out.begin() + (row + st.new_tokens) * 16);
                row += st.new_tokens;
                pos[st.sequence] += st.new_tokens;
            }
        }
        for (uint32_t s = 0; s < 2; ++s) {
            auto want = reference(*rig, L[s], L[s], q[s].data(), nullptr, nullptr, mask.data() + s * cap);
            check(got[s], want, rig->tol, "padded sequence " + std::to_string(s));
        }
    }

    TEST_CASE("sliding window: ring wraps, multi-token steps") {
        struct W {
            uint32_t window, capacity, L, max_step;
            bool fp16, padded; // padded: a key_padding_mask by slot as well
        };
        const W cases[] = {
            {1, 1, 40, 1, false, false},     {1, 4, 60, 4, false, false},    {3, 3, 45, 1, false, false},
            {3, 6, 100, 4, false, false},    {16, 16, 60, 1, false, false},  {16, 24, 200, 9, false, false},
            {50, 64, 300, 15, false, false}, {50, 50, 120, 1, false, false}, {16, 20, 100, 5, false, true},
            {3, 5, 80, 3, true, false},      {50, 64, 300, 15, true, true}};
        const bool f16 = vkmha::test::gpu_context().device().storage16();
        auto rig32 = make_rig({24, 4, 2, 24, 24}, 21);
        auto rig16 = f16 ? make_rig({12, 4, 1, 12, 12}, 22, true, Precision::fp16) : nullptr;
        for (const W& k : cases) {
            if (k.fp16 && !f16) continue;
            INFO("window=", k.window, " capacity=", k.capacity, " L=", k.L, " fp16=", k.fp16, " padded=", k.padded);
            vkmha::test::ValidationGuard guard;
            Rig& rig = k.fp16 ? *rig16 : *rig32;
            const uint32_t E = rig.c.embed_dim;
            auto cache = make_cache(rig, {1, k.capacity, k.window});
            std::mt19937 rng(k.window * 1000 + k.capacity);
            const auto q = random_vec(size_t(k.L) * E, rng);
            std::vector<uint8_t> slot_mask(k.capacity, 0);
            if (k.padded) {
                std::bernoulli_distribution pad(0.3);
                for (uint32_t j = 1; j < k.capacity; ++j) slot_mask[j] = pad(rng) ? 1 : 0; // slot 0 always visible
            }
            std::vector<float> got;
            std::uniform_int_distribution<uint32_t> chunk(1, k.max_step);
            for (uint32_t pos = 0; pos < k.L;) {
                const uint32_t n = std::min(chunk(rng), k.L - pos);
                auto out = run_step(rig, *cache, {{0, n}}, q.data() + size_t(pos) * E, nullptr, nullptr,
                                    k.padded ? slot_mask.data() : nullptr);
                got.insert(got.end(), out.begin(), out.end());
                pos += n;
            }
            const auto mask = window_mask(k.L, k.window);
            std::vector<uint8_t> kpm(k.L);
            for (uint32_t j = 0; j < k.L; ++j) kpm[j] = slot_mask[j % k.capacity];
            auto want =
                reference(rig, k.L, k.L, q.data(), nullptr, nullptr, k.padded ? kpm.data() : nullptr, mask.data());
            check(got, want, rig.tol, "windowed output");
        }
    }

    TEST_CASE("ragged steps equal each sequence's own reference") {
        vkmha::test::ValidationGuard guard;
        const uint32_t S = 9, E = 32;
        auto rig = make_rig({E, 8, 2, E, E}, 31);
        auto cache = make_cache(*rig, {S, 512, 0});
        std::mt19937 rng(32);
        std::vector<std::vector<float>> hist(S);
        auto do_step = [&](const std::vector<SequenceStep>& steps) {
            step_and_check(*rig, *cache, rng, hist, steps, "ragged step");
        };
        // Different cached lengths, listed out of order.
        do_step({{4, 30}, {0, 1}, {7, 60}, {2, 5}, {8, 3}, {1, 17}, {3, 2}, {6, 9}, {5, 40}});
        do_step({{5, 1}, {2, 1}, {7, 1}, {0, 1}});            // decode only
        do_step({{8, 24}, {1, 1}, {3, 33}, {6, 1}, {0, 17}}); // mixed
        do_step({{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {8, 1}});
        do_step({{6, 100}, {4, 2}, {2, 70}});
        std::vector<uint32_t> order(S);
        for (uint32_t i = 0; i < S; ++i) order[i] = i;
        for (int round = 0; round < 3; ++round) {
            std::shuffle(order.begin(), order.end(), rng);
            std::vector<SequenceStep> steps;
            const uint32_t counts[] = {1, 3, 18, 1, 25, 2};
            for (uint32_t i = 0; i < 5; ++i) steps.push_back({order[i], counts[(i + round) % 6]});
            do_step(steps);
        }
    }

    TEST_CASE("split-K decode over long caches") {
        struct K {
            uint32_t E, H, G;
            bool fp16, portable;
            uint32_t L0, L1;
        };
        const K cases[] = {{32, 4, 1, false, false, 1040, 224},
                           {24, 8, 1, true, false, 3000, 700},
                           {32, 4, 2, false, true, 1500, 1100},
                           {16, 2, 2, false, false, 2100, 64}};
        for (const K& k : cases) {
            if (k.fp16 && !vkmha::test::gpu_context().device().storage16()) continue;
            INFO("E=", k.E, " H=", k.H, " G=", k.G, " fp16=", k.fp16, " portable=", k.portable, " lengths=", k.L0, ",",
                 k.L1);
            vkmha::test::ValidationGuard guard;
            const uint32_t E = k.E;
            auto rig = make_rig({E, k.H, k.G, E, E}, 41 + k.L0, true, k.fp16 ? Precision::fp16 : Precision::fp32,
                                {1, 256, 256}, 2, k.portable ? &vkmha::test::gpu_context_portable() : nullptr);
            auto cache = make_cache(*rig, {2, k.L0 + 8, 0});
            std::mt19937 rng(42 + k.L0);
            std::vector<float> hist[2];
            // Runs a step; checks the rows of every listed sequence (or only those with few new tokens), and
            // returns whether split-K ran (its combine pass; -1: no timings on this device).
            auto do_step = [&](const std::vector<SequenceStep>& steps, bool check_all) {
                std::vector<float> in;
                std::vector<std::vector<float>> news;
                for (const SequenceStep& st : steps) {
                    news.push_back(random_vec(size_t(st.new_tokens) * E, rng));
                    in.insert(in.end(), news.back().begin(), news.back().end());
                }
                uint64_t value = 0;
                auto out = run_step(*rig, *cache, steps, in.data(), nullptr, nullptr, nullptr, &value);
                size_t row = 0;
                for (size_t i = 0; i < steps.size(); ++i) {
                    const SequenceStep& st = steps[i];
                    auto& h = hist[st.sequence];
                    h.insert(h.end(), news[i].begin(), news[i].end());
                    const uint32_t lk = static_cast<uint32_t>(h.size() / E);
                    if (check_all || st.new_tokens <= 2) {
                        auto want = reference(*rig, st.new_tokens, lk, news[i].data(), h.data());
                        std::vector<float> g(out.begin() + row * E, out.begin() + (row + st.new_tokens) * E);
                        check(g, want, rig->tol,
                              "sequence " + std::to_string(st.sequence) + " (" + std::to_string(st.new_tokens) +
                                  " new of " + std::to_string(lk) + ")");
                    }
                    row += st.new_tokens;
                }
                auto t = rig->session->timings(value - 1);
                if (!t) return -1;
                for (const StageTiming& st : t.value())
                    if (st.stage == Stage::combine) return 1;
                return 0;
            };
            // Fill both sequences in budget-sized ragged steps; check the last fill step in full.
            uint32_t len[2] = {0, 0};
            while (len[0] < k.L0 || len[1] < k.L1) {
                std::vector<SequenceStep> steps;
                uint32_t room = 256;
                for (uint32_t s : {1u, 0u}) {
                    const uint32_t want = s ? k.L1 : k.L0;
                    const uint32_t n = std::min(want - len[s], room - (s ? 56u : 0u));
                    if (n == 0) continue;
                    steps.push_back({s, n});
                    len[s] += n;
                    room -= n;
                }
                do_step(steps, len[0] == k.L0 && len[1] == k.L1);
            }
            const int split = do_step({{0, 1}, {1, 1}}, true); // decode, keys L0+1 and L1+1
            if (split >= 0) CHECK_MESSAGE(split == 1, "a 1-token decode over ", k.L0 + 1, " keys did not split K");
            if (split < 0) MESSAGE("no GPU timings on this device: split-K not confirmed");
            do_step({{1, 1}}, true);
            do_step({{0, 1}}, true);
            do_step({{1, 20}, {0, 1}}, true); // decode next to a 20-token step (over the split-K row limit)
            do_step({{0, 2}, {1, 1}}, true);
            CHECK(cache->length(0).value() == k.L0 + 5);
        }
    }
    TEST_CASE("record_cached: caller buffers at odd offsets, two steps per command buffer, budget error") {
        vkmha::test::ValidationGuard guard;
        const uint32_t E = 16, KD = 6, VD = 10, cap = 64, S = 3;
        auto rig = make_rig({E, 4, 2, KD, VD}, 71, true, Precision::fp32, {2, 16, 16}, 2);
        Context& ctx = *rig->ctx;
        auto cache = make_cache(*rig, {S, cap, 0});
        std::mt19937 rng(72);
        const uint64_t off_q = 12, off_k = 4, off_v = 36, off_o = 20, off_m = 3; // bytes
        const uint32_t maxT = 40;                                                // over the budget of 32
        auto arena = Arena::create(ctx.device(), {{"q", off_q + maxT * E * 4, MemoryKind::host_visible},
                                                  {"k", off_k + maxT * KD * 4, MemoryKind::host_visible},
                                                  {"v", off_v + maxT * VD * 4, MemoryKind::host_visible},
                                                  {"o", off_o + maxT * E * 4, MemoryKind::host_visible},
                                                  {"m", off_m + S * cap + 1, MemoryKind::host_visible}});
        REQUIRE_MESSAGE(arena, why(arena));
        const Arena& ar = arena.value();
        // Pad the mask bytes of a few slots of sequence 0 (never its position 0).
        std::vector<uint8_t> kpm(S * cap, 0);
        for (uint32_t j : {2u, 5u, 6u, 11u}) kpm[j] = 1;
        std::memcpy(static_cast<uint8_t*>(ar[4].mapped) + off_m, kpm.data(), kpm.size());
        std::vector<float> hq[S], hk[S], hv[S];
        OneShot os(ctx.device());
        uint64_t frame = 0, completed = kNoFrame;
        // Records `groups` of steps into one command buffer (one frame each), then checks every sequence's rows.
        auto run = [&](const std::vector<std::vector<SequenceStep>>& groups) {
            struct Pending {
                std::vector<SequenceStep> steps;
                std::vector<float> q, k, v, out;
            };
            std::vector<Pending> pend;
            VkCommandBuffer cmd = os.begin();
            uint64_t base_q = off_q, base_k = off_k, base_v = off_v, base_o = off_o;
            std::vector<uint64_t> out_at;
            for (const auto& steps : groups) {
                Pending p;
                p.steps = steps;
                uint32_t T = 0;
                for (const SequenceStep& st : steps) T += st.new_tokens;
                p.q = random_vec(size_t(T) * E, rng);
                p.k = random_vec(size_t(T) * KD, rng);
                p.v = random_vec(size_t(T) * VD, rng);
                // Each group's inputs and outputs after the previous group's, in the same buffers.
                std::memcpy(static_cast<uint8_t*>(ar[0].mapped) + base_q, p.q.data(), p.q.size() * 4);
                std::memcpy(static_cast<uint8_t*>(ar[1].mapped) + base_k, p.k.data(), p.k.size() * 4);
                std::memcpy(static_cast<uint8_t*>(ar[2].mapped) + base_v, p.v.data(), p.v.size() * 4);
                CachedRecordArgs a;
                a.frame = frame;
                a.completed_frame = completed;
                a.cache = cache.get();
                a.steps = p.steps;
                a.query = {ar[0].buffer, base_q, uint64_t(T) * E * 4};
                a.key = {ar[1].buffer, base_k, uint64_t(T) * KD * 4};
                a.value = {ar[2].buffer, base_v, uint64_t(T) * VD * 4};
                a.output = {ar[3].buffer, base_o, uint64_t(T) * E * 4};
                a.key_padding_mask = {ar[4].buffer, off_m, uint64_t(S) * cap};
                auto rec = rig->session->record_cached(cmd, a);
                REQUIRE_MESSAGE(rec, why(rec));
                out_at.push_back(base_o);
                base_q += uint64_t(T) * E * 4;
                base_k += uint64_t(T) * KD * 4;
                base_v += uint64_t(T) * VD * 4;
                base_o += uint64_t(T) * E * 4;
                ++frame;
                pend.push_back(std::move(p));
            }
            os.submit_and_wait();
            completed = frame - 1;
            for (size_t g = 0; g < pend.size(); ++g) {
                Pending& p = pend[g];
                size_t row = 0;
                for (const SequenceStep& st : p.steps) {
                    const uint32_t n = st.new_tokens, s = st.sequence;
                    hq[s].insert(hq[s].end(), p.q.begin() + row * E, p.q.begin() + (row + n) * E);
                    hk[s].insert(hk[s].end(), p.k.begin() + row * KD, p.k.begin() + (row + n) * KD);
                    hv[s].insert(hv[s].end(), p.v.begin() + row * VD, p.v.begin() + (row + n) * VD);
                    const uint32_t lk = static_cast<uint32_t>(hk[s].size() / KD);
                    std::vector<uint8_t> pad(lk);
                    for (uint32_t j = 0; j < lk; ++j) pad[j] = kpm[s * cap + j];
                    auto want = reference(*rig, n, lk, hq[s].data() + size_t(lk - n) * E, hk[s].data(), hv[s].data(),
                                          pad.data());
                    std::vector<float> got(size_t(n) * E);
                    std::memcpy(got.data(), static_cast<uint8_t*>(ar[3].mapped) + out_at[g] + row * E * 4,
                                got.size() * 4);
                    check(got, want, rig->tol, "group " + std::to_string(g) + " sequence " + std::to_string(s));
                    row += n;
                }
            }
            for (uint32_t s = 0; s < S; ++s) CHECK(cache->length(s).value() == hk[s].size() / KD);
        };
        run({{{2, 5}, {0, 3}}});
        run({{{0, 1}, {2, 1}, {1, 7}}, {{1, 2}, {0, 17}}}); // the second step reads what the first appended
        run({{{0, 1}}, {{0, 1}, {2, 3}}});

        // Over the token budget (32) with buffers large enough: refused, nothing appended.
        {
            const uint32_t before[S] = {cache->length(0).value(), cache->length(1).value(), cache->length(2).value()};
            const SequenceStep steps[] = {{0, 20}, {1, 13}};
            CachedRecordArgs a;
            a.frame = frame;
            a.completed_frame = completed;
            a.cache = cache.get();
            a.steps = steps;
            a.query = {ar[0].buffer, off_q, uint64_t(33) * E * 4};
            a.key = {ar[1].buffer, off_k, uint64_t(33) * KD * 4};
            a.value = {ar[2].buffer, off_v, uint64_t(33) * VD * 4};
            a.output = {ar[3].buffer, off_o, uint64_t(33) * E * 4};
            VkCommandBuffer cmd = os.begin();
            auto rec = rig->session->record_cached(cmd, a);
            REQUIRE_FALSE(rec);
            CHECK_MESSAGE(rec.error().message.find("budget") != std::string::npos, rec.error().message);
            os.submit_and_wait(); // an empty command buffer
            for (uint32_t s = 0; s < S; ++s) CHECK(cache->length(s).value() == before[s]);
        }
        run({{{1, 16}, {2, 16}}});
    }

    TEST_CASE("sliced prefill equals one-shot") {
        vkmha::test::ValidationGuard guard;
        // Both fused kernels resume row state across slices: lane tiles (lavapipe's default) and workgroup tiles.
        Context* which = nullptr;
        SUBCASE("default context") { which = &vkmha::test::gpu_context(); }
        SUBCASE("portable context (workgroup tiles)") { which = &vkmha::test::gpu_context_portable(); }
        Context& ctx = *which;
        const uint32_t E = 32, P = 37, T = 200;
        auto rig = make_rig({E, 4, 2, E, E}, 51, true, Precision::fp32, {1, 256, 256}, 8, &ctx);
        auto cache = make_cache(*rig, {2, 512, 0});
        std::mt19937 rng(52);
        std::vector<float> hist = random_vec(size_t(P) * E, rng);
        run_step(*rig, *cache, {{1, 20}}, hist.data());
        run_step(*rig, *cache, {{1, P - 20}}, hist.data() + size_t(20) * E);
        const auto prompt = random_vec(size_t(T) * E, rng);
        hist.insert(hist.end(), prompt.begin(), prompt.end());
        const auto full = reference(*rig, P + T, P + T, hist.data());
        const std::vector<float> want(full.begin() + size_t(P) * E, full.end());

        auto arena = Arena::create(ctx.device(), {{"prefill query", uint64_t(T) * E * 4, MemoryKind::host_visible},
                                                  {"prefill output", uint64_t(T) * E * 4, MemoryKind::host_visible}});
        REQUIRE_MESSAGE(arena, why(arena));
        const BufferView qv = arena.value()[0], ov = arena.value()[1];
        std::memcpy(qv.mapped, prompt.data(), prompt.size() * 4);
        OneShot os(ctx.device());
        uint64_t frame = 1000, completed = 999;
        const uint32_t tile = rig->model->attention_tiling().keys;

        struct Mode {
            uint32_t max_keys, max_rows, per_cmd;
            double budget_ms;
        };
        const Mode modes[] = {{tile, 7, 1, 0}, {100, 1, 8, 0}, {1000, 64, 1, 0}, {100, 0, 4, 0}, {tile, 64, 3, 0},
                              {1000, 7, 8, 0}, {0, 0, 1, 0},   {0, 0, 1, 2.0},   {tile, 0, 2, 0}};
        for (const Mode& m : modes) {
            INFO("max_keys=", m.max_keys, " max_rows=", m.max_rows, " per_cmd=", m.per_cmd, " budget=", m.budget_ms);
            std::memset(ov.mapped, 0xff, size_t(T) * E * 4); // NaN until written
            auto job = PrefillJob::create(ctx, *cache, {1, T});
            REQUIRE_MESSAGE(job, why(job));
            PrefillJob& pj = *job.value();
            uint32_t pieces = 0;
            while (!pj.done() && pieces < 5000) {
                VkCommandBuffer cmd = os.begin();
                for (uint32_t i = 0; i < m.per_cmd && !pj.done(); ++i) {
                    PrefillRecordArgs a;
                    a.frame = frame;
                    a.completed_frame = completed;
                    a.job = &pj;
                    a.budget_ms = m.budget_ms;
                    a.max_rows = m.max_rows;
                    a.max_keys = m.max_keys;
                    a.query = {qv.buffer, 0, uint64_t(T) * E * 4};
                    a.output = {ov.buffer, 0, uint64_t(T) * E * 4};
                    auto item = rig->session->record_prefill(cmd, a);
                    REQUIRE_MESSAGE(item, why(item));
                    ++frame;
                    ++pieces;
                }
                os.submit_and_wait();
                completed = frame - 1;
            }
            REQUIRE(pj.done());
            MESSAGE("prefill mode keys=", m.max_keys, " rows=", m.max_rows, " budget=", m.budget_ms, ": ", pieces,
                    " pieces");
            std::vector<float> got(size_t(T) * E);
            std::memcpy(got.data(), ov.mapped, got.size() * 4);
            check(got, want, rig->tol, "prefill output");
            job.value().reset();
            CHECK(cache->length(1).value() == P + T);
            // The prefill's keys and values are in the cache: a decode step after it sees them.
            auto next = random_vec(E, rng);
            std::vector<float> h2 = hist;
            h2.insert(h2.end(), next.begin(), next.end());
            auto out = run_step(*rig, *cache, {{1, 1}}, next.data());
            check(out, reference(*rig, 1, P + T + 1, next.data(), h2.data()), rig->tol, "decode after prefill");
            REQUIRE(cache->truncate(1, P));
        }

        { // busy during the job; an abandoned job rolls back
            auto job = PrefillJob::create(ctx, *cache, {1, T});
            REQUIRE_MESSAGE(job, why(job));
            VkCommandBuffer cmd = os.begin();
            PrefillRecordArgs a;
            a.frame = frame++;
            a.completed_frame = completed;
            a.job = job.value().get();
            a.max_rows = 16;
            a.query = {qv.buffer, 0, uint64_t(T) * E * 4};
            a.output = {ov.buffer, 0, uint64_t(T) * E * 4};
            auto item = rig->session->record_prefill(cmd, a);
            REQUIRE_MESSAGE(item, why(item));
            os.submit_and_wait();
            completed = frame - 1;
            CHECK_FALSE(job.value()->done());
            auto x = random_vec(E, rng);
            SequenceStep st{1, 1};
            HostInputs in;
            in.query = x.data();
            CHECK_FALSE(rig->session->host_submitter()->submit_cached(*cache, {&st, 1}, in));
            CHECK_FALSE(cache->truncate(1, 5));
            CHECK_FALSE(cache->reset(1));
            // Other sequences stay usable.
            auto other = random_vec(size_t(3) * E, rng);
            auto out0 = run_step(*rig, *cache, {{0, 3}}, other.data());
            check(out0, reference(*rig, 3, 3, other.data()), rig->tol, "other sequence during a prefill");
            job.value().reset(); // abandoned
            CHECK(cache->length(1).value() == P);
            std::vector<float> h2(hist.begin(), hist.begin() + size_t(P) * E);
            auto next = random_vec(size_t(2) * E, rng);
            h2.insert(h2.end(), next.begin(), next.end());
            auto out = run_step(*rig, *cache, {{1, 2}}, next.data());
            check(out, reference(*rig, 2, P + 2, next.data(), h2.data()), rig->tol, "step after an abandoned job");
        }
    }

    TEST_CASE("errors leave the session and cache usable") {
        vkmha::test::ValidationGuard guard;
        const uint32_t E = 16;
        auto rig = make_rig({E, 4, 2, E, E}, 61, true, Precision::fp32, {2, 16, 16});
        auto cache = make_cache(*rig, {3, 40, 0});
        std::mt19937 rng(62);
        std::vector<std::vector<float>> hist(3);
        auto feed = [&](const std::vector<SequenceStep>& steps, const std::string& what) {
            step_and_check(*rig, *cache, rng, hist, steps, what);
        };
        feed({{0, 10}, {1, 5}}, "setup");
        auto lengths_unchanged = [&]() {
            for (uint32_t s = 0; s < 3; ++s) CHECK(cache->length(s).value() == hist[s].size() / E);
        };
        auto x = random_vec(size_t(64) * E, rng);
        auto expect_error = [&](const std::vector<SequenceStep>& steps, const char* contains, const float* q) {
            INFO("error case: ", std::string(contains));
            HostInputs in;
            in.query = q;
            auto r = rig->session->host_submitter()->submit_cached(*cache, steps, in);
            REQUIRE_FALSE(r);
            CHECK_MESSAGE(r.error().message.find(contains) != std::string::npos, r.error().message);
            lengths_unchanged();
            feed({{1, 2}, {0, 1}}, std::string("step after error: ") + contains);
        };
        expect_error({{0, 31}}, "overflow", x.data());
        expect_error({{3, 1}}, "outside", x.data());
        expect_error({{0, 1}, {0, 2}}, "twice", x.data());
        expect_error({{1, 0}}, "0 new tokens", x.data());
        expect_error({{0, 20}, {1, 13}}, "", x.data()); // over the token budget (and the host staging)
        expect_error({{0, 1}}, "NULL", nullptr);
        expect_error({}, "no sequences", x.data());
        CHECK_FALSE(cache->truncate(0, 1000));
        CHECK_FALSE(cache->truncate(5, 0));
        lengths_unchanged();
        feed({{0, 1}}, "after truncate errors");

        // Rollback, then different tokens: the outputs follow the new history.
        feed({{2, 16}}, "before rollback");
        feed({{2, 14}}, "before rollback");
        REQUIRE(cache->truncate(2, 12));
        hist[2].resize(size_t(12) * E);
        feed({{2, 9}}, "after rollback");
        feed({{2, 9}, {1, 1}}, "after rollback");
        CHECK(cache->length(2).value() == 30);

        // Windowed cache errors.
        auto wc = make_cache(*rig, {1, 8, 4});
        const auto wq = random_vec(size_t(40) * E, rng);
        std::vector<float> got;
        for (uint32_t pos = 0; pos < 20; pos += 5) {
            auto out = run_step(*rig, *wc, {{0, 5}}, wq.data() + size_t(pos) * E);
            got.insert(got.end(), out.begin(), out.end());
        }
        {
            HostInputs in;
            in.query = wq.data();
            SequenceStep st{0, 6};
            auto r = rig->session->host_submitter()->submit_cached(*wc, {&st, 1}, in);
            REQUIRE_FALSE(r);
            CHECK_MESSAGE(r.error().message.find("tokens per step") != std::string::npos, r.error().message);
        }
        auto t = wc->truncate(0, 5); // the ring no longer holds position 2
        REQUIRE_FALSE(t);
        CHECK_MESSAGE(t.error().message.find("overwritten") != std::string::npos, t.error().message);
        CHECK(wc->length(0).value() == 20);
        // A rollback the ring allows, then new tokens 17.. : compare with the window reference of the new history.
        REQUIRE(wc->truncate(0, 17));
        got.resize(size_t(17) * E);
        std::vector<float> h(wq.begin(), wq.begin() + size_t(17) * E);
        const auto fresh = random_vec(size_t(10) * E, rng);
        h.insert(h.end(), fresh.begin(), fresh.end());
        for (uint32_t pos = 0; pos < 10; pos += 5) {
            auto out = run_step(*rig, *wc, {{0, 5}}, fresh.data() + size_t(pos) * E);
            got.insert(got.end(), out.begin(), out.end());
        }
        const auto mask = window_mask(27, 4);
        check(got, reference(*rig, 27, 27, h.data(), nullptr, nullptr, nullptr, mask.data()), rig->tol,
              "windowed rollback");
        MESSAGE("worst max |d| so far in kv_cache: fp32 ", g_worst[0], ", fp16 ", g_worst[1]);
    }

    // The attention of real model families over a KV cache: K is rotated before it enters the cache, positions are
    // cache positions (or the caller's), and every score modifier applies per sequence.
    TEST_CASE("model options: incremental, ragged and caller positions equal one-shot") {
        struct OptionCase {
            const char* name;
            AttentionConfig c;
            bool fp16;
        };
        auto with = [](AttentionConfig c, auto&& f) {
            f(c);
            return c;
        };
        const AttentionConfig base{32, 4, 2, 32, 32};
        const OptionCase cases[] = {
            {"llama3 RoPE GQA",
             with(base,
                  [](AttentionConfig& c) {
                      c.rope = {.layout = RopeLayout::neox,
                                .theta = 500000.0,
                                .scaling = RopeScaling::llama3,
                                .factor = 8.0,
                                .original_max_positions = 64};
                  }),
             false},
            {"qwen3 QK-norm RoPE fp16",
             with(base,
                  [](AttentionConfig& c) {
                      c.qk_norm = true;
                      c.rope = {.layout = RopeLayout::neox};
                  }),
             true},
            {"gemma2 scale soft-cap window",
             with(base,
                  [](AttentionConfig& c) {
                      c.scale = 0.2f;
                      c.softcap = 4.0f;
                      c.window = 6;
                  }),
             false},
            {"gpt-oss sinks window yarn",
             with(base,
                  [](AttentionConfig& c) {
                      c.sinks = true;
                      c.window = 11;
                      c.rope = {.layout = RopeLayout::neox,
                                .scaling = RopeScaling::yarn,
                                .factor = 4.0,
                                .original_max_positions = 32};
                  }),
             false},
            {"ALiBi H6 partial gptj",
             with(AttentionConfig{48, 6, 3, 48, 48},
                  [](AttentionConfig& c) {
                      c.alibi = true;
                      c.rope = {.layout = RopeLayout::gptj, .dims = 4};
                  }),
             false},
        };
        for (const OptionCase& oc : cases) {
            if (oc.fp16 && !vkmha::test::gpu_context().device().storage16()) continue;
            INFO(oc.name);
            vkmha::test::ValidationGuard guard;
            auto rig = make_rig(oc.c, 77, true, oc.fp16 ? Precision::fp16 : Precision::fp32);
            const uint32_t E = oc.c.embed_dim, L = 150;
            std::mt19937 rng(78);
            const auto q = random_vec(size_t(L) * E, rng);
            // Incremental in uneven chunks, then decode steps over a long cache (split-K).
            auto cache = make_cache(*rig, {3, 256, 0});
            std::vector<float> got;
            for (uint32_t pos = 0; pos < L;) {
                const uint32_t n = pos < 120 ? std::min<uint32_t>(1 + pos % 9, L - pos) : 1;
                auto out = run_step(*rig, *cache, {{0, n}}, q.data() + size_t(pos) * E);
                got.insert(got.end(), out.begin(), out.end());
                pos += n;
            }
            check(got, reference(*rig, L, L, q.data()), rig->tol, std::string(oc.name) + ": incremental");

            // The caller's positions: every token 7000 further on.
            std::vector<int32_t> positions(L);
            for (uint32_t i = 0; i < L; ++i) positions[i] = static_cast<int32_t>(7000 + i);
            got.clear();
            for (uint32_t pos = 0; pos < L;) {
                const uint32_t n = std::min<uint32_t>(1 + pos % 13, L - pos);
                auto out = run_step(*rig, *cache, {{1, n}}, q.data() + size_t(pos) * E, nullptr, nullptr, nullptr,
                                    nullptr, positions.data() + pos);
                got.insert(got.end(), out.begin(), out.end());
                pos += n;
            }
            check(got, reference(*rig, L, L, q.data(), nullptr, nullptr, nullptr, nullptr, positions.data()), rig->tol,
                  std::string(oc.name) + ": caller positions");

            // Ragged: sequences at different lengths in one step, each against its own reference.
            std::vector<std::vector<float>> hist(3);
            auto fresh = make_cache(*rig, {3, 256, 0});
            step_and_check(*rig, *fresh, rng, hist, {{0, 5}, {2, 17}}, std::string(oc.name) + ": ragged 1");
            step_and_check(*rig, *fresh, rng, hist, {{2, 1}, {1, 9}, {0, 3}}, std::string(oc.name) + ": ragged 2");
        }
    }

    TEST_CASE("model options: sliced prefill equals one-shot, at cache positions or the caller's") {
        vkmha::test::ValidationGuard guard;
        AttentionConfig c{32, 4, 2, 32, 32};
        c.qk_norm = true;
        c.sinks = true;
        c.window = 40;
        c.softcap = 6.0f;
        c.rope = {.layout = RopeLayout::neox, .dims = 6, .scaling = RopeScaling::linear, .factor = 2.0};
        Context& ctx = vkmha::test::gpu_context();
        const uint32_t E = c.embed_dim, P = 21, T = 120;
        auto rig = make_rig(c, 61, true, Precision::fp32, {1, 256, 256}, 8);
        std::mt19937 rng(62);
        const std::vector<float> history = random_vec(size_t(P) * E, rng);
        const auto prompt = random_vec(size_t(T) * E, rng);
        auto arena =
            Arena::create(ctx.device(), {{"prefill query", uint64_t(T) * E * 4, MemoryKind::host_visible},
                                         {"prefill output", uint64_t(T) * E * 4, MemoryKind::host_visible},
                                         {"prefill positions", uint64_t(T) * 4 + 4, MemoryKind::host_visible}});
        REQUIRE_MESSAGE(arena, why(arena));
        const BufferView qv = arena.value()[0], ov = arena.value()[1], pv = arena.value()[2];
        std::memcpy(qv.mapped, prompt.data(), prompt.size() * 4);
        // The history at cache positions 0..P-1; the prompt at P.. or, given, 9000 + 3i (4 bytes into the buffer).
        std::vector<int32_t> positions(P + T);
        for (uint32_t i = 0; i < P + T; ++i) positions[i] = static_cast<int32_t>(i < P ? i : 9000 + 3 * i);
        std::memcpy(static_cast<int32_t*>(pv.mapped) + 1, positions.data() + P, size_t(T) * 4);
        OneShot os(ctx.device());
        uint64_t frame = 1000;
        for (const bool given : {false, true}) {
            INFO("caller positions: ", given);
            auto cache = make_cache(*rig, {2, 512, 0});
            std::vector<float> hist = history;
            run_step(*rig, *cache, {{1, P}}, hist.data());
            hist.insert(hist.end(), prompt.begin(), prompt.end());
            const auto full = reference(*rig, P + T, P + T, hist.data(), nullptr, nullptr, nullptr, nullptr,
                                        given ? positions.data() : nullptr);
            const std::vector<float> want(full.begin() + size_t(P) * E, full.end());
            auto job = PrefillJob::create(ctx, *cache, {1, T});
            REQUIRE_MESSAGE(job, why(job));
            PrefillJob& pj = *job.value();
            while (!pj.done()) {
                VkCommandBuffer cmd = os.begin();
                PrefillRecordArgs a;
                a.frame = frame;
                a.completed_frame = frame - 1;
                a.job = &pj;
                a.max_rows = 37;
                a.max_keys = rig->model->attention_tiling().keys;
                a.query = {qv.buffer, 0, uint64_t(T) * E * 4};
                a.output = {ov.buffer, 0, uint64_t(T) * E * 4};
                if (given) a.position_ids = {pv.buffer, 4, uint64_t(T) * 4};
                auto item = rig->session->record_prefill(cmd, a);
                REQUIRE_MESSAGE(item, why(item));
                os.submit_and_wait();
                ++frame;
            }
            std::vector<float> got(size_t(T) * E);
            std::memcpy(got.data(), ov.mapped, got.size() * 4);
            check(got, want, rig->tol, "prefill output with QK-norm, partial RoPE, sinks, window and soft-cap");
            if (given) continue;
            // A decode step after the prefill attends over the rotated keys the prefill left in the cache.
            auto next = random_vec(E, rng);
            hist.insert(hist.end(), next.begin(), next.end());
            auto out = run_step(*rig, *cache, {{1, 1}}, next.data());
            check(out, reference(*rig, 1, P + T + 1, next.data(), hist.data()), rig->tol, "decode after prefill");
        }
    }
}
