// The C ABI 1.2 (the attention of real model families) as an engine sees it: libvkmha.so loaded with dlopen, every
// call through the table. VkmhaModelAttentionInfo and the weights' q_norm / k_norm / sinks against the CPU reference
// (each option also spelled out here as the host core spells it, so the mapping is checked too), VkmhaPositionsInfo
// on every call that takes it, pNext chains refused by name, and a 1.1 caller that knows none of it.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

// The public header by path: the test target does not link libvkmha, on purpose.
#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/compare.h"
#include "support/engine_device.h"
#include "support/host_model.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <dlfcn.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using vkmha::AttentionConfig;
using vkmha::AttentionOptions;
using vkmha::AttentionShape;
using vkmha::AttentionWeights;
using vkmha::MaskKind;
using vkmha::RopeLayout;
using vkmha::RopeScaling;
using vkmha::test::adopt_context;
using vkmha::test::api;
using vkmha::test::CacheHandle;
using vkmha::test::check_no_validation_messages;
using vkmha::test::ContextHandle;
using vkmha::test::EngineDevice;
using vkmha::test::HostBuffer;
using vkmha::test::LogCapture;
using vkmha::test::ModelHandle;
using vkmha::test::own_context_info;
using vkmha::test::random_floats;
using vkmha::test::SessionHandle;

// ---------------------------------------------------------------------------------------------------------------
// A Llama-named GQA model (E 32, H 4, G 2: D 8) with random fp32 weights and biases, optionally q_norm.weight /
// k_norm.weight and sinks, kept as the tensors handed to vkmha and as the config and weights of the CPU reference.

constexpr uint32_t kE = 32, kH = 4, kG = 2, kD = kE / kH;

struct HostModel {
    AttentionConfig config{kE, kH, kG, kE, kE};
    AttentionWeights weights;
    vkmha::test::Fp32Tensors tensors; // into `weights`, which never moves once built
};

// Built in place (the views point into it), hence the out parameter.
void make_model(HostModel& m, bool qk_norm, bool sinks, uint32_t seed = 5) {
    constexpr uint32_t KV = kG * kD;
    std::mt19937 rng(seed);
    const float bound = 1.0f / std::sqrt(static_cast<float>(kE));
    AttentionWeights& w = m.weights;
    w.wq = random_floats(rng, size_t(kE) * kE, bound);
    w.wk = random_floats(rng, size_t(KV) * kE, bound);
    w.wv = random_floats(rng, size_t(KV) * kE, bound);
    w.wo = random_floats(rng, size_t(kE) * kE, bound);
    w.bq = random_floats(rng, kE, 0.2f);
    w.bk = random_floats(rng, KV, 0.2f);
    w.bv = random_floats(rng, KV, 0.2f);
    w.bo = random_floats(rng, kE, 0.2f);
    m.tensors.add("q_proj.weight", {kE, kE}, w.wq);
    m.tensors.add("k_proj.weight", {KV, kE}, w.wk);
    m.tensors.add("v_proj.weight", {KV, kE}, w.wv);
    m.tensors.add("o_proj.weight", {kE, kE}, w.wo);
    m.tensors.add("q_proj.bias", {kE}, w.bq);
    m.tensors.add("k_proj.bias", {KV}, w.bk);
    m.tensors.add("v_proj.bias", {KV}, w.bv);
    m.tensors.add("o_proj.bias", {kE}, w.bo);
    if (qk_norm) {
        // Far from 1, so that a norm applied without its weight, or not at all, shows.
        w.q_norm = random_floats(rng, kD, 0.5f);
        w.k_norm = random_floats(rng, kD, 0.5f);
        for (float& x : w.q_norm) x += 1.5f;
        for (float& x : w.k_norm) x += 0.75f;
        m.tensors.add("q_norm.weight", {kD}, w.q_norm);
        m.tensors.add("k_norm.weight", {kD}, w.k_norm);
        m.config.qk_norm = true;
    }
    if (sinks) {
        w.sinks = random_floats(rng, kH, 2.0f);
        m.tensors.add("sinks", {kH}, w.sinks);
        m.config.sinks = true;
    }
}

VkmhaModelCreateInfo model_info(const HostModel& m, const void* next) {
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.pNext = next;
    mi.numHeads = kH;
    mi.tensorCount = static_cast<uint32_t>(m.tensors.views().size());
    mi.pTensors = m.tensors.views().data();
    return mi;
}

VkmhaModelAttentionInfo attention_info() {
    VkmhaModelAttentionInfo a{};
    a.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
    return a;
}

VkmhaSessionCreateInfo session_info(uint32_t batch, uint32_t lq, uint32_t lk, bool host_io) {
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = batch;
    si.maxQueryLength = lq;
    si.maxKeyLength = lk;
    si.hostIo = host_io ? VK_TRUE : VK_FALSE;
    if (host_io) si.flags = VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT;
    return si;
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

// Self-attention inputs of `shape` and the reference's view of them.
struct Inputs {
    AttentionShape shape;
    AttentionOptions options;
    std::vector<float> query;
    std::vector<uint8_t> key_padding_mask;
    std::vector<int32_t> positions; // [B, L]; empty: the default positions
};

Inputs make_inputs(AttentionShape shape, bool causal, bool key_padding, bool positions, uint32_t seed) {
    Inputs in;
    in.shape = shape;
    in.options.causal = causal;
    std::mt19937 rng(seed);
    in.query = random_floats(rng, size_t(shape.batch) * shape.lq * kE, 1.0f);
    if (key_padding) {
        in.options.key_padding = MaskKind::boolean;
        in.key_padding_mask.assign(size_t(shape.batch) * shape.lk, 0);
        for (uint32_t b = 0; b < shape.batch; ++b) // the last b+1 keys of row b, never all of them
            for (uint32_t j = shape.lk - std::min(b + 1, shape.lk - 1); j < shape.lk; ++j)
                in.key_padding_mask[size_t(b) * shape.lk + j] = 1;
    }
    if (positions) { // far from 0..L-1, uneven steps, and different per row
        in.positions.resize(size_t(shape.batch) * shape.lq);
        for (uint32_t b = 0; b < shape.batch; ++b)
            for (uint32_t i = 0; i < shape.lq; ++i) in.positions[size_t(b) * shape.lq + i] = 1000 * (b + 1) + 3 * i;
    }
    return in;
}

vkmha::AttentionOutputs reference(const AttentionConfig& config, const AttentionWeights& weights, const Inputs& in) {
    vkmha::AttentionInputs ri;
    ri.query = in.query.data();
    ri.key_padding_mask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    ri.position_ids = in.positions.empty() ? nullptr : in.positions.data();
    auto r = vkmha::reference_attention(config, weights, in.shape, in.options, ri);
    REQUIRE_MESSAGE(r.ok(), "CPU reference failed: ", r.error().message);
    return std::move(r.value());
}

// submit (with a VkmhaPositionsInfo when `in` has positions), wait, readOutputs.
vkmha::AttentionOutputs run_submit(VkmhaSession session, const Inputs& in) {
    VkmhaPositionsInfo pi{};
    pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
    pi.pPositionIds = in.positions.data();
    VkmhaHostSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
    hi.pNext = in.positions.empty() ? nullptr : &pi;
    hi.batch = in.shape.batch;
    hi.queryLength = in.shape.lq;
    hi.keyLength = in.shape.lk;
    hi.flags =
        (in.options.causal ? uint32_t(VKMHA_ATTENTION_CAUSAL_BIT) : 0u) |
        (in.options.need_weights ? uint32_t(VKMHA_ATTENTION_NEED_WEIGHTS_BIT) : 0u) |
        (in.options.need_weights && !in.options.average_weights ? uint32_t(VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT) : 0u);
    hi.keyPaddingMaskType = in.key_padding_mask.empty() ? VKMHA_MASK_TYPE_NONE : VKMHA_MASK_TYPE_BOOL;
    hi.pQuery = in.query.data();
    hi.pKeyPaddingMask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    uint64_t value = 0;
    REQUIRE_VKMHA(api().submit(session, &hi, &value));
    REQUIRE_VKMHA(api().wait(session, value, UINT64_MAX));
    vkmha::AttentionOutputs out;
    out.output.resize(size_t(in.shape.batch) * in.shape.lq * kE);
    if (in.options.need_weights)
        out.weights.resize(size_t(in.shape.batch) * (in.options.average_weights ? 1 : kH) * in.shape.lq * in.shape.lk);
    REQUIRE_VKMHA(api().readOutputs(session, value, out.output.data(), out.output.size(),
                                    out.weights.empty() ? nullptr : out.weights.data(), out.weights.size()));
    return out;
}

// Own mode: a context, the model (with `next` chained on its create-info) and a host-I/O session.
struct OwnSetup {
    LogCapture log;
    ContextHandle context;
    ModelHandle model;
    SessionHandle session;
    OwnSetup() {
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
    }
    void create(const HostModel& m, const void* next, AttentionShape budget) {
        const VkmhaModelCreateInfo mi = model_info(m, next);
        REQUIRE_VKMHA(api().createModel(context.get(), &mi, model.out()));
        const VkmhaSessionCreateInfo si = session_info(budget.batch, budget.lq, budget.lk, true);
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
    }
};

// One option set: what an engine chains, and the same options as the host core spells them.
struct OptionCase {
    const char* name;
    std::function<void(VkmhaModelAttentionInfo&)> chain;
    std::function<void(AttentionConfig&)> expect;
    bool qk_norm = false, sinks = false, causal = false, key_padding = false, positions = false, weights = false;
};

std::vector<OptionCase> option_cases() {
    std::vector<OptionCase> cases;
    cases.push_back({"RoPE neox, every default (theta 10000, all dims, positions 0..L-1)",
                     [](VkmhaModelAttentionInfo& a) { a.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX; },
                     [](AttentionConfig& c) { c.rope.layout = RopeLayout::neox; }});
    cases.back().causal = true;
    cases.push_back({"RoPE neox, theta 500000, llama3 scaling (8, 1, 4, 64), positions from 1000",
                     [](VkmhaModelAttentionInfo& a) {
                         a.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
                         a.ropeTheta = 500000.0f;
                         a.ropeScaling = VKMHA_ROPE_SCALING_LLAMA3;
                         a.ropeScalingFactor = 8.0f;
                         a.ropeLowFreqFactor = 1.0f;
                         a.ropeHighFreqFactor = 4.0f;
                         a.ropeOriginalMaxPositions = 64;
                     },
                     [](AttentionConfig& c) {
                         c.rope = {.layout = RopeLayout::neox,
                                   .theta = 500000.0,
                                   .scaling = RopeScaling::llama3,
                                   .factor = 8.0,
                                   .low_freq_factor = 1.0,
                                   .high_freq_factor = 4.0,
                                   .original_max_positions = 64};
                     }});
    cases.back().causal = cases.back().positions = true;
    cases.push_back({"RoPE gptj, 4 of 8 dims, yarn (4, orig 32) with HF's truncation and default betas, positions",
                     [](VkmhaModelAttentionInfo& a) {
                         a.ropeLayout = VKMHA_ROPE_LAYOUT_GPTJ;
                         a.rotaryDims = 4;
                         a.ropeScaling = VKMHA_ROPE_SCALING_YARN;
                         a.ropeScalingFactor = 4.0f;
                         a.ropeOriginalMaxPositions = 32;
                     },
                     [](AttentionConfig& c) {
                         c.rope = {.layout = RopeLayout::gptj,
                                   .dims = 4,
                                   .scaling = RopeScaling::yarn,
                                   .factor = 4.0,
                                   .original_max_positions = 32};
                     }});
    cases.back().positions = true;
    cases.push_back({"RoPE neox, yarn (16, orig 16, betas 16 / 2, no truncation), positions",
                     [](VkmhaModelAttentionInfo& a) {
                         a.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
                         a.ropeScaling = VKMHA_ROPE_SCALING_YARN;
                         a.ropeScalingFactor = 16.0f;
                         a.ropeOriginalMaxPositions = 16;
                         a.ropeBetaFast = 16.0f;
                         a.ropeBetaSlow = 2.0f;
                         a.ropeNoTruncate = VK_TRUE;
                     },
                     [](AttentionConfig& c) {
                         c.rope = {.layout = RopeLayout::neox,
                                   .scaling = RopeScaling::yarn,
                                   .factor = 16.0,
                                   .original_max_positions = 16,
                                   .beta_fast = 16.0,
                                   .beta_slow = 2.0,
                                   .truncate = false};
                     }});
    cases.back().causal = cases.back().positions = true;
    cases.push_back({"RoPE neox, linear scaling 2, theta 100",
                     [](VkmhaModelAttentionInfo& a) {
                         a.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
                         a.ropeTheta = 100.0f;
                         a.ropeScaling = VKMHA_ROPE_SCALING_LINEAR;
                         a.ropeScalingFactor = 2.0f;
                     },
                     [](AttentionConfig& c) {
                         c.rope = {
                             .layout = RopeLayout::neox, .theta = 100.0, .scaling = RopeScaling::linear, .factor = 2.0};
                     }});
    cases.back().positions = true;
    cases.push_back({"scale 0.9 and soft-cap 1.5",
                     [](VkmhaModelAttentionInfo& a) {
                         a.scale = 0.9f;
                         a.softcap = 1.5f;
                     },
                     [](AttentionConfig& c) {
                         c.scale = 0.9f;
                         c.softcap = 1.5f;
                     }});
    cases.push_back({"ALiBi with key padding", [](VkmhaModelAttentionInfo& a) { a.alibi = VK_TRUE; },
                     [](AttentionConfig& c) { c.alibi = true; }});
    cases.back().causal = cases.back().key_padding = true;
    cases.push_back({"causal sliding window 3", [](VkmhaModelAttentionInfo& a) { a.window = 3; },
                     [](AttentionConfig& c) { c.window = 3; }});
    cases.back().causal = true;
    cases.push_back({"window 2 without causal (later keys stay visible)",
                     [](VkmhaModelAttentionInfo& a) { a.window = 2; }, [](AttentionConfig& c) { c.window = 2; }});
    cases.push_back({"QK-norm from the weights, normEps 0.05", [](VkmhaModelAttentionInfo& a) { a.normEps = 0.05f; },
                     [](AttentionConfig& c) { c.norm_eps = 0.05f; }});
    cases.back().qk_norm = true;
    cases.push_back({"QK-norm from the weights, default normEps, with RoPE",
                     [](VkmhaModelAttentionInfo& a) { a.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX; },
                     [](AttentionConfig& c) { c.rope.layout = RopeLayout::neox; }});
    cases.back().qk_norm = cases.back().causal = true;
    cases.push_back(
        {"sinks from the weights, per-head weights", [](VkmhaModelAttentionInfo&) {}, [](AttentionConfig&) {}});
    cases.back().sinks = cases.back().causal = cases.back().weights = true;
    cases.push_back({"everything at once, per-head weights",
                     [](VkmhaModelAttentionInfo& a) {
                         a.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
                         a.rotaryDims = 6;
                         a.ropeTheta = 150000.0f;
                         a.ropeScaling = VKMHA_ROPE_SCALING_YARN;
                         a.ropeScalingFactor = 8.0f;
                         a.ropeOriginalMaxPositions = 64;
                         a.scale = 0.3f;
                         a.softcap = 5.0f;
                         a.alibi = VK_TRUE;
                         a.window = 4;
                         a.normEps = 1e-5f;
                     },
                     [](AttentionConfig& c) {
                         c.rope = {.layout = RopeLayout::neox,
                                   .dims = 6,
                                   .theta = 150000.0,
                                   .scaling = RopeScaling::yarn,
                                   .factor = 8.0,
                                   .original_max_positions = 64};
                         c.scale = 0.3f;
                         c.softcap = 5.0f;
                         c.alibi = true;
                         c.window = 4;
                         c.norm_eps = 1e-5f;
                     }});
    OptionCase& all = cases.back();
    all.qk_norm = all.sinks = all.causal = all.key_padding = all.positions = all.weights = true;
    return cases;
}

// A struct vkmha does not know, to chain where it does not belong.
struct Foreign {
    VkmhaStructureType sType;
    const void* pNext;
    uint64_t payload;
};
constexpr auto kForeignType = static_cast<VkmhaStructureType>(987654);

} // namespace

// =================================================================================================================

TEST_SUITE("plugin_options") {

    TEST_CASE("vkmhaGetProcTable: the library is 1.3, a 1.1 caller's table is filled up to its size") {
        const VkmhaProcTable& t = api();
        CHECK(t.apiVersion == VKMHA_API_VERSION_1_3);
        CHECK(VKMHA_HEADER_VERSION == VKMHA_API_VERSION_1_3);
        void* handle = dlopen(VKMHA_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL);
        REQUIRE(handle);
        auto get = reinterpret_cast<PFN_vkmhaGetProcTable>(dlsym(handle, "vkmhaGetProcTable"));
        REQUIRE((get != nullptr));
        // A 1.1 caller gets every entry it knows (test_plugin_qkv.cpp: a 1.1-sized table gets nothing past them).
        VkmhaProcTable old;
        std::memset(&old, 0xCD, sizeof old);
        REQUIRE(get(VKMHA_API_VERSION_1_1, &old, sizeof old) == VKMHA_SUCCESS);
        CHECK((old.recordPrefill == t.recordPrefill));
        CHECK((old.createModel == t.createModel));
        CHECK(old.apiVersion == VKMHA_API_VERSION_1_3); // the version the library filled the table for
        CHECK(get(VKMHA_MAKE_API_VERSION(1, 4, 0), &old, sizeof old) == VKMHA_ERROR_VERSION_NOT_SUPPORTED);
        dlclose(handle);
    }

    TEST_CASE("1.1 caller: the old structs with pNext NULL build, submit and cache as before") {
        // What a program built against the 1.1 header does: negotiate 1.1, chain nothing.
        VkmhaProcTable t11{};
        REQUIRE(vkmha::test::library().get_proc_table(VKMHA_API_VERSION_1_1, &t11, sizeof t11) == VKMHA_SUCCESS);
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(t11.createContext(&ci, context.out()));
        HostModel m;
        make_model(m, false, false);
        ModelHandle model;
        const VkmhaModelCreateInfo mi = model_info(m, nullptr);
        REQUIRE_VKMHA(t11.createModel(context.get(), &mi, model.out()));
        SessionHandle session;
        const VkmhaSessionCreateInfo si = session_info(2, 5, 5, true);
        REQUIRE_VKMHA(t11.createSession(model.get(), &si, session.out()));
        const Inputs in = make_inputs({2, 5, 5}, true, true, false, 3);
        check_matches(run_submit(session.get(), in).output, reference(m.config, m.weights, in).output, "1.1 submit");

        CacheHandle cache;
        VkmhaKvCacheCreateInfo kci{};
        kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
        kci.sequences = 1;
        kci.capacity = 8;
        REQUIRE_VKMHA(t11.createKvCache(model.get(), &kci, cache.out()));
        const VkmhaSequenceStep step{0, 5};
        VkmhaHostCachedSubmitInfo hci{};
        hci.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
        hci.cache = cache.get();
        hci.stepCount = 1;
        hci.pSteps = &step;
        hci.pQuery = in.query.data(); // batch row 0
        uint64_t value = 0;
        REQUIRE_VKMHA(t11.submitCached(session.get(), &hci, &value));
        REQUIRE_VKMHA(t11.wait(session.get(), value, UINT64_MAX));
        std::vector<float> got(5 * kE);
        REQUIRE_VKMHA(t11.readOutputs(session.get(), value, got.data(), got.size(), nullptr, 0));
        Inputs row0 = make_inputs({1, 5, 5}, true, false, false, 3);
        row0.query.assign(in.query.begin(), in.query.begin() + 5 * kE);
        check_matches(got, reference(m.config, m.weights, row0).output, "1.1 submitCached");
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("VkmhaModelAttentionInfo zero-initialised changes nothing, q_norm/k_norm/sinks absent leave it off") {
        OwnSetup plain, chained;
        HostModel m;
        make_model(m, false, false);
        const VkmhaModelAttentionInfo zero = attention_info();
        plain.create(m, nullptr, {2, 6, 6});
        chained.create(m, &zero, {2, 6, 6});
        const Inputs in = make_inputs({2, 6, 6}, true, false, true, 4); // positions without RoPE: ignored
        const std::vector<float> a = run_submit(plain.session.get(), in).output;
        const std::vector<float> b = run_submit(chained.session.get(), in).output;
        CHECK(a == b);
        check_matches(b, reference(m.config, m.weights, in).output, "zero VkmhaModelAttentionInfo");
        check_no_validation_messages(chained.context.get(), chained.log);
    }

    TEST_CASE("VkmhaModelAttentionInfo: every option matches the CPU reference (submit with VkmhaPositionsInfo)") {
        for (const OptionCase& c : option_cases()) {
            SUBCASE(c.name) {
                HostModel m;
                make_model(m, c.qk_norm, c.sinks);
                VkmhaModelAttentionInfo info = attention_info();
                c.chain(info);
                AttentionConfig expected = m.config;
                c.expect(expected);
                OwnSetup s;
                const AttentionShape shape{2, 7, 7};
                s.create(m, &info, shape);
                Inputs in = make_inputs(shape, c.causal, c.key_padding, c.positions, 11);
                in.options.need_weights = c.weights;
                in.options.average_weights = !c.weights;
                const vkmha::AttentionOutputs got = run_submit(s.session.get(), in);
                const vkmha::AttentionOutputs ref = reference(expected, m.weights, in);
                check_matches(got.output, ref.output, std::string(c.name) + " output");
                if (c.weights) check_matches(got.weights, ref.weights, std::string(c.name) + " weights");
                // The option matters: the reference without it differs well past the tolerance.
                const vkmha::AttentionOutputs plain = reference(m.config, m.weights, in);
                double moved = 0;
                for (size_t i = 0; i < plain.output.size(); ++i)
                    moved = std::max(moved, double(std::fabs(plain.output[i] - ref.output[i])));
                if (c.qk_norm || c.sinks) {
                    // QK-norm and sinks come from the weights, which `plain` has too; only normEps / RoPE differ.
                } else {
                    CHECK_MESSAGE(moved > 1e-2, c.name, " moves the output by only ", moved);
                }
                check_no_validation_messages(s.context.get(), s.log);
            }
        }
    }

    TEST_CASE("VkmhaPositionsInfo: cached steps rotate each new token at its given position (submitCached)") {
        // Two sequences decoded token by token, one ragged step of both per token: sequence 0 at positions 500,
        // 503, ..., sequence 1 at its own cache positions, given explicitly. A second cache then takes sequence 1's
        // tokens with no struct at all: the default, its cache positions.
        HostModel m;
        make_model(m, true, true);
        VkmhaModelAttentionInfo info = attention_info();
        info.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
        info.ropeScaling = VKMHA_ROPE_SCALING_LINEAR;
        info.ropeScalingFactor = 4.0f;
        AttentionConfig expected = m.config;
        expected.rope = {.layout = RopeLayout::neox, .scaling = RopeScaling::linear, .factor = 4.0};
        constexpr uint32_t L = 6;
        OwnSetup s;
        s.create(m, &info, {2, 1, L});
        CacheHandle cache;
        VkmhaKvCacheCreateInfo kci{};
        kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
        kci.sequences = 2;
        kci.capacity = L;
        REQUIRE_VKMHA(api().createKvCache(s.model.get(), &kci, cache.out()));
        Inputs one_shot[2] = {make_inputs({1, L, L}, true, false, true, 21),
                              make_inputs({1, L, L}, true, false, false, 22)};
        for (uint32_t i = 0; i < L; ++i) one_shot[0].positions[i] = 500 + 3 * static_cast<int32_t>(i);
        std::vector<float> got[2] = {std::vector<float>(L * kE), std::vector<float>(L * kE)};
        const VkmhaSequenceStep steps[2] = {{0, 1}, {1, 1}};
        for (uint32_t t = 0; t < L; ++t) {
            std::vector<float> query(2 * kE);
            for (uint32_t b = 0; b < 2; ++b)
                std::memcpy(query.data() + b * kE, one_shot[b].query.data() + t * kE, kE * sizeof(float));
            // [T] = one position per new token: sequence 0's given one, sequence 1's own cache position t.
            const int32_t positions[2] = {one_shot[0].positions[t], static_cast<int32_t>(t)};
            VkmhaPositionsInfo pi{};
            pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
            pi.pPositionIds = positions;
            VkmhaHostCachedSubmitInfo hci{};
            hci.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
            hci.pNext = &pi;
            hci.cache = cache.get();
            hci.stepCount = 2;
            hci.pSteps = steps;
            hci.pQuery = query.data();
            uint64_t value = 0;
            REQUIRE_VKMHA(api().submitCached(s.session.get(), &hci, &value));
            REQUIRE_VKMHA(api().wait(s.session.get(), value, UINT64_MAX));
            std::vector<float> out(2 * kE);
            REQUIRE_VKMHA(api().readOutputs(s.session.get(), value, out.data(), out.size(), nullptr, 0));
            for (uint32_t b = 0; b < 2; ++b)
                std::memcpy(got[b].data() + t * kE, out.data() + b * kE, kE * sizeof(float));
        }
        check_matches(got[0], reference(expected, m.weights, one_shot[0]).output, "sequence 0 (given positions)");
        check_matches(got[1], reference(expected, m.weights, one_shot[1]).output, "sequence 1 (cache positions)");

        CacheHandle plain;
        REQUIRE_VKMHA(api().createKvCache(s.model.get(), &kci, plain.out()));
        std::vector<float> defaulted(L * kE);
        for (uint32_t t = 0; t < L; ++t) {
            VkmhaHostCachedSubmitInfo hci{};
            hci.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
            hci.cache = plain.get();
            hci.stepCount = 1;
            hci.pSteps = &steps[0];
            hci.pQuery = one_shot[1].query.data() + t * kE;
            uint64_t value = 0;
            REQUIRE_VKMHA(api().submitCached(s.session.get(), &hci, &value));
            REQUIRE_VKMHA(api().wait(s.session.get(), value, UINT64_MAX));
            REQUIRE_VKMHA(api().readOutputs(s.session.get(), value, defaulted.data() + t * kE, kE, nullptr, 0));
        }
        check_matches(defaulted, reference(expected, m.weights, one_shot[1]).output, "no positions struct");
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("adopt mode: recordAttention and recordCachedAttention read positions from the engine's buffers") {
        EngineDevice engine;
        REQUIRE_MESSAGE(engine.ok(), "engine device: ", engine.error());
        VkCommandPool pool = engine.create_command_pool();
        REQUIRE(pool != VK_NULL_HANDLE);
        VkCommandBuffer cmd = engine.allocate_command_buffer(pool);
        VkFence fence = engine.create_fence();
        REQUIRE((cmd != VK_NULL_HANDLE && fence != VK_NULL_HANDLE));
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
        {
            const VkmhaProcTable& t = api();
            ContextHandle context;
            adopt_context(engine, context);
            HostModel m;
            make_model(m, true, false);
            VkmhaModelAttentionInfo info = attention_info();
            info.ropeLayout = VKMHA_ROPE_LAYOUT_GPTJ;
            info.ropeTheta = 1000.0f;
            AttentionConfig expected = m.config;
            expected.rope = {.layout = RopeLayout::gptj, .theta = 1000.0};
            ModelHandle model;
            const VkmhaModelCreateInfo mi = model_info(m, &info);
            REQUIRE_VKMHA(t.createModel(context.get(), &mi, model.out()));
            constexpr uint32_t L = 5;
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(2, L, L, false);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));

            // One-shot: [2, L] positions at offset 8 of the engine's buffer.
            const Inputs in = make_inputs({2, L, L}, true, false, true, 31);
            const size_t q_bytes = in.query.size() * sizeof(float), p_bytes = in.positions.size() * sizeof(int32_t);
            HostBuffer query = engine.create_host_buffer(q_bytes);
            HostBuffer output = engine.create_host_buffer(q_bytes);
            HostBuffer positions = engine.create_host_buffer(8 + p_bytes);
            REQUIRE((query && output && positions));
            std::memcpy(query.bytes(), in.query.data(), q_bytes);
            std::memcpy(positions.bytes() + 8, in.positions.data(), p_bytes);
            VkmhaPositionsInfo pi{};
            pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
            pi.positionIds = {positions.buffer(), 8, p_bytes, 0, 0};
            VkmhaRecordInfo ri{};
            ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
            ri.pNext = &pi;
            ri.frameIndex = 0;
            ri.completedFrame = VKMHA_NO_FRAME;
            ri.batch = 2;
            ri.queryLength = ri.keyLength = L;
            ri.flags = VKMHA_ATTENTION_CAUSAL_BIT;
            ri.query = {query.buffer(), 0, q_bytes, 0, 0};
            ri.output = {output.buffer(), 0, q_bytes, 0, 0};
            begin();
            REQUIRE_VKMHA(t.recordAttention(session.get(), cmd, &ri));
            end_submit_wait();
            std::vector<float> got(in.query.size());
            std::memcpy(got.data(), output.bytes(), q_bytes);
            check_matches(got, reference(expected, m.weights, in).output, "recordAttention with positionIds");

            // Cached: batch row 0's tokens one per frame into one sequence, each at its position from the buffer.
            CacheHandle cache;
            VkmhaKvCacheCreateInfo kci{};
            kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
            kci.sequences = 1;
            kci.capacity = L;
            REQUIRE_VKMHA(t.createKvCache(model.get(), &kci, cache.out()));
            const VkmhaSequenceStep step{0, 1};
            std::vector<float> cached(size_t(L) * kE);
            for (uint32_t i = 0; i < L; ++i) {
                VkmhaCachedRecordInfo cri{};
                cri.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
                pi.positionIds = {positions.buffer(), 8 + i * sizeof(int32_t), sizeof(int32_t), 0, 0};
                cri.pNext = &pi;
                cri.frameIndex = 1 + i;
                cri.completedFrame = i;
                cri.cache = cache.get();
                cri.stepCount = 1;
                cri.pSteps = &step;
                cri.query = {query.buffer(), i * kE * sizeof(float), kE * sizeof(float), 0, 0};
                cri.output = {output.buffer(), 0, kE * sizeof(float), 0, 0};
                begin();
                REQUIRE_VKMHA(t.recordCachedAttention(session.get(), cmd, &cri));
                end_submit_wait();
                std::memcpy(cached.data() + size_t(i) * kE, output.bytes(), kE * sizeof(float));
            }
            Inputs row0 = make_inputs({1, L, L}, true, false, true, 31);
            row0.query.assign(in.query.begin(), in.query.begin() + L * kE);
            row0.positions.assign(in.positions.begin(), in.positions.begin() + L);
            check_matches(cached, reference(expected, m.weights, row0).output,
                          "recordCachedAttention with positionIds");

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

    TEST_CASE("pNext chains: a struct the call does not take is refused, naming its sType and the struct") {
        const VkmhaProcTable& t = api();
        OwnSetup s;
        HostModel m;
        make_model(m, false, false);
        s.create(m, nullptr, {1, 4, 4});
        const Foreign foreign{kForeignType, nullptr, 0};
        const std::string number = std::to_string(static_cast<uint32_t>(kForeignType));
        VkmhaModelAttentionInfo attention = attention_info();
        VkmhaPositionsInfo positions{};
        positions.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;

        SUBCASE("createModel and getModelMemoryRequirements") {
            VkmhaModel none = nullptr;
            VkDeviceSize bytes = 0;
            VkmhaModelCreateInfo mi = model_info(m, &foreign);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(s.context.get(), &mi, &none), number,
                           "VkmhaModelCreateInfo", "VkmhaModelAttentionInfo");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(s.context.get(), &mi, &bytes),
                           number, "VkmhaModelCreateInfo");
            attention.pNext = &foreign; // behind a struct it takes
            mi.pNext = &attention;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(s.context.get(), &mi, &none), number,
                           "VkmhaModelCreateInfo");
            mi.pNext = &positions; // a known struct, on the wrong call
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(s.context.get(), &mi, &none),
                           "VkmhaPositionsInfo", "VkmhaModelCreateInfo");
            attention.pNext = &attention; // chained twice (a cycle)
            mi.pNext = &attention;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(s.context.get(), &mi, &none),
                           "VkmhaModelAttentionInfo", "twice");
            CHECK(none == nullptr);
            attention.pNext = nullptr;
            REQUIRE_VKMHA(t.getModelMemoryRequirements(s.context.get(), &mi, &bytes));
            CHECK(bytes > 0);
        }
        SUBCASE("submit and recordAttention") {
            const Inputs in = make_inputs({1, 4, 4}, false, false, false, 1);
            VkmhaHostSubmitInfo hi{};
            hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
            hi.pNext = &foreign;
            hi.batch = 1;
            hi.queryLength = hi.keyLength = 4;
            hi.pQuery = in.query.data();
            uint64_t value = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &hi, &value), number,
                           "VkmhaHostSubmitInfo", "VkmhaPositionsInfo");
            hi.pNext = &attention;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &hi, &value),
                           "VkmhaModelAttentionInfo", "VkmhaHostSubmitInfo");
            VkmhaRecordInfo ri{};
            ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
            ri.pNext = &foreign;
            ri.completedFrame = VKMHA_NO_FRAME;
            // Refused before the command buffer is touched.
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(s.session.get(), VK_NULL_HANDLE, &ri),
                           number, "VkmhaRecordInfo");
            // The session is unharmed.
            check_matches(run_submit(s.session.get(), in).output, reference(m.config, m.weights, in).output,
                          "submit after the refusals");
        }
        SUBCASE("submitCached and recordCachedAttention") {
            CacheHandle cache;
            VkmhaKvCacheCreateInfo kci{};
            kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
            kci.sequences = 1;
            kci.capacity = 4;
            REQUIRE_VKMHA(t.createKvCache(s.model.get(), &kci, cache.out()));
            const std::vector<float> query(kE, 0.5f);
            const VkmhaSequenceStep step{0, 1};
            VkmhaHostCachedSubmitInfo hci{};
            hci.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
            hci.pNext = &foreign;
            hci.cache = cache.get();
            hci.stepCount = 1;
            hci.pSteps = &step;
            hci.pQuery = query.data();
            uint64_t value = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &hci, &value), number,
                           "VkmhaHostCachedSubmitInfo");
            VkmhaCachedRecordInfo cri{};
            cri.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
            cri.pNext = &foreign;
            cri.completedFrame = VKMHA_NO_FRAME;
            cri.cache = cache.get();
            cri.stepCount = 1;
            cri.pSteps = &step;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordCachedAttention(s.session.get(), VK_NULL_HANDLE, &cri),
                           number, "VkmhaCachedRecordInfo");
            uint32_t length = 99;
            REQUIRE_VKMHA(t.getKvCacheLength(cache.get(), 0, &length));
            CHECK(length == 0); // nothing was appended
        }
        SUBCASE("create-infos: a foreign struct is refused, naming what the struct takes") {
            VkmhaContextCreateInfo ci = own_context_info(nullptr);
            ci.pNext = &foreign;
            VkmhaContext no_context = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&ci, &no_context), number,
                           "VkmhaContextCreateInfo", "VkmhaContextCompileOnlyInfo");
            VkmhaSessionCreateInfo si = session_info(1, 1, 1, false);
            si.pNext = &positions;
            VkmhaSession no_session = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createSession(s.model.get(), &si, &no_session),
                           "VkmhaPositionsInfo", "VkmhaSessionCreateInfo");
            VkmhaKvCacheCreateInfo kci{};
            kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
            kci.pNext = &foreign;
            kci.sequences = kci.capacity = 1;
            VkmhaKvCache no_cache = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createKvCache(s.model.get(), &kci, &no_cache), number,
                           "VkmhaKvCacheCreateInfo");
            CHECK(no_context == nullptr);
            CHECK(no_session == nullptr);
            CHECK(no_cache == nullptr);
        }
    }

    TEST_CASE("VkmhaPositionsInfo: a record call refuses pPositionIds, a submit call refuses positionIds") {
        const VkmhaProcTable& t = api();
        OwnSetup s;
        HostModel m;
        make_model(m, false, false);
        s.create(m, nullptr, {1, 4, 4});
        const Inputs in = make_inputs({1, 4, 4}, false, false, true, 1);
        VkmhaPositionsInfo pi{};
        pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
        pi.pPositionIds = in.positions.data();
        VkmhaRecordInfo ri{};
        ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
        ri.pNext = &pi;
        ri.completedFrame = VKMHA_NO_FRAME;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(s.session.get(), VK_NULL_HANDLE, &ri),
                       "pPositionIds", "VkmhaRecordInfo");
        pi.pPositionIds = nullptr;
        pi.positionIds.buffer = reinterpret_cast<VkBuffer>(uintptr_t{0x1234}); // refused before any use
        pi.positionIds.range = 16;
        VkmhaHostSubmitInfo hi{};
        hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
        hi.pNext = &pi;
        hi.batch = 1;
        hi.queryLength = hi.keyLength = 4;
        hi.pQuery = in.query.data();
        uint64_t value = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &hi, &value), "positionIds",
                       "VkmhaHostSubmitInfo");
    }

    TEST_CASE("VkmhaModelAttentionInfo: invalid values are refused, naming the field and the value") {
        const VkmhaProcTable& t = api();
        OwnSetup s;
        HostModel m;
        make_model(m, false, false);
        const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
        struct Bad {
            const char* what;
            std::function<void(VkmhaModelAttentionInfo&)> set;
            std::vector<std::string> names;
        };
        auto neox = [](VkmhaModelAttentionInfo& a) { a.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX; };
        const Bad bad[] = {
            {"unknown ropeLayout",
             [](auto& a) { a.ropeLayout = static_cast<VkmhaRopeLayout>(7); },
             {"ropeLayout", "7"}},
            {"unknown ropeScaling",
             [&](auto& a) {
                 neox(a);
                 a.ropeScaling = static_cast<VkmhaRopeScaling>(9);
             },
             {"ropeScaling", "9"}},
            {"odd rotaryDims",
             [&](auto& a) {
                 neox(a);
                 a.rotaryDims = 5;
             },
             {"rotaryDims", "5"}},
            {"rotaryDims over headDim",
             [&](auto& a) {
                 neox(a);
                 a.rotaryDims = 10;
             },
             {"rotaryDims", "10", "8"}},
            {"NaN ropeTheta",
             [&](auto& a) {
                 neox(a);
                 a.ropeTheta = nan;
             },
             {"ropeTheta", "nan"}},
            {"ropeTheta below 1",
             [&](auto& a) {
                 neox(a);
                 a.ropeTheta = 0.5f;
             },
             {"ropeTheta", "0.5"}},
            {"negative scale", [](auto& a) { a.scale = -1.0f; }, {"scale", "-1"}},
            {"NaN scale", [&](auto& a) { a.scale = nan; }, {"scale", "nan"}},
            {"infinite softcap", [&](auto& a) { a.softcap = inf; }, {"softcap", "inf"}},
            {"negative normEps", [](auto& a) { a.normEps = -1e-6f; }, {"normEps", "-1e-06"}},
            {"alibi 2", [](auto& a) { a.alibi = 2; }, {"alibi", "2"}},
            {"ropeNoTruncate 7",
             [&](auto& a) {
                 neox(a);
                 a.ropeNoTruncate = 7;
             },
             {"ropeNoTruncate", "7"}},
            {"LINEAR without a factor",
             [&](auto& a) {
                 neox(a);
                 a.ropeScaling = VKMHA_ROPE_SCALING_LINEAR;
             },
             {"ropeScalingFactor", "0", "LINEAR"}},
            {"LLAMA3 without ropeOriginalMaxPositions",
             [&](auto& a) {
                 neox(a);
                 a.ropeScaling = VKMHA_ROPE_SCALING_LLAMA3;
                 a.ropeScalingFactor = 8;
                 a.ropeLowFreqFactor = 1;
                 a.ropeHighFreqFactor = 4;
             },
             {"ropeOriginalMaxPositions", "LLAMA3"}},
            {"LLAMA3 with low >= high",
             [&](auto& a) {
                 neox(a);
                 a.ropeScaling = VKMHA_ROPE_SCALING_LLAMA3;
                 a.ropeScalingFactor = 8;
                 a.ropeLowFreqFactor = 4;
                 a.ropeHighFreqFactor = 4;
                 a.ropeOriginalMaxPositions = 8192;
             },
             {"ropeLowFreqFactor", "ropeHighFreqFactor", "4"}},
            {"YARN with a negative ropeBetaFast",
             [&](auto& a) {
                 neox(a);
                 a.ropeScaling = VKMHA_ROPE_SCALING_YARN;
                 a.ropeScalingFactor = 4;
                 a.ropeOriginalMaxPositions = 4096;
                 a.ropeBetaFast = -32;
             },
             {"ropeBetaFast", "-32"}},
            {"a scaling without ropeLayout",
             [](auto& a) {
                 a.ropeScaling = VKMHA_ROPE_SCALING_LINEAR;
                 a.ropeScalingFactor = 2;
             },
             {"ropeScaling", "ropeLayout", "NONE"}},
            {"rotaryDims without ropeLayout", [](auto& a) { a.rotaryDims = 4; }, {"rotaryDims", "ropeLayout"}},
        };
        for (const Bad& b : bad) {
            CAPTURE(b.what);
            VkmhaModelAttentionInfo info = attention_info();
            b.set(info);
            const VkmhaModelCreateInfo mi = model_info(m, &info);
            VkmhaModel none = nullptr;
            VkDeviceSize bytes = 0;
            std::vector<std::string> names = b.names;
            names.push_back("VkmhaModelAttentionInfo");
            const VkmhaResult created = t.createModel(s.context.get(), &mi, &none);
            vkmha::test::check_failure(created, VKMHA_ERROR_INVALID_ARGUMENT, t.getLastError(), names, "createModel",
                                       __FILE__, __LINE__);
            const VkmhaResult sized = t.getModelMemoryRequirements(s.context.get(), &mi, &bytes);
            vkmha::test::check_failure(sized, VKMHA_ERROR_INVALID_ARGUMENT, t.getLastError(), names,
                                       "getModelMemoryRequirements", __FILE__, __LINE__);
            CHECK(none == nullptr);
        }
    }

    TEST_CASE("createModel: q_norm.weight without k_norm.weight, or misshapen sinks, is refused naming the tensor") {
        const VkmhaProcTable& t = api();
        OwnSetup s;
        HostModel m;
        make_model(m, true, true);
        VkmhaModel none = nullptr;
        SUBCASE("q_norm.weight alone") {
            std::vector<VkmhaTensor> views;
            for (const VkmhaTensor& v : m.tensors.views())
                if (std::string(v.pName) != "k_norm.weight") views.push_back(v);
            VkmhaModelCreateInfo mi = model_info(m, nullptr);
            mi.tensorCount = static_cast<uint32_t>(views.size());
            mi.pTensors = views.data();
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(s.context.get(), &mi, &none), "q_norm.weight",
                           "k_norm.weight");
        }
        SUBCASE("sinks [H - 1]") {
            std::vector<VkmhaTensor> views = m.tensors.views();
            for (VkmhaTensor& v : views)
                if (std::string(v.pName) == "sinks") v.shape[0] = kH - 1;
            VkmhaModelCreateInfo mi = model_info(m, nullptr);
            mi.pTensors = views.data();
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(s.context.get(), &mi, &none), "sinks", "[4]",
                           "[3]");
        }
        CHECK(none == nullptr);
    }
}
