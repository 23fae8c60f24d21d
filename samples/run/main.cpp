// vkmha-run: runs one multi-head attention layer from safetensors files, on a Vulkan device through vkmha's public
// C API or on the CPU reference, and writes the result as safetensors.
#include "vkmha/vkmha.h"

#include "common/cli.h"
#include "cpu_reference.h"
#include "io/safetensors.h"
#include "io/weight_map.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

using vkmha::io::DType;
using vkmha::io::Tensor;

const char* kUsage =
    "usage: vkmha-run --weights W.safetensors --input IN.safetensors --output OUT.safetensors --heads H\n"
    "                 [--kv-heads G] [--causal] [--need-weights] [--no-average-weights] [--device N|NAME|cpu]\n";

struct Options {
    std::string weights, input, output, device;
    uint32_t heads = 0, kv_heads = 0;
    bool causal = false, need_weights = false, average = true;
};

[[noreturn]] void die(const std::string& message) { vkmha::cli::die("vkmha-run", message); }

uint32_t parse_count(const std::string& flag, const char* text) { return vkmha::cli::parse_count("vkmha-run", flag, text); }

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--weights") o.weights = value();
        else if (a == "--input") o.input = value();
        else if (a == "--output") o.output = value();
        else if (a == "--heads") o.heads = parse_count(a, value());
        else if (a == "--kv-heads") o.kv_heads = parse_count(a, value());
        else if (a == "--device") o.device = value();
        else if (a == "--causal") o.causal = true;
        else if (a == "--need-weights") o.need_weights = true;
        else if (a == "--no-average-weights") o.average = false;
        else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else die("unknown argument '" + a + "' (see --help)");
    }
    if (o.weights.empty()) die("missing --weights");
    if (o.input.empty()) die("missing --input");
    if (o.output.empty()) die("missing --output");
    if (o.heads == 0) die("missing --heads");
    if (!o.average && !o.need_weights) die("--no-average-weights needs --need-weights");
    return o;
}

// The input file's tensors, checked against the model's dimensions, as the API wants them.
struct Inputs {
    uint32_t batch = 0, lq = 0, lk = 0;
    std::vector<float> query, key, value;
    bool has_key = false, has_value = false;
    std::vector<uint8_t> key_padding_mask;
    std::vector<uint8_t> mask_bytes;
    std::vector<float> mask_floats;
    VkmhaMaskType mask_type = VKMHA_MASK_TYPE_NONE;
    bool mask_per_head = false;

    const void* attn_mask() const {
        if (mask_type == VKMHA_MASK_TYPE_BOOL) return mask_bytes.data();
        if (mask_type == VKMHA_MASK_TYPE_ADDITIVE) return mask_floats.data();
        return nullptr;
    }
};

std::string shape_text(const std::vector<uint64_t>& s) { return vkmha::io::shape_to_string(s); }

const Tensor& require_rank3(const std::string& file, const Tensor& t) {
    if (t.shape.size() != 3) die(file + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) + ", expected rank 3");
    for (uint64_t d : t.shape)
        if (d == 0 || d > (1u << 24)) die(file + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) + " with an empty or huge dimension");
    return t;
}

std::vector<float> floats(const std::string& file, const Tensor& t) {
    if (t.dtype != DType::f32 && t.dtype != DType::f16 && t.dtype != DType::bf16)
        die(file + ": tensor '" + t.name + "' has dtype " + std::string(vkmha::io::dtype_name(t.dtype)) +
            ", expected F32, F16 or BF16");
    auto v = vkmha::io::to_float(t, file);
    if (!v) die(v.error().message);
    return std::move(v.value());
}

Inputs load_inputs(const std::string& file, uint32_t E, uint32_t kdim, uint32_t vdim, uint32_t H) {
    auto read = vkmha::io::read_safetensors(file);
    if (!read) die(read.error().message);
    const std::vector<Tensor>& ts = read.value();
    Inputs in;
    const Tensor* q = vkmha::io::find_tensor(ts, "query");
    if (!q) die(file + ": tensor 'query' is missing");
    require_rank3(file, *q);
    if (q->shape[2] != E) die(file + ": tensor 'query' has shape " + shape_text(q->shape) + ", expected [B, Lq, " + std::to_string(E) + "]");
    in.batch = static_cast<uint32_t>(q->shape[0]);
    in.lq = static_cast<uint32_t>(q->shape[1]);
    in.lk = in.lq;
    in.query = floats(file, *q);
    const Tensor* k = vkmha::io::find_tensor(ts, "key");
    const Tensor* v = vkmha::io::find_tensor(ts, "value");
    if (v && !k) die(file + ": tensor 'value' is given without 'key'");
    if (k) {
        require_rank3(file, *k);
        if (k->shape[0] != in.batch || k->shape[2] != kdim)
            die(file + ": tensor 'key' has shape " + shape_text(k->shape) + ", expected [" + std::to_string(in.batch) + ", Lk, " + std::to_string(kdim) + "]");
        in.lk = static_cast<uint32_t>(k->shape[1]);
        in.key = floats(file, *k);
        in.has_key = true;
        const Tensor& vt = v ? *v : *k;
        if (v) require_rank3(file, *v);
        if (vt.shape[0] != in.batch || vt.shape[1] != in.lk || vt.shape[2] != vdim)
            die(file + ": tensor '" + vt.name + "' has shape " + shape_text(vt.shape) + ", expected [" + std::to_string(in.batch) + ", " + std::to_string(in.lk) + ", " + std::to_string(vdim) + "]");
        if (v) in.value = floats(file, *v), in.has_value = true;
    } else if (kdim != E || vdim != E) {
        die(file + ": tensor 'key' is missing (the weights have kdim " + std::to_string(kdim) + ", vdim " + std::to_string(vdim) + ")");
    }
    if (const Tensor* m = vkmha::io::find_tensor(ts, "key_padding_mask")) {
        if (m->dtype != DType::boolean && m->dtype != DType::u8)
            die(file + ": tensor 'key_padding_mask' has dtype " + std::string(vkmha::io::dtype_name(m->dtype)) + ", expected BOOL or U8");
        if (m->shape != std::vector<uint64_t>{in.batch, in.lk})
            die(file + ": tensor 'key_padding_mask' has shape " + shape_text(m->shape) + ", expected [" + std::to_string(in.batch) + ", " + std::to_string(in.lk) + "]");
        auto bytes = vkmha::io::to_bool_bytes(*m, file);
        if (!bytes) die(bytes.error().message);
        in.key_padding_mask = std::move(bytes.value());
    }
    if (const Tensor* m = vkmha::io::find_tensor(ts, "attn_mask")) {
        const std::vector<uint64_t> two{in.lq, in.lk}, three{uint64_t(in.batch) * H, in.lq, in.lk};
        if (m->shape == three) in.mask_per_head = true;
        else if (m->shape != two)
            die(file + ": tensor 'attn_mask' has shape " + shape_text(m->shape) + ", expected " + shape_text(two) + " or " + shape_text(three));
        if (m->dtype == DType::boolean || m->dtype == DType::u8) {
            auto bytes = vkmha::io::to_bool_bytes(*m, file);
            if (!bytes) die(bytes.error().message);
            in.mask_bytes = std::move(bytes.value());
            in.mask_type = VKMHA_MASK_TYPE_BOOL;
        } else if (m->dtype == DType::f32) {
            in.mask_floats = floats(file, *m);
            in.mask_type = VKMHA_MASK_TYPE_ADDITIVE;
        } else {
            die(file + ": tensor 'attn_mask' has dtype " + std::string(vkmha::io::dtype_name(m->dtype)) + ", expected BOOL, U8 or F32");
        }
    }
    return in;
}

struct Outputs {
    std::vector<float> output, weights;
};

Outputs run_cpu(const Options& o, const vkmha::io::LoadedModel& model, const Inputs& in) {
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

class Api {
  public:
    Api() {
        if (vkmhaGetProcTable(VKMHA_HEADER_VERSION, &m_t, sizeof m_t) != VKMHA_SUCCESS) die("vkmhaGetProcTable failed");
    }
    const VkmhaProcTable& operator*() const { return m_t; }
    const VkmhaProcTable* operator->() const { return &m_t; }
    void check(VkmhaResult r, const std::string& what) const {
        if (r != VKMHA_SUCCESS) die(what + ": " + m_t.getLastError());
    }

  private:
    VkmhaProcTable m_t{};
};

Outputs run_gpu(const Options& o, const Api& api, VkmhaModel model, VkmhaContext ctx, const Inputs& in,
                const VkmhaModelProperties& mp) {
    VkmhaContextProperties cp{};
    cp.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
    api.check(api->getContextProperties(ctx, &cp), "device");
    std::fprintf(stderr, "vkmha-run: device: %s (Vulkan %u.%u, subgroup %u)\n", cp.deviceName,
                 VK_API_VERSION_MAJOR(cp.deviceApiVersion), VK_API_VERSION_MINOR(cp.deviceApiVersion), cp.subgroupSize);
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = in.batch;
    si.maxQueryLength = in.lq;
    si.maxKeyLength = in.lk;
    si.framesInFlight = 1;
    si.hostIo = VK_TRUE;
    VkmhaSession session = nullptr;
    api.check(api->createSession(model, &si, &session), "session");
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
            std::fprintf(stderr, "vkmha-run: gpu %-16s %9.3f ms\n", api->stageName(timings[i].stage), timings[i].milliseconds);
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
        Inputs in = load_inputs(o.input, c.embed_dim, c.kdim, c.vdim, c.num_heads);
        out = run_cpu(o, model.value(), in);
        E = c.embed_dim, B = in.batch, Lq = in.lq, Lk = in.lk;
    } else {
        Api api;
        VkmhaOwnDeviceInfo own{};
        own.sType = VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO;
        own.deviceIndex = -1;
        if (!o.device.empty()) {
            bool numeric = o.device.find_first_not_of("0123456789") == std::string::npos;
            if (numeric) {
                errno = 0;
                unsigned long index = std::strtoul(o.device.c_str(), nullptr, 10);
                if (errno || index > 1024) die("--device '" + o.device + "' is not a device index");
                own.deviceIndex = static_cast<int32_t>(index);
            }
            else own.pDeviceName = o.device.c_str();
        }
        VkmhaContextCreateInfo ci{};
        ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
        ci.deviceMode = VKMHA_DEVICE_MODE_OWN;
        ci.pOwnDevice = &own;
        ci.pfnLogCallback = [](VkmhaLogLevel level, const char* message, void*) {
            if (level >= VKMHA_LOG_LEVEL_WARNING) std::fprintf(stderr, "vkmha-run: %s\n", message);
        };
        VkmhaContext ctx = nullptr;
        api.check(api->createContext(&ci, &ctx), "--device '" + (o.device.empty() ? std::string("default") : o.device) + "'");
        VkmhaModelCreateInfo mi{};
        mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
        mi.numHeads = o.heads;
        mi.numKvHeads = o.kv_heads;
        mi.pSafetensorsPath = o.weights.c_str();
        VkmhaModel model = nullptr;
        VkmhaResult r = api->createModel(ctx, &mi, &model);
        if (r != VKMHA_SUCCESS) {
            std::string message = api->getLastError();
            api->destroyContext(ctx);
            die(message);
        }
        VkmhaModelProperties mp{};
        api.check(api->getModelProperties(model, &mp), "model");
        Inputs in = load_inputs(o.input, mp.embedDim, mp.kdim, mp.vdim, mp.numHeads);
        out = run_gpu(o, api, model, ctx, in, mp);
        api->destroyModel(model);
        api->destroyContext(ctx);
        E = mp.embedDim, B = in.batch, Lq = in.lq, Lk = in.lk, H = mp.numHeads;
    }
    std::vector<Tensor> tensors;
    tensors.push_back(vkmha::io::make_f32_tensor("attn_output", {B, Lq, E}, out.output));
    if (o.need_weights) {
        std::vector<uint64_t> shape = o.average ? std::vector<uint64_t>{B, Lq, Lk} : std::vector<uint64_t>{B, H, Lq, Lk};
        tensors.push_back(vkmha::io::make_f32_tensor("attn_output_weights", shape, out.weights));
    }
    auto written = vkmha::io::write_safetensors(o.output, tensors);
    if (!written) die(written.error().message);
    std::fprintf(stderr, "vkmha-run: wrote %s\n", o.output.c_str());
    return 0;
}
