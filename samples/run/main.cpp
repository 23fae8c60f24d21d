// vkmha-run: runs one multi-head attention layer from safetensors files, on a Vulkan device through vkmha's public
// C API or on the CPU reference, and writes the result as safetensors.
#include "vkmha/vkmha.h"

#include "common/api.h"
#include "common/attention_inputs.h"
#include "common/cli.h"
#include "cpu_reference.h"
#include "io/safetensors.h"
#include "io/weight_map.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using vkmha::io::Tensor;
using vkmha::samples::Api;
using vkmha::samples::InputTensors;

const char* kUsage =
    "usage: vkmha-run --weights W.safetensors --input IN.safetensors --output OUT.safetensors --heads H\n"
    "                 [--kv-heads G] [--causal] [--need-weights] [--no-average-weights] [--device N|NAME|cpu]\n"
    "                 [--precision fp32|fp16]   (fp16: weights and Q/K/V stored as fp16, fp32 arithmetic)\n"
    "                 [--incremental]   (with --causal: feeds the query one token per step through a KV cache,\n"
    "                                    one sequence per batch element; same output as the one-shot pass)\n";

struct Options {
    std::string weights, input, output, device;
    uint32_t heads = 0, kv_heads = 0;
    bool causal = false, need_weights = false, average = true, incremental = false;
    VkmhaPrecision precision = VKMHA_PRECISION_FP32;
};

[[noreturn]] void die(const std::string& message) { vkmha::cli::die("vkmha-run", message); }

uint32_t parse_count(const std::string& flag, const char* text) {
    return vkmha::cli::parse_count("vkmha-run", flag, text);
}

InputTensors load_inputs(const std::string& file, uint32_t E, uint32_t kdim, uint32_t vdim, uint32_t H) {
    auto in = vkmha::samples::load_input_tensors(file, E, kdim, vdim, H);
    if (!in) die(in.error().message);
    return std::move(in).value();
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--weights")
            o.weights = value();
        else if (a == "--input")
            o.input = value();
        else if (a == "--output")
            o.output = value();
        else if (a == "--heads")
            o.heads = parse_count(a, value());
        else if (a == "--kv-heads")
            o.kv_heads = parse_count(a, value());
        else if (a == "--device")
            o.device = value();
        else if (a == "--precision") {
            const std::string p = value();
            if (p == "fp32")
                o.precision = VKMHA_PRECISION_FP32;
            else if (p == "fp16")
                o.precision = VKMHA_PRECISION_FP16;
            else
                die("--precision '" + p + "' is not fp32 or fp16");
        } else if (a == "--causal")
            o.causal = true;
        else if (a == "--need-weights")
            o.need_weights = true;
        else if (a == "--incremental")
            o.incremental = true;
        else if (a == "--no-average-weights")
            o.average = false;
        else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else
            die("unknown argument '" + a + "' (see --help)");
    }
    if (o.weights.empty()) die("missing --weights");
    if (o.input.empty()) die("missing --input");
    if (o.output.empty()) die("missing --output");
    if (o.heads == 0) die("missing --heads");
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
    return o;
}

struct Outputs {
    std::vector<float> output, weights;
};

Outputs run_cpu(const Options& o, const vkmha::io::LoadedModel& model, const InputTensors& in) {
    vkmha::AttentionShape shape{in.batch, in.lq, in.lk};
    vkmha::AttentionOptions opt;
    opt.causal = o.causal;
    opt.need_weights = o.need_weights;
    opt.average_weights = o.average;
    opt.key_padding = in.key_padding_mask.empty() ? vkmha::MaskKind::none : vkmha::MaskKind::boolean;
    opt.attn_mask = static_cast<vkmha::MaskKind>(in.mask_type);
    opt.attn_mask_per_head = in.mask_per_head;
    vkmha::AttentionInputs ri;
    ri.query = in.query.data();
    ri.key = in.has_key ? in.key.data() : nullptr;
    ri.value = in.has_value ? in.value.data() : nullptr;
    ri.key_padding_mask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    ri.attn_mask = in.attn_mask();
    auto r = vkmha::reference_attention(model.config, model.weights, shape, opt, ri);
    if (!r) die(r.error().message);
    std::fprintf(stderr, "vkmha-run: device: CPU reference (double accumulation)\n");
    return {std::move(r->output), std::move(r->weights)};
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
}

// --incremental: B sequences in a KV cache of capacity Lk; step t appends token t of every batch element (one ragged
// step of B sequences with 1 new token each) and attends over positions 0..t. Writes the same [B, Lq, E] output as
// the one-shot causal pass.
Outputs run_incremental(const Api& api, VkmhaModel model, VkmhaSession session, const InputTensors& in,
                        const VkmhaModelProperties& mp) {
    const uint32_t B = in.batch, L = in.lq, E = mp.embedDim;
    VkmhaKvCacheCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
    ci.sequences = B;
    ci.capacity = in.lk;
    VkDeviceSize cache_bytes = 0;
    api.check(api->getKvCacheMemoryRequirements(model, &ci, &cache_bytes), "KV cache");
    VkmhaKvCache cache = nullptr;
    api.check(api->createKvCache(model, &ci, &cache), "KV cache");
    std::fprintf(stderr, "vkmha-run: incremental: %u sequences, KV cache of %u positions (%.1f KiB)\n", B, in.lk,
                 double(cache_bytes) / 1024.0);
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
    double gpu_ms = 0;
    bool timed = true;
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
        uint64_t value_id = 0;
        api.check(api->submitCached(session, &si, &value_id), "cached step " + std::to_string(t));
        api.check(api->wait(session, value_id, UINT64_MAX), "wait");
        api.check(api->readOutputs(session, value_id, step_out.data(), step_out.size(), nullptr, 0), "read outputs");
        for (uint32_t b = 0; b < B; ++b)
            std::copy_n(step_out.begin() + std::ptrdiff_t(size_t(b) * E), E,
                        out.output.begin() + std::ptrdiff_t((size_t(b) * L + t) * E));
        VkmhaStageTiming timings[16];
        uint32_t count = 16;
        if (timed && api->getStageTimings(session, value_id - 1, &count, timings) == VKMHA_SUCCESS) {
            for (uint32_t i = 0; i < count; ++i) gpu_ms += timings[i].milliseconds;
        } else {
            timed = false;
        }
    }
    if (timed)
        std::fprintf(stderr, "vkmha-run: gpu %u steps of %u tokens: %.3f ms in all, %.3f ms per step\n", L, B, gpu_ms,
                     gpu_ms / L);
    else
        std::fprintf(stderr, "vkmha-run: gpu timings unavailable: %s\n", api->getLastError());
    api->destroyKvCache(cache);
    return out;
}

Outputs run_gpu(const Options& o, const Api& api, VkmhaModel model, VkmhaContext ctx, const InputTensors& in,
                const VkmhaModelProperties& mp) {
    VkmhaContextProperties cp{};
    cp.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
    api.check(api->getContextProperties(ctx, &cp), "device");
    std::fprintf(stderr, "vkmha-run: device: %s (Vulkan %u.%u, subgroup %u)\n", cp.deviceName,
                 VK_API_VERSION_MAJOR(cp.deviceApiVersion), VK_API_VERSION_MINOR(cp.deviceApiVersion), cp.subgroupSize);
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
    VkmhaHostSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
    hi.batch = in.batch;
    hi.queryLength = in.lq;
    hi.keyLength = in.lk;
    hi.flags = (o.causal ? uint32_t(VKMHA_ATTENTION_CAUSAL_BIT) : 0u) |
               (o.need_weights ? uint32_t(VKMHA_ATTENTION_NEED_WEIGHTS_BIT) : 0u) |
               (o.average ? 0u : uint32_t(VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT)) |
               (in.mask_per_head ? uint32_t(VKMHA_ATTENTION_PER_HEAD_MASK_BIT) : 0u);
    hi.keyPaddingMaskType = in.key_padding_mask.empty() ? VKMHA_MASK_TYPE_NONE : VKMHA_MASK_TYPE_BOOL;
    hi.attnMaskType = in.mask_type;
    hi.pQuery = in.query.data();
    hi.pKey = in.has_key ? in.key.data() : nullptr;
    hi.pValue = in.has_value ? in.value.data() : nullptr;
    hi.pKeyPaddingMask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    hi.pAttnMask = in.attn_mask();
    uint64_t value = 0;
    api.check(api->submit(session, &hi, &value), "submit");
    api.check(api->wait(session, value, UINT64_MAX), "wait");
    Outputs out;
    out.output.resize(size_t(in.batch) * in.lq * mp.embedDim);
    if (o.need_weights) out.weights.resize(size_t(in.batch) * (o.average ? 1 : mp.numHeads) * in.lq * in.lk);
    api.check(api->readOutputs(session, value, out.output.data(), out.output.size(),
                               o.need_weights ? out.weights.data() : nullptr, out.weights.size()),
              "read outputs");
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
    api->destroySession(session);
    return out;
}

} // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    Outputs out;
    uint32_t E = 0, H = o.heads, Lq = 0, Lk = 0, B = 0;
    if (o.device == "cpu") {
        auto tensors = vkmha::io::read_safetensors(o.weights);
        if (!tensors) die(tensors.error().message);
        auto model = vkmha::io::map_attention_weights(tensors.value(), o.heads, o.kv_heads, o.weights);
        if (!model) die(model.error().message);
        const vkmha::AttentionConfig& c = model->config;
        const InputTensors in = load_inputs(o.input, c.embed_dim, c.kdim, c.vdim, c.num_heads);
        out = run_cpu(o, model.value(), in);
        E = c.embed_dim, B = in.batch, Lq = in.lq, Lk = in.lk;
    } else {
        const Api api(die);
        VkmhaContext ctx = api.create_own_context(o.device, "vkmha-run");
        VkmhaModelCreateInfo mi{};
        mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
        mi.numHeads = o.heads;
        mi.numKvHeads = o.kv_heads;
        mi.pSafetensorsPath = o.weights.c_str();
        mi.precision = o.precision;
        VkmhaModel model = nullptr;
        VkmhaResult r = api->createModel(ctx, &mi, &model);
        if (r != VKMHA_SUCCESS) {
            std::string message = api->getLastError();
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
    std::vector<Tensor> tensors;
    tensors.push_back(vkmha::io::make_f32_tensor("attn_output", {B, Lq, E}, out.output));
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
