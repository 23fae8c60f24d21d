// vkmha-make-example: writes a random attention layer and input as safetensors, for the demo and the tests.
// PyTorch names by default; Hugging Face Llama names with --kv-heads (grouped-query attention).
#include "common/cli.h"
#include "io/safetensors.h"
#include "structured.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& message) { vkmha::cli::die("vkmha-make-example", message); }

} // namespace

int main(int argc, char** argv) {
    std::string prefix = "example";
    uint32_t E = 64, H = 8, G = 0, B = 2, Lq = 16, Lk = 0, seed = 1;
    bool padding = false, structured = false;
    std::vector<float> head_mask;
    CLI::App app{
        "Writes a random attention layer (PREFIX.weights.safetensors) and its input (PREFIX.input.safetensors):\n"
        "PyTorch names by default, Hugging Face Llama names with --kv-heads (grouped-query attention).",
        "vkmha-make-example"};
    vkmha::cli::configure(app);
    app.add_option("--prefix", prefix, "output files' prefix")->capture_default_str();
    app.add_option("--embed", E, "embedding width E")->transform(vkmha::cli::count())->capture_default_str();
    app.add_option("--heads", H, "query heads H, dividing E")->transform(vkmha::cli::count())->capture_default_str();
    app.add_option("--kv-heads", G, "key/value heads G, dividing H (Llama names)")->transform(vkmha::cli::count());
    app.add_option("--batch", B, "batch size")->transform(vkmha::cli::count())->capture_default_str();
    app.add_option("--lq", Lq, "query length")->transform(vkmha::cli::count())->capture_default_str();
    const CLI::Option* lk = app.add_option("--lk", Lk, "key length: cross-attention (default: self-attention, Lk = Lq)")
                                ->transform(vkmha::cli::count());
    app.add_option("--seed", seed, "random seed")->transform(vkmha::cli::count())->capture_default_str();
    app.add_flag("--key-padding", padding, "add a key_padding_mask (batch item b pads its last b keys)");
    app.add_flag("--structured", structured,
                 "a layer with planted heads (previous token, same token twice, first token, diffuse) and token "
                 "sequences with repeats; --embed 128 --heads 8, self-attention");
    app.add_option("--head-mask", head_mask, "add a head_mask [H]: H comma-separated factors (0 prunes a head)")
        ->delimiter(',');
    vkmha::cli::parse(app, argc, argv);
    const bool cross = lk->count() > 0;
    if (E % H) die("--embed " + std::to_string(E) + " is not divisible by --heads " + std::to_string(H));
    if (G && H % G) die("--heads " + std::to_string(H) + " is not divisible by --kv-heads " + std::to_string(G));
    if (!cross) Lk = Lq;
    if (structured && (E != vkmha::example::kStructuredEmbed || H != vkmha::example::kStructuredHeads || G || cross))
        die("--structured writes an --embed 128 --heads 8 self-attention layer (got --embed " + std::to_string(E) +
            ", --heads " + std::to_string(H) + (G ? ", --kv-heads" : "") + (cross ? ", --lk" : "") + ")");
    if (!head_mask.empty() && head_mask.size() != H)
        die("--head-mask has " + std::to_string(head_mask.size()) + " factors, expected --heads " + std::to_string(H));
    for (float f : head_mask)
        if (!std::isfinite(f)) die("--head-mask factor " + std::to_string(f) + " is not finite");
    const uint32_t D = E / H, KV = (G ? G : H) * D;
    std::mt19937 rng(seed);
    const float bound = 1.0f / std::sqrt(static_cast<float>(E)); // PyTorch's default Linear init range
    auto random = [&](size_t n, float scale) {
        std::uniform_real_distribution<float> dist(-scale, scale);
        std::vector<float> v(n);
        for (float& x : v) x = dist(rng);
        return v;
    };
    using vkmha::io::make_f32_tensor;
    std::vector<vkmha::io::Tensor> weights;
    if (G) {
        weights.push_back(make_f32_tensor("q_proj.weight", {E, E}, random(size_t(E) * E, bound)));
        weights.push_back(make_f32_tensor("k_proj.weight", {KV, E}, random(size_t(KV) * E, bound)));
        weights.push_back(make_f32_tensor("v_proj.weight", {KV, E}, random(size_t(KV) * E, bound)));
        weights.push_back(make_f32_tensor("o_proj.weight", {E, E}, random(size_t(E) * E, bound)));
    } else {
        weights.push_back(make_f32_tensor("in_proj_weight", {3ull * E, E}, random(3ull * E * E, bound)));
        weights.push_back(make_f32_tensor("in_proj_bias", {3ull * E}, random(3ull * E, 0.1f)));
        weights.push_back(make_f32_tensor("out_proj.weight", {E, E}, random(size_t(E) * E, bound)));
        weights.push_back(make_f32_tensor("out_proj.bias", {E}, random(E, 0.1f)));
    }
    if (structured) weights = vkmha::example::structured_weights(seed);
    std::vector<vkmha::io::Tensor> input;
    input.push_back(
        make_f32_tensor("query", {B, Lq, E},
                        structured ? vkmha::example::structured_query(B, Lq, seed) : random(size_t(B) * Lq * E, 1.0f)));
    if (cross) {
        input.push_back(make_f32_tensor("key", {B, Lk, E}, random(size_t(B) * Lk * E, 1.0f)));
        input.push_back(make_f32_tensor("value", {B, Lk, E}, random(size_t(B) * Lk * E, 1.0f)));
    }
    if (!head_mask.empty()) input.push_back(make_f32_tensor("head_mask", {H}, head_mask));
    if (padding) {
        vkmha::io::Tensor m;
        m.name = "key_padding_mask";
        m.dtype = vkmha::io::DType::boolean;
        m.shape = {B, Lk};
        m.data.resize(size_t(B) * Lk);
        for (uint32_t b = 0; b < B; ++b)
            for (uint32_t j = 0; j < Lk; ++j) m.data[size_t(b) * Lk + j] = j >= Lk - b % Lk ? 1 : 0; // pad b keys
        input.push_back(std::move(m));
    }
    for (auto& [file, tensors] :
         {std::pair{prefix + ".weights.safetensors", weights}, std::pair{prefix + ".input.safetensors", input}}) {
        auto r = vkmha::io::write_safetensors(file, tensors);
        if (!r) die(r.error().message);
        std::fprintf(stderr, "vkmha-make-example: wrote %s\n", file.c_str());
    }
    return 0;
}
