// KV cache conformance: incremental decoding through the cache equals the one-shot causal pass.
#include "cpu_reference.h"
#include "session.h"
#include "support/compare.h"
#include "support/gpu_context.h"

#include <doctest/doctest.h>

#include <random>

namespace {

using namespace vkmha;

AttentionWeights random_weights(const AttentionConfig& c, std::mt19937& rng) {
    std::normal_distribution<float> n(0.0f, 1.0f);
    auto fill = [&](size_t count, float scale) {
        std::vector<float> v(count);
        for (float& x : v) x = n(rng) * scale;
        return v;
    };
    const uint32_t E = c.embed_dim, KV = c.kv_width();
    AttentionWeights w;
    w.wq = fill(size_t(E) * E, 1.0f / std::sqrt(float(E)));
    w.wk = fill(size_t(KV) * c.kdim, 1.0f / std::sqrt(float(c.kdim)));
    w.wv = fill(size_t(KV) * c.vdim, 1.0f / std::sqrt(float(c.vdim)));
    w.wo = fill(size_t(E) * E, 1.0f / std::sqrt(float(E)));
    w.bq = fill(E, 0.2f);
    w.bk = fill(KV, 0.2f);
    w.bv = fill(KV, 0.2f);
    w.bo = fill(E, 0.2f);
    return w;
}

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
            auto value = session.value()->submit_host_cached(*cache.value(), {&st, 1}, in);
            REQUIRE_MESSAGE(value, value.error().message);
            REQUIRE(session.value()->wait(value.value(), UINT64_MAX));
            REQUIRE(session.value()->read_outputs(value.value(), got.data() + size_t(pos) * c.embed_dim,
                                                  size_t(count) * c.embed_dim, nullptr, 0));
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
}
