// The C ABI 1.2's attention only, as an engine sees it (libvkmha.so through the table): models created with
// VkmhaModelAttentionInfo::attentionOnly (no projection weights; only sinks / q_norm.weight / k_norm.weight, or no
// tensors at all), recordAttentionQkv on the engine's own Q, K, V in [B, L, H, D] at odd offsets (adopt mode),
// submitQkv, the cached steps recordCachedAttentionQkv / submitCachedQkv, the Qkv calls on a model with projections,
// every refusal naming its field, and a 1.1 caller's table. The CPU reference_attention_qkv is the ground truth.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/compare.h"
#include "support/engine_device.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

void check_matches(const std::vector<float>& got, const std::vector<float>& ref, const std::string& what) {
    vkmha::test::Tolerance tol;
    tol.atol = 1e-4;
    tol.rtol = 1e-3;
    tol.nmse = 1e30; // the elementwise bound is the criterion here
    const vkmha::test::Comparison c = vkmha::test::compare(got, ref, tol);
    CHECK_MESSAGE(got.size() == ref.size(), what, ": ", got.size(), " values, expected ", ref.size());
    CHECK_MESSAGE(c.ok, c.describe(what));
}

// An attention-only layer: H heads of D, G KV heads, the optional QK-norm weights and sinks (as tensors for vkmha and
// as the reference's config and weights), and the VkmhaModelAttentionInfo that creates it.
struct QkvModel {
    AttentionConfig config;
    AttentionWeights weights;
    VkmhaModelAttentionInfo info{};
    std::vector<VkmhaTensor> views;

    QkvModel(uint32_t H, uint32_t G, uint32_t D, bool qk_norm, bool sinks, uint32_t seed = 3) {
        config.num_heads = H;
        config.num_kv_heads = G;
        config.explicit_head_dim = D;
        config.embed_dim = config.kdim = config.vdim = H * D;
        config.attention_only = true;
        info.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
        info.headDim = D;
        info.attentionOnly = VK_TRUE;
        std::mt19937 rng(seed);
        if (qk_norm) {
            weights.q_norm = random_floats(rng, D, 0.5f);
            weights.k_norm = random_floats(rng, D, 0.5f);
            for (float& x : weights.q_norm) x += 1.5f;
            for (float& x : weights.k_norm) x += 0.75f;
            config.qk_norm = true;
        }
        if (sinks) {
            weights.sinks = random_floats(rng, H, 2.0f);
            config.sinks = true;
        }
        // Built after the vectors stop moving: the views point into them.
        if (qk_norm)
            views.push_back(tensor("q_norm.weight", weights.q_norm)),
                views.push_back(tensor("k_norm.weight", weights.k_norm));
        if (sinks) views.push_back(tensor("sinks", weights.sinks));
    }
    QkvModel(const QkvModel&) = delete;
    QkvModel& operator=(const QkvModel&) = delete;

    static VkmhaTensor tensor(const char* name, const std::vector<float>& v) {
        VkmhaTensor t{};
        t.pName = name;
        t.dataType = VKMHA_DATA_TYPE_F32;
        t.rank = 1;
        t.shape[0] = v.size();
        t.pData = v.data();
        return t;
    }
    VkmhaModelCreateInfo create_info() const {
        VkmhaModelCreateInfo mi{};
        mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
        mi.pNext = &info;
        mi.numHeads = config.num_heads;
        mi.numKvHeads = config.num_kv_heads;
        mi.tensorCount = static_cast<uint32_t>(views.size());
        mi.pTensors = views.empty() ? nullptr : views.data();
        return mi;
    }
    uint32_t H() const { return config.num_heads; }
    uint32_t G() const { return config.num_kv_heads; }
    uint32_t D() const { return config.head_dim(); }
};

// One call's contiguous Q [B, H, Lq, D], K and V [B, G, Lk, D], and what the reference needs besides.
struct QkvInputs {
    AttentionShape shape;
    AttentionOptions options;
    std::vector<float> q, k, v;
    std::vector<uint8_t> kpm;                      // [B, Lk] or empty
    std::vector<int32_t> positions, key_positions; // [B, Lq], [B, Lk] or empty (the defaults)

    vkmha::AttentionInputs inputs() const {
        vkmha::AttentionInputs in;
        in.query = q.data(), in.key = k.data(), in.value = v.data();
        in.key_padding_mask = kpm.empty() ? nullptr : kpm.data();
        in.position_ids = positions.empty() ? nullptr : positions.data();
        in.key_position_ids = key_positions.empty() ? nullptr : key_positions.data();
        return in;
    }
    VkmhaAttentionFlags flags() const {
        return (options.causal ? uint32_t(VKMHA_ATTENTION_CAUSAL_BIT) : 0u) |
               (options.need_weights ? uint32_t(VKMHA_ATTENTION_NEED_WEIGHTS_BIT) : 0u) |
               (options.need_weights && !options.average_weights ? uint32_t(VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT) : 0u);
    }
};

QkvInputs make_inputs(const AttentionConfig& c, AttentionShape shape, uint32_t seed) {
    QkvInputs in;
    in.shape = shape;
    std::mt19937 rng(seed);
    const uint32_t D = c.head_dim();
    in.q = random_floats(rng, size_t(shape.batch) * c.num_heads * shape.lq * D, 1.0f);
    in.k = random_floats(rng, size_t(shape.batch) * c.num_kv_heads * shape.lk * D, 1.0f);
    in.v = random_floats(rng, size_t(shape.batch) * c.num_kv_heads * shape.lk * D, 1.0f);
    return in;
}

void add_positions(QkvInputs& in, int32_t first) { // far from the defaults, uneven, different per row and for keys
    in.positions.resize(size_t(in.shape.batch) * in.shape.lq);
    in.key_positions.resize(size_t(in.shape.batch) * in.shape.lk);
    for (size_t i = 0; i < in.positions.size(); ++i) in.positions[i] = first + 7 * static_cast<int32_t>(i);
    for (size_t j = 0; j < in.key_positions.size(); ++j) in.key_positions[j] = first / 2 + 3 * static_cast<int32_t>(j);
}

void add_key_padding(QkvInputs& in) { // the last b keys of batch row b
    in.options.key_padding = MaskKind::boolean;
    in.kpm.assign(size_t(in.shape.batch) * in.shape.lk, 0);
    for (uint32_t b = 0; b < in.shape.batch; ++b)
        for (uint32_t j = in.shape.lk - b; j < in.shape.lk; ++j) in.kpm[size_t(b) * in.shape.lk + j] = 1;
}

vkmha::AttentionOutputs reference(const AttentionConfig& c, const AttentionWeights& w, const QkvInputs& in) {
    auto r = vkmha::reference_attention_qkv(c, w, in.shape, in.options, in.inputs());
    REQUIRE_MESSAGE(r.ok(), "CPU reference failed: ", r.error().message);
    return std::move(r.value());
}

// submitQkv (positions chained when `in` has them), wait, readOutputs: O [B, H, Lq, D] and the weights.
vkmha::AttentionOutputs run_submit_qkv(VkmhaSession session, const AttentionConfig& c, const QkvInputs& in) {
    VkmhaPositionsInfo pi{};
    pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
    pi.pPositionIds = in.positions.empty() ? nullptr : in.positions.data();
    pi.pKeyPositionIds = in.key_positions.empty() ? nullptr : in.key_positions.data();
    VkmhaHostQkvSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO;
    hi.pNext = in.positions.empty() && in.key_positions.empty() ? nullptr : &pi;
    hi.batch = in.shape.batch;
    hi.queryLength = in.shape.lq;
    hi.keyLength = in.shape.lk;
    hi.flags = in.flags();
    hi.keyPaddingMaskType = in.kpm.empty() ? VKMHA_MASK_TYPE_NONE : VKMHA_MASK_TYPE_BOOL;
    hi.pQ = in.q.data();
    hi.pK = in.k.data();
    hi.pV = in.v.data();
    hi.pKeyPaddingMask = in.kpm.empty() ? nullptr : in.kpm.data();
    uint64_t value = 0;
    REQUIRE_VKMHA(api().submitQkv(session, &hi, &value));
    REQUIRE_VKMHA(api().wait(session, value, UINT64_MAX));
    vkmha::AttentionOutputs out;
    out.output.resize(in.q.size());
    if (in.options.need_weights)
        out.weights.resize(size_t(in.shape.batch) * (in.options.average_weights ? 1 : c.num_heads) * in.shape.lq *
                           in.shape.lk);
    REQUIRE_VKMHA(api().readOutputs(session, value, out.output.data(), out.output.size(),
                                    out.weights.empty() ? nullptr : out.weights.data(), out.weights.size()));
    return out;
}

VkmhaSessionCreateInfo session_info(AttentionShape budget, bool host_io) {
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = budget.batch;
    si.maxQueryLength = budget.lq;
    si.maxKeyLength = budget.lk;
    si.hostIo = host_io ? VK_TRUE : VK_FALSE;
    // Both kinds record weights: HOST_WEIGHTS_BIT brings the score scratch, an engine session asks for it.
    si.flags = host_io ? VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT : VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT;
    return si;
}

// Own mode: a context, the model and a host-I/O session.
struct OwnSetup {
    LogCapture log;
    ContextHandle context;
    ModelHandle model;
    SessionHandle session;
    OwnSetup() {
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
    }
    void create(const VkmhaModelCreateInfo& mi, AttentionShape budget) {
        REQUIRE_VKMHA(api().createModel(context.get(), &mi, model.out()));
        const VkmhaSessionCreateInfo si = session_info(budget, true);
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
    }
};

// Contiguous [B, heads, L, D] to [B, L, heads, D] with `pad` floats after each row of heads * D (row stride
// heads * D + pad), written from `dst`.
void to_rows(const std::vector<float>& x, uint32_t B, uint32_t heads, uint32_t L, uint32_t D, uint32_t pad,
             float* dst) {
    const size_t row = size_t(heads) * D + pad;
    for (uint32_t b = 0; b < B; ++b)
        for (uint32_t h = 0; h < heads; ++h)
            for (uint32_t l = 0; l < L; ++l)
                std::memcpy(dst + (size_t(b) * L + l) * row + size_t(h) * D,
                            x.data() + ((size_t(b) * heads + h) * L + l) * D, D * sizeof(float));
}

// The engine side of the adopt-mode tests: one command buffer, recorded and waited for per frame.
struct EngineFrames {
    EngineDevice& engine;
    VkCommandPool pool = VK_NULL_HANDLE;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    explicit EngineFrames(EngineDevice& e) : engine(e) {
        pool = engine.create_command_pool();
        REQUIRE(pool != VK_NULL_HANDLE);
        cmd = engine.allocate_command_buffer(pool);
        fence = engine.create_fence();
        REQUIRE((cmd != VK_NULL_HANDLE && fence != VK_NULL_HANDLE));
    }
    ~EngineFrames() {
        vkDeviceWaitIdle(engine.device());
        vkDestroyFence(engine.device(), fence, nullptr);
        vkDestroyCommandPool(engine.device(), pool, nullptr);
    }
    void begin() {
        REQUIRE(vkResetCommandBuffer(cmd, 0) == VK_SUCCESS);
        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        REQUIRE(vkBeginCommandBuffer(cmd, &bi) == VK_SUCCESS);
    }
    void end_submit_wait() {
        VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        b.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &b, 0,
                             nullptr, 0, nullptr);
        REQUIRE(vkEndCommandBuffer(cmd) == VK_SUCCESS);
        REQUIRE(vkResetFences(engine.device(), 1, &fence) == VK_SUCCESS);
        REQUIRE(engine.submit(cmd, fence) == VK_SUCCESS);
        REQUIRE(vkWaitForFences(engine.device(), 1, &fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
    }
};

VkmhaBufferBinding bind(const HostBuffer& b, VkDeviceSize offset, VkDeviceSize range) {
    return VkmhaBufferBinding{b.buffer(), offset, range, 0, 0};
}

// A Llama-named model with projections (E 32, H 4, G 2: D 8), for the Qkv calls on a model that has weights.
struct ProjectionModel {
    std::vector<float> wq, wk, wv, wo;
    std::vector<VkmhaTensor> views;
    ProjectionModel() {
        std::mt19937 rng(9);
        wq = random_floats(rng, 32 * 32, 0.2f);
        wk = random_floats(rng, 16 * 32, 0.2f);
        wv = random_floats(rng, 16 * 32, 0.2f);
        wo = random_floats(rng, 32 * 32, 0.2f);
        auto t = [](const char* name, uint64_t rows, uint64_t cols, const std::vector<float>& v) {
            VkmhaTensor x{};
            x.pName = name;
            x.dataType = VKMHA_DATA_TYPE_F32;
            x.rank = 2;
            x.shape[0] = rows;
            x.shape[1] = cols;
            x.pData = v.data();
            return x;
        };
        views = {t("q_proj.weight", 32, 32, wq), t("k_proj.weight", 16, 32, wk), t("v_proj.weight", 16, 32, wv),
                 t("o_proj.weight", 32, 32, wo)};
    }
    VkmhaModelCreateInfo create_info(const void* next) const {
        VkmhaModelCreateInfo mi{};
        mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
        mi.pNext = next;
        mi.numHeads = 4;
        mi.tensorCount = static_cast<uint32_t>(views.size());
        mi.pTensors = views.data();
        return mi;
    }
};

} // namespace

// =================================================================================================================

TEST_SUITE("plugin_qkv") {

    TEST_CASE(
        "vkmhaGetProcTable: the Qkv entries are filled at 1.2, and a 1.1 caller's smaller table is left alone past "
        "recordPrefill") {
        const VkmhaProcTable& t = api();
        CHECK((t.recordAttentionQkv != nullptr));
        CHECK((t.submitQkv != nullptr));
        CHECK((t.recordCachedAttentionQkv != nullptr));
        CHECK((t.submitCachedQkv != nullptr));
        void* handle = dlopen(VKMHA_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL);
        REQUIRE(handle);
        auto get = reinterpret_cast<PFN_vkmhaGetProcTable>(dlsym(handle, "vkmhaGetProcTable"));
        REQUIRE((get != nullptr));
        // What a program built against the 1.1 header passes: its table ends after recordPrefill.
        const size_t size_1_1 = offsetof(VkmhaProcTable, recordAttentionQkv);
        CHECK(size_1_1 == offsetof(VkmhaProcTable, recordPrefill) + sizeof(t.recordPrefill));
        VkmhaProcTable old;
        std::memset(&old, 0xCD, sizeof old);
        REQUIRE(get(VKMHA_API_VERSION_1_1, &old, size_1_1) == VKMHA_SUCCESS);
        CHECK((old.recordPrefill == t.recordPrefill));
        CHECK((old.submitCached == t.submitCached));
        bool untouched = true;
        for (size_t i = size_1_1; i < sizeof old; ++i)
            untouched = untouched && reinterpret_cast<uint8_t*>(&old)[i] == 0xCD;
        CHECK_MESSAGE(untouched, "a 1.1 caller's table was written past its size");
        // The same caller negotiating 1.2 with a 1.2 table gets the new entries.
        std::memset(&old, 0, sizeof old);
        REQUIRE(get(VKMHA_API_VERSION_1_2, &old, sizeof old) == VKMHA_SUCCESS);
        CHECK((old.submitCachedQkv == t.submitCachedQkv));
        dlclose(handle);
    }

    TEST_CASE("attention-only model: submitQkv matches reference_attention_qkv (QK-norm, sinks, RoPE, GQA, positions, "
              "key padding, per-head weights)") {
        QkvModel m(4, 2, 16, true, true);
        m.info.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
        m.config.rope.layout = RopeLayout::neox;
        m.info.softcap = 6.0f;
        m.config.softcap = 6.0f;
        OwnSetup s;
        const AttentionShape shape{2, 5, 9};
        s.create(m.create_info(), shape);

        VkmhaModelProperties mp{};
        REQUIRE_VKMHA(api().getModelProperties(s.model.get(), &mp));
        CHECK(mp.numHeads == 4);
        CHECK(mp.numKvHeads == 2);
        CHECK(mp.headDim == 16);
        CHECK(mp.embedDim == 64);
        CHECK((mp.kdim == 64 && mp.vdim == 64));
        CHECK(mp.hasInputBias == VK_FALSE);
        VkDeviceSize bytes = 0;
        const VkmhaModelCreateInfo mi = m.create_info();
        REQUIRE_VKMHA(api().getModelMemoryRequirements(s.context.get(), &mi, &bytes));
        CHECK(bytes > 0);

        QkvInputs in = make_inputs(m.config, shape, 17);
        in.options.causal = true;
        add_positions(in, 1000);
        add_key_padding(in);
        in.options.need_weights = true;
        in.options.average_weights = false;
        const vkmha::AttentionOutputs got = run_submit_qkv(s.session.get(), m.config, in);
        const vkmha::AttentionOutputs ref = reference(m.config, m.weights, in);
        check_matches(got.output, ref.output, "O [B, H, Lq, D]");
        check_matches(got.weights, ref.weights, "per-head weights");

        // The key positions matter, and without the struct the defaults (query i at Lk - Lq + i, key j at j) apply.
        QkvInputs defaults = in;
        defaults.positions.clear();
        defaults.key_positions.clear();
        defaults.options.need_weights = false;
        const vkmha::AttentionOutputs plain = reference(m.config, m.weights, defaults);
        check_matches(run_submit_qkv(s.session.get(), m.config, defaults).output, plain.output, "default positions");
        double moved = 0;
        for (size_t i = 0; i < plain.output.size(); ++i)
            moved = std::max(moved, double(std::fabs(plain.output[i] - ref.output[i])));
        CHECK_MESSAGE(moved > 1e-2, "the positions move the output by only ", moved);
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE(
        "attention-only model without any tensors (tensorCount 0), unfused and averaged weights, and Qkv calls on a "
        "model with projections") {
        SUBCASE("no tensors") {
            QkvModel m(3, 3, 8, false, false);
            OwnSetup s;
            const AttentionShape shape{2, 7, 7};
            s.create(m.create_info(), shape);
            QkvInputs in = make_inputs(m.config, shape, 5);
            in.options.need_weights = true; // averaged over heads
            const vkmha::AttentionOutputs got = run_submit_qkv(s.session.get(), m.config, in);
            const vkmha::AttentionOutputs ref = reference(m.config, m.weights, in);
            check_matches(got.output, ref.output, "O, no tensors");
            check_matches(got.weights, ref.weights, "averaged weights");
            check_no_validation_messages(s.context.get(), s.log);
        }
        SUBCASE("a Llama-named model with projections: they are simply unused") {
            ProjectionModel pm;
            OwnSetup s;
            const AttentionShape shape{1, 3, 6};
            s.create(pm.create_info(nullptr), shape);
            AttentionConfig c{32, 4, 2, 32, 32};
            QkvInputs in = make_inputs(c, shape, 8);
            in.options.causal = true;
            check_matches(run_submit_qkv(s.session.get(), c, in).output, reference(c, {}, in).output,
                          "submitQkv on a model with projections");
            check_no_validation_messages(s.context.get(), s.log);
        }
    }

    TEST_CASE("adopt mode: recordAttentionQkv on the engine's [B, L, H, D] buffers at odd offsets, positions and key "
              "positions from its buffers, and recordCachedAttentionQkv with padded rows") {
        EngineDevice engine;
        REQUIRE_MESSAGE(engine.ok(), "engine device: ", engine.error());
        {
            EngineFrames frames(engine);
            const VkmhaProcTable& t = api();
            ContextHandle context;
            adopt_context(engine, context);
            QkvModel m(4, 2, 8, true, false);
            m.info.ropeLayout = VKMHA_ROPE_LAYOUT_GPTJ;
            m.info.ropeTheta = 1000.0f;
            m.config.rope = {.layout = RopeLayout::gptj, .theta = 1000.0};
            const uint32_t H = m.H(), G = m.G(), D = m.D();
            ModelHandle model;
            const VkmhaModelCreateInfo mi = m.create_info();
            REQUIRE_VKMHA(t.createModel(context.get(), &mi, model.out()));
            const AttentionShape shape{2, 6, 11};
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(shape, false);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));

            // One shot: Q, K, V and O as [B, L, heads, D], 7 floats into their buffers; positions 4 bytes in, the key
            // positions after them; a key padding mask; per-head weights.
            QkvInputs in = make_inputs(m.config, shape, 23);
            in.options.causal = true;
            add_positions(in, 300);
            add_key_padding(in);
            in.options.need_weights = true;
            in.options.average_weights = false;
            const vkmha::AttentionOutputs ref = reference(m.config, m.weights, in);
            constexpr VkDeviceSize kPad = 7 * sizeof(float);
            const VkDeviceSize q_bytes = in.q.size() * 4, kv_bytes = in.k.size() * 4;
            const VkDeviceSize w_bytes = ref.weights.size() * 4;
            const VkDeviceSize p_bytes = in.positions.size() * 4, kp_bytes = in.key_positions.size() * 4;
            HostBuffer q = engine.create_host_buffer(kPad + q_bytes), k = engine.create_host_buffer(kPad + kv_bytes),
                       v = engine.create_host_buffer(kPad + kv_bytes), o = engine.create_host_buffer(kPad + q_bytes),
                       w = engine.create_host_buffer(w_bytes), kpm = engine.create_host_buffer(in.kpm.size() + 4),
                       pos = engine.create_host_buffer(4 + p_bytes + kp_bytes);
            REQUIRE((q && k && v && o && w && kpm && pos));
            to_rows(in.q, shape.batch, H, shape.lq, D, 0, reinterpret_cast<float*>(q.bytes() + kPad));
            to_rows(in.k, shape.batch, G, shape.lk, D, 0, reinterpret_cast<float*>(k.bytes() + kPad));
            to_rows(in.v, shape.batch, G, shape.lk, D, 0, reinterpret_cast<float*>(v.bytes() + kPad));
            std::memcpy(kpm.bytes(), in.kpm.data(), in.kpm.size());
            std::memcpy(pos.bytes() + 4, in.positions.data(), p_bytes);
            std::memcpy(pos.bytes() + 4 + p_bytes, in.key_positions.data(), kp_bytes);
            VkmhaPositionsInfo pi{};
            pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
            pi.positionIds = bind(pos, 4, p_bytes);
            pi.keyPositionIds = bind(pos, 4 + p_bytes, kp_bytes);
            VkmhaQkvRecordInfo ri{};
            ri.sType = VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO;
            ri.pNext = &pi;
            ri.frameIndex = 0;
            ri.completedFrame = VKMHA_NO_FRAME;
            ri.batch = shape.batch;
            ri.queryLength = shape.lq;
            ri.keyLength = shape.lk;
            ri.flags = in.flags();
            ri.keyPaddingMaskType = VKMHA_MASK_TYPE_BOOL;
            ri.q = bind(q, kPad, q_bytes);
            ri.k = bind(k, kPad, kv_bytes);
            ri.v = bind(v, kPad, kv_bytes);
            ri.output = bind(o, kPad, q_bytes);
            ri.keyPaddingMask = bind(kpm, 0, in.kpm.size());
            ri.weights = bind(w, 0, w_bytes);
            ri.qLayout = ri.outputLayout = {shape.lq * H * D, D, H * D}; // [B, L, H, D]
            ri.kLayout = ri.vLayout = {shape.lk * G * D, D, G * D};
            frames.begin();
            REQUIRE_VKMHA(t.recordAttentionQkv(session.get(), frames.cmd, &ri));
            frames.end_submit_wait();
            std::vector<float> got(in.q.size()), want(in.q.size()), weights(ref.weights.size());
            std::memcpy(got.data(), o.bytes() + kPad, q_bytes);
            std::memcpy(weights.data(), w.bytes(), w_bytes);
            to_rows(ref.output, shape.batch, H, shape.lq, D, 0, want.data());
            check_matches(got, want, "recordAttentionQkv O [B, Lq, H, D]");
            check_matches(weights, ref.weights, "recordAttentionQkv per-head weights");

            // Cached: batch row 0's first L tokens of K/V as self-attention (Lq = Lk = L), one token per frame into
            // one sequence, each tensor per token [heads, D] with 2 floats of padding after every head.
            constexpr uint32_t L = 6, kHeadPad = 2;
            QkvInputs one = make_inputs(m.config, {1, L, L}, 29);
            one.options.causal = true;
            const vkmha::AttentionOutputs cref = reference(m.config, m.weights, one);
            CacheHandle cache;
            VkmhaKvCacheCreateInfo kci{};
            kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
            kci.sequences = 2;
            kci.capacity = L;
            REQUIRE_VKMHA(t.createKvCache(model.get(), &kci, cache.out()));
            const uint32_t qrow = H * (D + kHeadPad), kvrow = G * (D + kHeadPad);
            HostBuffer cq = engine.create_host_buffer(size_t(L) * qrow * 4),
                       ck = engine.create_host_buffer(size_t(L) * kvrow * 4),
                       cv = engine.create_host_buffer(size_t(L) * kvrow * 4),
                       co = engine.create_host_buffer(size_t(L) * qrow * 4);
            REQUIRE((cq && ck && cv && co));
            std::memset(co.bytes(), 0, size_t(L) * qrow * 4);
            auto padded = [&](const std::vector<float>& x, uint32_t heads, float* dst) {
                for (uint32_t h = 0; h < heads; ++h)
                    for (uint32_t l = 0; l < L; ++l)
                        std::memcpy(dst + size_t(l) * heads * (D + kHeadPad) + size_t(h) * (D + kHeadPad),
                                    x.data() + (size_t(h) * L + l) * D, D * 4);
            };
            padded(one.q, H, reinterpret_cast<float*>(cq.bytes()));
            padded(one.k, G, reinterpret_cast<float*>(ck.bytes()));
            padded(one.v, G, reinterpret_cast<float*>(cv.bytes()));
            const VkmhaSequenceStep step{1, 1};
            for (uint32_t i = 0; i < L; ++i) {
                VkmhaCachedQkvRecordInfo cri{};
                cri.sType = VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO;
                cri.frameIndex = 1 + i;
                cri.completedFrame = i;
                cri.cache = cache.get();
                cri.stepCount = 1;
                cri.pSteps = &step;
                // One token: its heads span (heads - 1) * (D + pad) + D floats.
                const VkDeviceSize q_span = ((H - 1) * (D + kHeadPad) + D) * 4,
                                   kv_span = ((G - 1) * (D + kHeadPad) + D) * 4;
                cri.q = bind(cq, VkDeviceSize(i) * qrow * 4, q_span);
                cri.k = bind(ck, VkDeviceSize(i) * kvrow * 4, kv_span);
                cri.v = bind(cv, VkDeviceSize(i) * kvrow * 4, kv_span);
                cri.output = bind(co, VkDeviceSize(i) * qrow * 4, q_span);
                cri.qLayout = cri.outputLayout = {0, D + kHeadPad, qrow};
                cri.kLayout = cri.vLayout = {0, D + kHeadPad, kvrow};
                frames.begin();
                REQUIRE_VKMHA(t.recordCachedAttentionQkv(session.get(), frames.cmd, &cri));
                frames.end_submit_wait();
            }
            uint32_t length = 0;
            REQUIRE_VKMHA(t.getKvCacheLength(cache.get(), 1, &length));
            CHECK(length == L);
            std::vector<float> cached(size_t(L) * H * D), cwant(cached.size());
            const auto* out = reinterpret_cast<const float*>(co.bytes());
            for (uint32_t l = 0; l < L; ++l)
                for (uint32_t h = 0; h < H; ++h)
                    std::memcpy(cached.data() + (size_t(l) * H + h) * D,
                                out + size_t(l) * qrow + size_t(h) * (D + kHeadPad), D * 4);
            to_rows(cref.output, 1, H, L, D, 0, cwant.data());
            check_matches(cached, cwant, "recordCachedAttentionQkv O [L, H, D], padded heads");

            cache.reset();
            session.reset();
            model.reset();
            context.reset();
        }
        engine.destroy();
        CHECK_MESSAGE(engine.validation_messages() == 0, "the engine's messenger saw ", engine.validation_messages(),
                      " validation messages; last: ", engine.last_validation_message());
    }

    TEST_CASE("submitCachedQkv: a ragged batch of two sequences token by token equals the one-shot causal reference "
              "(RoPE at the given and at the cache positions, a window)") {
        QkvModel m(4, 1, 16, true, true); // MQA
        m.info.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
        m.info.window = 4;
        m.config.rope.layout = RopeLayout::neox;
        m.config.window = 4;
        const uint32_t H = m.H(), G = m.G(), D = m.D();
        constexpr uint32_t L = 9;
        OwnSetup s;
        s.create(m.create_info(), {2, 3, L});
        CacheHandle cache;
        VkmhaKvCacheCreateInfo kci{};
        kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
        kci.sequences = 2;
        kci.capacity = L;
        REQUIRE_VKMHA(api().createKvCache(s.model.get(), &kci, cache.out()));
        // Sequence 0 at positions 40, 42, ... (queries and keys alike); sequence 1 at its cache positions.
        QkvInputs seq[2] = {make_inputs(m.config, {1, L, L}, 41), make_inputs(m.config, {1, L, L}, 42)};
        for (QkvInputs& x : seq) x.options.causal = true;
        seq[0].positions.resize(L);
        for (uint32_t i = 0; i < L; ++i) seq[0].positions[i] = 40 + 2 * static_cast<int32_t>(i);
        seq[0].key_positions = seq[0].positions;
        // Per token [T, heads, D]: sequence 0's tokens then sequence 1's, 1 to 3 tokens of each per step.
        auto token = [&](const std::vector<float>& x, uint32_t heads, uint32_t l, std::vector<float>& out) {
            for (uint32_t h = 0; h < heads; ++h)
                out.insert(out.end(), x.begin() + std::ptrdiff_t((size_t(h) * L + l) * D),
                           x.begin() + std::ptrdiff_t((size_t(h) * L + l + 1) * D));
        };
        std::vector<float> got[2] = {std::vector<float>(size_t(L) * H * D), std::vector<float>(size_t(L) * H * D)};
        for (uint32_t pos = 0; pos < L;) {
            const uint32_t n[2] = {std::min(1 + pos % 3, L - pos), std::min(1 + (pos + 1) % 3, L - pos)};
            const uint32_t count = std::min(n[0], n[1]);
            std::vector<float> q, k, v;
            std::vector<int32_t> positions;
            for (uint32_t b = 0; b < 2; ++b)
                for (uint32_t l = pos; l < pos + count; ++l) {
                    token(seq[b].q, H, l, q);
                    token(seq[b].k, G, l, k);
                    token(seq[b].v, G, l, v);
                    positions.push_back(b == 0 ? seq[0].positions[l] : static_cast<int32_t>(l));
                }
            const VkmhaSequenceStep steps[2] = {{0, count}, {1, count}};
            VkmhaPositionsInfo pi{};
            pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
            pi.pPositionIds = positions.data();
            VkmhaHostCachedQkvSubmitInfo hi{};
            hi.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO;
            hi.pNext = &pi;
            hi.cache = cache.get();
            hi.stepCount = 2;
            hi.pSteps = steps;
            hi.pQ = q.data();
            hi.pK = k.data();
            hi.pV = v.data();
            uint64_t value = 0;
            REQUIRE_VKMHA(api().submitCachedQkv(s.session.get(), &hi, &value));
            REQUIRE_VKMHA(api().wait(s.session.get(), value, UINT64_MAX));
            std::vector<float> out(size_t(2) * count * H * D);
            REQUIRE_VKMHA(api().readOutputs(s.session.get(), value, out.data(), out.size(), nullptr, 0));
            for (uint32_t b = 0; b < 2; ++b)
                std::memcpy(got[b].data() + size_t(pos) * H * D, out.data() + size_t(b) * count * H * D,
                            size_t(count) * H * D * 4);
            pos += count;
        }
        for (uint32_t b = 0; b < 2; ++b) {
            std::vector<float> want(size_t(L) * H * D);
            to_rows(reference(m.config, m.weights, seq[b]).output, 1, H, L, D, 0, want.data());
            check_matches(got[b], want, "sequence " + std::to_string(b) + " O [L, H, D]");
        }
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("attention-only models: creation refuses bad values naming the field or tensor") {
        const VkmhaProcTable& t = api();
        OwnSetup s;
        QkvModel m(4, 2, 8, true, true);
        VkmhaModel none = nullptr;
        VkDeviceSize bytes = 0;
        auto refused = [&](VkmhaModelCreateInfo mi, VkmhaResult code, std::vector<std::string> names) {
            const VkmhaResult created = t.createModel(s.context.get(), &mi, &none);
            vkmha::test::check_failure(created, code, t.getLastError(), names, "createModel", __FILE__, __LINE__);
            const VkmhaResult sized = t.getModelMemoryRequirements(s.context.get(), &mi, &bytes);
            vkmha::test::check_failure(sized, code, t.getLastError(), names, "getModelMemoryRequirements", __FILE__,
                                       __LINE__);
            CHECK(none == nullptr);
        };
        SUBCASE("headDim 0") {
            m.info.headDim = 0;
            refused(m.create_info(), VKMHA_ERROR_INVALID_ARGUMENT, {"VkmhaModelAttentionInfo", "headDim"});
        }
        SUBCASE("numKvHeads that does not divide numHeads") {
            VkmhaModelCreateInfo mi = m.create_info();
            mi.numKvHeads = 3;
            refused(mi, VKMHA_ERROR_INVALID_ARGUMENT, {"numKvHeads", "3", "numHeads", "4"});
        }
        SUBCASE("attentionOnly 2") {
            m.info.attentionOnly = 2;
            refused(m.create_info(), VKMHA_ERROR_INVALID_ARGUMENT, {"attentionOnly", "2"});
        }
        SUBCASE("a projection tensor") {
            ProjectionModel pm;
            VkmhaModelCreateInfo mi = pm.create_info(&m.info);
            refused(mi, VKMHA_ERROR_INVALID_ARGUMENT, {"q_proj.weight", "attentionOnly", "sinks"});
        }
        SUBCASE("q_norm.weight without k_norm.weight") {
            std::vector<VkmhaTensor> views = {m.views[0]};
            VkmhaModelCreateInfo mi = m.create_info();
            mi.tensorCount = 1;
            mi.pTensors = views.data();
            refused(mi, VKMHA_ERROR_INVALID_ARGUMENT, {"q_norm.weight", "k_norm.weight"});
        }
        SUBCASE("sinks [H - 1] and q_norm.weight [D + 1]") {
            std::vector<VkmhaTensor> views = m.views;
            views[2].shape[0] = 3;
            VkmhaModelCreateInfo mi = m.create_info();
            mi.pTensors = views.data();
            refused(mi, VKMHA_ERROR_INVALID_ARGUMENT, {"sinks", "[3]", "[4]"});
            views = m.views;
            std::vector<float> longer(9, 1.0f);
            views[0].shape[0] = 9;
            views[0].pData = longer.data();
            mi.pTensors = views.data();
            refused(mi, VKMHA_ERROR_INVALID_ARGUMENT, {"q_norm.weight", "[9]", "[8]"});
        }
        SUBCASE("numHeads * headDim over 65536") {
            m.info.headDim = 1u << 15;
            refused(m.create_info(), VKMHA_ERROR_INVALID_ARGUMENT, {"headDim", "32768"});
        }
        SUBCASE("rotaryDims over headDim") {
            m.info.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
            m.info.rotaryDims = 10;
            refused(m.create_info(), VKMHA_ERROR_INVALID_ARGUMENT, {"rotaryDims", "10", "8"});
        }
        SUBCASE("headDim that contradicts the weights, on a model with projections") {
            ProjectionModel pm;
            VkmhaModelAttentionInfo ai{};
            ai.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
            ai.headDim = 16; // q_proj.weight [32, 32] / 4 heads: 8
            refused(pm.create_info(&ai), VKMHA_ERROR_INVALID_ARGUMENT, {"headDim", "16", "8"});
            ai.headDim = 8; // agrees: accepted
            const VkmhaModelCreateInfo mi = pm.create_info(&ai);
            REQUIRE_VKMHA(t.getModelMemoryRequirements(s.context.get(), &mi, &bytes));
        }
        SUBCASE("no weights without attentionOnly") {
            VkmhaModelAttentionInfo ai{};
            ai.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
            VkmhaModelCreateInfo mi{};
            mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
            mi.pNext = &ai;
            mi.numHeads = 4;
            refused(mi, VKMHA_ERROR_INVALID_ARGUMENT, {"pSafetensorsPath", "attentionOnly"});
        }
    }

    TEST_CASE("attention-only models refuse the projecting calls, the Qkv calls refuse bad values naming the field") {
        const VkmhaProcTable& t = api();
        QkvModel m(2, 2, 8, false, false);
        m.info.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
        m.config.rope.layout = RopeLayout::neox;
        OwnSetup s;
        const AttentionShape shape{1, 4, 4};
        s.create(m.create_info(), shape);
        CacheHandle cache;
        VkmhaKvCacheCreateInfo kci{};
        kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
        kci.sequences = 1;
        kci.capacity = 8;
        REQUIRE_VKMHA(t.createKvCache(s.model.get(), &kci, cache.out()));
        QkvInputs in = make_inputs(m.config, shape, 3);
        const VkmhaSequenceStep step{0, 1};
        uint64_t value = 0;
        // Any non-null handle: every refusal below comes before a buffer or command buffer is used.
        const VkBuffer fake = reinterpret_cast<VkBuffer>(uintptr_t{0x1234});
        const VkmhaBufferBinding some{fake, 0, 4096, 0, 0};

        SUBCASE("recordAttention, submit, recordCachedAttention, submitCached, createPrefillJob") {
            VkmhaHostSubmitInfo hi{};
            hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
            hi.batch = 1;
            hi.queryLength = hi.keyLength = 4;
            hi.pQuery = in.q.data();
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &hi, &value), "attention-only",
                           "submitQkv");
            VkmhaRecordInfo ri{};
            ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
            ri.completedFrame = VKMHA_NO_FRAME;
            ri.batch = 1;
            ri.queryLength = ri.keyLength = 4;
            ri.query = ri.output = some;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(s.session.get(), VK_NULL_HANDLE, &ri),
                           "attention-only", "recordAttentionQkv");
            VkmhaHostCachedSubmitInfo hci{};
            hci.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
            hci.cache = cache.get();
            hci.stepCount = 1;
            hci.pSteps = &step;
            hci.pQuery = in.q.data();
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCached(s.session.get(), &hci, &value),
                           "attention-only", "submitCachedQkv");
            VkmhaCachedRecordInfo cri{};
            cri.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
            cri.completedFrame = VKMHA_NO_FRAME;
            cri.cache = cache.get();
            cri.stepCount = 1;
            cri.pSteps = &step;
            cri.query = cri.output = some;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordCachedAttention(s.session.get(), VK_NULL_HANDLE, &cri),
                           "attention-only", "recordCachedAttentionQkv");
            VkmhaPrefillJobCreateInfo pji{};
            pji.sType = VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO;
            pji.cache = cache.get();
            pji.tokenCount = 4;
            JobHandle job;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createPrefillJob(s.model.get(), &pji, job.out()),
                           "attention-only");
            uint32_t length = 99;
            REQUIRE_VKMHA(t.getKvCacheLength(cache.get(), 0, &length));
            CHECK(length == 0); // nothing reserved or appended
        }
        SUBCASE("recordAttentionQkv") {
            VkmhaQkvRecordInfo ri{};
            ri.sType = VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO;
            ri.completedFrame = VKMHA_NO_FRAME;
            ri.batch = 1;
            ri.queryLength = ri.keyLength = 4;
            ri.q = ri.k = ri.v = ri.output = some;
            ri.k.buffer = VK_NULL_HANDLE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttentionQkv(s.session.get(), VK_NULL_HANDLE, &ri),
                           "VkmhaQkvRecordInfo::k", "not bound");
            ri.k = some;
            ri.kLayout = {32, 8, 4};
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttentionQkv(s.session.get(), VK_NULL_HANDLE, &ri),
                           "VkmhaQkvRecordInfo::kLayout.rowStride", "4", "8");
            ri.kLayout = {};
            ri.outputLayout = {64, 8, 8}; // heads and rows on the same floats
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttentionQkv(s.session.get(), VK_NULL_HANDLE, &ri),
                           "VkmhaQkvRecordInfo::outputLayout", "overlap");
            ri.outputLayout = {};
            ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttentionQkv(s.session.get(), VK_NULL_HANDLE, &ri),
                           "sType", "16");
            ri.sType = VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO;
            const int32_t keys[4] = {0, 1, 2, 3};
            VkmhaPositionsInfo pi{};
            pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
            pi.pKeyPositionIds = keys; // host memory on a record call
            ri.pNext = &pi;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttentionQkv(s.session.get(), VK_NULL_HANDLE, &ri),
                           "pKeyPositionIds", "keyPositionIds", "VkmhaQkvRecordInfo");
        }
        SUBCASE("submitQkv, submitCachedQkv and recordCachedAttentionQkv") {
            VkmhaHostQkvSubmitInfo hi{};
            hi.sType = VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO;
            hi.batch = 1;
            hi.queryLength = hi.keyLength = 4;
            hi.pQ = in.q.data();
            hi.pV = in.v.data();
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitQkv(s.session.get(), &hi, &value),
                           "VkmhaHostQkvSubmitInfo::pK", "NULL");
            hi.pK = in.k.data();
            VkmhaPositionsInfo pi{};
            pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
            pi.keyPositionIds = some;
            hi.pNext = &pi;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitQkv(s.session.get(), &hi, &value), "keyPositionIds",
                           "pKeyPositionIds");

            VkmhaHostCachedQkvSubmitInfo hci{};
            hci.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO;
            hci.cache = cache.get();
            hci.stepCount = 1;
            hci.pSteps = &step;
            hci.pQ = in.q.data();
            hci.pK = in.k.data();
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCachedQkv(s.session.get(), &hci, &value),
                           "VkmhaHostCachedQkvSubmitInfo::pV");
            hci.pV = in.v.data();
            const int32_t key_position = 5;
            pi = {};
            pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
            pi.pKeyPositionIds = &key_position; // a cached step rotates each key at its token's position
            hci.pNext = &pi;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitCachedQkv(s.session.get(), &hci, &value),
                           "pKeyPositionIds", "VkmhaHostCachedQkvSubmitInfo", "recordAttentionQkv");

            VkmhaCachedQkvRecordInfo cri{};
            cri.sType = VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO;
            cri.completedFrame = VKMHA_NO_FRAME;
            cri.cache = cache.get();
            cri.stepCount = 1;
            cri.pSteps = &step;
            cri.q = cri.k = cri.v = cri.output = some;
            cri.vLayout = {16, 8, 16};
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                           t.recordCachedAttentionQkv(s.session.get(), VK_NULL_HANDLE, &cri),
                           "VkmhaCachedQkvRecordInfo::vLayout.batchStride", "0");
            cri.vLayout = {0, 8, 2};
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                           t.recordCachedAttentionQkv(s.session.get(), VK_NULL_HANDLE, &cri),
                           "VkmhaCachedQkvRecordInfo::vLayout.rowStride", "2");
            cri.vLayout = {};
            cri.output.buffer = VK_NULL_HANDLE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                           t.recordCachedAttentionQkv(s.session.get(), VK_NULL_HANDLE, &cri),
                           "VkmhaCachedQkvRecordInfo::output");
            uint32_t length = 99;
            REQUIRE_VKMHA(t.getKvCacheLength(cache.get(), 0, &length));
            CHECK(length == 0);
        }
        SUBCASE("key positions on the calls that do not read them") {
            ProjectionModel pm;
            OwnSetup p;
            p.create(pm.create_info(nullptr), shape);
            std::vector<float> query(4 * 32, 0.25f);
            const int32_t keys[4] = {0, 1, 2, 3};
            VkmhaPositionsInfo pi{};
            pi.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
            pi.pKeyPositionIds = keys;
            VkmhaHostSubmitInfo hi{};
            hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
            hi.pNext = &pi;
            hi.batch = 1;
            hi.queryLength = hi.keyLength = 4;
            hi.pQuery = query.data();
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(p.session.get(), &hi, &value), "pKeyPositionIds",
                           "VkmhaHostSubmitInfo");
            pi.pKeyPositionIds = nullptr;
            pi.keyPositionIds = some;
            VkmhaRecordInfo ri{};
            ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
            ri.pNext = &pi;
            ri.completedFrame = VKMHA_NO_FRAME;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(p.session.get(), VK_NULL_HANDLE, &ri),
                           "keyPositionIds", "VkmhaRecordInfo");
            // The session still runs.
            hi.pNext = nullptr;
            REQUIRE_VKMHA(t.submit(p.session.get(), &hi, &value));
            REQUIRE_VKMHA(t.wait(p.session.get(), value, UINT64_MAX));
        }
        // The attention-only session is unharmed by every refusal.
        check_matches(run_submit_qkv(s.session.get(), m.config, in).output, reference(m.config, m.weights, in).output,
                      "submitQkv after the refusals");
        check_no_validation_messages(s.context.get(), s.log);
    }
}
