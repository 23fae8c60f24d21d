// vkmha-viz: runs one attention layer from safetensors files through vkmha's public C API with per-head weights
// and draws one batch item's weights as a PNG: a heat map per head (rows = queries, columns = keys).
#include "vkmha/vkmha.h"

#include "common/api.h"
#include "common/attention_inputs.h"
#include "common/cli.h"
#include "common/png_writer.h"
#include "render.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using vkmha::samples::Api;
using vkmha::samples::InputTensors;

constexpr const char* kProgram = "vkmha-viz";
constexpr int kTargetWidth = 1200; // pixels, for --cell's automatic choice
constexpr int kMaxSide = 16384;    // pixels: far past any useful picture, and libpng's rows stay small

struct Options {
    std::string weights, input, output, device;
    uint32_t heads = 0, kv_heads = 0, batch_index = 0, cell = 0, max_tokens = 256;
    bool causal = false;
    vkmha::viz::Scale scale = vkmha::viz::Scale::linear;
};

// Failures are thrown so the owners of the API's handles destroy them on the way out (std::exit would skip that);
// main reports each as one line and exit code 1.
struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void die(const std::string& message) { throw Failure(message); }

Options parse(int argc, char** argv) {
    using namespace vkmha::cli;
    Options o;
    std::string scale = "linear";
    CLI::App app{"Runs the layer on a Vulkan device through vkmha's C API (masks from the input file as in vkmha-run)\n"
                 "and draws each head's attention weights for one batch item as a PNG (rows = queries, columns = "
                 "keys).",
                 kProgram};
    configure(app);
    app.add_option("--weights", o.weights, "the layer's weights (W.safetensors)")->required();
    app.add_option("--input", o.input, "the input tensors (IN.safetensors)")->required();
    app.add_option("--heads", o.heads, "query heads H")->required()->transform(count());
    app.add_option("--output", o.output, "the picture (OUT.png)")->required();
    app.add_option("--kv-heads", o.kv_heads, "key/value heads G (grouped-query attention)")->transform(count());
    app.add_flag("--causal", o.causal, "causal mask");
    app.add_option("--batch-index", o.batch_index, "the batch item to draw")
        ->transform(whole_number(65535))
        ->capture_default_str();
    app.add_option("--device", o.device, "Vulkan device by index or name substring")->type_name("N|NAME");
    app.add_option("--cell", o.cell, "pixels per weight (default: about 1200 px wide)")->transform(count(64));
    app.add_option("--max-tokens", o.max_tokens, "draw at most N queries and keys (the layer sees all)")
        ->transform(count())
        ->capture_default_str();
    app.add_option("--scale", scale, "colour by weight, or by its log over three decades below the maximum")
        ->check(CLI::IsMember({"linear", "log"}))
        ->capture_default_str();
    vkmha::cli::parse(app, argc, argv);
    o.scale = scale == "log" ? vkmha::viz::Scale::log : vkmha::viz::Scale::linear;
    if (o.device == "cpu")
        die("--device 'cpu': vkmha-viz runs on a Vulkan device only (vkmha-run has the CPU reference)");
    return o;
}

// Batch item b of the inputs as host pointers (a batch of one), so the GPU computes and returns only what is drawn.
struct BatchItem {
    const float* query = nullptr;
    const float* key = nullptr;
    const float* value = nullptr;
    const uint8_t* key_padding_mask = nullptr;
    const void* attn_mask = nullptr;
};

BatchItem select_batch_item(const InputTensors& in, uint32_t b, const VkmhaModelProperties& mp) {
    const size_t lq = in.lq, lk = in.lk, mask_plane = lq * lk * (in.mask_per_head ? mp.numHeads : 0);
    BatchItem item;
    item.query = in.query.data() + b * lq * mp.embedDim;
    if (in.has_key) item.key = in.key.data() + b * lk * mp.kdim;
    if (in.has_value) item.value = in.value.data() + b * lk * mp.vdim;
    if (!in.key_padding_mask.empty()) item.key_padding_mask = in.key_padding_mask.data() + b * lk;
    if (in.mask_type == VKMHA_MASK_TYPE_BOOL) item.attn_mask = in.mask_bytes.data() + b * mask_plane;
    if (in.mask_type == VKMHA_MASK_TYPE_ADDITIVE) item.attn_mask = in.mask_floats.data() + b * mask_plane;
    return item;
}

// Whether query i may not see key j in head h: what the drawing greys out, so "masked" reads apart from "near 0".
// An additive mask masks only where it holds -inf; finite values are part of the scores.
bool is_masked(const InputTensors& in, const BatchItem& item, bool causal, uint32_t h, uint32_t i, uint32_t j) {
    if (causal && int64_t(j) > int64_t(i) + int64_t(in.lk) - int64_t(in.lq)) return true;
    if (item.key_padding_mask && item.key_padding_mask[j]) return true;
    const size_t k = (in.mask_per_head ? size_t(h) * in.lq * in.lk : 0) + size_t(i) * in.lk + j;
    if (in.mask_type == VKMHA_MASK_TYPE_BOOL) return static_cast<const uint8_t*>(item.attn_mask)[k] != 0;
    if (in.mask_type == VKMHA_MASK_TYPE_ADDITIVE) {
        const float v = static_cast<const float*>(item.attn_mask)[k];
        return std::isinf(v) && v < 0;
    }
    return false;
}

// Owners for the API's handles, destroyed in reverse order of creation (session, model, context).
using ContextOwner = std::unique_ptr<VkmhaContext_T, void(VKMHA_CALL*)(VkmhaContext)>;
using ModelOwner = std::unique_ptr<VkmhaModel_T, void(VKMHA_CALL*)(VkmhaModel)>;
using SessionOwner = std::unique_ptr<VkmhaSession_T, void(VKMHA_CALL*)(VkmhaSession)>;

ModelOwner create_model(const Api& api, VkmhaContext ctx, const Options& o) {
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.numHeads = o.heads;
    mi.numKvHeads = o.kv_heads;
    mi.pSafetensorsPath = o.weights.c_str();
    VkmhaModel model = nullptr;
    api.check(api->createModel(ctx, &mi, &model), "model");
    return {model, api->destroyModel};
}

// The per-head weights [H, Lq, Lk] of one batch item.
std::vector<float> run_attention(const Api& api, VkmhaModel model, const InputTensors& in, const BatchItem& item,
                                 bool causal, uint32_t heads) {
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = 1;
    si.maxQueryLength = in.lq;
    si.maxKeyLength = in.lk;
    si.framesInFlight = 1;
    si.hostIo = VK_TRUE;
    si.flags = VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT |
               (in.mask_per_head ? uint32_t(VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT) : 0u);
    VkmhaSession raw = nullptr;
    api.check(api->createSession(model, &si, &raw),
              "session for Lq " + std::to_string(in.lq) + ", Lk " + std::to_string(in.lk));
    const SessionOwner session(raw, api->destroySession);
    VkmhaHostSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
    hi.batch = 1;
    hi.queryLength = in.lq;
    hi.keyLength = in.lk;
    hi.flags = VKMHA_ATTENTION_NEED_WEIGHTS_BIT | VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT |
               (causal ? uint32_t(VKMHA_ATTENTION_CAUSAL_BIT) : 0u) |
               (in.mask_per_head ? uint32_t(VKMHA_ATTENTION_PER_HEAD_MASK_BIT) : 0u);
    hi.keyPaddingMaskType = item.key_padding_mask ? VKMHA_MASK_TYPE_BOOL : VKMHA_MASK_TYPE_NONE;
    hi.attnMaskType = in.mask_type;
    hi.pQuery = item.query;
    hi.pKey = item.key;
    hi.pValue = item.value;
    hi.pKeyPaddingMask = item.key_padding_mask;
    hi.pAttnMask = item.attn_mask;
    uint64_t value = 0;
    api.check(api->submit(session.get(), &hi, &value), "submit");
    api.check(api->wait(session.get(), value, UINT64_MAX), "wait");
    std::vector<float> weights(size_t(heads) * in.lq * in.lk);
    api.check(api->readOutputs(session.get(), value, nullptr, 0, weights.data(), weights.size()), "read outputs");
    return weights;
}

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

int run(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const Api api(die);
    const ContextOwner ctx(api.create_own_context(o.device, kProgram), api->destroyContext);
    VkmhaContextProperties cp{};
    cp.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
    api.check(api->getContextProperties(ctx.get(), &cp), "device properties");
    const ModelOwner model = create_model(api, ctx.get(), o);
    VkmhaModelProperties mp{};
    api.check(api->getModelProperties(model.get(), &mp), "model properties");

    auto loaded = vkmha::samples::load_input_tensors(o.input, mp.embedDim, mp.kdim, mp.vdim, mp.numHeads);
    if (!loaded) die(loaded.error().message);
    const InputTensors& in = loaded.value();
    if (o.batch_index >= in.batch)
        die("--batch-index " + std::to_string(o.batch_index) + " is out of range: " + o.input + " has batch " +
            std::to_string(in.batch));
    const BatchItem item = select_batch_item(in, o.batch_index, mp);
    const std::vector<float> weights = run_attention(api, model.get(), in, item, o.causal, mp.numHeads);

    vkmha::viz::HeatmapSet set;
    set.scale = o.scale;
    set.heads = mp.numHeads;
    set.kv_heads = mp.numKvHeads;
    set.queries = std::min(in.lq, o.max_tokens);
    set.keys = std::min(in.lk, o.max_tokens);
    const size_t shown = size_t(set.heads) * set.queries * set.keys;
    set.weights.reserve(shown);
    set.masked.reserve(shown);
    for (uint32_t h = 0; h < set.heads; ++h)
        for (uint32_t i = 0; i < set.queries; ++i)
            for (uint32_t j = 0; j < set.keys; ++j) {
                set.weights.push_back(weights[(size_t(h) * in.lq + i) * in.lk + j]);
                set.masked.push_back(is_masked(in, item, o.causal, h, i, j) ? 1 : 0);
            }

    std::string masks;
    auto add_mask = [&masks](const std::string& name) { masks += (masks.empty() ? "" : ", ") + name; };
    if (o.causal) add_mask("causal");
    if (item.key_padding_mask) add_mask("key padding");
    if (in.mask_type != VKMHA_MASK_TYPE_NONE)
        add_mask(std::string(in.mask_type == VKMHA_MASK_TYPE_BOOL ? "bool" : "additive") +
                 (in.mask_per_head ? " per-head" : "") + " attn_mask");
    const auto count = [](uint32_t n) { return std::to_string(n); };
    set.title_lines.push_back("input " + file_name(o.input) + "   weights " + file_name(o.weights));
    set.title_lines.push_back("[B, H, Lq, Lk] = [" + count(in.batch) + ", " + count(mp.numHeads) + ", " + count(in.lq) +
                              ", " + count(in.lk) + "], E " + count(mp.embedDim) +
                              (mp.numKvHeads < mp.numHeads
                                   ? ", " + count(mp.numKvHeads) + (mp.numKvHeads == 1 ? " kv group" : " kv groups")
                                   : std::string()) +
                              ": batch item " + count(o.batch_index));
    if (set.queries < in.lq || set.keys < in.lk)
        set.title_lines.push_back("showing the first " + count(set.queries) +
                                  (set.queries == 1 ? " query" : " queries") + " and " + count(set.keys) +
                                  (set.keys == 1 ? " key" : " keys") + " (--max-tokens)");
    set.title_lines.push_back("masks " + (masks.empty() ? std::string("none") : masks) + "   device " + cp.deviceName);

    const vkmha::viz::Layout layout = vkmha::viz::plan_layout(set, static_cast<int>(o.cell), kTargetWidth);
    if (layout.width > kMaxSide || layout.height > kMaxSide)
        die("the picture would be " + std::to_string(layout.width) + " x " + std::to_string(layout.height) +
            " pixels (over " + std::to_string(kMaxSide) + "): lower --cell (" + std::to_string(layout.cell) +
            ") or --max-tokens (" + std::to_string(o.max_tokens) + ")");
    const std::string error = vkmha::samples::write_png(o.output, vkmha::viz::draw(set, layout));
    if (!error.empty()) die(error);
    std::fprintf(stderr, "%s: device: %s\n%s: wrote %s (%d x %d pixels, %d px per weight)\n", kProgram, cp.deviceName,
                 kProgram, o.output.c_str(), layout.width, layout.height, layout.cell);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const Failure& e) {
        vkmha::cli::die(kProgram, e.what());
    } catch (const std::exception& e) { // std::bad_alloc for an input too large to hold, and the like
        vkmha::cli::die(kProgram, std::string("unexpected failure: ") + e.what());
    }
}
