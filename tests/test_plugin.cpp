// The C ABI (plugin/include/vkmha/vkmha.h) as an engine sees it: libvkmha.so loaded with dlopen, every call through
// the table vkmhaGetProcTable fills, results checked against the CPU reference and every failure's message read.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

// The public header by path: the test target does not link libvkmha (nor take its include directory), on purpose.
#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "io/half.h"
#include "io/safetensors.h"
#include "support/engine_device.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace io = vkmha::io;
using vkmha::AttentionConfig;
using vkmha::AttentionOptions;
using vkmha::AttentionShape;
using vkmha::AttentionWeights;
using vkmha::MaskKind;
using vkmha::test::adopt_context;
using vkmha::test::adopt_info;
using vkmha::test::api;
using vkmha::test::check_failure;
using vkmha::test::check_no_validation_messages;
using vkmha::test::context_properties;
using vkmha::test::ContextHandle;
using vkmha::test::EngineDevice;
using vkmha::test::HostBuffer;
using vkmha::test::last_error;
using vkmha::test::Library;
using vkmha::test::library;
using vkmha::test::LogCapture;
using vkmha::test::ModelHandle;
using vkmha::test::own_context_info;
using vkmha::test::random_floats;
using vkmha::test::result_name;
using vkmha::test::SessionHandle;

// ---------------------------------------------------------------------------------------------------------------
// Models: random weights under each naming scheme, kept as the tensors handed to vkmha and as the fp32 values the
// CPU reference uses (rounded through the tensor's dtype, so F16/BF16 models compare exactly as well).

enum class Naming { torch_packed, torch_separate, llama };

struct ModelSpec {
    uint32_t embed = 16;
    uint32_t heads = 4;
    uint32_t kv_heads = 0; // llama: G (0 = heads)
    uint32_t kdim = 0;     // torch_separate: key width (0 = embed)
    uint32_t vdim = 0;     // torch_separate: value width (0 = embed)
    Naming naming = Naming::torch_packed;
    bool bias = true;
    io::DType dtype = io::DType::f32;
    uint32_t seed = 1;
};

struct HostModel {
    AttentionConfig config;
    AttentionWeights weights;
    std::vector<io::Tensor> tensors;
};

// Rounds `values` through `dtype` in place and returns the tensor holding them.
io::Tensor make_tensor(std::string name, std::vector<uint64_t> shape, std::vector<float>& values, io::DType dtype) {
    io::Tensor t;
    t.name = std::move(name);
    t.dtype = dtype;
    t.shape = std::move(shape);
    if (dtype == io::DType::f32) {
        t.data.resize(values.size() * 4);
        std::memcpy(t.data.data(), values.data(), t.data.size());
        return t;
    }
    t.data.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t bits = dtype == io::DType::f16 ? io::float_to_half(values[i]) : io::float_to_bf16(values[i]);
        values[i] = dtype == io::DType::f16 ? io::half_to_float(bits) : io::bf16_to_float(bits);
        std::memcpy(t.data.data() + 2 * i, &bits, 2);
    }
    return t;
}

std::vector<float> concat(std::initializer_list<const std::vector<float>*> parts) {
    std::vector<float> out;
    for (const std::vector<float>* p : parts) out.insert(out.end(), p->begin(), p->end());
    return out;
}

std::vector<float> slice(const std::vector<float>& v, size_t first, size_t count) {
    return std::vector<float>(v.begin() + static_cast<std::ptrdiff_t>(first),
                              v.begin() + static_cast<std::ptrdiff_t>(first + count));
}

HostModel make_model(const ModelSpec& s) {
    HostModel m;
    const uint32_t E = s.embed, H = s.heads, D = E / H;
    const uint32_t G = s.naming == Naming::llama && s.kv_heads ? s.kv_heads : H;
    const uint32_t kdim = s.naming == Naming::torch_separate && s.kdim ? s.kdim : E;
    const uint32_t vdim = s.naming == Naming::torch_separate && s.vdim ? s.vdim : E;
    m.config = {E, H, G, kdim, vdim};
    const uint32_t KV = G * D;
    std::mt19937 rng(s.seed);
    const float bound = 1.0f / std::sqrt(static_cast<float>(E));
    AttentionWeights& w = m.weights;
    w.wq = random_floats(rng, size_t(E) * E, bound);
    w.wk = random_floats(rng, size_t(KV) * kdim, bound);
    w.wv = random_floats(rng, size_t(KV) * vdim, bound);
    w.wo = random_floats(rng, size_t(E) * E, bound);
    if (s.bias) {
        w.bq = random_floats(rng, E, 0.2f);
        w.bk = random_floats(rng, KV, 0.2f);
        w.bv = random_floats(rng, KV, 0.2f);
        w.bo = random_floats(rng, E, 0.2f);
    }
    auto& t = m.tensors;
    switch (s.naming) {
    case Naming::torch_packed: {
        std::vector<float> in_proj = concat({&w.wq, &w.wk, &w.wv});
        t.push_back(make_tensor("in_proj_weight", {3ull * E, E}, in_proj, s.dtype));
        w.wq = slice(in_proj, 0, size_t(E) * E);
        w.wk = slice(in_proj, size_t(E) * E, size_t(E) * E);
        w.wv = slice(in_proj, 2 * size_t(E) * E, size_t(E) * E);
        if (s.bias) {
            std::vector<float> in_bias = concat({&w.bq, &w.bk, &w.bv});
            t.push_back(make_tensor("in_proj_bias", {3ull * E}, in_bias, s.dtype));
            w.bq = slice(in_bias, 0, E);
            w.bk = slice(in_bias, E, E);
            w.bv = slice(in_bias, 2 * size_t(E), E);
        }
        t.push_back(make_tensor("out_proj.weight", {E, E}, w.wo, s.dtype));
        if (s.bias) t.push_back(make_tensor("out_proj.bias", {E}, w.bo, s.dtype));
        break;
    }
    case Naming::torch_separate: {
        t.push_back(make_tensor("q_proj_weight", {E, E}, w.wq, s.dtype));
        t.push_back(make_tensor("k_proj_weight", {E, kdim}, w.wk, s.dtype));
        t.push_back(make_tensor("v_proj_weight", {E, vdim}, w.wv, s.dtype));
        if (s.bias) {
            std::vector<float> in_bias = concat({&w.bq, &w.bk, &w.bv});
            t.push_back(make_tensor("in_proj_bias", {3ull * E}, in_bias, s.dtype));
            w.bq = slice(in_bias, 0, E);
            w.bk = slice(in_bias, E, E);
            w.bv = slice(in_bias, 2 * size_t(E), E);
        }
        t.push_back(make_tensor("out_proj.weight", {E, E}, w.wo, s.dtype));
        if (s.bias) t.push_back(make_tensor("out_proj.bias", {E}, w.bo, s.dtype));
        break;
    }
    case Naming::llama:
        t.push_back(make_tensor("q_proj.weight", {E, E}, w.wq, s.dtype));
        t.push_back(make_tensor("k_proj.weight", {KV, E}, w.wk, s.dtype));
        t.push_back(make_tensor("v_proj.weight", {KV, E}, w.wv, s.dtype));
        t.push_back(make_tensor("o_proj.weight", {E, E}, w.wo, s.dtype));
        if (s.bias) {
            t.push_back(make_tensor("q_proj.bias", {E}, w.bq, s.dtype));
            t.push_back(make_tensor("k_proj.bias", {KV}, w.bk, s.dtype));
            t.push_back(make_tensor("v_proj.bias", {KV}, w.bv, s.dtype));
            t.push_back(make_tensor("o_proj.bias", {E}, w.bo, s.dtype));
        }
        break;
    }
    return m;
}

VkmhaDataType data_type(io::DType d) {
    switch (d) {
    case io::DType::f16: return VKMHA_DATA_TYPE_F16;
    case io::DType::bf16: return VKMHA_DATA_TYPE_BF16;
    default: return VKMHA_DATA_TYPE_F32;
    }
}

// The VkmhaTensor views of `tensors` (which must outlive them).
std::vector<VkmhaTensor> tensor_views(const std::vector<io::Tensor>& tensors) {
    std::vector<VkmhaTensor> views;
    for (const io::Tensor& t : tensors) {
        VkmhaTensor v{};
        v.pName = t.name.c_str();
        v.dataType = data_type(t.dtype);
        v.rank = static_cast<uint32_t>(t.shape.size());
        for (size_t i = 0; i < t.shape.size() && i < 4; ++i) v.shape[i] = t.shape[i];
        v.pData = t.data.data();
        views.push_back(v);
    }
    return views;
}

VkmhaModelCreateInfo model_info(uint32_t heads, const std::vector<VkmhaTensor>& views) {
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.numHeads = heads;
    mi.tensorCount = static_cast<uint32_t>(views.size());
    mi.pTensors = views.data();
    return mi;
}

void create_model(VkmhaContext context, const HostModel& m, ModelHandle& out) {
    const std::vector<VkmhaTensor> views = tensor_views(m.tensors);
    const VkmhaModelCreateInfo mi = model_info(m.config.num_heads, views);
    REQUIRE_VKMHA(api().createModel(context, &mi, out.out()));
}

void check_model_properties(VkmhaModel model, const HostModel& m) {
    VkmhaModelProperties p{};
    REQUIRE_VKMHA(api().getModelProperties(model, &p));
    CHECK(p.embedDim == m.config.embed_dim);
    CHECK(p.numHeads == m.config.num_heads);
    CHECK(p.numKvHeads == m.config.num_kv_heads);
    CHECK(p.headDim == m.config.head_dim());
    CHECK(p.kdim == m.config.kdim);
    CHECK(p.vdim == m.config.vdim);
    CHECK(p.hasInputBias == (m.weights.bq.empty() ? VK_FALSE : VK_TRUE));
    CHECK(p.hasOutputBias == (m.weights.bo.empty() ? VK_FALSE : VK_TRUE));
    CHECK(p.deviceMemoryBytes > 0);
    CHECK(p.precision == VKMHA_PRECISION_FP32); // the default
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs and the CPU reference.

struct RunInputs {
    AttentionShape shape;
    AttentionOptions options;
    std::vector<float> query, key, value; // key empty: self-attention; value empty: the key
    std::vector<uint8_t> key_padding_mask, mask_bytes;
    std::vector<float> mask_floats;
};

// Random inputs; masks leave at least one key per row unless `mask_whole_row` (row 0 of a boolean mask all masked).
RunInputs make_inputs(const AttentionConfig& c, AttentionShape shape, AttentionOptions options, bool cross,
                      bool separate_value, uint32_t seed, bool mask_whole_row = false) {
    RunInputs in;
    in.shape = shape;
    in.options = options;
    std::mt19937 rng(seed);
    const size_t B = shape.batch, Lq = shape.lq, Lk = shape.lk, H = c.num_heads;
    in.query = random_floats(rng, B * Lq * c.embed_dim, 1.0f);
    if (cross) {
        in.key = random_floats(rng, B * Lk * c.kdim, 1.0f);
        if (separate_value) in.value = random_floats(rng, B * Lk * c.vdim, 1.0f);
    }
    if (options.key_padding == MaskKind::boolean) {
        in.key_padding_mask.assign(B * Lk, 0);
        for (size_t b = 0; b < B; ++b) {
            const size_t padded = std::min(b + 1, Lk - 1); // the last b+1 keys, never all of them
            for (size_t j = Lk - padded; j < Lk; ++j) in.key_padding_mask[b * Lk + j] = 1;
        }
    }
    const size_t mask_elems = (options.attn_mask_per_head ? B * H : 1) * Lq * Lk;
    std::uniform_int_distribution<int> pick(0, 3);
    if (options.attn_mask == MaskKind::boolean) {
        in.mask_bytes.resize(mask_elems);
        for (size_t i = 0; i < mask_elems; ++i) in.mask_bytes[i] = (i % Lk != 0 && pick(rng) == 0) ? 1 : 0;
        if (mask_whole_row)
            for (size_t j = 0; j < Lk; ++j) in.mask_bytes[j] = 1;
    } else if (options.attn_mask == MaskKind::additive) {
        in.mask_floats = random_floats(rng, mask_elems, 2.0f);
        for (size_t i = 0; i < mask_elems; ++i)
            if (i % Lk != 0 && pick(rng) == 0) in.mask_floats[i] = -std::numeric_limits<float>::infinity();
    }
    return in;
}

vkmha::AttentionOutputs reference(const HostModel& m, const RunInputs& in) {
    vkmha::AttentionInputs ri;
    ri.query = in.query.data();
    ri.key = in.key.empty() ? nullptr : in.key.data();
    ri.value = in.value.empty() ? nullptr : in.value.data();
    ri.key_padding_mask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    ri.attn_mask = in.options.attn_mask == MaskKind::boolean    ? static_cast<const void*>(in.mask_bytes.data())
                   : in.options.attn_mask == MaskKind::additive ? static_cast<const void*>(in.mask_floats.data())
                                                                : nullptr;
    auto r = vkmha::reference_attention(m.config, m.weights, in.shape, in.options, ri);
    REQUIRE_MESSAGE(r.ok(), "CPU reference failed: ", r.error().message);
    return std::move(r.value());
}

VkmhaAttentionFlags flags_of(const AttentionOptions& o) {
    VkmhaAttentionFlags f = 0;
    if (o.causal) f |= VKMHA_ATTENTION_CAUSAL_BIT;
    if (o.need_weights) f |= VKMHA_ATTENTION_NEED_WEIGHTS_BIT;
    if (o.need_weights && !o.average_weights) f |= VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT;
    if (o.attn_mask_per_head) f |= VKMHA_ATTENTION_PER_HEAD_MASK_BIT;
    return f;
}

size_t output_count(const AttentionConfig& c, const RunInputs& in) {
    return size_t(in.shape.batch) * in.shape.lq * c.embed_dim;
}

size_t weights_count(const AttentionConfig& c, const RunInputs& in) {
    if (!in.options.need_weights) return 0;
    return size_t(in.shape.batch) * (in.options.average_weights ? 1 : c.num_heads) * in.shape.lq * in.shape.lk;
}

// |got - ref| <= atol + rtol |ref| everywhere (a NaN in `got` never passes); reports the max abs error.
struct Tolerance {
    double atol, rtol;
};
constexpr Tolerance kFp32Tolerance{1e-4, 1e-3};
// VKMHA_PRECISION_FP16 models: weights and Q/K/V/concat rounded to fp16 (relative 2^-11 each); tests/test_attention.cpp
// derives this bound and measures 25% of it used at worst over its sweep.
constexpr Tolerance kFp16Tolerance{1.5e-3, 1.5e-3};

void check_matches(const float* got, const std::vector<float>& ref, const std::string& what,
                   Tolerance tol = kFp32Tolerance) {
    double max_abs = 0;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double diff = std::fabs(double(got[i]) - double(ref[i]));
        const bool ok = diff <= tol.atol + tol.rtol * std::fabs(double(ref[i]));
        if (!ok && bad++ == 0) first = i;
        if (!std::isnan(diff)) max_abs = std::max(max_abs, diff);
    }
    if (bad) {
        CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", ref.size(), " values off; first at ", first, ": got ",
                      got[first], ", expected ", ref[first], "; max abs error ", max_abs);
    } else {
        CHECK(bad == 0);
        MESSAGE(what, ": ", ref.size(), " values match, max abs error ", max_abs);
    }
}

VkmhaHostSubmitInfo host_submit_info(const RunInputs& in) {
    VkmhaHostSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
    hi.batch = in.shape.batch;
    hi.queryLength = in.shape.lq;
    hi.keyLength = in.shape.lk;
    hi.flags = flags_of(in.options);
    hi.keyPaddingMaskType = static_cast<VkmhaMaskType>(in.options.key_padding);
    hi.attnMaskType = static_cast<VkmhaMaskType>(in.options.attn_mask);
    hi.pQuery = in.query.data();
    hi.pKey = in.key.empty() ? nullptr : in.key.data();
    hi.pValue = in.value.empty() ? nullptr : in.value.data();
    hi.pKeyPaddingMask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    hi.pAttnMask = in.options.attn_mask == MaskKind::boolean    ? static_cast<const void*>(in.mask_bytes.data())
                   : in.options.attn_mask == MaskKind::additive ? static_cast<const void*>(in.mask_floats.data())
                                                                : nullptr;
    return hi;
}

VkmhaSessionCreateInfo session_info(uint32_t batch, uint32_t lq, uint32_t lk, bool host_io, uint32_t frames = 0) {
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = batch;
    si.maxQueryLength = lq;
    si.maxKeyLength = lk;
    si.framesInFlight = frames;
    si.hostIo = host_io ? VK_TRUE : VK_FALSE;
    // These tests submit weights and per-head masks through host I/O: stage both.
    if (host_io) si.flags = VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT | VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT;
    return si;
}

// submit, wait, readOutputs, compared with the CPU reference.
void run_and_check(VkmhaSession session, const HostModel& m, const RunInputs& in, const std::string& what,
                   Tolerance tol = kFp32Tolerance) {
    const VkmhaHostSubmitInfo hi = host_submit_info(in);
    uint64_t value = 0;
    REQUIRE_VKMHA(api().submit(session, &hi, &value));
    CHECK(value > 0);
    REQUIRE_VKMHA(api().wait(session, value, UINT64_MAX));
    std::vector<float> output(output_count(m.config, in), std::nanf(""));
    std::vector<float> weights(weights_count(m.config, in), std::nanf(""));
    REQUIRE_VKMHA(api().readOutputs(session, value, output.data(), output.size(),
                                    weights.empty() ? nullptr : weights.data(), weights.size()));
    const vkmha::AttentionOutputs ref = reference(m, in);
    check_matches(output.data(), ref.output, what + " output", tol);
    if (in.options.need_weights) {
        REQUIRE(ref.weights.size() == weights.size());
        check_matches(weights.data(), ref.weights, what + " weights", tol);
    }
}

// A model in a fresh own-mode context with a host-I/O session, checked once against the reference.
struct OwnSetup {
    LogCapture log;
    ContextHandle context;
    HostModel host;
    ModelHandle model;
    SessionHandle session;

    OwnSetup(const ModelSpec& spec, const VkmhaSessionCreateInfo& si) : host(make_model(spec)) {
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        create_model(context.get(), host, model);
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
    }
    // One successful run: proves the handles still work after whatever came before.
    void check_still_works(const std::string& what) {
        AttentionOptions o;
        const bool cross = host.config.kdim != host.config.embed_dim || host.config.vdim != host.config.embed_dim;
        const RunInputs in = make_inputs(host.config, {1, 3, 3}, o, cross, cross, 99);
        run_and_check(session.get(), host, in, what);
        check_no_validation_messages(context.get(), log);
    }
};

// ---------------------------------------------------------------------------------------------------------------
// Adopt mode: the engine's buffers and command buffers.

// An engine-owned buffer with `bytes` of payload at `offset`, the rest (before and `tail` after) guard bytes.
struct EngineBuffer {
    HostBuffer buffer;
    VkDeviceSize offset = 0;
    VkDeviceSize range = 0;
    uint8_t guard = 0;

    uint8_t* payload() const { return buffer.bytes() + offset; }
    VkmhaBufferBinding binding(VkPipelineStageFlags stage = 0, VkAccessFlags access = 0) const {
        return VkmhaBufferBinding{buffer.buffer(), offset, range, stage, access};
    }
    // Whether every byte outside [offset, offset + range) still holds the guard.
    bool guards_intact() const {
        for (VkDeviceSize i = 0; i < buffer.size(); ++i)
            if ((i < offset || i >= offset + range) && buffer.bytes()[i] != guard) return false;
        return true;
    }
};

EngineBuffer engine_buffer(EngineDevice& e, const void* data, size_t bytes, VkDeviceSize offset, VkDeviceSize tail,
                           uint8_t guard) {
    EngineBuffer b;
    b.buffer = e.create_host_buffer(offset + bytes + tail);
    REQUIRE(b.buffer);
    b.offset = offset;
    b.range = bytes;
    b.guard = guard;
    std::memset(b.buffer.bytes(), guard, b.buffer.size());
    if (data) std::memcpy(b.payload(), data, bytes);
    return b;
}

void begin(VkCommandBuffer cmd) {
    REQUIRE(vkResetCommandBuffer(cmd, 0) == VK_SUCCESS);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    REQUIRE(vkBeginCommandBuffer(cmd, &bi) == VK_SUCCESS);
}

// The engine's side of the exit contract: outputs were last written by compute shaders; the host reads them next.
void barrier_to_host(VkCommandBuffer cmd) {
    VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    b.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &b, 0, nullptr, 0,
                         nullptr);
}

void end_submit_wait(const EngineDevice& e, VkCommandBuffer cmd, VkFence fence) {
    REQUIRE(vkEndCommandBuffer(cmd) == VK_SUCCESS);
    REQUIRE(vkResetFences(e.device(), 1, &fence) == VK_SUCCESS);
    REQUIRE(e.submit(cmd, fence) == VK_SUCCESS);
    REQUIRE(vkWaitForFences(e.device(), 1, &fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
}

VkmhaRecordInfo record_info(uint64_t frame, uint64_t completed, const RunInputs& in) {
    VkmhaRecordInfo ri{};
    ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
    ri.frameIndex = frame;
    ri.completedFrame = completed;
    ri.batch = in.shape.batch;
    ri.queryLength = in.shape.lq;
    ri.keyLength = in.shape.lk;
    ri.flags = flags_of(in.options);
    ri.keyPaddingMaskType = static_cast<VkmhaMaskType>(in.options.key_padding);
    ri.attnMaskType = static_cast<VkmhaMaskType>(in.options.attn_mask);
    return ri;
}

// Engine objects around a vkmha context: declared before the vkmha handles so that they are destroyed after them.
struct EngineObjects {
    EngineDevice& engine;
    VkCommandPool pool = VK_NULL_HANDLE;
    std::vector<VkFence> fences;

    explicit EngineObjects(EngineDevice& e) : engine(e) {
        pool = e.create_command_pool();
        REQUIRE(pool != VK_NULL_HANDLE);
    }
    VkCommandBuffer command_buffer() {
        VkCommandBuffer cmd = engine.allocate_command_buffer(pool);
        REQUIRE(cmd != VK_NULL_HANDLE);
        return cmd;
    }
    VkFence fence() {
        VkFence f = engine.create_fence();
        REQUIRE(f != VK_NULL_HANDLE);
        fences.push_back(f);
        return f;
    }
    ~EngineObjects() {
        if (!engine.ok()) return;
        vkDeviceWaitIdle(engine.device());
        for (VkFence f : fences) vkDestroyFence(engine.device(), f, nullptr);
        vkDestroyCommandPool(engine.device(), pool, nullptr);
    }
};

void require_engine(const EngineDevice& e) { REQUIRE_MESSAGE(e.ok(), "engine device: ", e.error()); }

// Allocation callbacks an engine might pass in adopt mode: malloc-backed, aligned, counting what is still live.
class CountingAllocator {
  public:
    VkAllocationCallbacks callbacks() {
        VkAllocationCallbacks c{};
        c.pUserData = this;
        c.pfnAllocation = &allocate;
        c.pfnReallocation = &reallocate;
        c.pfnFree = &release;
        return c;
    }
    int64_t live() const { return m_live.load(); }
    int64_t total() const { return m_total.load(); }

  private:
    struct Header {
        void* base;
        size_t size;
    };
    static VKAPI_ATTR void* VKAPI_CALL allocate(void* user, size_t size, size_t alignment, VkSystemAllocationScope) {
        size = std::max<size_t>(size, 1); // drivers ask for 0 bytes and read NULL as out of memory
        alignment = std::max(alignment, alignof(Header));
        void* base = std::malloc(size + alignment + sizeof(Header));
        if (!base) return nullptr;
        uintptr_t p = reinterpret_cast<uintptr_t>(base) + sizeof(Header);
        p = (p + alignment - 1) & ~(uintptr_t(alignment) - 1);
        Header* h = reinterpret_cast<Header*>(p) - 1;
        h->base = base;
        h->size = size;
        auto* self = static_cast<CountingAllocator*>(user);
        self->m_live.fetch_add(1);
        self->m_total.fetch_add(1);
        return reinterpret_cast<void*>(p);
    }
    static VKAPI_ATTR void* VKAPI_CALL reallocate(void* user, void* original, size_t size, size_t alignment,
                                                  VkSystemAllocationScope scope) {
        if (!original) return allocate(user, size, alignment, scope);
        if (size == 0) {
            release(user, original);
            return nullptr;
        }
        void* fresh = allocate(user, size, alignment, scope);
        if (!fresh) return nullptr;
        std::memcpy(fresh, original, std::min(size, (reinterpret_cast<Header*>(original) - 1)->size));
        release(user, original);
        return fresh;
    }
    static VKAPI_ATTR void VKAPI_CALL release(void* user, void* memory) {
        if (!memory) return;
        std::free((reinterpret_cast<Header*>(memory) - 1)->base);
        static_cast<CountingAllocator*>(user)->m_live.fetch_sub(1);
    }
    std::atomic<int64_t> m_live{0};
    std::atomic<int64_t> m_total{0};
};

// A dispatch shim over the engine's vkQueueSubmit that counts overlapping calls (the queue must be externally
// synchronised) and lingers inside each call so that an unsynchronised caller overlaps almost surely.
namespace submit_watch {
PFN_vkGetDeviceProcAddr g_real_gdpa = nullptr;
PFN_vkQueueSubmit g_real_submit = nullptr;
std::atomic<int> g_inside{0};
std::atomic<int> g_overlaps{0};
std::atomic<int> g_calls{0};

VKAPI_ATTR VkResult VKAPI_CALL queue_submit(VkQueue queue, uint32_t count, const VkSubmitInfo* submits, VkFence fence) {
    if (g_inside.fetch_add(1) != 0) g_overlaps.fetch_add(1);
    g_calls.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const VkResult r = g_real_submit(queue, count, submits, fence);
    g_inside.fetch_sub(1);
    return r;
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL get_device_proc_addr(VkDevice device, const char* name) {
    if (std::strcmp(name, "vkQueueSubmit") == 0) return reinterpret_cast<PFN_vkVoidFunction>(&queue_submit);
    return g_real_gdpa(device, name);
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL get_instance_proc_addr(VkInstance instance, const char* name) {
    if (std::strcmp(name, "vkGetDeviceProcAddr") == 0)
        return reinterpret_cast<PFN_vkVoidFunction>(&get_device_proc_addr);
    if (std::strcmp(name, "vkQueueSubmit") == 0) return reinterpret_cast<PFN_vkVoidFunction>(&queue_submit);
    return vkGetInstanceProcAddr(instance, name);
}
} // namespace submit_watch

void check_engine_quiet(const EngineDevice& e) {
    CHECK_MESSAGE(e.validation_messages() == 0, "the engine's messenger saw ", e.validation_messages(),
                  " validation messages; last: ", e.last_validation_message());
}

} // namespace

// =================================================================================================================

TEST_SUITE("plugin") {

    TEST_CASE("vkmhaGetProcTable: negotiates the version and fills only tableSize bytes") {
        // A program that does not link libvkmha finds the entry point only through dlopen.
        CHECK(dlsym(RTLD_DEFAULT, "vkmhaGetProcTable") == nullptr);
        const Library& lib = library();
        REQUIRE_MESSAGE(lib.error.empty(), lib.error);
        const PFN_vkmhaGetProcTable get = lib.get_proc_table;
        const VkmhaProcTable& t = api();

        SUBCASE("the header version fills every entry") {
            VkmhaProcTable full{};
            REQUIRE(get(VKMHA_HEADER_VERSION, &full, sizeof full) == VKMHA_SUCCESS);
            CHECK(VKMHA_API_VERSION_MAJOR(full.apiVersion) == 1);
            CHECK(VKMHA_API_VERSION_MINOR(full.apiVersion) >= VKMHA_API_VERSION_MINOR(VKMHA_HEADER_VERSION));
            const void* entries[] = {reinterpret_cast<const void*>(full.getLastError),
                                     reinterpret_cast<const void*>(full.getDeviceRequirements),
                                     reinterpret_cast<const void*>(full.enumerateDevices),
                                     reinterpret_cast<const void*>(full.createContext),
                                     reinterpret_cast<const void*>(full.destroyContext),
                                     reinterpret_cast<const void*>(full.getContextProperties),
                                     reinterpret_cast<const void*>(full.getPipelineCacheData),
                                     reinterpret_cast<const void*>(full.createModel),
                                     reinterpret_cast<const void*>(full.destroyModel),
                                     reinterpret_cast<const void*>(full.getModelMemoryRequirements),
                                     reinterpret_cast<const void*>(full.getModelProperties),
                                     reinterpret_cast<const void*>(full.getSessionMemoryRequirements),
                                     reinterpret_cast<const void*>(full.createSession),
                                     reinterpret_cast<const void*>(full.destroySession),
                                     reinterpret_cast<const void*>(full.recordAttention),
                                     reinterpret_cast<const void*>(full.getStageTimings),
                                     reinterpret_cast<const void*>(full.submit),
                                     reinterpret_cast<const void*>(full.wait),
                                     reinterpret_cast<const void*>(full.readOutputs),
                                     reinterpret_cast<const void*>(full.stageName)};
            for (size_t i = 0; i < std::size(entries); ++i)
                CHECK_MESSAGE(entries[i] != nullptr, "entry ", i, " is NULL");
            // A different patch level of the same version is accepted.
            VkmhaProcTable patched{};
            CHECK(get(VKMHA_MAKE_API_VERSION(1, 0, 7), &patched, sizeof patched) == VKMHA_SUCCESS);
            CHECK((patched.createContext != nullptr));
        }

        SUBCASE("a newer minor, another major or an older major is refused, naming the version") {
            struct Case {
                uint32_t version;
                const char* text;
            };
            for (const Case c :
                 {Case{VKMHA_MAKE_API_VERSION(2, 0, 0), "2.0"}, Case{VKMHA_MAKE_API_VERSION(1, 99, 0), "1.99"},
                  Case{VKMHA_MAKE_API_VERSION(0, 9, 0), "0.9"}}) {
                CAPTURE(std::string(c.text));
                VkmhaProcTable untouched;
                std::memset(&untouched, 0xAB, sizeof untouched);
                const VkmhaResult r = get(c.version, &untouched, sizeof untouched);
                const std::string message = t.getLastError();
                CHECK(r == VKMHA_ERROR_VERSION_NOT_SUPPORTED);
                CHECK_MESSAGE(message.find(c.text) != std::string::npos, message);
                bool all_ab = true;
                for (size_t i = 0; i < sizeof untouched; ++i)
                    all_ab = all_ab && reinterpret_cast<const uint8_t*>(&untouched)[i] == 0xAB;
                CHECK_MESSAGE(all_ab, "a refused negotiation wrote into the table");
            }
        }

        SUBCASE("a NULL table or a table too small for anything is refused") {
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, get(VKMHA_HEADER_VERSION, nullptr, sizeof(VkmhaProcTable)),
                           "pTable");
            VkmhaProcTable tiny{};
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, get(VKMHA_HEADER_VERSION, &tiny, sizeof(uint32_t)),
                           "tableSize", "4");
        }

        SUBCASE("an older caller's shorter table is filled only up to tableSize") {
            VkmhaProcTable partial;
            std::memset(&partial, 0xCD, sizeof partial);
            const size_t size = offsetof(VkmhaProcTable, createContext);
            REQUIRE(get(VKMHA_HEADER_VERSION, &partial, size) == VKMHA_SUCCESS);
            CHECK((partial.getLastError == t.getLastError));
            CHECK((partial.getDeviceRequirements != nullptr));
            CHECK((partial.enumerateDevices != nullptr));
            const auto* bytes = reinterpret_cast<const uint8_t*>(&partial);
            bool rest_untouched = true;
            for (size_t i = size; i < sizeof partial; ++i) rest_untouched = rest_untouched && bytes[i] == 0xCD;
            CHECK_MESSAGE(rest_untouched, "bytes past tableSize were written");
        }

        SUBCASE("a newer caller's longer table gets what the library knows, the rest untouched") {
            std::array<uint8_t, sizeof(VkmhaProcTable) + 64> bigger;
            bigger.fill(0xEE);
            REQUIRE(get(VKMHA_HEADER_VERSION, reinterpret_cast<VkmhaProcTable*>(bigger.data()), bigger.size()) ==
                    VKMHA_SUCCESS);
            bool tail_untouched = true;
            for (size_t i = sizeof(VkmhaProcTable); i < bigger.size(); ++i)
                tail_untouched = tail_untouched && bigger[i] == 0xEE;
            CHECK_MESSAGE(tail_untouched, "the library wrote past the table it knows");
            VkmhaProcTable known{};
            std::memcpy(&known, bigger.data(), sizeof known);
            CHECK((known.stageName == t.stageName));
        }

        SUBCASE("getLastError is per thread") {
            VkmhaDeviceRequirements* none = nullptr;
            REQUIRE(t.getDeviceRequirements(none) == VKMHA_ERROR_INVALID_ARGUMENT);
            const std::string here = t.getLastError();
            std::string there = "(not run)";
            std::thread other([&] { there = t.getLastError(); });
            other.join();
            CHECK(!here.empty());
            CHECK(there.empty());
            CHECK(std::string(t.getLastError()) == here);
        }
    }

    TEST_CASE("getDeviceRequirements: names what an engine must enable") {
        const VkmhaProcTable& t = api();
        VkmhaDeviceRequirements req{};
        REQUIRE_VKMHA(t.getDeviceRequirements(&req));
        CHECK(req.minApiVersion >= VK_API_VERSION_1_1);
        CHECK(req.minApiVersion <= VK_API_VERSION_1_3);
        CHECK(req.wantsTimelineSemaphore == VK_TRUE);
        CHECK(req.wantsStorageBuffer16BitAccess == VK_TRUE);
        auto check_names = [](uint32_t count, const char* const* names) {
            if (count) REQUIRE(names != nullptr);
            for (uint32_t i = 0; i < count; ++i) {
                REQUIRE(names[i] != nullptr);
                CHECK(std::strlen(names[i]) > 3);
                CHECK(std::string_view(names[i]).substr(0, 3) == "VK_");
            }
        };
        check_names(req.requiredDeviceExtensionCount, req.ppRequiredDeviceExtensions);
        check_names(req.optionalDeviceExtensionCount, req.ppOptionalDeviceExtensions);
        check_names(req.optionalInstanceExtensionCount, req.ppOptionalInstanceExtensions);
        bool debug_utils = false;
        for (uint32_t i = 0; i < req.optionalInstanceExtensionCount; ++i)
            debug_utils =
                debug_utils || std::strcmp(req.ppOptionalInstanceExtensions[i], VK_EXT_DEBUG_UTILS_EXTENSION_NAME) == 0;
        CHECK(debug_utils);

        // The test device (what the adopt tests use) offers every required extension and the minimum version.
        EngineDevice engine;
        require_engine(engine);
        VkPhysicalDeviceProperties props{};
        vkGetPhysicalDeviceProperties(engine.physical_device(), &props);
        CHECK(props.apiVersion >= req.minApiVersion);
        uint32_t count = 0;
        vkEnumerateDeviceExtensionProperties(engine.physical_device(), nullptr, &count, nullptr);
        std::vector<VkExtensionProperties> available(count);
        vkEnumerateDeviceExtensionProperties(engine.physical_device(), nullptr, &count, available.data());
        for (uint32_t i = 0; i < req.requiredDeviceExtensionCount; ++i) {
            const bool found = std::any_of(available.begin(), available.end(), [&](const VkExtensionProperties& e) {
                return std::strcmp(e.extensionName, req.ppRequiredDeviceExtensions[i]) == 0;
            });
            CHECK_MESSAGE(found, std::string(req.ppRequiredDeviceExtensions[i]));
        }

        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getDeviceRequirements(nullptr), "pRequirements");
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE("own mode: the default device's context describes itself") {
        const VkmhaProcTable& t = api();
        uint32_t count = 0;
        REQUIRE_VKMHA(t.enumerateDevices(&count, nullptr));
        REQUIRE(count >= 1);
        std::vector<std::array<char, 256>> names(count);
        uint32_t capacity = count;
        REQUIRE_VKMHA(t.enumerateDevices(&capacity, reinterpret_cast<char(*)[256]>(names.data())));
        CHECK(capacity == count);

        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log); // pOwnDevice NULL: the best device
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        const VkmhaContextProperties p = context_properties(context.get());
        CHECK(p.sType == VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES);
        CHECK(std::strlen(p.deviceName) > 0);
        CHECK(p.deviceApiVersion >= VK_API_VERSION_1_1);
        CHECK(p.ownsDevice == VK_TRUE);
        CHECK(p.canSubmit == VK_TRUE);
        CHECK(p.debugUtils == VK_TRUE); // the validation layer's run always has VK_EXT_debug_utils
        CHECK(p.subgroupSize >= 1);
        CHECK(p.maxStorageBufferRange >= 1u << 20);
        CHECK(p.validationMessageCount == 0);
        bool listed = false;
        for (const auto& n : names) listed = listed || std::strcmp(n.data(), p.deviceName) == 0;
        CHECK_MESSAGE(listed, std::string(p.deviceName), " is not among enumerateDevices' names");

        // The same device by index and by a piece of its name, in another case.
        int32_t index = -1;
        for (size_t i = 0; i < names.size() && index < 0; ++i)
            if (std::strcmp(names[i].data(), p.deviceName) == 0) index = static_cast<int32_t>(i);
        std::string piece(p.deviceName, std::min<size_t>(std::strlen(p.deviceName), 6));
        std::transform(piece.begin(), piece.end(), piece.begin(), [](char ch) {
            return static_cast<char>(std::isupper(static_cast<unsigned char>(ch)) ? std::tolower(ch)
                                                                                  : std::toupper(ch));
        });
        VkmhaOwnDeviceInfo by_index{VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO, nullptr, index, nullptr};
        VkmhaOwnDeviceInfo by_name{VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO, nullptr, -1, piece.c_str()};
        for (const VkmhaOwnDeviceInfo* own : {&by_index, &by_name}) {
            VkmhaContextCreateInfo ci2 = own_context_info(&log);
            ci2.pOwnDevice = own;
            ContextHandle other;
            REQUIRE_VKMHA(t.createContext(&ci2, other.out()));
            CHECK(std::strcmp(context_properties(other.get()).deviceName, p.deviceName) == 0);
            check_no_validation_messages(other.get(), log);
        }
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("own mode: models from in-memory tensors match the CPU reference") {
        ModelSpec spec;
        std::string what;
        SUBCASE("PyTorch packed in_proj, F32, biases") {
            spec.naming = Naming::torch_packed;
            what = "packed f32";
        }
        SUBCASE("PyTorch separate projections, F16, kdim 12 / vdim 20") {
            spec.naming = Naming::torch_separate;
            spec.kdim = 12;
            spec.vdim = 20;
            spec.dtype = io::DType::f16;
            what = "separate f16";
        }
        SUBCASE("Llama names, GQA (4 heads, 2 KV heads inferred), F32, no biases") {
            spec.naming = Naming::llama;
            spec.kv_heads = 2;
            spec.bias = false;
            what = "llama gqa f32";
        }
        SUBCASE("Llama names, multi-query (8 heads, 1 KV head), BF16, biases") {
            spec.naming = Naming::llama;
            spec.embed = 32;
            spec.heads = 8;
            spec.kv_heads = 1;
            spec.dtype = io::DType::bf16;
            what = "llama mqa bf16";
        }
        OwnSetup s(spec, session_info(3, 7, 129, true));
        check_model_properties(s.model.get(), s.host);
        AttentionOptions o;
        o.need_weights = true;
        const RunInputs in = make_inputs(s.host.config, {3, 7, 129}, o, true, true, 5);
        run_and_check(s.session.get(), s.host, in, what);
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("own mode: a model from a safetensors path matches the CPU reference") {
        ModelSpec spec;
        spec.naming = Naming::llama;
        spec.embed = 24;
        spec.heads = 6;
        spec.kv_heads = 3;
        spec.dtype = io::DType::f16;
        const HostModel host = make_model(spec);
        const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                           ("vkmha-test-plugin-" + std::to_string(::getpid()) + ".safetensors");
        const auto written = io::write_safetensors(path.string(), host.tensors);
        REQUIRE_MESSAGE(written.ok(), (written.ok() ? std::string() : written.error().message));

        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        VkmhaModelCreateInfo mi{};
        mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
        mi.numHeads = spec.heads;
        const std::string path_text = path.string();
        mi.pSafetensorsPath = path_text.c_str();
        ModelHandle model;
        const VkmhaResult created = api().createModel(context.get(), &mi, model.out());
        const std::string message = api().getLastError();
        std::filesystem::remove(path);
        REQUIRE_MESSAGE(created == VKMHA_SUCCESS, message);
        check_model_properties(model.get(), host);
        SessionHandle session;
        const VkmhaSessionCreateInfo si = session_info(2, 5, 9, true);
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
        AttentionOptions o;
        o.causal = true;
        o.need_weights = true;
        o.average_weights = false;
        run_and_check(session.get(), host, make_inputs(host.config, {2, 5, 9}, o, true, true, 11), "safetensors gqa");
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("own mode: submit matches the CPU reference on awkward shapes and options") {
        struct Case {
            const char* name;
            AttentionShape shape;
            bool cross, separate_value;
            AttentionOptions options;
            bool mask_whole_row;
        };
        AttentionOptions plain, kpm, bool_mask, additive, per_head_mask, causal, averaged, per_head, everything;
        kpm.key_padding = MaskKind::boolean;
        bool_mask.attn_mask = MaskKind::boolean;
        additive.attn_mask = MaskKind::additive;
        per_head_mask.attn_mask = MaskKind::additive;
        per_head_mask.attn_mask_per_head = true;
        causal.causal = true;
        averaged.need_weights = true;
        per_head.need_weights = true;
        per_head.average_weights = false;
        everything.causal = true;
        everything.key_padding = MaskKind::boolean;
        everything.attn_mask = MaskKind::boolean;
        everything.attn_mask_per_head = true;
        everything.need_weights = true;
        everything.average_weights = false;
        const Case cases[] = {
            {"self-attention b3 lq7", {3, 7, 7}, false, false, plain, false},
            {"cross b3 lq7 lk129", {3, 7, 129}, true, true, plain, false},
            {"cross, value = key", {3, 7, 129}, true, false, plain, false},
            {"key padding mask", {3, 7, 129}, true, true, kpm, false},
            {"bool attn mask", {3, 7, 129}, true, true, bool_mask, false},
            {"bool attn mask, a fully masked row", {3, 7, 129}, true, true, bool_mask, true},
            {"additive mask with -inf", {3, 7, 129}, true, true, additive, false},
            {"per-head additive mask", {3, 7, 129}, true, true, per_head_mask, false},
            {"causal lq7 lk129", {3, 7, 129}, true, true, causal, false},
            {"causal self-attention", {3, 7, 7}, false, false, causal, false},
            {"need_weights averaged", {3, 7, 129}, true, true, averaged, false},
            {"need_weights per head", {3, 7, 129}, true, true, per_head, false},
            {"causal + padding + per-head bool mask + per-head weights", {3, 7, 129}, true, true, everything, false},
            {"one of everything", {1, 1, 1}, true, true, averaged, false},
        };
        ModelSpec spec;
        std::string model_name;
        SUBCASE("PyTorch MHA, E 16, H 4") { model_name = "mha"; }
        SUBCASE("Llama GQA, E 32, H 8, G 2") {
            spec.naming = Naming::llama;
            spec.embed = 32;
            spec.heads = 8;
            spec.kv_heads = 2;
            model_name = "gqa";
        }
        OwnSetup s(spec, session_info(3, 7, 129, true));
        uint32_t seed = 100;
        for (const Case& c : cases) {
            CAPTURE(std::string(c.name));
            const RunInputs in =
                make_inputs(s.host.config, c.shape, c.options, c.cross, c.separate_value, seed++, c.mask_whole_row);
            run_and_check(s.session.get(), s.host, in, model_name + ": " + c.name);
        }
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("own mode: wait(0) polls and readOutputs never hands out partial results") {
        OwnSetup s(ModelSpec{}, session_info(3, 32, 256, true, 2));
        AttentionOptions o;
        o.need_weights = true;
        const RunInputs in = make_inputs(s.host.config, {3, 32, 256}, o, true, true, 21);
        const vkmha::AttentionOutputs ref = reference(s.host, in);
        const VkmhaHostSubmitInfo hi = host_submit_info(in);
        uint64_t value = 0;
        REQUIRE_VKMHA(api().submit(s.session.get(), &hi, &value));

        // Straight after submit: either still running (nothing copied) or complete (the real results).
        std::vector<float> early(output_count(s.host.config, in), std::nanf(""));
        const VkmhaResult early_read =
            api().readOutputs(s.session.get(), value, early.data(), early.size(), nullptr, 0);
        CHECK_MESSAGE((early_read == VKMHA_NOT_READY || early_read == VKMHA_SUCCESS), result_name(early_read), ": ",
                      last_error());
        if (early_read == VKMHA_NOT_READY)
            CHECK_MESSAGE(std::all_of(early.begin(), early.end(), [](float x) { return std::isnan(x); }),
                          "readOutputs wrote into the output while the submission was running");
        else
            check_matches(early.data(), ref.output, "early read");

        int polls = 0;
        VkmhaResult polled = VKMHA_TIMEOUT;
        const auto start = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - start < std::chrono::seconds(120)) {
            polled = api().wait(s.session.get(), value, 0);
            ++polls;
            if (polled != VKMHA_TIMEOUT) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        REQUIRE_MESSAGE(polled == VKMHA_SUCCESS, result_name(polled), ": ", last_error());
        MESSAGE("wait(timeout 0) polled ", polls, " times");
        std::vector<float> output(output_count(s.host.config, in));
        std::vector<float> weights(weights_count(s.host.config, in));
        REQUIRE_VKMHA(
            api().readOutputs(s.session.get(), value, output.data(), output.size(), weights.data(), weights.size()));
        check_matches(output.data(), ref.output, "polled output");
        check_matches(weights.data(), ref.weights, "polled weights");
        CHECK(api().wait(s.session.get(), value, 0) == VKMHA_SUCCESS); // a reached value stays reached
        std::vector<float> weights_only(weights.size(), std::nanf(""));
        REQUIRE_VKMHA(api().readOutputs(s.session.get(), value, nullptr, 0, weights_only.data(), weights_only.size()));
        check_matches(weights_only.data(), ref.weights, "weights read alone");

        // Submissions rotate through framesInFlight slots: each value reads back its own inputs' result until its slot
        // is reused, and then says so instead of returning another submission's data.
        std::vector<RunInputs> runs;
        std::vector<uint64_t> values;
        for (uint32_t i = 0; i < 3; ++i) {
            runs.push_back(make_inputs(s.host.config, {2, 5, 17}, AttentionOptions{}, true, true, 30 + i));
            const VkmhaHostSubmitInfo info = host_submit_info(runs.back());
            uint64_t v = 0;
            REQUIRE_VKMHA(api().submit(s.session.get(), &info, &v));
            if (!values.empty()) CHECK(v > values.back());
            values.push_back(v);
        }
        for (uint32_t i = 1; i < 3; ++i) {
            REQUIRE_VKMHA(api().wait(s.session.get(), values[i], UINT64_MAX));
            std::vector<float> out(output_count(s.host.config, runs[i]));
            REQUIRE_VKMHA(api().readOutputs(s.session.get(), values[i], out.data(), out.size(), nullptr, 0));
            check_matches(out.data(), reference(s.host, runs[i]).output, "rotating submission " + std::to_string(i));
        }
        std::vector<float> stale(output_count(s.host.config, runs[0]), std::nanf(""));
        const VkmhaResult stale_read =
            api().readOutputs(s.session.get(), values[0], stale.data(), stale.size(), nullptr, 0);
        const std::string stale_message = api().getLastError();
        CHECK_MESSAGE(stale_read < 0, "reading a submission whose slot was reused returned ", result_name(stale_read));
        CHECK_MESSAGE(stale_message.find(std::to_string(values[0])) != std::string::npos, stale_message);
        CHECK(std::all_of(stale.begin(), stale.end(), [](float x) { return std::isnan(x); }));
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("adopt mode: sessions on different threads submit concurrently without racing on the queue") {
        // The header allows calls on different sessions from different threads at once. Their submits share the
        // context's VkQueue, which Vulkan requires to be externally synchronised: vkmha's job, not the caller's. The
        // engine hands vkmha a vkGetInstanceProcAddr whose vkQueueSubmit notices overlapping calls (and lingers, to
        // make any overlap likely), as an engine's own dispatch layer could.
        EngineDevice engine;
        require_engine(engine);
        submit_watch::g_real_gdpa =
            reinterpret_cast<PFN_vkGetDeviceProcAddr>(vkGetInstanceProcAddr(engine.instance(), "vkGetDeviceProcAddr"));
        submit_watch::g_real_submit =
            reinterpret_cast<PFN_vkQueueSubmit>(vkGetDeviceProcAddr(engine.device(), "vkQueueSubmit"));
        submit_watch::g_overlaps = 0;
        submit_watch::g_calls = 0;
        {
            ContextHandle context;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.pfnGetInstanceProcAddr = &submit_watch::get_instance_proc_addr;
            ci.pAdoptDevice = &adopt;
            REQUIRE_VKMHA(api().createContext(&ci, context.out()));
            const HostModel host = make_model(ModelSpec{});
            ModelHandle model;
            create_model(context.get(), host, model);
            constexpr int kThreads = 3, kRuns = 8;
            std::array<SessionHandle, kThreads> sessions;
            const VkmhaSessionCreateInfo si = session_info(1, 4, 6, true, 2);
            for (SessionHandle& session : sessions) REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
            std::vector<RunInputs> inputs;
            std::vector<std::vector<float>> expected;
            for (int i = 0; i < kThreads; ++i) {
                inputs.push_back(
                    make_inputs(host.config, {1, 4, 6}, AttentionOptions{}, true, true, 900 + uint32_t(i)));
                expected.push_back(reference(host, inputs.back()).output);
            }
            std::array<std::string, kThreads> failures;
            std::vector<std::thread> threads;
            for (int i = 0; i < kThreads; ++i) {
                threads.emplace_back([&, i] {
                    const size_t at = size_t(i);
                    const VkmhaHostSubmitInfo hi = host_submit_info(inputs[at]);
                    std::vector<float> out(expected[at].size());
                    for (int run = 0; run < kRuns && failures[at].empty(); ++run) {
                        // Two back-to-back submits (two slots: the second waits for nothing), then check the latest.
                        uint64_t value = 0;
                        VkmhaResult r = api().submit(sessions[at].get(), &hi, &value);
                        if (r == VKMHA_SUCCESS) r = api().submit(sessions[at].get(), &hi, &value);
                        if (r == VKMHA_SUCCESS) r = api().wait(sessions[at].get(), value, UINT64_MAX);
                        if (r == VKMHA_SUCCESS)
                            r = api().readOutputs(sessions[at].get(), value, out.data(), out.size(), nullptr, 0);
                        if (r != VKMHA_SUCCESS) {
                            failures[at] = result_name(r) + ": " + api().getLastError();
                            break;
                        }
                        for (size_t k = 0; k < out.size() && failures[at].empty(); ++k)
                            if (!(std::fabs(out[k] - expected[at][k]) <= 1e-4 + 1e-3 * std::fabs(expected[at][k])))
                                failures[at] = "run " + std::to_string(run) + ": value " + std::to_string(k) + " is " +
                                               std::to_string(out[k]) + ", expected " + std::to_string(expected[at][k]);
                    }
                });
            }
            for (std::thread& th : threads) th.join();
            for (int i = 0; i < kThreads; ++i)
                CHECK_MESSAGE(failures[size_t(i)].empty(), "thread ", i, ": ", failures[size_t(i)]);
            CHECK(submit_watch::g_calls.load() >= kThreads * kRuns * 2);
            CHECK_MESSAGE(submit_watch::g_overlaps.load() == 0, submit_watch::g_overlaps.load(),
                          " vkQueueSubmit calls overlapped another on the same queue");
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE("adopt mode: the engine records attention into its own command buffer") {
        EngineDevice engine;
        require_engine(engine);
        // The engine's pipeline cache, lent to vkmha; destroyed by the engine (here, or on an early REQUIRE exit).
        struct EngineCache {
            const EngineDevice& engine;
            VkPipelineCache cache = VK_NULL_HANDLE;
            ~EngineCache() {
                if (cache && engine.ok()) vkDestroyPipelineCache(engine.device(), cache, nullptr);
            }
        } owned_cache{engine};
        {
            VkPipelineCacheCreateInfo pci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
            REQUIRE(vkCreatePipelineCache(engine.device(), &pci, nullptr, &owned_cache.cache) == VK_SUCCESS);
        }
        const VkPipelineCache engine_cache = owned_cache.cache;
        VkDeviceSize offset = 0;
        bool transfer = false;
        CountingAllocator counting;
        const VkAllocationCallbacks engine_callbacks = counting.callbacks();
        const VkAllocationCallbacks* allocator = nullptr;
        SUBCASE("offset 0, host-written inputs") { offset = 0; }
        SUBCASE("offset 4, vkmha's objects through the engine's allocation callbacks") {
            offset = 4;
            allocator = &engine_callbacks;
        }
        SUBCASE("offset 4, host-written inputs") { offset = 4; }
        SUBCASE("offset 12, host-written inputs") { offset = 12; }
        SUBCASE("offset 12, query copied and output filled by the engine's transfers in the same command buffer") {
            offset = 12;
            transfer = true;
        }
        CAPTURE(offset);
        CAPTURE(transfer);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, engine_cache);
            adopt.pAllocator = allocator;
            ci.pAdoptDevice = &adopt;
            LogCapture log;
            ci.pfnLogCallback = &LogCapture::callback;
            ci.pLogUserData = &log;
            REQUIRE_VKMHA(api().createContext(&ci, context.out()));
            const VkmhaContextProperties p = context_properties(context.get());
            CHECK(p.ownsDevice == VK_FALSE);
            CHECK(p.canSubmit == VK_TRUE);
            CHECK(p.debugUtils == VK_TRUE);
            CHECK(p.validationMessageCount == 0);

            ModelSpec spec;
            spec.naming = Naming::torch_separate;
            spec.kdim = 12;
            spec.vdim = 20;
            const HostModel host = make_model(spec);
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(3, 7, 129, false, 1);
            REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));

            AttentionOptions o;
            o.need_weights = true;
            o.key_padding = MaskKind::boolean;
            const RunInputs in = make_inputs(host.config, {3, 7, 129}, o, true, true, 41);
            const vkmha::AttentionOutputs ref = reference(host, in);
            const size_t out_bytes = ref.output.size() * 4, weight_bytes = ref.weights.size() * 4;

            // The query buffer ends exactly where its data ends; the outputs have guard bytes on both sides.
            EngineBuffer query =
                engine_buffer(engine, transfer ? nullptr : in.query.data(), in.query.size() * 4, offset, 0, 0x3F);
            EngineBuffer key = engine_buffer(engine, in.key.data(), in.key.size() * 4, offset, 8, 0);
            EngineBuffer value = engine_buffer(engine, in.value.data(), in.value.size() * 4, offset, 8, 0);
            EngineBuffer padding = engine_buffer(engine, in.key_padding_mask.data(), in.key_padding_mask.size(),
                                                 offset + 1, 3, 0); // byte data: any offset
            EngineBuffer output = engine_buffer(engine, nullptr, out_bytes, offset, 64, 0xFF);
            EngineBuffer weights = engine_buffer(engine, nullptr, weight_bytes, offset, 64, 0xFF);
            EngineBuffer staging = engine_buffer(engine, in.query.data(), in.query.size() * 4, 0, 0, 0);

            VkmhaRecordInfo ri = record_info(0, VKMHA_NO_FRAME, in);
            ri.query = query.binding();
            ri.key = key.binding();
            ri.value = value.binding();
            ri.keyPaddingMask = padding.binding();
            ri.output = output.binding();
            ri.weights = weights.binding();

            VkCommandBuffer cmd = objects.command_buffer();
            VkFence fence = objects.fence();
            begin(cmd);
            if (transfer) {
                // The engine's own last use of the buffers: a copy into the query, a fill of the output.
                VkBufferCopy region{0, offset, in.query.size() * 4};
                vkCmdCopyBuffer(cmd, staging.buffer.buffer(), query.buffer.buffer(), 1, &region);
                vkCmdFillBuffer(cmd, output.buffer.buffer(), offset, out_bytes, 0x7FC00000u);
                ri.query = query.binding(VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT);
                ri.output = output.binding(VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT);
            }
            const int64_t allocations_before = counting.total();
            REQUIRE_VKMHA(api().recordAttention(session.get(), cmd, &ri));
            CHECK_MESSAGE(counting.total() == allocations_before,
                          "recordAttention allocated through the engine's callbacks");
            EngineBuffer readback = engine_buffer(engine, nullptr, out_bytes, 0, 0, 0xFF);
            if (transfer) {
                // The exit contract, followed by a GPU consumer: from COMPUTE_SHADER/SHADER_WRITE to the engine's copy.
                VkMemoryBarrier after{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
                after.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
                after.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT;
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1,
                                     &after, 0, nullptr, 0, nullptr);
                VkBufferCopy back{offset, 0, out_bytes};
                vkCmdCopyBuffer(cmd, output.buffer.buffer(), readback.buffer.buffer(), 1, &back);
                VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
                to_host.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
                to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                                     nullptr, 0, nullptr);
            }
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);

            check_matches(reinterpret_cast<const float*>(output.payload()), ref.output, "adopt output");
            if (transfer)
                check_matches(reinterpret_cast<const float*>(readback.payload()), ref.output,
                              "adopt output copied by the engine");
            check_matches(reinterpret_cast<const float*>(weights.payload()), ref.weights, "adopt weights");
            CHECK_MESSAGE(output.guards_intact(), "vkmha wrote outside the output binding");
            CHECK_MESSAGE(weights.guards_intact(), "vkmha wrote outside the weights binding");
            CHECK_MESSAGE(query.guards_intact(), "the query buffer's bytes before its offset changed");

            // A second frame into the same session, outputs only, now with the engine's compute having read the inputs.
            begin(cmd);
            VkmhaRecordInfo again = ri;
            again.frameIndex = 1;
            again.completedFrame = 0;
            again.flags = 0;
            again.keyPaddingMaskType = VKMHA_MASK_TYPE_NONE;
            again.keyPaddingMask = {};
            again.weights = {};
            again.query = query.binding();
            again.output = output.binding(VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
            REQUIRE_VKMHA(api().recordAttention(session.get(), cmd, &again));
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);
            RunInputs plain = in;
            plain.options = AttentionOptions{};
            plain.key_padding_mask.clear();
            check_matches(reinterpret_cast<const float*>(output.payload()), reference(host, plain).output,
                          "adopt second frame");
            CHECK(log.count(VKMHA_LOG_LEVEL_WARNING) == 0);
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        } // session, model, context (then the engine's pool and fences) destroyed here
        if (allocator) {
            CHECK(counting.total() > 0);
            CHECK_MESSAGE(counting.live() == 0, counting.live(),
                          " allocations made through the engine's callbacks are still live");
        }

        // vkmha destroyed nothing of the engine's: the device, queue and pipeline cache all still work.
        VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
        bi.size = 256;
        bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
        VkBuffer probe = VK_NULL_HANDLE;
        CHECK(vkCreateBuffer(engine.device(), &bi, nullptr, &probe) == VK_SUCCESS);
        vkDestroyBuffer(engine.device(), probe, nullptr);
        size_t cache_size = 0;
        CHECK(vkGetPipelineCacheData(engine.device(), engine_cache, &cache_size, nullptr) == VK_SUCCESS);
        CHECK(vkQueueWaitIdle(engine.queue()) == VK_SUCCESS);
        CHECK(vkDeviceWaitIdle(engine.device()) == VK_SUCCESS);
        vkDestroyPipelineCache(engine.device(), engine_cache, nullptr);
        owned_cache.cache = VK_NULL_HANDLE;
        engine.destroy(); // the layer reports any object vkmha left behind on the engine's device here
        check_engine_quiet(engine);
    }

    TEST_CASE("adopt mode: every binding packed into one engine buffer at unaligned offsets") {
        // Engines sub-allocate: query, key, value, mask and outputs all live in one VkBuffer, at offsets that are
        // 4-byte multiples but not the device's storage-buffer alignment. The query range is written by the engine's
        // copy in the same command buffer; the entry barrier (and the exit contract) must cover exactly these ranges.
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            adopt_context(engine, context);
            ModelSpec spec;
            spec.naming = Naming::llama;
            spec.embed = 24;
            spec.heads = 6;
            spec.kv_heads = 2;
            const HostModel host = make_model(spec);
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(2, 5, 11, false, 1);
            REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));

            AttentionOptions o;
            o.causal = true;
            o.attn_mask = MaskKind::boolean;
            o.need_weights = true;
            o.average_weights = false;
            const RunInputs in = make_inputs(host.config, {2, 5, 11}, o, true, true, 77);
            const vkmha::AttentionOutputs ref = reference(host, in);

            // Regions in order, each starting 4 bytes past a 16-byte boundary (masks: 1 byte past), 8 guard bytes
            // apart.
            struct Region {
                VkDeviceSize offset, bytes;
            };
            VkDeviceSize cursor = 0;
            auto place = [&](VkDeviceSize bytes, VkDeviceSize misalign) {
                const VkDeviceSize at = (cursor + 8 + 15) / 16 * 16 + misalign;
                cursor = at + bytes;
                return Region{at, bytes};
            };
            const Region rq = place(in.query.size() * 4, 4), rk = place(in.key.size() * 4, 12),
                         rv = place(in.value.size() * 4, 8), rm = place(in.mask_bytes.size(), 1),
                         ro = place(ref.output.size() * 4, 4), rw = place(ref.weights.size() * 4, 12);
            HostBuffer shared = engine.create_host_buffer(cursor + 32);
            REQUIRE(shared);
            std::memset(shared.bytes(), 0xFF, shared.size());
            std::memcpy(shared.bytes() + rk.offset, in.key.data(), rk.bytes);
            std::memcpy(shared.bytes() + rv.offset, in.value.data(), rv.bytes);
            std::memcpy(shared.bytes() + rm.offset, in.mask_bytes.data(), rm.bytes);
            EngineBuffer staging = engine_buffer(engine, in.query.data(), rq.bytes, 0, 0, 0);
            auto bind = [&](const Region& r, VkPipelineStageFlags stage = 0, VkAccessFlags access = 0) {
                return VkmhaBufferBinding{shared.buffer(), r.offset, r.bytes, stage, access};
            };
            VkmhaRecordInfo ri = record_info(0, VKMHA_NO_FRAME, in);
            ri.query = bind(rq, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT);
            ri.key = bind(rk);
            ri.value = bind(rv);
            ri.attnMask = bind(rm);
            ri.output = bind(ro);
            ri.weights = bind(rw);

            VkCommandBuffer cmd = objects.command_buffer();
            VkFence fence = objects.fence();
            begin(cmd);
            const VkBufferCopy region{0, rq.offset, rq.bytes};
            vkCmdCopyBuffer(cmd, staging.buffer.buffer(), shared.buffer(), 1, &region);
            REQUIRE_VKMHA(api().recordAttention(session.get(), cmd, &ri));
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);

            check_matches(reinterpret_cast<const float*>(shared.bytes() + ro.offset), ref.output, "packed output");
            check_matches(reinterpret_cast<const float*>(shared.bytes() + rw.offset), ref.weights, "packed weights");
            // Nothing outside the output and weights regions changed (inputs included).
            std::vector<uint8_t> expected_bytes(shared.size(), 0xFF);
            std::memcpy(expected_bytes.data() + rq.offset, in.query.data(), rq.bytes);
            std::memcpy(expected_bytes.data() + rk.offset, in.key.data(), rk.bytes);
            std::memcpy(expected_bytes.data() + rv.offset, in.value.data(), rv.bytes);
            std::memcpy(expected_bytes.data() + rm.offset, in.mask_bytes.data(), rm.bytes);
            size_t changed = 0;
            for (VkDeviceSize i = 0; i < shared.size(); ++i) {
                const bool in_output =
                    (i >= ro.offset && i < ro.offset + ro.bytes) || (i >= rw.offset && i < rw.offset + rw.bytes);
                if (!in_output && shared.bytes()[i] != expected_bytes[i]) ++changed;
            }
            CHECK_MESSAGE(changed == 0, changed, " bytes outside the output bindings changed");
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE("adopt mode: frames in flight are refused until completed, then each frame's result is right") {
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            adopt_context(engine, context);
            const bool timestamps = context_properties(context.get()).timestamps == VK_TRUE;
            const HostModel host = make_model(ModelSpec{});
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(2, 9, 9, false, 2);
            REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));

            // The engine's own ring of three: inputs, output, command buffer, fence.
            struct EngineFrame {
                RunInputs in;
                EngineBuffer query, output;
                VkCommandBuffer cmd = VK_NULL_HANDLE;
                VkFence fence = VK_NULL_HANDLE;
                uint64_t frame = 0;
            };
            std::array<EngineFrame, 3> ring;
            for (EngineFrame& f : ring) {
                f.cmd = objects.command_buffer();
                f.fence = objects.fence();
            }
            auto prepare = [&](uint64_t n) -> EngineFrame& {
                EngineFrame& f = ring[n % 3];
                f.frame = n;
                f.in = make_inputs(host.config, {2, 9, 9}, AttentionOptions{}, false, false, 500 + uint32_t(n));
                f.query = engine_buffer(engine, f.in.query.data(), f.in.query.size() * 4, 4, 0, 0);
                f.output = engine_buffer(engine, nullptr, output_count(host.config, f.in) * 4, 4, 16, 0xFF);
                begin(f.cmd);
                return f;
            };
            auto record = [&](EngineFrame& f, uint64_t completed) {
                VkmhaRecordInfo ri = record_info(f.frame, completed, f.in);
                ri.query = f.query.binding();
                ri.output = f.output.binding();
                return api().recordAttention(session.get(), f.cmd, &ri);
            };
            auto finish_and_submit = [&](EngineFrame& f) {
                barrier_to_host(f.cmd);
                REQUIRE(vkEndCommandBuffer(f.cmd) == VK_SUCCESS);
                REQUIRE(vkResetFences(engine.device(), 1, &f.fence) == VK_SUCCESS);
                REQUIRE(engine.submit(f.cmd, f.fence) == VK_SUCCESS);
            };
            auto wait_and_check = [&](uint64_t n) {
                EngineFrame& f = ring[n % 3];
                REQUIRE(f.frame == n);
                REQUIRE(vkWaitForFences(engine.device(), 1, &f.fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
                check_matches(reinterpret_cast<const float*>(f.output.payload()), reference(host, f.in).output,
                              "frame " + std::to_string(n));
                CHECK(f.output.guards_intact());
            };

            for (uint64_t n = 0; n < 2; ++n) {
                EngineFrame& f = prepare(n);
                REQUIRE_MESSAGE(record(f, VKMHA_NO_FRAME) == VKMHA_SUCCESS, last_error());
                finish_and_submit(f);
            }
            {
                // Never blocks: a frame still in flight reports NOT_READY (or, if it already finished, its timings).
                uint32_t count = 8;
                std::array<VkmhaStageTiming, 8> early{};
                const VkmhaResult r = api().getStageTimings(session.get(), 1, &count, early.data());
                CHECK_MESSAGE(
                    (r == VKMHA_NOT_READY || r == VKMHA_SUCCESS || (!timestamps && r == VKMHA_ERROR_UNSUPPORTED)),
                    result_name(r), ": ", last_error());
            }
            // Frame 2 needs slot 0, which frame 0 holds until the engine says it completed.
            EngineFrame& third = prepare(2);
            EXPECT_FAILURE(VKMHA_ERROR_FRAME_IN_FLIGHT, record(third, VKMHA_NO_FRAME), "frame 2", "frame 0");
            uint32_t never = 8;
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, api().getStageTimings(session.get(), 77, &never, nullptr), "77");

            wait_and_check(0);
            if (timestamps) {
                uint32_t count = 0;
                REQUIRE_VKMHA(api().getStageTimings(session.get(), 0, &count, nullptr));
                // The fused path, prefill shape (no split-K), no weights, self-attention: Q, K and V in one dispatch.
                CHECK(count == 3);
                std::vector<VkmhaStageTiming> timings(count);
                REQUIRE_VKMHA(api().getStageTimings(session.get(), 0, &count, timings.data()));
                REQUIRE(count == timings.size());
                const VkmhaStage expected[] = {VKMHA_STAGE_QKV_PROJ, VKMHA_STAGE_ATTENTION, VKMHA_STAGE_OUT_PROJ};
                for (const VkmhaStage stage : expected) {
                    CAPTURE(std::string(api().stageName(stage)));
                    const auto it = std::find_if(timings.begin(), timings.end(),
                                                 [&](const VkmhaStageTiming& st) { return st.stage == stage; });
                    REQUIRE(it != timings.end());
                    CHECK(it->milliseconds > 0.0f);
                    CHECK(it->milliseconds < 60000.0f);
                }
                uint32_t one = 1;
                REQUIRE_VKMHA(api().getStageTimings(session.get(), 0, &one, timings.data()));
                CHECK(one == 1);
            } else {
                MESSAGE("the device's queue has no timestamps: stage timings not checked");
            }
            REQUIRE_MESSAGE(record(third, 0) == VKMHA_SUCCESS, last_error());
            finish_and_submit(third);
            // Slot 0 now belongs to frame 2: frame 0's timings are gone, and the call says which frame it was asked.
            uint32_t count0 = 8;
            std::array<VkmhaStageTiming, 8> gone{};
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, api().getStageTimings(session.get(), 0, &count0, gone.data()),
                           "frame 0");

            for (uint64_t n = 3; n < 7; ++n) {
                wait_and_check(n - 2); // frame n-3, the last user of ring[n % 3], was checked one iteration ago
                EngineFrame& f = prepare(n);
                REQUIRE_MESSAGE(record(f, n - 2) == VKMHA_SUCCESS, last_error());
                finish_and_submit(f);
            }
            wait_and_check(5);
            wait_and_check(6);
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE(
        "adopt mode: impossible completed frames, frames that go back and a second record per frame are refused") {
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            adopt_context(engine, context);
            const HostModel host = make_model(ModelSpec{});
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(2, 9, 9, false, 2);
            REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
            const RunInputs in = make_inputs(host.config, {2, 9, 9}, AttentionOptions{}, false, false, 77);
            EngineBuffer query = engine_buffer(engine, in.query.data(), in.query.size() * 4, 4, 0, 0);
            std::array<EngineBuffer, 2> outputs;
            for (EngineBuffer& o : outputs)
                o = engine_buffer(engine, nullptr, output_count(host.config, in) * 4, 4, 16, 0xFF);
            const VkCommandBuffer cmd = objects.command_buffer();
            const VkFence fence = objects.fence();
            begin(cmd);
            auto record = [&](uint64_t frame, uint64_t completed, size_t output) {
                VkmhaRecordInfo ri = record_info(frame, completed, in);
                ri.query = query.binding();
                ri.output = outputs[output].binding();
                return api().recordAttention(session.get(), cmd, &ri);
            };
            // A frame cannot have completed before it is recorded: vkmha would take it as leave to reuse a slot.
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(0, 0, 0), "completedFrame 0", "frameIndex 0");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(3, 7, 0), "completedFrame 7", "frameIndex 3");
            REQUIRE_MESSAGE(record(3, VKMHA_NO_FRAME, 0) == VKMHA_SUCCESS, last_error());
            // Two records of one session in one frame would share its frame slot (descriptor sets, timestamps).
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(3, VKMHA_NO_FRAME, 1), "frameIndex 3",
                           "one record per session per frame — use a session per layer");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(3, 2, 1),
                           "one record per session per frame — use a session per layer");
            // Frames never go back.
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(2, VKMHA_NO_FRAME, 1), "frameIndex 2", "frame 3");
            // None of the refusals recorded anything or spoiled the session: the next frame records and both run.
            REQUIRE_MESSAGE(record(4, VKMHA_NO_FRAME, 1) == VKMHA_SUCCESS, last_error());
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);
            const std::vector<float> want = reference(host, in).output;
            for (size_t i = 0; i < outputs.size(); ++i) {
                check_matches(reinterpret_cast<const float*>(outputs[i].payload()), want,
                              "output " + std::to_string(i));
                CHECK(outputs[i].guards_intact());
            }
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE("pipeline cache: data from one context seeds the next, garbage is ignored with a warning") {
        const VkmhaProcTable& t = api();
        std::vector<uint8_t> data;
        uint32_t vendor = 0;
        {
            LogCapture log;
            ContextHandle context;
            const VkmhaContextCreateInfo ci = own_context_info(&log);
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            vendor = context_properties(context.get()).vendorId;
            size_t size = 0;
            REQUIRE_VKMHA(t.getPipelineCacheData(context.get(), &size, nullptr));
            REQUIRE(size >= 32); // at least VkPipelineCacheHeaderVersionOne
            data.assign(size, 0);
            size_t capacity = size;
            REQUIRE_VKMHA(t.getPipelineCacheData(context.get(), &capacity, data.data()));
            CHECK(capacity == size);
            uint32_t header[3] = {};
            std::memcpy(header, data.data(), sizeof header);
            CHECK(header[0] >= 32);                                   // headerSize
            CHECK(header[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE); // headerVersion
            CHECK(header[2] == vendor);                               // vendorID
            std::vector<uint8_t> short_buffer(size - 1);
            size_t short_capacity = short_buffer.size();
            CHECK(t.getPipelineCacheData(context.get(), &short_capacity, short_buffer.data()) != VKMHA_SUCCESS);
            CHECK(short_capacity <= short_buffer.size());
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getPipelineCacheData(context.get(), nullptr, nullptr),
                           "pSize");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getPipelineCacheData(nullptr, &size, nullptr), "context");
            check_no_validation_messages(context.get(), log);
        }
        SUBCASE("the data of an earlier run is accepted silently") {
            LogCapture log;
            ContextHandle context;
            VkmhaContextCreateInfo ci = own_context_info(&log);
            ci.pPipelineCacheData = data.data();
            ci.pipelineCacheDataSize = data.size();
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            CHECK_MESSAGE(log.count(VKMHA_LOG_LEVEL_WARNING) == 0, log.text());
            const VkmhaContextProperties p = context_properties(context.get());
            CHECK(p.pipelineCount > 0);
            CHECK(p.pipelinesFromCache >= -1);
            CHECK(p.pipelinesFromCache <= static_cast<int32_t>(p.pipelineCount));
            MESSAGE("pipelines found in the seeded cache: ", p.pipelinesFromCache, " of ", p.pipelineCount);
            HostModel host = make_model(ModelSpec{});
            ModelHandle model;
            create_model(context.get(), host, model);
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(1, 4, 4, true);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            run_and_check(session.get(), host, make_inputs(host.config, {1, 4, 4}, {}, false, false, 3),
                          "cached pipelines");
            check_no_validation_messages(context.get(), log);
        }
        SUBCASE("garbage bytes are ignored with a warning through the log callback") {
            std::vector<uint8_t> garbage(data.size() + 64);
            for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 37 + 11);
            LogCapture log;
            ContextHandle context;
            VkmhaContextCreateInfo ci = own_context_info(&log);
            ci.pPipelineCacheData = garbage.data();
            ci.pipelineCacheDataSize = garbage.size();
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            CHECK_MESSAGE(log.contains(VKMHA_LOG_LEVEL_WARNING, "pipeline cache"), "log:", log.text());
            CHECK(context_properties(context.get()).pipelinesFromCache <= 0); // nothing can come from an empty cache
            HostModel host = make_model(ModelSpec{});
            ModelHandle model;
            create_model(context.get(), host, model);
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(1, 4, 4, true);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            run_and_check(session.get(), host, make_inputs(host.config, {1, 4, 4}, {}, false, false, 3),
                          "after garbage");
            check_no_validation_messages(context.get(), log);
        }
        SUBCASE("a header from another vendor is ignored with a warning") {
            std::vector<uint8_t> foreign = data;
            const uint32_t other_vendor = vendor ^ 0x5A5Au;
            std::memcpy(foreign.data() + 8, &other_vendor, 4);
            LogCapture log;
            ContextHandle context;
            VkmhaContextCreateInfo ci = own_context_info(&log);
            ci.pPipelineCacheData = foreign.data();
            ci.pipelineCacheDataSize = foreign.size();
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            CHECK_MESSAGE(log.contains(VKMHA_LOG_LEVEL_WARNING, "pipeline cache"), "log:", log.text());
            check_no_validation_messages(context.get(), log);
        }
    }

    TEST_CASE("memory: session requirements are queryable, grow with the budget shape, and a budget is enforced") {
        const VkmhaProcTable& t = api();
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        const HostModel host = make_model(ModelSpec{});
        ModelHandle model;
        {
            // The model's own memory is known before creation, and its budget is enforced the same way.
            const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
            VkmhaModelCreateInfo mi = model_info(host.config.num_heads, views);
            VkDeviceSize model_bytes = 0;
            REQUIRE_VKMHA(t.getModelMemoryRequirements(context.get(), &mi, &model_bytes));
            CHECK(model_bytes >= (3 + 1) * 16 * 16 * sizeof(float)); // wq, wk, wv, wo at least
            mi.memoryBudget = model_bytes - 1;
            EXPECT_FAILURE(VKMHA_ERROR_BUDGET_EXCEEDED, t.createModel(context.get(), &mi, model.out()),
                           std::to_string(model_bytes), std::to_string(model_bytes - 1));
            CHECK(model.get() == nullptr);
            mi.memoryBudget = model_bytes;
            REQUIRE_VKMHA(t.createModel(context.get(), &mi, model.out()));
            VkmhaModelProperties mp{};
            REQUIRE_VKMHA(t.getModelProperties(model.get(), &mp));
            CHECK(mp.deviceMemoryBytes == model_bytes);
            MESSAGE("model bytes: ", model_bytes);
        }

        auto need = [&](const VkmhaSessionCreateInfo& si) {
            VkDeviceSize bytes = 0;
            REQUIRE_VKMHA(t.getSessionMemoryRequirements(model.get(), &si, &bytes));
            return bytes;
        };
        const VkDeviceSize small = need(session_info(2, 8, 64, false, 1));
        const VkDeviceSize longer = need(session_info(2, 64, 64, false, 1));
        const VkDeviceSize more_frames = need(session_info(2, 8, 64, false, 3));
        const VkDeviceSize host_io = need(session_info(2, 8, 64, true, 1));
        CHECK(small > 0);
        CHECK(longer > small);
        CHECK(more_frames > small);
        CHECK(host_io > small);
        MESSAGE("session bytes: ", small, " (lq 8), ", longer, " (lq 64), ", more_frames, " (3 frames), ", host_io,
                " (host I/O)");

        VkmhaSessionCreateInfo si = session_info(2, 8, 64, true, 1);
        const VkDeviceSize required = need(si);
        si.memoryBudget = required - 1;
        SessionHandle session;
        EXPECT_FAILURE(VKMHA_ERROR_BUDGET_EXCEEDED, t.createSession(model.get(), &si, session.out()),
                       std::to_string(required), std::to_string(required - 1));
        CHECK(session.get() == nullptr);
        si.memoryBudget = required;
        REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
        run_and_check(session.get(), host, make_inputs(host.config, {2, 8, 64}, {}, true, true, 8), "within budget");
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("precision: FP16 models take half the memory, report it, and match the CPU reference within the fp16 "
              "tolerance") {
        const VkmhaProcTable& t = api();
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        ModelSpec spec;
        spec.embed = 64;
        spec.heads = 4;
        spec.naming = Naming::llama;
        spec.kv_heads = 2;
        const HostModel host = make_model(spec);
        const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
        VkmhaModelCreateInfo mi = model_info(spec.heads, views);
        VkDeviceSize fp32_bytes = 0, fp16_bytes = 0;
        REQUIRE_VKMHA(t.getModelMemoryRequirements(context.get(), &mi, &fp32_bytes));
        mi.precision = VKMHA_PRECISION_FP16;
        const VkmhaResult queried = t.getModelMemoryRequirements(context.get(), &mi, &fp16_bytes);
        if (queried == VKMHA_ERROR_UNSUPPORTED) {
            MESSAGE("skipped: the default device has no storageBuffer16BitAccess (", last_error(), ")");
            return;
        }
        REQUIRE_VKMHA(queried);
        // 4 weight matrices (64x64, 64x32 twice) and 4 biases, each buffer 256-byte aligned: ~half, not exactly.
        MESSAGE("model bytes: fp32 ", fp32_bytes, ", fp16 ", fp16_bytes);
        CHECK(double(fp16_bytes) >= 0.45 * double(fp32_bytes));
        CHECK(double(fp16_bytes) <= 0.55 * double(fp32_bytes));

        ModelHandle model16, model32;
        REQUIRE_VKMHA(t.createModel(context.get(), &mi, model16.out()));
        VkmhaModelProperties p{};
        REQUIRE_VKMHA(t.getModelProperties(model16.get(), &p));
        CHECK(p.precision == VKMHA_PRECISION_FP16);
        CHECK(p.deviceMemoryBytes == fp16_bytes);
        CHECK(p.numKvHeads == 2);
        mi.precision = VKMHA_PRECISION_FP32;
        REQUIRE_VKMHA(t.createModel(context.get(), &mi, model32.out()));
        REQUIRE_VKMHA(t.getModelProperties(model32.get(), &p));
        CHECK(p.precision == VKMHA_PRECISION_FP32);
        CHECK(p.deviceMemoryBytes == fp32_bytes);

        {
            // A weight fp16 cannot hold is refused (it would silently become inf), naming it; FP32 takes it.
            std::vector<io::Tensor> big = host.tensors; // llama names: q_proj.weight first
            const float huge = 1e5f;
            std::memcpy(big[0].data.data() + 4 * 5, &huge, 4);
            const std::vector<VkmhaTensor> big_views = tensor_views(big);
            VkmhaModelCreateInfo big_info = model_info(spec.heads, big_views);
            big_info.precision = VKMHA_PRECISION_FP16;
            ModelHandle refused;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &big_info, refused.out()), "wq",
                           "element 5", "100000", "fp16");
            CHECK(refused.get() == nullptr);
        }

        // Sessions: Q, K, V and the concatenated heads take 2 bytes per element instead of 4; scores stay fp32.
        const VkmhaSessionCreateInfo si = session_info(2, 64, 64, false, 1);
        VkDeviceSize session16 = 0, session32 = 0;
        REQUIRE_VKMHA(t.getSessionMemoryRequirements(model16.get(), &si, &session16));
        REQUIRE_VKMHA(t.getSessionMemoryRequirements(model32.get(), &si, &session32));
        const double halved = 2.0 * 64 * (64 + 32 + 32 + 64) * 2; // B*L*(E + 2*G*D + E) elements, 2 bytes each saved
        MESSAGE("session bytes: fp32 ", session32, ", fp16 ", session16, " (", halved, " bytes of Q/K/V/concat saved)");
        CHECK(session16 < session32);
        CHECK(double(session32 - session16) >= halved - 4 * 256);
        CHECK(double(session32 - session16) <= halved + 4 * 256);

        const VkmhaSessionCreateInfo run_si = session_info(3, 7, 129, true);
        SessionHandle session;
        REQUIRE_VKMHA(t.createSession(model16.get(), &run_si, session.out()));
        AttentionOptions o;
        o.need_weights = true;
        o.causal = true;
        run_and_check(session.get(), host, make_inputs(host.config, {3, 7, 129}, o, true, true, 21), "fp16 gqa",
                      kFp16Tolerance);
        o.need_weights = false;
        o.key_padding = MaskKind::boolean;
        run_and_check(session.get(), host, make_inputs(host.config, {3, 7, 129}, o, true, true, 22), "fp16 gqa padded",
                      kFp16Tolerance);
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("precision: FP16 in adopt mode follows storageBuffer16BitAccessEnabled") {
        const VkmhaProcTable& t = api();
        EngineDevice engine;
        require_engine(engine);
        ModelSpec spec;
        spec.embed = 32;
        spec.heads = 2;
        const HostModel host = make_model(spec);
        const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
        VkmhaModelCreateInfo mi = model_info(spec.heads, views);
        mi.precision = VKMHA_PRECISION_FP16;
        {
            // The engine did not enable (or does not report) the feature: FP16 models are refused, naming it; FP32
            // works.
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.storageBuffer16BitAccessEnabled = VK_FALSE;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            ci.pAdoptDevice = &adopt;
            ContextHandle context;
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            ModelHandle model;
            EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.createModel(context.get(), &mi, model.out()),
                           "storageBuffer16BitAccess", "fp16");
            CHECK(model.get() == nullptr);
            VkDeviceSize bytes = 0;
            EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.getModelMemoryRequirements(context.get(), &mi, &bytes),
                           "storageBuffer16BitAccess");
            VkmhaModelCreateInfo fp32 = mi;
            fp32.precision = VKMHA_PRECISION_FP32;
            REQUIRE_VKMHA(t.createModel(context.get(), &fp32, model.out()));
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(1, 5, 5, true);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            run_and_check(session.get(), host, make_inputs(host.config, {1, 5, 5}, {}, false, false, 3), "adopt fp32");
        }
        if (engine.storage16()) {
            // The engine enabled it and says so: FP16 models run on its device.
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.storageBuffer16BitAccessEnabled = VK_TRUE;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            ci.pAdoptDevice = &adopt;
            ContextHandle context;
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            ModelHandle model;
            REQUIRE_VKMHA(t.createModel(context.get(), &mi, model.out()));
            VkmhaModelProperties p{};
            REQUIRE_VKMHA(t.getModelProperties(model.get(), &p));
            CHECK(p.precision == VKMHA_PRECISION_FP16);
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(2, 9, 9, true);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            AttentionOptions o;
            o.need_weights = true;
            run_and_check(session.get(), host, make_inputs(host.config, {2, 9, 9}, o, false, false, 4), "adopt fp16",
                          kFp16Tolerance);
        } else {
            MESSAGE("the engine device has no storageBuffer16BitAccess: only the refusal was checked");
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE("bad arguments: context entry points fail with a message and leave nothing broken") {
        const VkmhaProcTable& t = api();
        LogCapture log;

        VkmhaContextCreateInfo ci = own_context_info(&log);
        ContextHandle context;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(nullptr, context.out()), "pCreateInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&ci, nullptr), "pContext");
        {
            VkmhaContextCreateInfo bad = ci;
            bad.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "sType", "expected 1");
            CHECK(context.get() == nullptr);
        }
        {
            VkmhaContextCreateInfo bad = ci;
            bad.deviceMode = static_cast<VkmhaDeviceMode>(7);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "deviceMode", "7");
        }
        {
            VkmhaContextCreateInfo bad = ci;
            bad.pipelineCacheDataSize = 40;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "pipelineCacheDataSize",
                           "40");
        }
        {
            VkmhaOwnDeviceInfo own{VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO, nullptr, -1, nullptr};
            VkmhaContextCreateInfo bad = ci;
            bad.pOwnDevice = &own;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "sType", "expected 2");
            own.sType = VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO;
            own.deviceIndex = 99;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "99");
            own.deviceIndex = -1;
            own.pDeviceName = "no-such-gpu-anywhere";
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "no-such-gpu-anywhere");
        }
        {
            VkmhaContextCreateInfo bad = ci;
            bad.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "pAdoptDevice");
        }
        {
            // Adopt with NULL handles, a wrong sType, a too-old API version: refused before touching anything.
            EngineDevice engine;
            require_engine(engine);
            VkmhaContextCreateInfo bad = ci;
            bad.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            bad.pAdoptDevice = &adopt;
            adopt.device = VK_NULL_HANDLE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "device");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.instance = VK_NULL_HANDLE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "instance");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.physicalDevice = VK_NULL_HANDLE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "physicalDevice");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.pfnGetInstanceProcAddr = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()),
                           "pfnGetInstanceProcAddr");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.sType = VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "sType", "expected 3");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.apiVersion = VK_API_VERSION_1_0;
            EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.createContext(&bad, context.out()), "apiVersion", "1.0");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.enabledInstanceExtensionCount = 2;
            adopt.ppEnabledInstanceExtensions = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()),
                           "ppEnabledInstanceExtensions");
            CHECK(context.get() == nullptr);

            // Adopted without a queue: a context that can record but not upload weights, and says so.
            const HostModel host = make_model(ModelSpec{});
            const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
            const VkmhaModelCreateInfo mi = model_info(4, views);
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.queue = VK_NULL_HANDLE;
            {
                ContextHandle queueless;
                REQUIRE_VKMHA(t.createContext(&bad, queueless.out()));
                CHECK(context_properties(queueless.get()).canSubmit == VK_FALSE);
                ModelHandle model;
                EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(queueless.get(), &mi, model.out()), "queue");
            }
            // Adopted without timeline semaphores: models and recording work, host I/O sessions are refused.
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.timelineSemaphoreEnabled = VK_FALSE;
            {
                ContextHandle no_timeline;
                REQUIRE_VKMHA(t.createContext(&bad, no_timeline.out()));
                CHECK(context_properties(no_timeline.get()).canSubmit == VK_FALSE);
                ModelHandle model;
                REQUIRE_VKMHA(t.createModel(no_timeline.get(), &mi, model.out()));
                SessionHandle session;
                const VkmhaSessionCreateInfo with_io = session_info(1, 2, 2, true);
                EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.createSession(model.get(), &with_io, session.out()),
                               "timeline");
                const VkmhaSessionCreateInfo without_io = session_info(1, 2, 2, false);
                REQUIRE_VKMHA(t.createSession(model.get(), &without_io, session.out()));
            }
            // The engine's device is untouched by all that.
            CHECK(vkDeviceWaitIdle(engine.device()) == VK_SUCCESS);
            engine.destroy();
            check_engine_quiet(engine);
        }

        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        VkmhaContextProperties props{};
        props.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getContextProperties(nullptr, &props), "context");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getContextProperties(context.get(), nullptr), "pProperties");
        props.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getContextProperties(context.get(), &props), "sType",
                       "expected 8");
        size_t size = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getPipelineCacheData(nullptr, &size, nullptr), "context");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getPipelineCacheData(context.get(), nullptr, nullptr), "pSize");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.enumerateDevices(nullptr, nullptr), "pCount");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getDeviceRequirements(nullptr), "pRequirements");
        t.destroyContext(nullptr); // destroying NULL is a no-op, as in Vulkan
        t.destroyModel(nullptr);
        t.destroySession(nullptr);
        CHECK(std::string(t.stageName(VKMHA_STAGE_Q_PROJ)) != "unknown");
        CHECK(std::string(t.stageName(static_cast<VkmhaStage>(42))) == "unknown");

        // The context works after all of that.
        const HostModel host = make_model(ModelSpec{});
        ModelHandle model;
        create_model(context.get(), host, model);
        SessionHandle session;
        const VkmhaSessionCreateInfo si = session_info(1, 3, 3, true);
        REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
        run_and_check(session.get(), host, make_inputs(host.config, {1, 3, 3}, {}, false, false, 1),
                      "after bad contexts");
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("bad arguments: createModel and getModelProperties name what is wrong") {
        const VkmhaProcTable& t = api();
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        const HostModel host = make_model(ModelSpec{});
        const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
        const VkmhaModelCreateInfo good = model_info(4, views);
        ModelHandle model;

        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(nullptr, &good, model.out()), "context");
        {
            VkDeviceSize bytes = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(nullptr, &good, &bytes),
                           "context");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), nullptr, &bytes),
                           "pCreateInfo");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), &good, nullptr),
                           "pBytes");
            VkmhaModelCreateInfo bad = good;
            bad.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), &bad, &bytes),
                           "sType", "expected 4");
            bad = good;
            bad.numHeads = 5;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), &bad, &bytes),
                           "16", "5");
            bad = good;
            bad.precision = static_cast<VkmhaPrecision>(7);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), &bad, &bytes),
                           "precision", "7");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "precision",
                           "7");
            bad = good;
            bad.tensorCount = 0;
            bad.pTensors = nullptr;
            bad.pSafetensorsPath = "/nonexistent/vkmha-dir/weights.safetensors";
            EXPECT_FAILURE(VKMHA_ERROR_IO, t.getModelMemoryRequirements(context.get(), &bad, &bytes),
                           "/nonexistent/vkmha-dir/weights.safetensors");
        }
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), nullptr, model.out()), "pCreateInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &good, nullptr), "pModel");
        {
            VkmhaModelCreateInfo bad = good;
            bad.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "sType",
                           "expected 4");
            bad = good;
            bad.numHeads = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "numHeads");
            bad = good;
            bad.numHeads = 5; // E = 16
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "16", "5");
            bad = good;
            bad.numKvHeads = 2; // PyTorch names have no GQA
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()),
                           "num_kv_heads", "2");
            bad = good;
            bad.pSafetensorsPath = "/tmp/whatever.safetensors";
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()),
                           "pSafetensorsPath");
            bad = good;
            bad.tensorCount = 0;
            bad.pTensors = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()),
                           "pSafetensorsPath");
            bad = good;
            bad.pTensors = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "pTensors");
            bad = good;
            bad.tensorCount = 0;
            bad.pTensors = nullptr;
            bad.pSafetensorsPath = "/nonexistent/vkmha-dir/weights.safetensors";
            EXPECT_FAILURE(VKMHA_ERROR_IO, t.createModel(context.get(), &bad, model.out()),
                           "/nonexistent/vkmha-dir/weights.safetensors");
            // A file that exists but is not safetensors.
            const std::filesystem::path junk =
                std::filesystem::temp_directory_path() /
                ("vkmha-test-plugin-junk-" + std::to_string(::getpid()) + ".safetensors");
            {
                std::FILE* f = std::fopen(junk.string().c_str(), "wb");
                REQUIRE(f != nullptr);
                const char text[] = "\xff\xff\xff\xff\xff\xff\xff\x7f this is not a safetensors file";
                std::fwrite(text, 1, sizeof text, f);
                std::fclose(f);
            }
            const std::string junk_path = junk.string();
            bad.pSafetensorsPath = junk_path.c_str();
            const VkmhaResult junk_result = t.createModel(context.get(), &bad, model.out());
            const std::string junk_message = t.getLastError();
            std::filesystem::remove(junk);
            check_failure(junk_result, VKMHA_ERROR_IO, junk_message, {junk_path}, "createModel(junk file)", __FILE__,
                          __LINE__);
        }
        auto create_from = [&](const std::vector<VkmhaTensor>& tensors) {
            const VkmhaModelCreateInfo mi = model_info(4, tensors);
            return t.createModel(context.get(), &mi, model.out());
        };
        {
            std::vector<VkmhaTensor> broken = views;
            broken[1].pData = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "pTensors[1]", "pData",
                           host.tensors[1].name.c_str());
            broken = views;
            broken[2].pName = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "pTensors[2]", "pName");
            broken = views;
            broken[0].dataType = static_cast<VkmhaDataType>(9);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "dataType", "9");
            broken = views;
            broken[0].rank = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "rank", "0");
            broken = views;
            broken[0].shape[0] = 47; // in_proj_weight [3E, E] with a wrong row count
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "in_proj_weight", "47");
            broken = {views[2]}; // out_proj.weight alone
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "in_proj_weight");
        }
        CHECK(model.get() == nullptr);
        VkmhaModelProperties mp{};
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelProperties(nullptr, &mp), "model");

        // The context still creates and runs a model.
        create_model(context.get(), host, model);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelProperties(model.get(), nullptr), "pProperties");
        check_model_properties(model.get(), host);
        SessionHandle session;
        const VkmhaSessionCreateInfo si = session_info(1, 3, 3, true);
        REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
        run_and_check(session.get(), host, make_inputs(host.config, {1, 3, 3}, {}, false, false, 1),
                      "after bad models");
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("bad arguments: createSession and getSessionMemoryRequirements name what is wrong") {
        const VkmhaProcTable& t = api();
        OwnSetup s(ModelSpec{}, session_info(2, 4, 4, true));
        const VkmhaSessionCreateInfo good = session_info(2, 4, 4, true);
        SessionHandle other;
        VkDeviceSize bytes = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createSession(nullptr, &good, other.out()), "model");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createSession(s.model.get(), nullptr, other.out()),
                       "pCreateInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createSession(s.model.get(), &good, nullptr), "pSession");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getSessionMemoryRequirements(nullptr, &good, &bytes), "model");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getSessionMemoryRequirements(s.model.get(), nullptr, &bytes),
                       "pCreateInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getSessionMemoryRequirements(s.model.get(), &good, nullptr),
                       "pBytes");
        struct Case {
            const char* what;
            VkmhaSessionCreateInfo info;
            std::vector<std::string> names;
        };
        VkmhaSessionCreateInfo wrong_stype = good, zero_batch = good, zero_lq = good, zero_lk = good, frames = good;
        wrong_stype.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
        zero_batch.maxBatch = 0;
        zero_lq.maxQueryLength = 0;
        zero_lk.maxKeyLength = 0;
        frames.framesInFlight = 9;
        const Case cases[] = {
            {"wrong sType", wrong_stype, {"sType", "expected 5"}},
            {"maxBatch 0", zero_batch, {"batch 0"}},
            {"maxQueryLength 0", zero_lq, {"lq 0"}},
            {"maxKeyLength 0", zero_lk, {"lk 0"}},
            {"framesInFlight 9", frames, {"framesInFlight", "9"}},
        };
        for (const Case& c : cases) {
            CAPTURE(std::string(c.what));
            {
                const VkmhaResult r = t.createSession(s.model.get(), &c.info, other.out());
                check_failure(r, VKMHA_ERROR_INVALID_ARGUMENT, t.getLastError(), c.names, c.what, __FILE__, __LINE__);
            }
            {
                const VkmhaResult r = t.getSessionMemoryRequirements(s.model.get(), &c.info, &bytes);
                check_failure(r, VKMHA_ERROR_INVALID_ARGUMENT, t.getLastError(), c.names, c.what, __FILE__, __LINE__);
            }
            CHECK(other.get() == nullptr);
        }
        s.check_still_works("after bad sessions");
    }

    TEST_CASE("bad arguments: submit, wait, readOutputs and getStageTimings name what is wrong") {
        const VkmhaProcTable& t = api();
        OwnSetup s(ModelSpec{}, session_info(2, 5, 8, true, 2));
        const RunInputs in = make_inputs(s.host.config, {2, 5, 8}, AttentionOptions{}, true, true, 7);
        const VkmhaHostSubmitInfo good = host_submit_info(in);
        uint64_t value = 0;

        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(nullptr, &good, &value), "session");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), nullptr, &value), "pInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &good, nullptr), "pTimelineValue");
        {
            VkmhaHostSubmitInfo bad = good;
            bad.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "sType",
                           "expected 7");
            bad = good;
            bad.pQuery = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "query");
            bad = good;
            bad.batch = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "batch 0");
            bad = good;
            bad.batch = 3;
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.submit(s.session.get(), &bad, &value), "batch 3");
            bad = good;
            bad.keyLength = 9;
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.submit(s.session.get(), &bad, &value), "lk 9");
            bad = good;
            bad.flags = 0x100;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "flags", "0x100");
            bad = good;
            bad.keyPaddingMaskType = VKMHA_MASK_TYPE_ADDITIVE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "keyPaddingMaskType",
                           "2");
            bad = good;
            bad.attnMaskType = static_cast<VkmhaMaskType>(5);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "attnMaskType", "5");
            bad = good;
            bad.attnMaskType = VKMHA_MASK_TYPE_BOOL; // no pAttnMask
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "attn_mask");
            bad = good;
            bad.keyPaddingMaskType = VKMHA_MASK_TYPE_BOOL; // no pKeyPaddingMask
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "key_padding_mask");
            bad = good;
            bad.pKey = nullptr; // self-attention with lk 8 != lq 5
            bad.pValue = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "lk 8", "lq 5");
        }
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(nullptr, 1, 0), "session");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(s.session.get(), 0, 0), "timeline value 0");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(s.session.get(), 12345, 0), "12345");
        std::vector<float> out(output_count(s.host.config, in));
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                       t.readOutputs(s.session.get(), 12345, out.data(), out.size(), nullptr, 0), "12345");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.readOutputs(nullptr, 1, out.data(), out.size(), nullptr, 0),
                       "session");
        uint32_t count = 8;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getStageTimings(nullptr, 0, &count, nullptr), "session");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getStageTimings(s.session.get(), 0, nullptr, nullptr), "pCount");
        CHECK(t.getStageTimings(s.session.get(), 31337, &count, nullptr) < 0);
        CHECK(std::string(t.getLastError()).find("31337") != std::string::npos);

        // A good submission, then reads that ask for too little or the wrong thing.
        REQUIRE_VKMHA(t.submit(s.session.get(), &good, &value));
        REQUIRE_VKMHA(t.wait(s.session.get(), value, UINT64_MAX));
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(s.session.get(), value + 1, 0), std::to_string(value + 1));
        const std::string needed = std::to_string(out.size());
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                       t.readOutputs(s.session.get(), value, out.data(), out.size() - 1, nullptr, 0),
                       std::to_string(out.size() - 1).c_str(), needed.c_str());
        std::vector<float> weights(64);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                       t.readOutputs(s.session.get(), value, out.data(), out.size(), weights.data(), weights.size()),
                       "weights");
        // And the very same value still reads back correctly.
        REQUIRE_VKMHA(t.readOutputs(s.session.get(), value, out.data(), out.size(), nullptr, 0));
        check_matches(out.data(), reference(s.host, in).output, "after bad reads");

        // Host I/O calls on a session made without it are refused, naming why.
        SessionHandle plain;
        const VkmhaSessionCreateInfo no_io = session_info(1, 2, 2, false);
        REQUIRE_VKMHA(t.createSession(s.model.get(), &no_io, plain.out()));
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(plain.get(), &good, &value), "host I/O");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(plain.get(), 1, 0), "host I/O");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.readOutputs(plain.get(), 1, out.data(), out.size(), nullptr, 0),
                       "host I/O");
        s.check_still_works("after bad submits");
    }

    TEST_CASE("bad arguments: recordAttention checks every binding before recording anything") {
        const VkmhaProcTable& t = api();
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            const VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            ci.pAdoptDevice = &adopt;
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            ModelSpec spec;
            spec.naming = Naming::torch_separate;
            spec.kdim = 12;
            spec.vdim = 20;
            const HostModel host = make_model(spec);
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(2, 5, 8, false, 1);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));

            AttentionOptions o;
            o.need_weights = true;
            o.key_padding = MaskKind::boolean;
            o.attn_mask = MaskKind::additive;
            const RunInputs in = make_inputs(host.config, {2, 5, 8}, o, true, true, 61);
            const vkmha::AttentionOutputs ref = reference(host, in);
            EngineBuffer query = engine_buffer(engine, in.query.data(), in.query.size() * 4, 0, 0, 0);
            EngineBuffer key = engine_buffer(engine, in.key.data(), in.key.size() * 4, 0, 0, 0);
            EngineBuffer value = engine_buffer(engine, in.value.data(), in.value.size() * 4, 0, 0, 0);
            EngineBuffer padding =
                engine_buffer(engine, in.key_padding_mask.data(), in.key_padding_mask.size(), 0, 0, 0);
            EngineBuffer mask = engine_buffer(engine, in.mask_floats.data(), in.mask_floats.size() * 4, 0, 0, 0);
            EngineBuffer output = engine_buffer(engine, nullptr, ref.output.size() * 4, 0, 0, 0xFF);
            EngineBuffer weights = engine_buffer(engine, nullptr, ref.weights.size() * 4, 0, 0, 0xFF);
            VkmhaRecordInfo good = record_info(0, VKMHA_NO_FRAME, in);
            good.query = query.binding();
            good.key = key.binding();
            good.value = value.binding();
            good.keyPaddingMask = padding.binding();
            good.attnMask = mask.binding();
            good.output = output.binding();
            good.weights = weights.binding();

            VkCommandBuffer cmd = objects.command_buffer();
            VkFence fence = objects.fence();
            begin(cmd);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(nullptr, cmd, &good), "session");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(session.get(), VK_NULL_HANDLE, &good),
                           "command buffer");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(session.get(), cmd, nullptr), "pInfo");

            struct Case {
                const char* what;
                VkmhaResult result;
                VkmhaRecordInfo info;
                std::vector<std::string> names;
            };
            std::vector<Case> cases;
            auto add = [&](const char* what, VkmhaResult r, std::vector<std::string> names, auto&& mutate) {
                VkmhaRecordInfo ri = good;
                mutate(ri);
                cases.push_back({what, r, ri, std::move(names)});
            };
            const VkmhaResult invalid = VKMHA_ERROR_INVALID_ARGUMENT;
            const std::string query_bytes = std::to_string(in.query.size() * 4);
            add("wrong sType", invalid, {"sType", "expected 6"},
                [](VkmhaRecordInfo& r) { r.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO; });
            add("batch 0", invalid, {"batch 0"}, [](VkmhaRecordInfo& r) { r.batch = 0; });
            add("queryLength 0", invalid, {"lq 0"}, [](VkmhaRecordInfo& r) { r.queryLength = 0; });
            add("batch over the budget", VKMHA_ERROR_OUT_OF_RANGE, {"batch 3"},
                [](VkmhaRecordInfo& r) { r.batch = 3; });
            add("keyLength over the budget", VKMHA_ERROR_OUT_OF_RANGE, {"lk 9"},
                [](VkmhaRecordInfo& r) { r.keyLength = 9; });
            add("unknown flag bits", invalid, {"flags", "0x40"}, [](VkmhaRecordInfo& r) { r.flags |= 0x40; });
            add("additive key padding mask", invalid, {"keyPaddingMaskType", "2"},
                [](VkmhaRecordInfo& r) { r.keyPaddingMaskType = VKMHA_MASK_TYPE_ADDITIVE; });
            add("unknown attn mask type", invalid, {"attnMaskType", "3"},
                [](VkmhaRecordInfo& r) { r.attnMaskType = static_cast<VkmhaMaskType>(3); });
            add("query range too small", invalid, {"query", std::to_string(in.query.size() * 4 - 4), query_bytes},
                [](VkmhaRecordInfo& r) { r.query.range -= 4; });
            add("query range VK_WHOLE_SIZE", invalid, {"query", "VK_WHOLE_SIZE"},
                [](VkmhaRecordInfo& r) { r.query.range = VK_WHOLE_SIZE; });
            add("key range too small", invalid, {"key", std::to_string(in.key.size() * 4)},
                [](VkmhaRecordInfo& r) { r.key.range = 4; });
            add("value range too small", invalid, {"value", std::to_string(in.value.size() * 4)},
                [](VkmhaRecordInfo& r) { r.value.range = 8; });
            add("output range too small", invalid, {"output", std::to_string(ref.output.size() * 4)},
                [](VkmhaRecordInfo& r) { r.output.range -= 1; });
            add("weights range too small", invalid, {"weights", std::to_string(ref.weights.size() * 4)},
                [](VkmhaRecordInfo& r) { r.weights.range /= 2; });
            add("key padding mask too small", invalid, {"key_padding_mask", std::to_string(in.key_padding_mask.size())},
                [](VkmhaRecordInfo& r) { r.keyPaddingMask.range -= 1; });
            add("attn mask too small (read as per-head)", invalid, {"attn_mask"},
                [](VkmhaRecordInfo& r) { r.flags |= VKMHA_ATTENTION_PER_HEAD_MASK_BIT; });
            add("no query buffer", invalid, {"query", "VK_NULL_HANDLE"}, [](VkmhaRecordInfo& r) { r.query = {}; });
            add("no output buffer", invalid, {"output", "VK_NULL_HANDLE"}, [](VkmhaRecordInfo& r) { r.output = {}; });
            add("need_weights without a weights buffer", invalid, {"weights", "VK_NULL_HANDLE"},
                [](VkmhaRecordInfo& r) { r.weights = {}; });
            add("key padding mask type without a buffer", invalid, {"key_padding_mask", "VK_NULL_HANDLE"},
                [](VkmhaRecordInfo& r) { r.keyPaddingMask = {}; });
            add("attn mask type without a buffer", invalid, {"attn_mask", "VK_NULL_HANDLE"},
                [](VkmhaRecordInfo& r) { r.attnMask = {}; });
            add("self-attention with kdim != E", invalid, {"kdim"}, [](VkmhaRecordInfo& r) {
                r.key = {};
                r.value = {};
            });
            add("value unbound with vdim != kdim", invalid, {"vdim 20", "kdim 12"},
                [](VkmhaRecordInfo& r) { r.value = {}; });
            add("float offset not a multiple of 4", invalid, {"offset", "2"},
                [](VkmhaRecordInfo& r) { r.output.offset = 2; });
            add("frame index UINT64_MAX", invalid, {"UINT64_MAX"},
                [](VkmhaRecordInfo& r) { r.frameIndex = UINT64_MAX; });
            for (const Case& c : cases) {
                CAPTURE(std::string(c.what));
                const VkmhaResult r = t.recordAttention(session.get(), cmd, &c.info);
                check_failure(r, c.result, t.getLastError(), c.names, c.what, __FILE__, __LINE__);
            }

            // Nothing was recorded by the refused calls: the same command buffer now takes a good record and runs
            // clean.
            REQUIRE_VKMHA(t.recordAttention(session.get(), cmd, &good));
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);
            check_matches(reinterpret_cast<const float*>(output.payload()), ref.output, "after bad records: output");
            check_matches(reinterpret_cast<const float*>(weights.payload()), ref.weights, "after bad records: weights");
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

} // TEST_SUITE("plugin")

TEST_CASE("memory: host I/O stages weights and per-head masks only when the session asks for them") {
    // Without the flags the staging is sized for [Lq, Lk] masks and no weights, and a submit that needs more is
    // refused by name rather than overrunning a buffer.
    VkmhaSessionCreateInfo lean = session_info(2, 33, 65, true);
    lean.flags = 0;
    OwnSetup setup(ModelSpec{}, lean);
    const VkmhaSessionCreateInfo full = session_info(2, 33, 65, true);
    VkDeviceSize lean_bytes = 0, full_bytes = 0;
    REQUIRE_VKMHA(api().getSessionMemoryRequirements(setup.model.get(), &lean, &lean_bytes));
    REQUIRE_VKMHA(api().getSessionMemoryRequirements(setup.model.get(), &full, &full_bytes));
    const uint32_t H = setup.host.config.num_heads;
    // Per frame slot: [B, H, Lq, Lk] weights plus (B*H - 1) more [Lq, Lk] mask planes, in floats.
    CHECK(full_bytes - lean_bytes >= uint64_t(2) * H * 33 * 65 * 4 + (uint64_t(2) * H - 1) * 33 * 65 * 4);

    AttentionOptions weights;
    weights.need_weights = true;
    RunInputs in = make_inputs(setup.host.config, {2, 33, 65}, weights, true, true, 7);
    VkmhaHostSubmitInfo hi = host_submit_info(in);
    uint64_t value = 0;
    EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().submit(setup.session.get(), &hi, &value),
                   "VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT");
    AttentionOptions per_head_mask;
    per_head_mask.attn_mask = MaskKind::additive;
    per_head_mask.attn_mask_per_head = true;
    in = make_inputs(setup.host.config, {2, 33, 65}, per_head_mask, true, true, 8);
    hi = host_submit_info(in);
    EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().submit(setup.session.get(), &hi, &value),
                   "VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT");
    // A two-dimensional mask fits the lean staging.
    AttentionOptions mask_2d;
    mask_2d.attn_mask = MaskKind::boolean;
    run_and_check(setup.session.get(), setup.host, make_inputs(setup.host.config, {2, 33, 65}, mask_2d, true, true, 9),
                  "lean host I/O, [Lq, Lk] mask");
    setup.check_still_works("after refused submits");
}
