// model_flags.cpp: the model-option flags (see model_flags.h).
#include "model_flags.h"

#include "cli.h"

#include <algorithm>
#include <string>

namespace vkmha::samples {
namespace {

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> fields;
    size_t begin = 0;
    for (size_t end; (end = text.find(separator, begin)) != std::string::npos; begin = end + 1)
        fields.push_back(text.substr(begin, end - begin));
    fields.push_back(text.substr(begin));
    return fields;
}

// --rope-scaling KIND:FIELDS into `a`; returns why `text` is refused (naming the value and the expected form), or "".
std::string parse_rope_scaling(const std::string& text, VkmhaModelAttentionInfo& a) {
    struct Refusal {
        std::string why;
    };
    const size_t colon = text.find(':');
    const std::string kind = text.substr(0, colon);
    const std::vector<std::string> f =
        colon == std::string::npos ? std::vector<std::string>{} : split(text.substr(colon + 1), ',');
    auto bad = [&](const std::string& why) { throw Refusal{why}; };
    auto number = [&](size_t i, const char* what) {
        float v = 0;
        if (!vkmha::cli::to_number(f[i], 0.0, &v))
            bad(std::string(what) + " '" + f[i] + "' is not a finite number > 0");
        return v;
    };
    auto count = [&](size_t i) {
        float v = 0;
        if (!vkmha::cli::to_number(f[i], 0.0, &v) || v != std::floor(v) || v > 1e9)
            bad("ORIG '" + f[i] + "' is not a count");
        return static_cast<uint32_t>(v);
    };
    auto fields = [&](std::initializer_list<size_t> allowed) {
        if (std::find(allowed.begin(), allowed.end(), f.size()) != allowed.end()) return;
        std::string counts;
        for (const size_t n : allowed)
            counts += (counts.empty() ? "" : n == *(allowed.end() - 1) ? " or " : ", ") + std::to_string(n);
        bad(kind + " takes " + counts + " fields, got " + std::to_string(f.size()));
    };
    try {
        if (kind == "linear") {
            fields({1});
            a.ropeScaling = VKMHA_ROPE_SCALING_LINEAR;
            a.ropeScalingFactor = number(0, "F");
        } else if (kind == "llama3") {
            fields({4});
            a.ropeScaling = VKMHA_ROPE_SCALING_LLAMA3;
            a.ropeScalingFactor = number(0, "F");
            a.ropeLowFreqFactor = number(1, "LOW");
            a.ropeHighFreqFactor = number(2, "HIGH");
            a.ropeOriginalMaxPositions = count(3);
            if (!(a.ropeHighFreqFactor > a.ropeLowFreqFactor)) bad("HIGH must be above LOW");
        } else if (kind == "yarn") {
            fields({2, 4, 5});
            a.ropeScaling = VKMHA_ROPE_SCALING_YARN;
            a.ropeScalingFactor = number(0, "F");
            a.ropeOriginalMaxPositions = count(1);
            if (f.size() >= 4) {
                a.ropeBetaFast = number(2, "BETA_FAST");
                a.ropeBetaSlow = number(3, "BETA_SLOW");
            }
            if (f.size() == 5 && f[4] != "notrunc") bad("the fifth field '" + f[4] + "' is not notrunc");
            a.ropeNoTruncate = f.size() == 5 ? VK_TRUE : VK_FALSE;
        } else {
            bad("unknown scaling '" + kind + "'");
        }
    } catch (const Refusal& r) {
        return "'" + text + "': " + r.why +
               " (expected linear:F | llama3:F,LOW,HIGH,ORIG | yarn:F,ORIG[,BETA_FAST,BETA_SLOW[,notrunc]])";
    }
    return {};
}

} // namespace

void add_model_flags(CLI::App& app, VkmhaModelAttentionInfo& m, ModelFlags& flags) {
    using namespace vkmha::cli;
    const char* group = "Model options (the attention of real model families)";
    app.add_option("--rope", flags.rope, "rotary embedding: halves (neox) or interleaved pairs (gptj)")
        ->check(CLI::IsMember({"neox", "gptj"}))
        ->group(group);
    const CLI::Validator even(
        [](std::string& text) {
            return std::stoul(text) % 2 ? "'" + text + "' is odd (rotary dims come in pairs)" : std::string();
        },
        "EVEN");
    flags.rope_only = {
        app.add_option("--rope-theta", m.ropeTheta, "RoPE base (default 10000)")
            ->transform(number_above(1.0))
            ->group(group),
        app.add_option("--rope-dims", m.rotaryDims, "rotary dims (default the head dim)")
            ->transform(count())
            ->check(even)
            ->group(group),
        app.add_option("--rope-scaling", flags.rope_scaling,
                       "linear:F | llama3:F,LOW,HIGH,ORIG | yarn:F,ORIG[,BETA_FAST,BETA_SLOW[,notrunc]]")
            ->check(CLI::Validator(
                [](std::string& text) {
                    VkmhaModelAttentionInfo scratch{};
                    return parse_rope_scaling(text, scratch);
                },
                ""))
            ->type_name("KIND:FIELDS")
            ->group(group),
    };
    app.add_option("--scale", m.scale, "softmax scale (default 1/sqrt(head dim))")
        ->transform(number_above(0.0))
        ->group(group);
    app.add_option("--softcap", m.softcap, "logit soft-capping")->transform(number_above(0.0))->group(group);
    app.add_flag("--alibi", flags.alibi, "ALiBi position biases")->group(group);
    app.add_option("--window", m.window, "sliding window: key j visible to query i when i - W < j")
        ->transform(count(1ul << 30))
        ->group(group);
    app.add_option("--norm-eps", m.normEps, "QK-norm's epsilon (default 1e-6)")
        ->transform(number_above(0.0))
        ->group(group);
}

// What CLI11 cannot check alone: rope-only flags without --rope, and the compound --rope-scaling value.
void apply_model_flags(const CLI::App& app, const ModelFlags& flags, VkmhaModelAttentionInfo& m, const char* program) {
    if (flags.rope == "neox") m.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
    if (flags.rope == "gptj") m.ropeLayout = VKMHA_ROPE_LAYOUT_GPTJ;
    if (m.ropeLayout == VKMHA_ROPE_LAYOUT_NONE)
        for (const CLI::Option* given : app.parse_order()) // the first one on the command line, as before
            if (std::find(flags.rope_only.begin(), flags.rope_only.end(), given) != flags.rope_only.end())
                vkmha::cli::die(program, given->get_name() + " needs --rope neox|gptj");
    if (!flags.rope_scaling.empty()) parse_rope_scaling(flags.rope_scaling, m); // checked by its validator
    m.alibi = flags.alibi ? VK_TRUE : VK_FALSE;
}

} // namespace vkmha::samples
