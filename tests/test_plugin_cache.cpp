// The C ABI 1.1 (KV caches, cached steps, sliced prefill) as an engine sees it: libvkmha.so loaded with dlopen,
// every call through the table, results checked against the CPU reference and every failure's message read.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

// The public header by path: the test target does not link libvkmha, on purpose.
#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/compare.h"
#include "support/engine_device.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using vkmha::AttentionConfig;
using vkmha::AttentionOptions;
using vkmha::AttentionShape;
using vkmha::AttentionWeights;
using vkmha::test::adopt_context;
using vkmha::test::api;
using vkmha::test::CacheHandle;
using vkmha::test::check_no_validation_messages;
using vkmha::test::ContextHandle;
using vkmha::test::EngineDevice;
using vkmha::test::HostBuffer;
using vkmha::test::JobHandle;
using vkmha::test::LogCapture;
using vkmha::test::ModelHandle;
using vkmha::test::own_context_info;
using vkmha::test::random_floats;
using vkmha::test::SessionHandle;

// ---------------------------------------------------------------------------------------------------------------
// A GQA model with Llama names and random fp32 weights, kept as tensors for vkmha and as floats for the reference.

struct HostModel {
    AttentionConfig config;
    AttentionWeights weights;
    std::vector<std::vector<float>> data;
    std::vector<std::string> names;
    std::vector<VkmhaTensor> views;
};

HostModel make_model(uint32_t E, uint32_t H, uint32_t G, uint32_t seed) {
    HostModel m;
    const uint32_t D = E / H, KV = G * D;
    m.config = {E, H, G, E, E};
    std::mt19937 rng(seed);
    const float bound = 1.0f / std::sqrt(static_cast<float>(E));
    AttentionWeights& w = m.weights;
    w.wq = random_floats(rng, size_t(E) * E, bound);
    w.wk = random_floats(rng, size_t(KV) * E, bound);
    w.wv = random_floats(rng, size_t(KV) * E, bound);
    w.wo = random_floats(rng, size_t(E) * E, bound);
    w.bq = random_floats(rng, E, 0.2f);
    w.bk = random_floats(rng, KV, 0.2f);
    w.bv = random_floats(rng, KV, 0.2f);
    w.bo = random_floats(rng, E, 0.2f);
    struct T {
        const char* name;
        const std::vector<float>* v;
        uint64_t rows, cols;
    };
    const T tensors[] = {{"q_proj.weight", &w.wq, E, E},  {"k_proj.weight", &w.wk, KV, E},
                         {"v_proj.weight", &w.wv, KV, E}, {"o_proj.weight", &w.wo, E, E},
                         {"q_proj.bias", &w.bq, E, 0},    {"k_proj.bias", &w.bk, KV, 0},
                         {"v_proj.bias", &w.bv, KV, 0},   {"o_proj.bias", &w.bo, E, 0}};
    for (const T& t : tensors) {
        m.data.push_back(*t.v);
        m.names.push_back(t.name);
        VkmhaTensor v{};
        v.dataType = VKMHA_DATA_TYPE_F32;
        v.rank = t.cols ? 2 : 1;
        v.shape[0] = t.rows;
        v.shape[1] = t.cols;
        m.views.push_back(v);
    }
    for (size_t i = 0; i < m.views.size(); ++i) {
        m.views[i].pName = m.names[i].c_str();
        m.views[i].pData = m.data[i].data();
    }
    return m;
}

void create_model(VkmhaContext context, const HostModel& m, ModelHandle& out) {
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.numHeads = m.config.num_heads;
    mi.numKvHeads = m.config.num_kv_heads;
    mi.tensorCount = static_cast<uint32_t>(m.views.size());
    mi.pTensors = m.views.data();
    REQUIRE_VKMHA(api().createModel(context, &mi, out.out()));
}

// Self-attention of `lq` new tokens (the last lq of `tokens`) over all of `tokens` ([lk, E]), causal with the
// bottom-right alignment; `kpm` (optional) is [lk] bytes.
std::vector<float> reference(const HostModel& m, const std::vector<float>& tokens, uint32_t lq,
                             const std::vector<uint8_t>& kpm = {}) {
    const uint32_t E = m.config.embed_dim;
    const uint32_t lk = static_cast<uint32_t>(tokens.size() / E);
    REQUIRE(lq <= lk);
    AttentionOptions o;
    o.causal = true;
    o.key_padding = kpm.empty() ? vkmha::MaskKind::none : vkmha::MaskKind::boolean;
    const std::vector<float> query(tokens.end() - std::ptrdiff_t(size_t(lq) * E), tokens.end());
    vkmha::AttentionInputs in;
    in.query = query.data();
    in.key = tokens.data();
    in.value = tokens.data();
    in.key_padding_mask = kpm.empty() ? nullptr : kpm.data();
    auto r = vkmha::reference_attention(m.config, m.weights, AttentionShape{1, lq, lk}, o, in);
    REQUIRE_MESSAGE(r.ok(), "CPU reference failed: ", r.error().message);
    return std::move(r.value().output);
}

void check_matches(const std::vector<float>& got, const std::vector<float>& ref, const std::string& what) {
    vkmha::test::Tolerance tol;
    tol.atol = 1e-4;
    tol.rtol = 1e-3;
    tol.nmse = 1e30; // the elementwise bound is the criterion here
    const vkmha::test::Comparison c = vkmha::test::compare(got, ref, tol);
    CHECK_MESSAGE(got.size() == ref.size(), what, ": ", got.size(), " values, expected ", ref.size());
    CHECK_MESSAGE(c.ok, c.describe(what));
}

VkmhaSessionCreateInfo session_info(uint32_t batch, uint32_t lq, uint32_t lk, bool host_io) {
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = batch;
    si.maxQueryLength = lq;
    si.maxKeyLength = lk;
    si.hostIo = host_io ? VK_TRUE : VK_FALSE;
    return si;
}

VkmhaKvCacheCreateInfo cache_info(uint32_t sequences, uint32_t capacity, uint32_t window = 0) {
    VkmhaKvCacheCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
    ci.sequences = sequences;
    ci.capacity = capacity;
    ci.window = window;
    return ci;
}

uint32_t cache_length(VkmhaKvCache cache, uint32_t sequence) {
    uint32_t n = 0;
    REQUIRE_VKMHA(api().getKvCacheLength(cache, sequence, &n));
    return n;
}

VkmhaHostCachedSubmitInfo cached_submit_info(VkmhaKvCache cache, const std::vector<VkmhaSequenceStep>& steps,
                                             const float* query, const uint8_t* kpm = nullptr) {
    VkmhaHostCachedSubmitInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
    si.cache = cache;
    si.stepCount = static_cast<uint32_t>(steps.size());
    si.pSteps = steps.data();
    si.pQuery = query;
    si.pKeyPaddingMask = kpm;
    return si;
}

// submitCached, wait, readOutputs: the step's [T, E] output.
std::vector<float> run_cached(VkmhaSession session, VkmhaKvCache cache, const std::vector<VkmhaSequenceStep>& steps,
                              const std::vector<float>& query, uint32_t E, const uint8_t* kpm = nullptr) {
    const VkmhaHostCachedSubmitInfo si = cached_submit_info(cache, steps, query.data(), kpm);
    uint64_t value = 0;
    REQUIRE_VKMHA(api().submitCached(session, &si, &value));
    REQUIRE_VKMHA(api().wait(session, value, UINT64_MAX));
    std::vector<float> out(query.size() / E * E);
    REQUIRE_VKMHA(api().readOutputs(session, value, out.data(), out.size(), nullptr, 0));
    return out;
}

std::vector<float> rows(const std::vector<float>& v, size_t first, size_t count, uint32_t E) {
    return std::vector<float>(v.begin() + std::ptrdiff_t(first * E), v.begin() + std::ptrdiff_t((first + count) * E));
}

// Own mode, a GQA model (E 32, H 4, G 2), a host-I/O session.
struct OwnSetup {
    LogCapture log;
    ContextHandle context;
    HostModel host = make_model(32, 4, 2, 7);
    ModelHandle model;
    SessionHandle session;
    OwnSetup(uint32_t batch, uint32_t lq, uint32_t lk) {
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        create_model(context.get(), host, model);
        const VkmhaSessionCreateInfo si = session_info(batch, lq, lk, true);
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
    }
    uint32_t E() const { return host.config.embed_dim; }
};

} // namespace

// =================================================================================================================

TEST_SUITE("plugin_cache") {
    TEST_CASE("vkmhaGetProcTable: 1.1 fills the cache entries, a 1.0-sized table gets only the 1.0 ones") {
        const VkmhaProcTable& t = api();
        CHECK(VKMHA_API_VERSION_MINOR(t.apiVersion) >= 1); // 1.1 or any later 1.x
        const void* entries[] = {reinterpret_cast<const void*>(t.getKvCacheMemoryRequirements),
                                 reinterpret_cast<const void*>(t.createKvCache),
                                 reinterpret_cast<const void*>(t.destroyKvCache),
                                 reinterpret_cast<const void*>(t.getKvCacheLength),
                                 reinterpret_cast<const void*>(t.resetKvCache),
                                 reinterpret_cast<const void*>(t.truncateKvCache),
                                 reinterpret_cast<const void*>(t.recordCachedAttention),
                                 reinterpret_cast<const void*>(t.submitCached),
                                 reinterpret_cast<const void*>(t.createPrefillJob),
                                 reinterpret_cast<const void*>(t.destroyPrefillJob),
                                 reinterpret_cast<const void*>(t.recordPrefill)};
        for (size_t i = 0; i < std::size(entries); ++i)
            CHECK_MESSAGE(entries[i] != nullptr, "1.1 entry ", i, " is NULL");

        void* handle = dlopen(VKMHA_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL);
        REQUIRE(handle);
        auto get = reinterpret_cast<PFN_vkmhaGetProcTable>(dlsym(handle, "vkmhaGetProcTable"));
        REQUIRE((get != nullptr));
        VkmhaProcTable old;
        std::memset(&old, 0xCD, sizeof old);
        const size_t size_1_0 = offsetof(VkmhaProcTable, getKvCacheMemoryRequirements);
        REQUIRE(get(VKMHA_API_VERSION_1_0, &old, size_1_0) == VKMHA_SUCCESS);
        CHECK((old.getModelMemoryRequirements != nullptr));
        CHECK((old.submit == t.submit));
        bool untouched = true;
        for (size_t i = size_1_0; i < sizeof old; ++i)
            untouched = untouched && reinterpret_cast<uint8_t*>(&old)[i] == 0xCD;
        CHECK_MESSAGE(untouched, "a 1.0 caller's table was written past its size");
        dlclose(handle);
    }

    TEST_CASE("submitCached: token by token equals the one-shot causal pass (GQA)") {
        constexpr uint32_t L = 9;
        OwnSetup s(1, 1, L);
        const uint32_t E = s.E();
        CacheHandle cache;
        const VkmhaKvCacheCreateInfo ci = cache_info(1, L);
        VkDeviceSize need = 0;
        REQUIRE_VKMHA(api().getKvCacheMemoryRequirements(s.model.get(), &ci, &need));
        // Keys and values: [1, G 2, L, D 8] floats each.
        CHECK(need >= 2ull * 2 * L * 8 * sizeof(float));
        REQUIRE_VKMHA(api().createKvCache(s.model.get(), &ci, cache.out()));

        std::mt19937 rng(11);
        const std::vector<float> tokens = random_floats(rng, size_t(L) * E, 1.0f);
        std::vector<float> got;
        for (uint32_t t = 0; t < L; ++t) {
            CHECK(cache_length(cache.get(), 0) == t);
            const std::vector<float> out = run_cached(s.session.get(), cache.get(), {{0, 1}}, rows(tokens, t, 1, E), E);
            got.insert(got.end(), out.begin(), out.end());
        }
        CHECK(cache_length(cache.get(), 0) == L);
        check_matches(got, reference(s.host, tokens, L), "token by token");

        // Reset forgets the sequence: the same tokens again give the same outputs.
        REQUIRE_VKMHA(api().resetKvCache(cache.get(), 0));
        CHECK(cache_length(cache.get(), 0) == 0);
        const std::vector<float> first = run_cached(s.session.get(), cache.get(), {{0, 1}}, rows(tokens, 0, 1, E), E);
        check_matches(first, rows(got, 0, 1, E), "after reset");
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("submitCached: one ragged step of 3 sequences equals per-sequence references") {
        constexpr uint32_t cap = 12;
        OwnSetup s(3, 4, cap);
        const uint32_t E = s.E();
        CacheHandle cache;
        const VkmhaKvCacheCreateInfo ci = cache_info(3, cap);
        REQUIRE_VKMHA(api().createKvCache(s.model.get(), &ci, cache.out()));

        std::mt19937 rng(5);
        const uint32_t cached[3] = {2, 5, 0}; // cached lengths before the ragged step
        std::vector<float> all[3];            // every token of each sequence
        for (uint32_t q = 0; q < 3; ++q) {
            if (!cached[q]) continue;
            all[q] = random_floats(rng, size_t(cached[q]) * E, 1.0f);
            const std::vector<float> out = run_cached(s.session.get(), cache.get(), {{q, cached[q]}}, all[q], E);
            check_matches(out, reference(s.host, all[q], cached[q]), "priming sequence " + std::to_string(q));
        }
        // The step lists the sequences out of order, with 3, 1 and 2 new tokens.
        const std::vector<VkmhaSequenceStep> steps = {{2, 3}, {0, 1}, {1, 2}};
        std::vector<float> query;
        for (const VkmhaSequenceStep& st : steps) {
            const std::vector<float> fresh = random_floats(rng, size_t(st.newTokens) * E, 1.0f);
            all[st.sequence].insert(all[st.sequence].end(), fresh.begin(), fresh.end());
            query.insert(query.end(), fresh.begin(), fresh.end());
        }
        // A key padding mask by slot: sequence 1 never attends to its position 1, sequence 2 to its position 0 (the
        // causal first token of sequence 2 then sees nothing: a zero row, i.e. the output bias).
        std::vector<uint8_t> kpm(3 * cap, 0);
        kpm[1 * cap + 1] = 1;
        kpm[2 * cap + 0] = 1;
        const std::vector<float> out = run_cached(s.session.get(), cache.get(), steps, query, E, kpm.data());
        size_t row = 0;
        for (const VkmhaSequenceStep& st : steps) {
            const uint32_t q = st.sequence;
            const uint32_t lk = cached[q] + st.newTokens;
            const std::vector<uint8_t> mask(kpm.begin() + q * cap, kpm.begin() + q * cap + lk);
            check_matches(rows(out, row, st.newTokens, E), reference(s.host, all[q], st.newTokens, mask),
                          "ragged step, sequence " + std::to_string(q));
            CHECK(cache_length(cache.get(), q) == lk);
            row += st.newTokens;
        }
        // All sequences at once forgotten.
        REQUIRE_VKMHA(api().resetKvCache(cache.get(), VKMHA_ALL_SEQUENCES));
        for (uint32_t q = 0; q < 3; ++q) CHECK(cache_length(cache.get(), q) == 0);
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("bad arguments: cache calls fail with a message and leave the cache usable") {
        constexpr uint32_t cap = 4;
        OwnSetup s(2, 4, cap);
        const uint32_t E = s.E();
        const VkmhaProcTable& t = api();
        CacheHandle cache;
        const VkmhaKvCacheCreateInfo ci = cache_info(2, cap);

        // Creation.
        VkmhaKvCache none = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createKvCache(s.model.get(), &ci, nullptr), "pCache");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createKvCache(nullptr, &ci, &none), "model");
        CHECK(none == nullptr);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createKvCache(s.model.get(), nullptr, &none), "pCreateInfo");
        VkmhaKvCacheCreateInfo bad = ci;
        bad.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createKvCache(s.model.get(), &bad, &none), "sType");
        bad = cache_info(2, 0);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createKvCache(s.model.get(), &bad, &none), "capacity");
        bad = cache_info(2, 4, 5);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createKvCache(s.model.get(), &bad, &none), "window");
        VkDeviceSize bytes = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getKvCacheMemoryRequirements(s.model.get(), &ci, nullptr),
                       "pBytes");
        CHECK(none == nullptr);
        REQUIRE_VKMHA(t.getKvCacheMemoryRequirements(s.model.get(), &ci, &bytes));
        REQUIRE_VKMHA(t.createKvCache(s.model.get(), &ci, cache.out()));

        std::mt19937 rng(3);
        const std::vector<float> tokens = random_floats(rng, size_t(cap) * E, 1.0f);
        const std::vector<float> first3 = rows(tokens, 0, 3, E);
        const std::vector<float> out3 = run_cached(s.session.get(), cache.get(), {{0, 3}}, first3, E);
        const std::vector<float> other = random_floats(rng, size_t(2) * E, 1.0f);
        (void)run_cached(s.session.get(), cache.get(), {{1, 1}}, rows(other, 0, 1, E), E);

        auto unchanged = [&](const char* after) {
            INFO("after: " << after);
            CHECK(cache_length(cache.get(), 0) == 3);
            CHECK(cache_length(cache.get(), 1) == 1);
        };
        uint64_t value = 0;
        const std::vector<float> two = random_floats(rng, size_t(2) * E, 1.0f);
        {
            const std::vector<VkmhaSequenceStep> steps = {{0, 2}};
            const VkmhaHostCachedSubmitInfo si = cached_submit_info(cache.get(), steps, two.data());
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.submitCached(s.session.get(), &si, &value), "overflow",
                           "sequence 0");
            unchanged("overflow");
        }
        {
            const std::vector<VkmhaSequenceStep> steps = {{1, 1}, {5, 1}};
            const VkmhaHostCachedSubmitInfo si = cached_submit_info(cache.get(), steps, two.data());
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.submitCached(s.session.get(), &si, &value), "sequence 5");
            unchanged("sequence out of range");
        }
        {
            const std::vector<VkmhaSequenceStep> steps = {{1, 1}, {1, 1}};
            const VkmhaHostCachedSubmitInfo si = cached_submit_info(cache.get(), steps, two.data());
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &si, &value), "sequence 1",
                           "twice");
            unchanged("duplicate sequence");
        }
        {
            const std::vector<VkmhaSequenceStep> steps = {{1, 0}};
            const VkmhaHostCachedSubmitInfo si = cached_submit_info(cache.get(), steps, two.data());
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &si, &value), "0 new tokens");
            unchanged("zero new tokens");
        }
        {
            const std::vector<VkmhaSequenceStep> steps = {{1, 1}};
            VkmhaHostCachedSubmitInfo si = cached_submit_info(cache.get(), steps, two.data());
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &si, nullptr),
                           "pTimelineValue");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(nullptr, &si, &value), "session");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), nullptr, &value), "pInfo");
            VkmhaHostCachedSubmitInfo b = si;
            b.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &b, &value), "sType", "11");
            b = si;
            b.cache = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &b, &value), "cache");
            b = si;
            b.pSteps = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &b, &value), "pSteps");
            b = si;
            b.stepCount = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &b, &value), "stepCount");
            b = si;
            b.pQuery = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &b, &value), "pQuery");
            unchanged("NULL pointers and a wrong sType");
        }
        {
            // Over the session's token budget (max batch 2 x max query length 4).
            const std::vector<VkmhaSequenceStep> steps = {{0, 1}, {1, 9}};
            const std::vector<float> many = random_floats(rng, size_t(10) * E, 1.0f);
            const VkmhaHostCachedSubmitInfo si = cached_submit_info(cache.get(), steps, many.data());
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.submitCached(s.session.get(), &si, &value));
            unchanged("too many tokens");
        }
        // Lengths, reset, truncate.
        uint32_t n = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getKvCacheLength(nullptr, 0, &n), "cache");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getKvCacheLength(cache.get(), 0, nullptr), "pLength");
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.getKvCacheLength(cache.get(), 2, &n), "sequence 2");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.resetKvCache(nullptr, 0), "cache");
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.resetKvCache(cache.get(), 7), "sequence 7");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.truncateKvCache(nullptr, 0, 0), "cache");
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.truncateKvCache(cache.get(), 0, 4), "forward", "4");
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.truncateKvCache(cache.get(), 9, 0), "sequence 9");
        unchanged("length, reset and truncate errors");

        // A valid step still works and sees exactly the three cached tokens.
        const std::vector<float> out = run_cached(s.session.get(), cache.get(), {{0, 1}}, rows(tokens, 3, 1, E), E);
        const std::vector<float> ref = reference(s.host, tokens, cap);
        check_matches(out, rows(ref, 3, 1, E), "the step after the errors");
        check_matches(out3, rows(ref, 0, 3, E), "the first three tokens");
        CHECK(cache_length(cache.get(), 0) == 4);

        // Rolling back and redoing gives the same output.
        REQUIRE_VKMHA(t.truncateKvCache(cache.get(), 0, 2));
        CHECK(cache_length(cache.get(), 0) == 2);
        const std::vector<float> redo = run_cached(s.session.get(), cache.get(), {{0, 2}}, rows(tokens, 2, 2, E), E);
        check_matches(redo, rows(ref, 2, 2, E), "after a rollback");

        // A windowed ring refuses a rollback past what it still holds, and a step too long for the ring.
        CacheHandle ring;
        const VkmhaKvCacheCreateInfo rci = cache_info(1, 4, 2); // at most 3 new tokens per step
        REQUIRE_VKMHA(t.createKvCache(s.model.get(), &rci, ring.out()));
        const std::vector<float> six = random_floats(rng, size_t(6) * E, 1.0f);
        (void)run_cached(s.session.get(), ring.get(), {{0, 3}}, rows(six, 0, 3, E), E);
        (void)run_cached(s.session.get(), ring.get(), {{0, 3}}, rows(six, 3, 3, E), E);
        CHECK(cache_length(ring.get(), 0) == 6);
        EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.truncateKvCache(ring.get(), 0, 1), "overwritten");
        CHECK(cache_length(ring.get(), 0) == 6);
        {
            const std::vector<VkmhaSequenceStep> steps = {{0, 4}};
            const std::vector<float> four = random_floats(rng, size_t(4) * E, 1.0f);
            const VkmhaHostCachedSubmitInfo si = cached_submit_info(ring.get(), steps, four.data());
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.submitCached(s.session.get(), &si, &value), "window");
            CHECK(cache_length(ring.get(), 0) == 6);
        }
        // The windowed cache still matches the reference with the window as an attention mask: token 6 sees 5 and 6.
        const std::vector<float> seventh = random_floats(rng, E, 1.0f);
        const std::vector<float> w = run_cached(s.session.get(), ring.get(), {{0, 1}}, seventh, E);
        std::vector<float> seen = rows(six, 5, 1, E);
        seen.insert(seen.end(), seventh.begin(), seventh.end());
        check_matches(w, reference(s.host, seen, 1), "windowed step");

        // A cache of another model is refused.
        ModelHandle other_model;
        create_model(s.context.get(), make_model(32, 4, 4, 9), other_model);
        CacheHandle foreign;
        REQUIRE_VKMHA(t.createKvCache(other_model.get(), &ci, foreign.out()));
        {
            const std::vector<VkmhaSequenceStep> steps = {{0, 1}};
            const VkmhaHostCachedSubmitInfo si = cached_submit_info(foreign.get(), steps, two.data());
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &si, &value), "another model");
        }
        foreign.reset();
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("adopt mode: a prefill job driven by recordPrefill over many frames equals the one-shot pass") {
        EngineDevice engine;
        REQUIRE_MESSAGE(engine.ok(), "engine device: ", engine.error());
        VkCommandPool pool = engine.create_command_pool();
        REQUIRE(pool != VK_NULL_HANDLE);
        VkCommandBuffer cmd = engine.allocate_command_buffer(pool);
        VkFence fence = engine.create_fence();
        REQUIRE(cmd != VK_NULL_HANDLE);
        REQUIRE(fence != VK_NULL_HANDLE);
        {
            const VkmhaProcTable& t = api();
            ContextHandle context;
            adopt_context(engine, context);
            const HostModel host = make_model(32, 4, 2, 21);
            const uint32_t E = host.config.embed_dim;
            ModelHandle model;
            create_model(context.get(), host, model);
            constexpr uint32_t L = 37, cap = 40;
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(1, 1, cap, false);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            CacheHandle cache;
            const VkmhaKvCacheCreateInfo kci = cache_info(2, cap);
            REQUIRE_VKMHA(t.createKvCache(model.get(), &kci, cache.out()));

            std::mt19937 rng(17);
            const std::vector<float> tokens = random_floats(rng, size_t(L + 1) * E, 1.0f);
            const size_t prompt_bytes = size_t(L) * E * sizeof(float);
            HostBuffer query = engine.create_host_buffer(prompt_bytes);
            HostBuffer output = engine.create_host_buffer(prompt_bytes);
            HostBuffer q1 = engine.create_host_buffer(E * sizeof(float));
            HostBuffer o1 = engine.create_host_buffer(E * sizeof(float));
            REQUIRE((query && output && q1 && o1));
            std::memcpy(query.bytes(), tokens.data(), prompt_bytes);
            std::memset(output.bytes(), 0xFF, prompt_bytes); // NaNs until written
            std::memcpy(q1.bytes(), tokens.data() + size_t(L) * E, E * sizeof(float));

            auto begin = [&] {
                REQUIRE(vkResetCommandBuffer(cmd, 0) == VK_SUCCESS);
                VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
                bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
                REQUIRE(vkBeginCommandBuffer(cmd, &bi) == VK_SUCCESS);
            };
            auto end_submit_wait = [&] {
                VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
                b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
                b.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &b, 0,
                                     nullptr, 0, nullptr);
                REQUIRE(vkEndCommandBuffer(cmd) == VK_SUCCESS);
                REQUIRE(vkResetFences(engine.device(), 1, &fence) == VK_SUCCESS);
                REQUIRE(engine.submit(cmd, fence) == VK_SUCCESS);
                REQUIRE(vkWaitForFences(engine.device(), 1, &fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
            };

            // Sequence 0 already holds nothing; the prompt is all L tokens of it.
            JobHandle job;
            VkmhaPrefillJobCreateInfo ji{};
            ji.sType = VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO;
            ji.cache = cache.get();
            ji.sequence = 0;
            ji.tokenCount = L;
            VkmhaPrefillJob no_job = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createPrefillJob(model.get(), &ji, nullptr), "pJob");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createPrefillJob(nullptr, &ji, &no_job), "model");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createPrefillJob(model.get(), nullptr, &no_job),
                           "pCreateInfo");
            VkmhaPrefillJobCreateInfo bad_ji = ji;
            bad_ji.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createPrefillJob(model.get(), &bad_ji, &no_job), "sType");
            bad_ji = ji;
            bad_ji.cache = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createPrefillJob(model.get(), &bad_ji, &no_job), "cache");
            bad_ji = ji;
            bad_ji.tokenCount = cap + 1;
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.createPrefillJob(model.get(), &bad_ji, &no_job), "overflow");
            CHECK(no_job == nullptr);
            CHECK(cache_length(cache.get(), 0) == 0);
            REQUIRE_VKMHA(t.createPrefillJob(model.get(), &ji, job.out()));

            VkmhaPrefillRecordInfo ri{};
            ri.sType = VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO;
            ri.completedFrame = VKMHA_NO_FRAME;
            ri.job = job.get();
            ri.maxRows = 5;
            ri.maxKeys = 4;
            ri.query = {query.buffer(), 0, prompt_bytes, 0, 0};
            ri.output = {output.buffer(), 0, prompt_bytes, 0, 0};

            // Bad arguments record nothing.
            VkmhaPrefillStatus st{};
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordPrefill(nullptr, cmd, &ri, &st), "session");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordPrefill(session.get(), cmd, nullptr, &st), "pInfo");
            VkmhaPrefillRecordInfo bad = ri;
            bad.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordPrefill(session.get(), cmd, &bad, &st), "sType");
            bad = ri;
            bad.job = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordPrefill(session.get(), cmd, &bad, &st), "job");
            bad = ri;
            bad.budgetMilliseconds = -1;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordPrefill(session.get(), cmd, &bad, &st),
                           "budgetMilliseconds");

            uint64_t frame = 0;
            float last_progress = 0;
            bool attended = false;
            uint32_t attend_begin = 0, attend_end = 0, attend_row_end = 0;
            for (; frame < 500; ++frame) {
                ri.frameIndex = frame;
                ri.completedFrame = frame ? frame - 1 : VKMHA_NO_FRAME;
                begin();
                st = {};
                REQUIRE_VKMHA(t.recordPrefill(session.get(), cmd, &ri, &st));
                end_submit_wait();
                CHECK(st.progress >= last_progress);
                CHECK(st.progress <= 1.0f);
                last_progress = st.progress;
                REQUIRE(st.phase != VKMHA_PREFILL_PHASE_NONE);
                if (st.phase == VKMHA_PREFILL_PHASE_PROJECT || st.phase == VKMHA_PREFILL_PHASE_OUT_PROJ)
                    CHECK(st.end - st.begin <= ri.maxRows);
                if (st.phase == VKMHA_PREFILL_PHASE_ATTEND) {
                    // Key ranges in order, each covered in blocks of at most maxRows rows.
                    if (st.begin != attend_begin || !attended) {
                        CHECK(st.begin == attend_end);
                        CHECK(st.rowBegin <= attend_row_end);
                    } else {
                        CHECK(st.end == attend_end);
                        CHECK(st.rowBegin == attend_row_end);
                    }
                    CHECK(st.end > st.begin);
                    CHECK(st.rowEnd > st.rowBegin);
                    CHECK(st.rowEnd - st.rowBegin <= ri.maxRows);
                    attend_begin = st.begin;
                    attend_end = st.end;
                    attend_row_end = st.rowEnd;
                    attended = true;
                }
                if (frame == 0) {
                    // The sequence is busy while the job runs: a cached step on it is refused.
                    const VkmhaSequenceStep busy{0, 1};
                    VkmhaCachedRecordInfo cri{};
                    cri.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
                    cri.frameIndex = 1000;
                    cri.completedFrame = VKMHA_NO_FRAME;
                    cri.cache = cache.get();
                    cri.stepCount = 1;
                    cri.pSteps = &busy;
                    cri.query = {q1.buffer(), 0, E * sizeof(float), 0, 0};
                    cri.output = {o1.buffer(), 0, E * sizeof(float), 0, 0};
                    EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordCachedAttention(session.get(), cmd, &cri),
                                   "prefill");
                    EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.truncateKvCache(cache.get(), 0, 0), "prefill");
                }
                if (st.done) break;
            }
            REQUIRE(st.done == VK_TRUE);
            CHECK(attended);
            CHECK(attend_end == L);
            CHECK(st.progress == doctest::Approx(1.0));
            CHECK_MESSAGE(frame >= 10, "the caps should split the job into many frames; it took ", frame + 1);
            CHECK(cache_length(cache.get(), 0) == L);

            // Once done, nothing more is recorded.
            ++frame;
            ri.frameIndex = frame;
            ri.completedFrame = frame - 1;
            begin();
            st = {};
            REQUIRE_VKMHA(t.recordPrefill(session.get(), cmd, &ri, &st));
            end_submit_wait();
            CHECK(st.done == VK_TRUE);
            CHECK(st.phase == VKMHA_PREFILL_PHASE_NONE);

            std::vector<float> got(size_t(L) * E);
            std::memcpy(got.data(), output.bytes(), prompt_bytes);
            const std::vector<float> prompt(tokens.begin(), tokens.begin() + std::ptrdiff_t(size_t(L) * E));
            check_matches(got, reference(host, prompt, L), "sliced prefill");

            // A decode step after the prefill attends over the prompt it cached.
            ++frame;
            const VkmhaSequenceStep step{0, 1};
            VkmhaCachedRecordInfo cri{};
            cri.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
            cri.frameIndex = frame;
            cri.completedFrame = frame - 1;
            cri.cache = cache.get();
            cri.stepCount = 1;
            cri.pSteps = &step;
            cri.query = {q1.buffer(), 0, E * sizeof(float), 0, 0};
            cri.output = {o1.buffer(), 0, E * sizeof(float), 0, 0};
            begin();
            REQUIRE_VKMHA(t.recordCachedAttention(session.get(), cmd, &cri));
            end_submit_wait();
            std::vector<float> next(E);
            std::memcpy(next.data(), o1.bytes(), E * sizeof(float));
            check_matches(next, reference(host, tokens, 1), "decode after the prefill");
            CHECK(cache_length(cache.get(), 0) == L + 1);

            // An unfinished job gives its positions back when destroyed.
            JobHandle abandoned;
            ji.sequence = 1;
            ji.tokenCount = 8;
            REQUIRE_VKMHA(t.createPrefillJob(model.get(), &ji, abandoned.out()));
            CHECK(cache_length(cache.get(), 1) == 8);
            abandoned.reset();
            CHECK(cache_length(cache.get(), 1) == 0);

            job.reset();
            cache.reset();
            session.reset();
            model.reset();
            context.reset();
        }
        vkDeviceWaitIdle(engine.device());
        vkDestroyFence(engine.device(), fence, nullptr);
        vkDestroyCommandPool(engine.device(), pool, nullptr);
        engine.destroy();
        CHECK_MESSAGE(engine.validation_messages() == 0, "the engine's messenger saw ", engine.validation_messages(),
                      " validation messages; last: ", engine.last_validation_message());
    }
}
