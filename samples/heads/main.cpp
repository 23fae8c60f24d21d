// vkmha-heads: per-head behaviour of one attention layer on the caller's inputs (entropy, distance, top-1, importance,
// redundancy), and what pruning heads or sharing K/V between them (MHA->GQA) loses and saves, measured on the device
// through vkmha's public API (issue 14).
#include "common/api.h"
#include "common/attention_inputs.h"
#include "common/cli.h"
#include "common/model_flags.h"
#include "io/weight_map.h"
#include "layer.h"
#include "runner.h"
#include "study.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

namespace {

using vkmha::heads::ConfigRow;
using vkmha::heads::LayerRunner;
using vkmha::heads::Study;
using vkmha::samples::InputTensors;

constexpr const char* kProgram = "vkmha-heads";

struct Options {
    std::string weights, json, png, device;
    std::vector<std::string> inputs;
    uint32_t heads = 0, kv_heads = 0;
    uint32_t weights_mib = 0; // 0: the device's maxStorageBufferRange
    bool causal = false;
    VkmhaModelAttentionInfo attention{VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO};
};

[[noreturn]] void die(const std::string& message) { vkmha::cli::die(kProgram, message); }

// Progress on stderr, with the seconds since the start: a long-context study takes a while.
void progress(const std::string& what) {
    static const auto start = std::chrono::steady_clock::now();
    const std::chrono::duration<double> t = std::chrono::steady_clock::now() - start;
    std::fprintf(stderr, "%s: [%6.1f s] %s\n", kProgram, t.count(), what.c_str());
}

Options parse(int argc, char** argv) {
    using namespace vkmha::cli;
    Options o;
    CLI::App app{"Per-head metrics of one attention layer on each input (entropy, normalized entropy, mean distance,\n"
                 "top-1, importance, most similar head), and configurations that prune heads or convert MHA to GQA,\n"
                 "with their relative error and measured cost, all on a Vulkan device through vkmha's C API.",
                 kProgram};
    configure(app);
    app.add_option("--weights", o.weights, "the layer's weights (W.safetensors)")->required();
    app.add_option("--input", o.inputs, "input tensors (IN.safetensors); repeat for several inputs")->required();
    app.add_option("--heads", o.heads, "query heads H")->required()->transform(count());
    app.add_option("--kv-heads", o.kv_heads, "key/value heads G (grouped-query attention)")->transform(count());
    app.add_flag("--causal", o.causal, "causal mask (aligned to the bottom right)");
    app.add_option("--device", o.device, "Vulkan device by index or name substring")->type_name("N|NAME");
    app.add_option("--json", o.json, "also write the results as JSON (OUT.json)");
    app.add_option("--png", o.png, "also draw the results (OUT.png)");
    app.add_option("--weights-mib", o.weights_mib,
                   "read the attention weights in query-row chunks of at most this many MiB (default: the device's "
                   "largest binding)")
        ->transform(count(1u << 20));
    vkmha::samples::ModelFlags flags;
    vkmha::samples::add_model_flags(app, o.attention, flags);
    vkmha::cli::parse(app, argc, argv);
    vkmha::samples::apply_model_flags(app, flags, o.attention, kProgram);
    if (o.device == "cpu") die("--device 'cpu': vkmha-heads measures on a Vulkan device only");
    return o;
}

// Visible keys per row: the causal limit (query i at i + Lk - Lq) less the padded keys below it, by prefix sums; a
// boolean or -inf additive attn_mask row is counted as it is.
vkmha::heads::VisibleKeys visible_keys(const InputTensors& in, bool causal, uint32_t H) {
    auto padded = std::make_shared<std::vector<uint32_t>>(size_t(in.batch) * (in.lk + 1), 0u);
    for (uint32_t b = 0; b < in.batch; ++b)
        for (uint32_t j = 0; j < in.lk; ++j)
            (*padded)[size_t(b) * (in.lk + 1) + j + 1] =
                (*padded)[size_t(b) * (in.lk + 1) + j] +
                (!in.key_padding_mask.empty() && in.key_padding_mask[size_t(b) * in.lk + j] ? 1u : 0u);
    return [&in, causal, H, padded](uint32_t b, uint32_t h, uint32_t i) -> uint32_t {
        const int64_t end =
            causal ? std::clamp<int64_t>(int64_t(i) + int64_t(in.lk) - int64_t(in.lq) + 1, 0, in.lk) : int64_t(in.lk);
        const uint32_t* p = padded->data() + size_t(b) * (in.lk + 1);
        if (in.mask_type == VKMHA_MASK_TYPE_NONE) return uint32_t(end) - p[end];
        uint32_t n = 0;
        const size_t row = ((in.mask_per_head ? size_t(b) * H + h : 0) * in.lq + i) * in.lk;
        for (int64_t j = 0; j < end; ++j) {
            const bool pad = p[j + 1] != p[j];
            const bool mask = in.mask_type == VKMHA_MASK_TYPE_BOOL
                                  ? in.mask_bytes[row + size_t(j)] != 0
                                  : std::isinf(in.mask_floats[row + size_t(j)]) && in.mask_floats[row + size_t(j)] < 0;
            n += pad || mask ? 0 : 1;
        }
        return n;
    };
}

// Per head of one input: the metrics from the probabilities, and importance. The output is linear in the head mask
// (O = bo + sum_h f_h C_h, C_h the head's share through the output projection), so O with head h masked is
// O - (O_h - O_0), where O_h keeps head h alone and O_0 masks every head: runs that compute one head's attention and
// none, which the fused kernel's skipping of zero-factor heads makes cheap.
void measure_heads(const LayerRunner& base, const InputTensors& in, uint32_t index, const Options& o, Study& s,
                   uint64_t max_binding) {
    const uint32_t H = base.properties().numHeads;
    progress("input " + std::to_string(index) + ": attention probabilities (" + std::to_string(in.lq) + " x " +
             std::to_string(in.lk) + " per head)");
    const std::vector<float> probs = base.probabilities(in, o.causal, max_binding);
    progress("input " + std::to_string(index) + ": per-head metrics");
    auto metrics = vkmha::heads::head_metrics(probs, in.batch, H, in.lq, in.lk, visible_keys(in, o.causal, H));
    progress("input " + std::to_string(index) + ": importance of each head");
    const std::vector<float> full = base.run(in, o.causal, {}).values;
    const std::vector<float> none = base.run(in, o.causal, std::vector<float>(H, 0.0f)).values;
    for (uint32_t h = 0; h < H; ++h) {
        std::vector<float> mask(H, 0.0f);
        mask[h] = 1.0f;
        const std::vector<float> alone = base.run(in, o.causal, mask).values;
        std::vector<float> without(full.size());
        for (size_t e = 0; e < full.size(); ++e) without[e] = full[e] - (alone[e] - none[e]);
        metrics[h].importance = vkmha::heads::relative_error(without, full);
        s.heads.push_back({h, index, metrics[h]});
    }
}

// Prefill runs of the longest input per configuration; its cost is the least of them, so that a busy machine does
// not decide a row (decode steps are repeated likewise in LayerRunner::decode_ms).
constexpr int kPrefillRepeats = 3;

// The concatenation of every input's output under a configuration, and its GPU time on the longest input.
struct ConfigRun {
    std::vector<float> output;
    double prefill_ms = 0;
};

ConfigRun run_config(const LayerRunner& r, const std::vector<InputTensors>& inputs, size_t longest, bool causal,
                     const std::vector<float>& mask) {
    ConfigRun out;
    for (size_t k = 0; k < inputs.size(); ++k) {
        LayerRunner::Output o = r.run(inputs[k], causal, mask);
        out.output.insert(out.output.end(), o.values.begin(), o.values.end());
        if (k != longest) continue;
        out.prefill_ms = o.gpu_ms;
        for (int repeat = 1; repeat < kPrefillRepeats; ++repeat)
            out.prefill_ms = std::min(out.prefill_ms, r.run(inputs[k], causal, mask).gpu_ms);
    }
    return out;
}

ConfigRow cost_row(const LayerRunner& r, const std::string& kind, uint32_t heads, uint32_t kv_heads,
                   const ConfigRun& run, const std::vector<float>& reference, const std::vector<float>& mask) {
    progress(kind + " " + std::to_string(heads) + "/" + std::to_string(kv_heads) + ": decode at 1024 and 4096 keys");
    ConfigRow row{kind, heads, kv_heads};
    row.relative_error = vkmha::heads::relative_error(run.output, reference);
    row.prefill_ms = run.prefill_ms;
    row.decode_ms_1024 = r.decode_ms(1024, mask);
    row.decode_ms_4096 = r.decode_ms(4096, mask);
    row.kv_bytes_per_token = 2ull * kv_heads * r.properties().headDim * 4; // K and V, fp32
    return row;
}

// Heads by mean importance over the inputs, most important first (ties: lower index).
std::vector<uint32_t> importance_order(const Study& s, uint32_t H) {
    std::vector<double> mean(H, 0.0);
    for (const auto& r : s.heads) mean[r.head] += r.metrics.importance;
    std::vector<uint32_t> order(H);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return mean[a] > mean[b]; });
    return order;
}

void measure_configs(const vkmha::samples::Api& api, VkmhaContext ctx, const LayerRunner& base,
                     const vkmha::io::LoadedModel& layer, const std::vector<InputTensors>& inputs, const Options& o,
                     Study& s) {
    const uint32_t H = base.properties().numHeads, G = base.properties().numKvHeads;
    size_t longest = 0;
    uint32_t max_b = 1, max_lq = 1, max_lk = 1;
    for (size_t k = 0; k < inputs.size(); ++k) {
        if (inputs[k].lq > inputs[longest].lq) longest = k;
        max_b = std::max(max_b, inputs[k].batch), max_lq = std::max(max_lq, inputs[k].lq);
        max_lk = std::max(max_lk, inputs[k].lk);
    }
    const std::vector<float> all(H, 1.0f);
    progress("baseline: outputs");
    const ConfigRun baseline = run_config(base, inputs, longest, o.causal, all);
    s.configs.push_back(cost_row(base, "baseline", H, G, baseline, baseline.output, {}));
    const std::vector<uint32_t> order = importance_order(s, H);
    for (uint32_t keep = H / 2; keep >= 1; keep /= 2) {
        std::vector<float> mask(H, 0.0f);
        std::vector<bool> kv_kept(G, false);
        for (uint32_t k = 0; k < keep; ++k) {
            mask[order[k]] = 1.0f;
            kv_kept[order[k] / (H / G)] = true;
        }
        progress("prune to " + std::to_string(keep) + " heads: outputs");
        const ConfigRun run = run_config(base, inputs, longest, o.causal, mask);
        const auto kv = static_cast<uint32_t>(std::count(kv_kept.begin(), kv_kept.end(), true));
        s.configs.push_back(cost_row(base, "prune", keep, kv, run, baseline.output, mask));
        if (keep == 1) break;
    }
    if (layer.config.kdim != layer.config.embed_dim || layer.config.vdim != layer.config.embed_dim) {
        progress("gqa conversions skipped: they need kdim = vdim = embed_dim");
        return;
    }
    for (uint32_t g2 = G - 1; g2 >= 1; --g2) {
        if (G % g2) continue;
        const auto tensors = vkmha::heads::llama_tensors(
            layer.config, vkmha::heads::convert_to_gqa(layer.config, layer.weights, g2), g2);
        const LayerRunner r(api, ctx, {.tensors = &tensors, .heads = H, .kv_heads = g2, .attention = &o.attention},
                            max_b, max_lq, max_lk);
        progress("gqa " + std::to_string(g2) + " kv heads: outputs");
        const ConfigRun run = run_config(r, inputs, longest, o.causal, {});
        s.configs.push_back(cost_row(r, "gqa", H, g2, run, baseline.output, {}));
    }
}

int run(int argc, char** argv) {
    const Options o = parse(argc, argv);
    auto file = vkmha::io::read_safetensors(o.weights);
    if (!file) die(file.error().message);
    auto layer = vkmha::io::map_attention_weights(file.value(), o.heads, o.kv_heads, o.weights);
    if (!layer) die(layer.error().message);
    const vkmha::samples::Api api(die);
    VkmhaContext ctx = api.create_own_context(o.device, kProgram);
    VkmhaContextProperties cp{VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES};
    api.check(api->getContextProperties(ctx, &cp), "device properties");
    Study s;
    s.device = cp.deviceName;
    const auto& c = layer->config;
    std::vector<InputTensors> inputs;
    uint32_t max_b = 1, max_lq = 1, max_lk = 1;
    for (const std::string& path : o.inputs) {
        auto in = vkmha::samples::load_input_tensors(path, c.embed_dim, c.kdim, c.vdim, c.num_heads);
        if (!in) die(in.error().message);
        max_b = std::max(max_b, in->batch), max_lq = std::max(max_lq, in->lq), max_lk = std::max(max_lk, in->lk);
        s.inputs.push_back(std::filesystem::path(path).filename().string());
        s.lengths.push_back(in->lq);
        inputs.push_back(std::move(in.value()));
    }
    {
        const LayerRunner base(api, ctx,
                               {.path = o.weights, .heads = o.heads, .kv_heads = o.kv_heads, .attention = &o.attention},
                               max_b, max_lq, max_lk);
        for (uint32_t k = 0; k < inputs.size(); ++k)
            measure_heads(base, inputs[k], k, o, s,
                          o.weights_mib ? uint64_t(o.weights_mib) << 20 : cp.maxStorageBufferRange);
        measure_configs(api, ctx, base, layer.value(), inputs, o, s);
    }
    api->destroyContext(ctx);
    std::fputs(vkmha::heads::format_table(s).c_str(), stdout);
    if (!o.json.empty()) {
        std::ofstream f(o.json);
        f << vkmha::heads::format_json(s);
        if (!f) die("cannot write " + o.json);
    }
    if (!o.png.empty()) {
        const std::string error = vkmha::heads::write_picture(o.png, s);
        if (!error.empty()) die(error);
    }
    progress("device: " + s.device);
    return 0;
}

} // namespace

int main(int argc, char** argv) { return run(argc, argv); }
