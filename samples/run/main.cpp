// vkmha-run: runs one multi-head attention layer from safetensors files, on a Vulkan device through vkmha's public
// C API or on the CPU reference, and writes the result as safetensors.
#include "vkmha/vkmha.h"

#include "common/api.h"
#include "common/attention_inputs.h"
#include "common/cli.h"
#include "common/model_flags.h"
#include "io/safetensors.h"
#include "io/weight_map.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

namespace {

using vkmha::io::Tensor;
using vkmha::samples::Api;
using vkmha::samples::InputTensors;
using vkmha::samples::ModelFlags;

// What --help adds below the flags.
const char* kNotes =
    "QK-norm and sinks come with the weights (q_norm.weight and k_norm.weight [D], sinks [H]); the input's optional\n"
    "position_ids [B, Lq] (I32 or I64) gives the RoPE positions (--incremental: step t's token of row b is at\n"
    "position_ids[b, t]). An optional head_mask F32 [H] or [B, H] multiplies each head's attention output before\n"
    "the output projection (Hugging Face's head_mask; 0 prunes a head; --incremental: one row for every sequence).\n"
    "--qkv (attention only, the caller's own Q, K, V; no projections): the input holds q [B, H, Lq, D], k and v\n"
    "[B, G, Lk, D] (G from --kv-heads or k), optional key_padding_mask, attn_mask, position_ids [B, Lq] and\n"
    "key_position_ids [B, Lk]; --weights is optional (sinks, q_norm.weight, k_norm.weight only); the output\n"
    "attn_output is [B, H, Lq, D]. --incremental then feeds Q, K, V one token per step through a KV cache (Lq = Lk).";

struct Options {
    std::string weights, input, output, device;
    uint32_t heads = 0, kv_heads = 0;
    bool causal = false, need_weights = false, average = true, incremental = false;
    bool qkv = false; // attention only: the input holds the caller's own q, k, v
    VkmhaPrecision precision = VKMHA_PRECISION_FP32;
    // The model options as the public API takes them (all 0: off), for either device.
    VkmhaModelAttentionInfo attention{VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO};
};

[[noreturn]] void die(const std::string& message) { vkmha::cli::die("vkmha-run", message); }

InputTensors load_inputs(const std::string& file, uint32_t E, uint32_t kdim, uint32_t vdim, uint32_t H) {
    auto in = vkmha::samples::load_input_tensors(file, E, kdim, vdim, H);
    if (!in) die(in.error().message);
    return std::move(in).value();
}

// The combinations no single flag can refuse.
void check_combinations(const Options& o) {
    if (o.weights.empty() && !o.qkv) die("missing --weights");
    if (!o.average && !o.need_weights) die("--no-average-weights needs --need-weights");
    if (o.device == "cpu" && o.precision == VKMHA_PRECISION_FP16)
        die("--precision fp16 needs a Vulkan device; --device cpu is the CPU reference (fp32, double accumulation)");
    if (o.incremental) {
        if (!o.causal) die("--incremental needs --causal (token-by-token decoding through a KV cache is causal)");
        if (o.need_weights)
            die("--incremental cannot return attention weights (--need-weights): a cached step has no weights output");
        if (o.device == "cpu")
            die("--incremental runs on a Vulkan device (KV cache); --device cpu is the one-shot CPU reference");
    }
}

Options parse(int argc, char** argv) {
    using namespace vkmha::cli;
    Options o;
    std::string precision = "fp32";
    bool no_average = false;
    ModelFlags model_flags;
    CLI::App app{
        "Runs one multi-head attention layer from safetensors files on a Vulkan device through vkmha's C API,\n"
        "or on the CPU reference (--device cpu), and writes attn_output (and the weights) as safetensors.",
        "vkmha-run"};
    configure(app);
    app.add_option("--weights", o.weights, "the layer's weights (W.safetensors; optional with --qkv)");
    app.add_option("--input", o.input, "the input tensors (IN.safetensors)")->required();
    app.add_option("--output", o.output, "where to write the result (OUT.safetensors)")->required();
    app.add_option("--heads", o.heads, "query heads H")->required()->transform(count());
    app.add_option("--kv-heads", o.kv_heads, "key/value heads G (grouped-query attention)")->transform(count());
    app.add_flag("--causal", o.causal, "causal mask (aligned to the bottom right)");
    app.add_flag("--need-weights", o.need_weights, "also write attn_output_weights");
    app.add_flag("--no-average-weights", no_average, "with --need-weights: per head, not averaged");
    app.add_option("--device", o.device, "Vulkan device by index or name substring, or cpu (the CPU reference)")
        ->type_name("N|NAME|cpu");
    app.add_option("--precision", precision, "fp16: weights and Q/K/V stored as fp16, fp32 arithmetic")
        ->check(CLI::IsMember({"fp32", "fp16"}))
        ->capture_default_str();
    app.add_flag("--incremental", o.incremental,
                 "with --causal: feed the query one token per step through a KV cache (same output)");
    app.add_flag("--qkv", o.qkv, "attention only: the input holds the caller's own q, k and v (see below)");
    add_model_flags(app, o.attention, model_flags);
    app.footer(kNotes);
    vkmha::cli::parse(app, argc, argv);
    o.average = !no_average;
    o.precision = precision == "fp16" ? VKMHA_PRECISION_FP16 : VKMHA_PRECISION_FP32;
    apply_model_flags(app, model_flags, o.attention, "vkmha-run");
    check_combinations(o);
    return o;
}

struct Outputs {
    std::vector<float> output, weights;
};

// The library names the VkmhaModelAttentionInfo field it refused; say which flag set it.
std::string with_flag(const std::string& message) {
    static const std::pair<const char*, const char*> fields[] = {
        {"::rotaryDims", "--rope-dims"}, {"::ropeTheta", "--rope-theta"}, {"::rope", "--rope-scaling"},
        {"::scale", "--scale"},          {"::softcap", "--softcap"},      {"::normEps", "--norm-eps"}};
    for (const auto& [field, flag] : fields)
        if (message.find(std::string("VkmhaModelAttentionInfo") + field) != std::string::npos)
            return message + " (set by " + flag + ")";
    return message;
}

// The layer as createModel and referenceAttention take it: --weights, --heads, --kv-heads, --precision and the
// model-option flags.
VkmhaModelCreateInfo layer_info(const Options& o) {
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.pNext = &o.attention;
    mi.numHeads = o.heads;
    mi.numKvHeads = o.kv_heads;
    mi.pSafetensorsPath = o.weights.c_str();
    mi.precision = o.precision;
    return mi;
}

VkmhaAttentionFlags attention_flags(const Options& o, const InputTensors& in) {
    return (o.causal ? uint32_t(VKMHA_ATTENTION_CAUSAL_BIT) : 0u) |
           (o.need_weights ? uint32_t(VKMHA_ATTENTION_NEED_WEIGHTS_BIT) : 0u) |
           (o.average ? 0u : uint32_t(VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT)) |
           (in.mask_per_head ? uint32_t(VKMHA_ATTENTION_PER_HEAD_MASK_BIT) : 0u);
}

// The input file as submit and referenceAttention take it; `positions` and `mask` (chained when the file has
// position_ids or head_mask) must outlive the returned struct.
VkmhaHostSubmitInfo host_submit_info(const Options& o, const InputTensors& in, VkmhaPositionsInfo& positions,
                                     VkmhaHeadMaskInfo& mask) {
    VkmhaHostSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
    hi.batch = in.batch;
    hi.queryLength = in.lq;
    hi.keyLength = in.lk;
    hi.flags = attention_flags(o, in);
    hi.keyPaddingMaskType = in.key_padding_mask.empty() ? VKMHA_MASK_TYPE_NONE : VKMHA_MASK_TYPE_BOOL;
    hi.attnMaskType = in.mask_type;
    hi.pQuery = in.query.data();
    hi.pKey = in.has_key ? in.key.data() : nullptr;
    hi.pValue = in.has_value ? in.value.data() : nullptr;
    hi.pKeyPaddingMask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    hi.pAttnMask = in.attn_mask();
    positions = VkmhaPositionsInfo{VKMHA_STRUCTURE_TYPE_POSITIONS_INFO};
    positions.pPositionIds = in.position_ids.data();
    if (!in.position_ids.empty()) hi.pNext = &positions;
    mask = in.head_mask_info(hi.pNext);
    if (mask.factorCount) hi.pNext = &mask;
    return hi;
}

// --device cpu: the library's public CPU reference (referenceAttention), as an engine would check its GPU with it.
// `model` and `submit` (or `qkv`) are the create-info and inputs the GPU path takes; the output has `width` floats per
// row and the layer `heads` heads.
Outputs run_cpu(const Options& o, const VkmhaModelCreateInfo& model, const VkmhaHostSubmitInfo* submit,
                const VkmhaHostQkvSubmitInfo* qkv, const InputTensors& in, uint32_t width, uint32_t heads) {
    const Api api(die);
    Outputs out;
    out.output.resize(size_t(in.batch) * in.lq * width);
    if (o.need_weights) out.weights.resize(size_t(in.batch) * (o.average ? 1 : heads) * in.lq * in.lk);
    VkmhaReferenceInfo ri{};
    ri.sType = VKMHA_STRUCTURE_TYPE_REFERENCE_INFO;
    ri.pModel = &model;
    ri.pSubmit = submit;
    ri.pQkv = qkv;
    ri.pOutput = out.output.data();
    ri.outputCount = out.output.size();
    ri.pWeights = o.need_weights ? out.weights.data() : nullptr;
    ri.weightsCount = out.weights.size();
    if (api->referenceAttention(&ri) != VKMHA_SUCCESS) die(with_flag(api->getLastError()));
    std::fprintf(stderr, "vkmha-run: device: CPU reference (referenceAttention, double accumulation)%s\n",
                 qkv ? ", attention only" : "");
    return out;
}

// A cached step takes one [H] head mask for all its tokens: a [B, H] mask must repeat one row of factors.
void check_incremental_head_mask(const Options& o, const InputTensors& in, uint32_t heads) {
    for (size_t i = heads; i < in.head_mask.size(); ++i)
        if (in.head_mask[i] != in.head_mask[i % heads])
            die("--incremental takes one head mask for every sequence (a cached step's [H]), but " + o.input +
                "'s head_mask [B, H] differs between batch rows at [" + std::to_string(i / heads) + ", " +
                std::to_string(i % heads) + "]");
}

// Checks that `in` can be decoded token by token: self-attention (or a key/value as long as the query: token t's key
// is key[t]) and no attn_mask. The key padding mask [B, Lk] is the cache's [sequences, capacity] mask as is.
void check_incremental_inputs(const Options& o, const InputTensors& in) {
    if (in.has_key && in.lk != in.lq)
        die("--incremental needs self-attention inputs, but " + o.input + " has a key of length " +
            std::to_string(in.lk) + " for a query of length " + std::to_string(in.lq) +
            " (cross-attention; run without --incremental)");
    if (in.mask_type != VKMHA_MASK_TYPE_NONE)
        die("--incremental does not take an attn_mask, but " + o.input +
            " has one (a cached step supports --causal and key_padding_mask only)");
    check_incremental_head_mask(o, in, in.heads ? in.heads : o.heads);
}

// --incremental: B sequences in a KV cache of capacity Lk; step t appends token t of every batch element (one ragged
// step of B sequences with 1 new token each) and attends over positions 0..t. Writes the same [B, Lq, E] output as
// the one-shot causal pass.
// A KV cache of one sequence per batch row for --incremental, its size printed.
VkmhaKvCache incremental_cache(const Api& api, VkmhaModel model, uint32_t sequences, uint32_t capacity,
                               const char* what) {
    VkmhaKvCacheCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
    ci.sequences = sequences;
    ci.capacity = capacity;
    VkDeviceSize cache_bytes = 0;
    api.check(api->getKvCacheMemoryRequirements(model, &ci, &cache_bytes), "KV cache");
    VkmhaKvCache cache = nullptr;
    api.check(api->createKvCache(model, &ci, &cache), "KV cache");
    std::fprintf(stderr, "vkmha-run: incremental: %u sequences, KV cache of %u positions (%.1f KiB)%s\n", sequences,
                 capacity, double(cache_bytes) / 1024.0, what);
    return cache;
}

// The GPU time of --incremental's steps, summed while every step's timestamps are available.
struct StepTimes {
    double gpu_ms = 0;
    bool timed = true;
    void add(const Api& api, VkmhaSession session, uint64_t value) {
        VkmhaStageTiming timings[16];
        uint32_t count = 16;
        if (timed && api->getStageTimings(session, value - 1, &count, timings) == VKMHA_SUCCESS) {
            for (uint32_t i = 0; i < count; ++i) gpu_ms += timings[i].milliseconds;
        } else {
            timed = false;
        }
    }
    void print(const Api& api, uint32_t steps, uint32_t tokens) const {
        if (timed)
            std::fprintf(stderr, "vkmha-run: gpu %u steps of %u tokens: %.3f ms in all, %.3f ms per step\n", steps,
                         tokens, gpu_ms, gpu_ms / steps);
        else
            std::fprintf(stderr, "vkmha-run: gpu timings unavailable: %s\n", api->getLastError());
    }
};

Outputs run_incremental(const Api& api, VkmhaModel model, VkmhaSession session, const InputTensors& in,
                        const VkmhaModelProperties& mp) {
    const uint32_t B = in.batch, L = in.lq, E = mp.embedDim;
    VkmhaKvCache cache = incremental_cache(api, model, B, in.lk, "");
    std::vector<VkmhaSequenceStep> steps(B);
    for (uint32_t b = 0; b < B; ++b) steps[b] = {b, 1};
    auto rows_at = [&](const std::vector<float>& src, uint32_t width, uint32_t t) {
        std::vector<float> rows(size_t(B) * width);
        for (uint32_t b = 0; b < B; ++b)
            std::copy_n(src.begin() + std::ptrdiff_t((size_t(b) * L + t) * width), width,
                        rows.begin() + std::ptrdiff_t(size_t(b) * width));
        return rows;
    };
    Outputs out;
    out.output.resize(size_t(B) * L * E);
    std::vector<float> step_out(size_t(B) * E);
    std::vector<int32_t> positions(B);
    VkmhaPositionsInfo pi{VKMHA_STRUCTURE_TYPE_POSITIONS_INFO};
    pi.pPositionIds = positions.data();
    StepTimes times;
    for (uint32_t t = 0; t < L; ++t) {
        const std::vector<float> query = rows_at(in.query, E, t);
        std::vector<float> key, value;
        if (in.has_key) key = rows_at(in.key, mp.kdim, t);
        if (in.has_value) value = rows_at(in.value, mp.vdim, t);
        VkmhaHostCachedSubmitInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
        si.cache = cache;
        si.stepCount = B;
        si.pSteps = steps.data();
        si.pQuery = query.data();
        // A value without a key reads the query as the key: say so explicitly.
        si.pKey = in.has_key ? key.data() : in.has_value ? query.data() : nullptr;
        si.pValue = in.has_value ? value.data() : nullptr;
        si.pKeyPaddingMask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
        // position_ids [B, L]: this step's token of sequence b is at position_ids[b, t] (else its cache position t).
        if (!in.position_ids.empty()) {
            for (uint32_t b = 0; b < B; ++b) positions[b] = in.position_ids[size_t(b) * L + t];
            si.pNext = &pi;
        }
        VkmhaHeadMaskInfo mask = in.head_mask_info(si.pNext);
        mask.factorCount = std::min(mask.factorCount, mp.numHeads); // one row: check_incremental_head_mask
        if (mask.factorCount) si.pNext = &mask;
        uint64_t value_id = 0;
        api.check(api->submitCached(session, &si, &value_id), "cached step " + std::to_string(t));
        api.check(api->wait(session, value_id, UINT64_MAX), "wait");
        api.check(api->readOutputs(session, value_id, step_out.data(), step_out.size(), nullptr, 0), "read outputs");
        for (uint32_t b = 0; b < B; ++b)
            std::copy_n(step_out.begin() + std::ptrdiff_t(size_t(b) * E), E,
                        out.output.begin() + std::ptrdiff_t((size_t(b) * L + t) * E));
        times.add(api, session, value_id);
    }
    times.print(api, L, B);
    api->destroyKvCache(cache);
    return out;
}

// The GPU time of each stage of a submission (timeline value `value`), and their total.
void print_timings(const Api& api, VkmhaSession session, uint64_t value) {
    VkmhaStageTiming timings[16];
    uint32_t count = 16;
    if (api->getStageTimings(session, value - 1, &count, timings) == VKMHA_SUCCESS) {
        float total = 0;
        for (uint32_t i = 0; i < count; ++i) {
            std::fprintf(stderr, "vkmha-run: gpu %-16s %9.3f ms\n", api->stageName(timings[i].stage),
                         timings[i].milliseconds);
            total += timings[i].milliseconds;
        }
        std::fprintf(stderr, "vkmha-run: gpu %-16s %9.3f ms\n", "total", total);
    } else {
        std::fprintf(stderr, "vkmha-run: gpu timings unavailable: %s\n", api->getLastError());
    }
}

void print_device(const Api& api, VkmhaContext ctx) {
    VkmhaContextProperties cp{};
    cp.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
    api.check(api->getContextProperties(ctx, &cp), "device");
    std::fprintf(stderr, "vkmha-run: device: %s (Vulkan %u.%u, subgroup %u)\n", cp.deviceName,
                 VK_API_VERSION_MAJOR(cp.deviceApiVersion), VK_API_VERSION_MINOR(cp.deviceApiVersion), cp.subgroupSize);
}

Outputs run_gpu(const Options& o, const Api& api, VkmhaModel model, VkmhaContext ctx, const InputTensors& in,
                const VkmhaModelProperties& mp) {
    print_device(api, ctx);
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = in.batch;
    si.maxQueryLength = o.incremental ? 1 : in.lq; // --incremental: one token per sequence per step
    si.maxKeyLength = in.lk;
    si.framesInFlight = 1;
    si.hostIo = VK_TRUE;
    si.flags = (o.need_weights ? uint32_t(VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT) : 0u) |
               (in.mask_per_head ? uint32_t(VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT) : 0u);
    VkmhaSession session = nullptr;
    api.check(api->createSession(model, &si, &session), "session");
    if (o.incremental) {
        Outputs out = run_incremental(api, model, session, in, mp);
        api->destroySession(session);
        return out;
    }
    VkmhaPositionsInfo pi{};
    VkmhaHeadMaskInfo mask{};
    const VkmhaHostSubmitInfo hi = host_submit_info(o, in, pi, mask);
    uint64_t value = 0;
    api.check(api->submit(session, &hi, &value), "submit");
    api.check(api->wait(session, value, UINT64_MAX), "wait");
    Outputs out;
    out.output.resize(size_t(in.batch) * in.lq * mp.embedDim);
    if (o.need_weights) out.weights.resize(size_t(in.batch) * (o.average ? 1 : mp.numHeads) * in.lq * in.lk);
    api.check(api->readOutputs(session, value, out.output.data(), out.output.size(),
                               o.need_weights ? out.weights.data() : nullptr, out.weights.size()),
              "read outputs");
    print_timings(api, session, value);
    api->destroySession(session);
    return out;
}

// ---- --qkv: attention only, on the caller's own Q, K and V ------------------------------------------------------

// The attention-only layer of `in`'s shape (H, G, D from the input) with the model-option flags and --weights when
// given (sinks, q_norm.weight, k_norm.weight only: the projections are the caller's). `attention` must outlive it.
VkmhaModelCreateInfo qkv_layer_info(const Options& o, const InputTensors& in, VkmhaModelAttentionInfo& attention) {
    attention = o.attention;
    attention.attentionOnly = VK_TRUE;
    attention.headDim = in.head_dim;
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.pNext = &attention;
    mi.numHeads = in.heads;
    mi.numKvHeads = in.kv_heads;
    mi.pSafetensorsPath = o.weights.empty() ? nullptr : o.weights.c_str();
    mi.precision = o.precision;
    return mi;
}

// The input file's q, k, v as submitQkv and referenceAttention take them; `positions` and `mask` must outlive it.
VkmhaHostQkvSubmitInfo host_qkv_info(const Options& o, const InputTensors& in, VkmhaPositionsInfo& positions,
                                     VkmhaHeadMaskInfo& mask) {
    VkmhaHostQkvSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO;
    hi.batch = in.batch;
    hi.queryLength = in.lq;
    hi.keyLength = in.lk;
    hi.flags = attention_flags(o, in);
    hi.keyPaddingMaskType = in.key_padding_mask.empty() ? VKMHA_MASK_TYPE_NONE : VKMHA_MASK_TYPE_BOOL;
    hi.attnMaskType = in.mask_type;
    hi.pQ = in.query.data();
    hi.pK = in.key.data();
    hi.pV = in.value.data();
    hi.pKeyPaddingMask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    hi.pAttnMask = in.attn_mask();
    positions = VkmhaPositionsInfo{VKMHA_STRUCTURE_TYPE_POSITIONS_INFO};
    positions.pPositionIds = in.position_ids.empty() ? nullptr : in.position_ids.data();
    positions.pKeyPositionIds = in.key_position_ids.empty() ? nullptr : in.key_position_ids.data();
    if (positions.pPositionIds || positions.pKeyPositionIds) hi.pNext = &positions;
    mask = in.head_mask_info(hi.pNext);
    if (mask.factorCount) hi.pNext = &mask;
    return hi;
}

Outputs run_cpu_qkv(const Options& o, const InputTensors& in) {
    VkmhaModelAttentionInfo attention{};
    const VkmhaModelCreateInfo mi = qkv_layer_info(o, in, attention);
    VkmhaPositionsInfo pi{};
    VkmhaHeadMaskInfo mask{};
    const VkmhaHostQkvSubmitInfo hi = host_qkv_info(o, in, pi, mask);
    return run_cpu(o, mi, nullptr, &hi, in, in.heads * in.head_dim, in.heads);
}

// --qkv --incremental: self-attention, and (with RoPE) one position per token for its query and its key, since a
// cached step rotates both at the token's position.
void check_incremental_qkv(const Options& o, const InputTensors& in) {
    if (in.lk != in.lq)
        die("--incremental needs self-attention inputs, but " + o.input + " has k of length " + std::to_string(in.lk) +
            " for q of length " + std::to_string(in.lq) + " (run without --incremental)");
    if (in.mask_type != VKMHA_MASK_TYPE_NONE)
        die("--incremental does not take an attn_mask, but " + o.input +
            " has one (a cached step supports --causal and key_padding_mask only)");
    check_incremental_head_mask(o, in, in.heads);
    if (o.attention.ropeLayout == VKMHA_ROPE_LAYOUT_NONE) return;
    const uint32_t L = in.lq;
    for (uint32_t b = 0; b < in.batch; ++b)
        for (uint32_t t = 0; t < L; ++t) {
            const size_t i = size_t(b) * L + t;
            const int64_t q = in.position_ids.empty() ? t : in.position_ids[i];
            const int64_t k = in.key_position_ids.empty() ? t : in.key_position_ids[i];
            if (q != k)
                die("--incremental rotates each token's query and key at one position, but " + o.input +
                    " has position_ids[" + std::to_string(b) + ", " + std::to_string(t) + "] = " + std::to_string(q) +
                    " and key_position_ids[" + std::to_string(b) + ", " + std::to_string(t) +
                    "] = " + std::to_string(k) + " (absent: 0..L-1)");
        }
}

// B sequences in a KV cache of capacity L; step t appends token t of every batch row (q[b, :, t], k[b, :, t],
// v[b, :, t] as [T = B, heads, D]) and attends over positions 0..t. Writes the one-shot [B, H, L, D] output.
Outputs run_incremental_qkv(const Api& api, VkmhaModel model, VkmhaSession session, const InputTensors& in) {
    const uint32_t B = in.batch, L = in.lq, H = in.heads, G = in.kv_heads, D = in.head_dim;
    VkmhaKvCache cache = incremental_cache(api, model, B, L, ", own Q/K/V");
    std::vector<VkmhaSequenceStep> steps(B);
    for (uint32_t b = 0; b < B; ++b) steps[b] = {b, 1};
    // Token t of every row, [B, heads, D], from [B, heads, L, D].
    auto token = [&](const std::vector<float>& src, uint32_t heads, uint32_t t) {
        std::vector<float> rows(size_t(B) * heads * D);
        for (uint32_t b = 0; b < B; ++b)
            for (uint32_t h = 0; h < heads; ++h)
                std::copy_n(src.begin() + std::ptrdiff_t(((size_t(b) * heads + h) * L + t) * D), D,
                            rows.begin() + std::ptrdiff_t((size_t(b) * heads + h) * D));
        return rows;
    };
    Outputs out;
    out.output.resize(size_t(B) * H * L * D);
    std::vector<float> step_out(size_t(B) * H * D);
    std::vector<int32_t> positions(B);
    VkmhaPositionsInfo pi{VKMHA_STRUCTURE_TYPE_POSITIONS_INFO};
    pi.pPositionIds = positions.data();
    const std::vector<int32_t>& given = in.position_ids.empty() ? in.key_position_ids : in.position_ids;
    StepTimes times;
    for (uint32_t t = 0; t < L; ++t) {
        const std::vector<float> q = token(in.query, H, t), k = token(in.key, G, t), v = token(in.value, G, t);
        VkmhaHostCachedQkvSubmitInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO;
        si.cache = cache;
        si.stepCount = B;
        si.pSteps = steps.data();
        si.pQ = q.data();
        si.pK = k.data();
        si.pV = v.data();
        si.pKeyPaddingMask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
        if (!given.empty()) { // check_incremental_qkv: the queries' and the keys' positions agree
            for (uint32_t b = 0; b < B; ++b) positions[b] = given[size_t(b) * L + t];
            si.pNext = &pi;
        }
        VkmhaHeadMaskInfo mask = in.head_mask_info(si.pNext);
        mask.factorCount = std::min(mask.factorCount, H); // one row: check_incremental_head_mask
        if (mask.factorCount) si.pNext = &mask;
        uint64_t value_id = 0;
        api.check(api->submitCachedQkv(session, &si, &value_id), "cached step " + std::to_string(t));
        api.check(api->wait(session, value_id, UINT64_MAX), "wait");
        api.check(api->readOutputs(session, value_id, step_out.data(), step_out.size(), nullptr, 0), "read outputs");
        for (uint32_t b = 0; b < B; ++b)
            for (uint32_t h = 0; h < H; ++h)
                std::copy_n(step_out.begin() + std::ptrdiff_t((size_t(b) * H + h) * D), D,
                            out.output.begin() + std::ptrdiff_t(((size_t(b) * H + h) * L + t) * D));
        times.add(api, session, value_id);
    }
    times.print(api, L, B);
    api->destroyKvCache(cache);
    return out;
}

Outputs run_gpu_qkv(const Options& o, const InputTensors& in) {
    const Api api(die);
    VkmhaContext ctx = api.create_own_context(o.device, "vkmha-run");
    VkmhaModelAttentionInfo attention{};
    const VkmhaModelCreateInfo mi = qkv_layer_info(o, in, attention);
    VkmhaModel model = nullptr;
    if (api->createModel(ctx, &mi, &model) != VKMHA_SUCCESS) {
        std::string message = with_flag(api->getLastError());
        api->destroyContext(ctx);
        die(message);
    }
    print_device(api, ctx);
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = in.batch;
    si.maxQueryLength = o.incremental ? 1 : in.lq;
    si.maxKeyLength = in.lk;
    si.framesInFlight = 1;
    si.hostIo = VK_TRUE;
    si.flags = (o.need_weights ? uint32_t(VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT) : 0u) |
               (in.mask_per_head ? uint32_t(VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT) : 0u);
    VkmhaSession session = nullptr;
    api.check(api->createSession(model, &si, &session), "session");
    Outputs out;
    if (o.incremental) {
        out = run_incremental_qkv(api, model, session, in);
    } else {
        VkmhaPositionsInfo pi{};
        VkmhaHeadMaskInfo mask{};
        const VkmhaHostQkvSubmitInfo hi = host_qkv_info(o, in, pi, mask);
        uint64_t value = 0;
        api.check(api->submitQkv(session, &hi, &value), "submit");
        api.check(api->wait(session, value, UINT64_MAX), "wait");
        out.output.resize(in.query.size());
        if (o.need_weights) out.weights.resize(size_t(in.batch) * (o.average ? 1 : in.heads) * in.lq * in.lk);
        api.check(api->readOutputs(session, value, out.output.data(), out.output.size(),
                                   o.need_weights ? out.weights.data() : nullptr, out.weights.size()),
                  "read outputs");
        print_timings(api, session, value);
    }
    api->destroySession(session);
    api->destroyModel(model);
    api->destroyContext(ctx);
    return out;
}

} // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    Outputs out;
    uint32_t E = 0, H = o.heads, Lq = 0, Lk = 0, B = 0;
    std::vector<uint64_t> output_shape;
    if (o.qkv) {
        auto loaded = vkmha::samples::load_qkv_tensors(o.input, o.heads, o.kv_heads);
        if (!loaded) die(loaded.error().message);
        const InputTensors& in = loaded.value();
        if (o.incremental) check_incremental_qkv(o, in);
        out = o.device == "cpu" ? run_cpu_qkv(o, in) : run_gpu_qkv(o, in);
        B = in.batch, Lq = in.lq, Lk = in.lk;
        output_shape = {B, H, Lq, in.head_dim}; // as scaled_dot_product_attention returns it
    } else if (o.device == "cpu") {
        auto tensors = vkmha::io::read_safetensors(o.weights);
        if (!tensors) die(tensors.error().message);
        // Only the shapes, to read the input file; referenceAttention reads the weights itself.
        auto model = vkmha::io::map_attention_weights(tensors.value(), o.heads, o.kv_heads, o.weights);
        if (!model) die(model.error().message);
        const vkmha::AttentionConfig& c = model->config;
        const InputTensors in = load_inputs(o.input, c.embed_dim, c.kdim, c.vdim, c.num_heads);
        VkmhaPositionsInfo pi{};
        VkmhaHeadMaskInfo mask{};
        const VkmhaHostSubmitInfo hi = host_submit_info(o, in, pi, mask);
        out = run_cpu(o, layer_info(o), &hi, nullptr, in, c.embed_dim, c.num_heads);
        E = c.embed_dim, B = in.batch, Lq = in.lq, Lk = in.lk;
    } else {
        const Api api(die);
        VkmhaContext ctx = api.create_own_context(o.device, "vkmha-run");
        const VkmhaModelCreateInfo mi = layer_info(o);
        VkmhaModel model = nullptr;
        VkmhaResult r = api->createModel(ctx, &mi, &model);
        if (r != VKMHA_SUCCESS) {
            std::string message = with_flag(api->getLastError());
            api->destroyContext(ctx);
            die(message);
        }
        VkmhaModelProperties mp{};
        api.check(api->getModelProperties(model, &mp), "model");
        const InputTensors in = load_inputs(o.input, mp.embedDim, mp.kdim, mp.vdim, mp.numHeads);
        if (o.incremental) check_incremental_inputs(o, in);
        out = run_gpu(o, api, model, ctx, in, mp);
        api->destroyModel(model);
        api->destroyContext(ctx);
        E = mp.embedDim, B = in.batch, Lq = in.lq, Lk = in.lk, H = mp.numHeads;
    }
    if (output_shape.empty()) output_shape = {B, Lq, E};
    std::vector<Tensor> tensors;
    tensors.push_back(vkmha::io::make_f32_tensor("attn_output", output_shape, out.output));
    if (o.need_weights) {
        std::vector<uint64_t> shape =
            o.average ? std::vector<uint64_t>{B, Lq, Lk} : std::vector<uint64_t>{B, H, Lq, Lk};
        tensors.push_back(vkmha::io::make_f32_tensor("attn_output_weights", shape, out.weights));
    }
    auto written = vkmha::io::write_safetensors(o.output, tensors);
    if (!written) die(written.error().message);
    std::fprintf(stderr, "vkmha-run: wrote %s\n", o.output.c_str());
    return 0;
}
