// The C ABI 1.3's referenceAttention: the CPU reference an engine runs to check vkmha on a player's GPU. It must equal
// the internal reference (host/cpu_reference.h) bit for bit on awkward shapes with the model options of real
// families, agree with the GPU within the tolerance the header states, and refuse bad input by name.
#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/check_matches.h"
#include "support/host_model.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using vkmha::AttentionConfig;
using vkmha::AttentionOptions;
using vkmha::AttentionShape;
using vkmha::MaskKind;
using vkmha::test::api;
using vkmha::test::ContextHandle;
using vkmha::test::ModelHandle;
using vkmha::test::random_floats;
using vkmha::test::SessionHandle;

// One layer: Llama-named weights (H * D need not be E) or none (attention only), the options as the API takes them
// and, spelled out independently, as the host core takes them.
struct Layer {
    AttentionConfig config;
    vkmha::AttentionWeights weights;
    VkmhaModelAttentionInfo attention{VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO};
    vkmha::test::Fp32Tensors tensors; // into `weights` (a Layer never moves: make_layer gives a unique_ptr)

    VkmhaModelCreateInfo create_info() const {
        VkmhaModelCreateInfo mi{};
        mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
        mi.pNext = &attention;
        mi.numHeads = config.num_heads;
        mi.numKvHeads = config.num_kv_heads;
        mi.tensorCount = static_cast<uint32_t>(tensors.views().size());
        mi.pTensors = tensors.views().data();
        return mi;
    }
};

// Random weights for E, H, G, D (projections unless attention only), QK-norm and sinks always.
std::unique_ptr<Layer> make_layer(uint32_t E, uint32_t H, uint32_t G, uint32_t D, bool attention_only, uint32_t seed) {
    auto layer = std::make_unique<Layer>();
    Layer& l = *layer;
    AttentionConfig& c = l.config;
    c.embed_dim = c.kdim = c.vdim = attention_only ? H * D : E;
    c.num_heads = H;
    c.num_kv_heads = G;
    c.explicit_head_dim = D;
    c.attention_only = attention_only;
    c.qk_norm = c.sinks = true;
    std::mt19937 rng(seed);
    vkmha::AttentionWeights& w = l.weights;
    if (!attention_only) {
        const float bound = 1.0f / std::sqrt(static_cast<float>(E));
        w.wq = random_floats(rng, size_t(H) * D * E, bound);
        w.wk = random_floats(rng, size_t(G) * D * E, bound);
        w.wv = random_floats(rng, size_t(G) * D * E, bound);
        w.wo = random_floats(rng, size_t(E) * H * D, bound);
        w.bo = random_floats(rng, E, 0.2f);
        l.tensors.add("q_proj.weight", {uint64_t(H) * D, E}, w.wq);
        l.tensors.add("k_proj.weight", {uint64_t(G) * D, E}, w.wk);
        l.tensors.add("v_proj.weight", {uint64_t(G) * D, E}, w.wv);
        l.tensors.add("o_proj.weight", {E, uint64_t(H) * D}, w.wo);
        l.tensors.add("o_proj.bias", {E}, w.bo);
    } else {
        l.attention.attentionOnly = VK_TRUE;
        l.attention.headDim = D;
    }
    w.q_norm = random_floats(rng, D, 0.5f);
    w.k_norm = random_floats(rng, D, 0.5f);
    for (float& x : w.q_norm) x += 1.25f;
    for (float& x : w.k_norm) x += 0.75f;
    w.sinks = random_floats(rng, H, 1.5f);
    l.tensors.add("q_norm.weight", {D}, w.q_norm);
    l.tensors.add("k_norm.weight", {D}, w.k_norm);
    l.tensors.add("sinks", {H}, w.sinks);
    return layer;
}

// Qwen3-like: neox RoPE over 64 of D dims with Llama 3.1's scaling, a sliding window of 5.
void llama3_window_options(Layer& l) {
    VkmhaModelAttentionInfo& a = l.attention;
    a.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
    a.rotaryDims = 64;
    a.ropeTheta = 500000.0f;
    a.ropeScaling = VKMHA_ROPE_SCALING_LLAMA3;
    a.ropeScalingFactor = 8.0f;
    a.ropeLowFreqFactor = 1.0f;
    a.ropeHighFreqFactor = 4.0f;
    a.ropeOriginalMaxPositions = 64;
    a.window = 5;
    vkmha::RopeConfig& r = l.config.rope;
    r.layout = vkmha::RopeLayout::neox;
    r.dims = 64;
    r.theta = 500000.0;
    r.scaling = vkmha::RopeScaling::llama3;
    r.factor = 8.0;
    r.low_freq_factor = 1.0;
    r.high_freq_factor = 4.0;
    r.original_max_positions = 64;
    l.config.window = 5;
}

// Gemma-2-like and Bloom-like at once: GPT-J pairs, soft-cap, ALiBi and a set scale.
void gptj_softcap_alibi_options(Layer& l) {
    VkmhaModelAttentionInfo& a = l.attention;
    a.ropeLayout = VKMHA_ROPE_LAYOUT_GPTJ;
    a.softcap = 5.0f;
    a.alibi = VK_TRUE;
    a.scale = 0.25f;
    l.config.rope.layout = vkmha::RopeLayout::gptj;
    l.config.softcap = 5.0f;
    l.config.alibi = true;
    l.config.scale = 0.25f;
}

// One call's inputs: the projected layer's or the caller's own Q, K, V, a key padding mask, positions.
struct Inputs {
    AttentionShape shape;
    AttentionOptions options;
    std::vector<float> query, key, value;
    std::vector<uint8_t> key_padding;
    std::vector<int32_t> positions, key_positions;
};

Inputs make_inputs(const Layer& l, AttentionShape shape, bool qkv, bool cross, uint32_t seed) {
    const AttentionConfig& c = l.config;
    std::mt19937 rng(seed);
    Inputs in;
    in.shape = shape;
    const size_t B = shape.batch, D = c.head_dim();
    in.query = random_floats(rng, qkv ? B * c.num_heads * shape.lq * D : B * shape.lq * c.embed_dim, 1.0f);
    if (qkv || cross) {
        in.key = random_floats(rng, qkv ? B * c.num_kv_heads * shape.lk * D : B * shape.lk * c.kdim, 1.0f);
        in.value = random_floats(rng, qkv ? B * c.num_kv_heads * shape.lk * D : B * shape.lk * c.vdim, 1.0f);
    }
    in.key_padding.assign(B * shape.lk, 0);
    for (size_t b = 0; b < B; ++b) in.key_padding[b * shape.lk + (b + 2) % shape.lk] = shape.lk > 1 ? 1 : 0;
    in.options.key_padding = MaskKind::boolean;
    in.options.causal = !cross && !qkv;
    in.options.need_weights = true;
    in.options.average_weights = (seed % 2) == 0;
    // Positions far from 0..L-1, so that RoPE reading the wrong ones shows.
    for (size_t i = 0; i < B * shape.lq; ++i) in.positions.push_back(static_cast<int32_t>(3 * i + 11));
    if (qkv)
        for (size_t i = 0; i < B * shape.lk; ++i) in.key_positions.push_back(static_cast<int32_t>(2 * i + 1));
    return in;
}

VkmhaAttentionFlags flags_of(const AttentionOptions& o) {
    VkmhaAttentionFlags flags = 0;
    if (o.causal) flags |= VKMHA_ATTENTION_CAUSAL_BIT;
    if (o.need_weights) flags |= VKMHA_ATTENTION_NEED_WEIGHTS_BIT;
    if (!o.average_weights) flags |= VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT;
    return flags;
}

// The public structs for `in`, pointing into it; `positions` is chained on whichever submit info is used.
struct PublicCall {
    VkmhaPositionsInfo positions{VKMHA_STRUCTURE_TYPE_POSITIONS_INFO};
    VkmhaHostSubmitInfo submit{};
    VkmhaHostQkvSubmitInfo qkv{};
};

void fill_call(PublicCall& call, const Inputs& in, bool qkv) {
    call.positions.pPositionIds = in.positions.data();
    call.positions.pKeyPositionIds = in.key_positions.empty() ? nullptr : in.key_positions.data();
    const VkmhaAttentionFlags flags = flags_of(in.options);
    if (qkv) {
        VkmhaHostQkvSubmitInfo& s = call.qkv;
        s.sType = VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO;
        s.pNext = &call.positions;
        s.batch = in.shape.batch, s.queryLength = in.shape.lq, s.keyLength = in.shape.lk;
        s.flags = flags;
        s.keyPaddingMaskType = VKMHA_MASK_TYPE_BOOL;
        s.pQ = in.query.data(), s.pK = in.key.data(), s.pV = in.value.data();
        s.pKeyPaddingMask = in.key_padding.data();
    } else {
        VkmhaHostSubmitInfo& s = call.submit;
        s.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
        s.pNext = &call.positions;
        s.batch = in.shape.batch, s.queryLength = in.shape.lq, s.keyLength = in.shape.lk;
        s.flags = flags;
        s.keyPaddingMaskType = VKMHA_MASK_TYPE_BOOL;
        s.pQuery = in.query.data();
        s.pKey = in.key.empty() ? nullptr : in.key.data();
        s.pValue = in.value.empty() ? nullptr : in.value.data();
        s.pKeyPaddingMask = in.key_padding.data();
    }
}

vkmha::AttentionOutputs internal_reference(const Layer& l, const Inputs& in, bool qkv) {
    vkmha::AttentionInputs ri;
    ri.query = in.query.data();
    ri.key = in.key.empty() ? nullptr : in.key.data();
    ri.value = in.value.empty() ? nullptr : in.value.data();
    ri.key_padding_mask = in.key_padding.data();
    ri.position_ids = in.positions.data();
    ri.key_position_ids = in.key_positions.empty() ? nullptr : in.key_positions.data();
    auto r = qkv ? vkmha::reference_attention_qkv(l.config, l.weights, in.shape, in.options, ri)
                 : vkmha::reference_attention(l.config, l.weights, in.shape, in.options, ri);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    return std::move(r.value());
}

// referenceAttention's output and weights for `in`.
vkmha::AttentionOutputs public_reference(Layer& l, const Inputs& in, bool qkv, size_t out_count, size_t w_count) {
    PublicCall call;
    fill_call(call, in, qkv);
    const VkmhaModelCreateInfo mi = l.create_info();
    vkmha::AttentionOutputs out;
    out.output.assign(out_count, NAN);
    out.weights.assign(w_count, NAN);
    VkmhaReferenceInfo info{VKMHA_STRUCTURE_TYPE_REFERENCE_INFO};
    info.pModel = &mi;
    if (qkv)
        info.pQkv = &call.qkv;
    else
        info.pSubmit = &call.submit;
    info.pOutput = out.output.data();
    info.outputCount = out.output.size();
    info.pWeights = out.weights.data();
    info.weightsCount = out.weights.size();
    REQUIRE_VKMHA(api().referenceAttention(&info));
    return out;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// submit on the GPU (own mode, hostIo) and readOutputs.
vkmha::AttentionOutputs gpu_outputs(VkmhaContext context, Layer& l, const Inputs& in, bool qkv,
                                    VkmhaPrecision precision, size_t out_count, size_t w_count) {
    ModelHandle model;
    SessionHandle session;
    VkmhaModelCreateInfo mi = l.create_info();
    mi.precision = precision;
    REQUIRE_VKMHA(api().createModel(context, &mi, model.out()));
    VkmhaSessionCreateInfo si{VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO};
    si.maxBatch = in.shape.batch, si.maxQueryLength = in.shape.lq, si.maxKeyLength = in.shape.lk;
    si.framesInFlight = 1;
    si.hostIo = VK_TRUE;
    si.flags = VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT;
    REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
    PublicCall call;
    fill_call(call, in, qkv);
    uint64_t value = 0;
    if (qkv)
        REQUIRE_VKMHA(api().submitQkv(session.get(), &call.qkv, &value));
    else
        REQUIRE_VKMHA(api().submit(session.get(), &call.submit, &value));
    REQUIRE_VKMHA(api().wait(session.get(), value, UINT64_MAX));
    vkmha::AttentionOutputs out;
    out.output.resize(out_count);
    out.weights.resize(w_count);
    REQUIRE_VKMHA(api().readOutputs(session.get(), value, out.output.data(), out_count, out.weights.data(), w_count));
    return out;
}

struct Case {
    const char* name;
    uint32_t E, H, G, D;
    bool qkv, cross;
    AttentionShape shape;
    void (*options)(Layer&);
};

const Case kCases[] = {
    {"H 3 G 1 D 80, llama3 RoPE + window, self causal B 2 L 7",
     64,
     3,
     1,
     80,
     false,
     false,
     {2, 7, 7},
     llama3_window_options},
    {"H 3 G 1 D 80, llama3 RoPE + window, decode L 1 over 129 keys",
     64,
     3,
     1,
     80,
     false,
     true,
     {1, 1, 129},
     llama3_window_options},
    {"H 6 G 2 D 96, GPT-J RoPE + soft-cap + ALiBi, self causal L 129",
     48,
     6,
     2,
     96,
     false,
     false,
     {1, 129, 129},
     gptj_softcap_alibi_options},
    {"attention only H 5 G 5 D 80, llama3 RoPE + window, Lq 7 over 127 keys",
     0,
     5,
     5,
     80,
     true,
     false,
     {2, 7, 127},
     llama3_window_options},
};

size_t weights_count(const Layer& l, const Inputs& in) {
    return size_t(in.shape.batch) * (in.options.average_weights ? 1 : l.config.num_heads) * in.shape.lq * in.shape.lk;
}

size_t output_count(const Layer& l, const Inputs& in, bool qkv) {
    return size_t(in.shape.batch) * in.shape.lq * (qkv ? l.config.num_heads * l.config.head_dim() : l.config.embed_dim);
}

} // namespace

TEST_SUITE("plugin_reference") {

    TEST_CASE("referenceAttention: equals the internal reference bit for bit, with model options") {
        uint32_t seed = 20;
        for (const Case& c : kCases) {
            CAPTURE(std::string(c.name));
            auto layer = make_layer(c.E, c.H, c.G, c.D, c.qkv, ++seed);
            c.options(*layer);
            const Inputs in = make_inputs(*layer, c.shape, c.qkv, c.cross, seed);
            const vkmha::AttentionOutputs want = internal_reference(*layer, in, c.qkv);
            const vkmha::AttentionOutputs got =
                public_reference(*layer, in, c.qkv, output_count(*layer, in, c.qkv), weights_count(*layer, in));
            CHECK_MESSAGE(bitwise_equal(got.output, want.output), "output differs from the internal reference");
            CHECK_MESSAGE(bitwise_equal(got.weights, want.weights), "weights differ from the internal reference");
        }
    }

    TEST_CASE("referenceAttention: the GPU agrees within the stated fp32 and fp16 tolerances") {
        ContextHandle context;
        const VkmhaContextCreateInfo ci = vkmha::test::own_context_info(nullptr);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        uint32_t seed = 40;
        for (const Case& c : kCases) {
            CAPTURE(std::string(c.name));
            auto layer = make_layer(c.E, c.H, c.G, c.D, c.qkv, ++seed);
            c.options(*layer);
            const Inputs in = make_inputs(*layer, c.shape, c.qkv, c.cross, seed);
            const size_t out_count = output_count(*layer, in, c.qkv), w_count = weights_count(*layer, in);
            const vkmha::AttentionOutputs ref = public_reference(*layer, in, c.qkv, out_count, w_count);
            const vkmha::AttentionOutputs fp32 =
                gpu_outputs(context.get(), *layer, in, c.qkv, VKMHA_PRECISION_FP32, out_count, w_count);
            vkmha::test::check_matches(fp32.output.data(), ref.output, std::string(c.name) + " fp32 output");
            vkmha::test::check_matches(fp32.weights.data(), ref.weights, std::string(c.name) + " fp32 weights");
            if (c.shape.lq > 7) continue; // fp16 on the small cases only: the same kernels, a looser bound
            const vkmha::AttentionOutputs fp16 =
                gpu_outputs(context.get(), *layer, in, c.qkv, VKMHA_PRECISION_FP16, out_count, w_count);
            vkmha::test::check_matches(fp16.output.data(), ref.output, std::string(c.name) + " fp16 output",
                                       vkmha::test::kFp16Tolerance);
        }
    }

    TEST_CASE("referenceAttention: bad input is refused by name") {
        auto layer = make_layer(16, 2, 1, 8, false, 3);
        const Inputs in = make_inputs(*layer, {1, 3, 3}, false, false, 3);
        PublicCall call;
        fill_call(call, in, false);
        VkmhaModelCreateInfo mi = layer->create_info();
        std::vector<float> out(output_count(*layer, in, false)), weights(weights_count(*layer, in));
        VkmhaReferenceInfo good{VKMHA_STRUCTURE_TYPE_REFERENCE_INFO};
        good.pModel = &mi;
        good.pSubmit = &call.submit;
        good.pOutput = out.data();
        good.outputCount = out.size();
        good.pWeights = weights.data();
        good.weightsCount = weights.size();
        REQUIRE_VKMHA(api().referenceAttention(&good));

        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(nullptr), "pInfo is NULL");
        VkmhaReferenceInfo bad = good;
        bad.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "sType", "VkmhaReferenceInfo");
        bad = good;
        bad.pNext = &call.positions;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "VkmhaReferenceInfo");
        bad = good;
        bad.pQkv = &call.qkv;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "both set");
        bad = good;
        bad.pSubmit = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "both NULL");
        bad = good;
        bad.pModel = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "pModel");
        bad = good;
        bad.pOutput = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "pOutput");
        bad = good;
        bad.outputCount = out.size() - 1;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "outputCount",
                       std::to_string(out.size()));
        bad = good;
        bad.weightsCount = 1;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "weightsCount");

        VkmhaHostSubmitInfo submit = call.submit;
        bad = good;
        bad.pSubmit = &submit;
        submit.flags = 0; // no weights asked for, yet pWeights set
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "pWeights", "NEED_WEIGHTS");
        submit = call.submit;
        submit.flags |= 0x4000u;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "flags", "4000");
        submit = call.submit;
        submit.pKeyPaddingMask = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "pKeyPaddingMask");
        submit = call.submit;
        submit.pQuery = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "pQuery");
        submit = call.submit;
        submit.batch = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "batch");
        submit = call.submit;
        submit.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "pInfo->pSubmit");

        VkmhaModelCreateInfo bad_model = mi;
        bad = good;
        bad.pModel = &bad_model;
        bad_model.numHeads = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "numHeads");
        bad_model = mi;
        VkmhaModelAttentionInfo attention = layer->attention;
        attention.window = 0;
        attention.rotaryDims = 3;
        attention.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
        bad_model.pNext = &attention;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "rotaryDims");

        // An attention-only model has no projections: pSubmit is refused, pQkv taken.
        auto own = make_layer(0, 2, 1, 8, true, 4);
        VkmhaModelCreateInfo own_model = own->create_info();
        bad = good;
        bad.pModel = &own_model;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().referenceAttention(&bad), "attention-only", "pQkv");
    }
}
