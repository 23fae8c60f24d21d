// Rotary position embeddings: frequency tables for each Hugging Face scaling, and the reference rotation.
#include "rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace vkmha {
namespace {

Error invalid(const std::string& message) { return make_error(ErrorCode::invalid_argument, message); }

// Yarn's correction dim: the dim whose wavelength turns num_rotations times over the original context.
double yarn_correction_dim(double num_rotations, double dims, double theta, double max_positions) {
    return dims * std::log(max_positions / (num_rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(theta));
}

void apply_llama3(const RopeConfig& r, std::vector<double>& inv_freq) {
    const double orig = r.original_max_positions;
    const double low_wavelen = orig / r.low_freq_factor;
    const double high_wavelen = orig / r.high_freq_factor;
    for (double& f : inv_freq) {
        const double wavelen = 2.0 * std::numbers::pi / f;
        if (wavelen > low_wavelen) {
            f /= r.factor;
        } else if (wavelen >= high_wavelen) {
            const double smooth = (orig / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
            f = (1.0 - smooth) * f / r.factor + smooth * f;
        }
    }
}

void apply_yarn(const RopeConfig& r, uint32_t dims, std::vector<double>& inv_freq) {
    double low = yarn_correction_dim(r.beta_fast, dims, r.theta, r.original_max_positions);
    double high = yarn_correction_dim(r.beta_slow, dims, r.theta, r.original_max_positions);
    if (r.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dims) - 1.0);
    if (low == high) high += 0.001; // HF's guard against a zero-width ramp
    for (size_t i = 0; i < inv_freq.size(); ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1.0 - ramp; // 1: keep the original frequency (high frequencies)
        const double interpolated = inv_freq[i] / r.factor;
        inv_freq[i] = interpolated * (1.0 - extrapolation) + inv_freq[i] * extrapolation;
    }
}

} // namespace

Status validate_rope(const RopeConfig& r, uint32_t head_dim) {
    if (!r.enabled()) return {};
    if (r.layout != RopeLayout::neox && r.layout != RopeLayout::gptj)
        return invalid("unknown RoPE layout " + std::to_string(static_cast<uint32_t>(r.layout)));
    const uint32_t dims = r.dims ? r.dims : head_dim;
    if (dims % 2 != 0 || dims > head_dim)
        return invalid("RoPE rotary dims " + std::to_string(dims) + " must be even and at most the head dim " +
                       std::to_string(head_dim));
    if (!(r.theta > 1.0) || !std::isfinite(r.theta))
        return invalid("RoPE theta " + std::to_string(r.theta) + " must be finite and > 1");
    const bool scaled = r.scaling != RopeScaling::none;
    if (scaled && (!(r.factor > 0.0) || !std::isfinite(r.factor)))
        return invalid("RoPE scaling factor " + std::to_string(r.factor) + " must be finite and > 0");
    switch (r.scaling) {
    case RopeScaling::none:
    case RopeScaling::linear: return {};
    case RopeScaling::llama3:
        if (r.original_max_positions == 0) return invalid("llama3 RoPE scaling needs original_max_position_embeddings");
        if (!(r.low_freq_factor > 0.0) || !(r.high_freq_factor > r.low_freq_factor))
            return invalid("llama3 RoPE scaling needs 0 < low_freq_factor (" + std::to_string(r.low_freq_factor) +
                           ") < high_freq_factor (" + std::to_string(r.high_freq_factor) + ")");
        return {};
    case RopeScaling::yarn:
        if (r.original_max_positions == 0) return invalid("yarn RoPE scaling needs original_max_position_embeddings");
        if (!(r.beta_fast > 0.0) || !(r.beta_slow > 0.0))
            return invalid("yarn RoPE scaling needs beta_fast and beta_slow > 0");
        return {};
    }
    return invalid("unknown RoPE scaling " + std::to_string(static_cast<uint32_t>(r.scaling)));
}

std::vector<float> rope_inv_freq(const RopeConfig& r, uint32_t dims) {
    std::vector<double> inv_freq(dims / 2);
    for (uint32_t i = 0; i < dims / 2; ++i)
        inv_freq[i] = 1.0 / std::pow(r.theta, static_cast<double>(2 * i) / static_cast<double>(dims));
    switch (r.scaling) {
    case RopeScaling::none: break;
    case RopeScaling::linear:
        for (double& f : inv_freq) f /= r.factor;
        break;
    case RopeScaling::llama3: apply_llama3(r, inv_freq); break;
    case RopeScaling::yarn: apply_yarn(r, dims, inv_freq); break;
    }
    return {inv_freq.begin(), inv_freq.end()};
}

float rope_attention_factor(const RopeConfig& r) {
    if (r.scaling != RopeScaling::yarn || r.factor <= 1.0) return 1.0f;
    return static_cast<float>(0.1 * std::log(r.factor) + 1.0);
}

void rope_rotate(float* x, uint32_t head_dim, const RopeConfig& r, const std::vector<float>& inv_freq,
                 float attention_factor, int64_t position) {
    const uint32_t dims = r.dims ? r.dims : head_dim;
    const uint32_t half = dims / 2;
    for (uint32_t i = 0; i < half; ++i) {
        const double angle = rope_angle(position, inv_freq[i]);
        const double c = std::cos(angle) * attention_factor, s = std::sin(angle) * attention_factor;
        const uint32_t a = r.layout == RopeLayout::neox ? i : 2 * i;
        const uint32_t b = r.layout == RopeLayout::neox ? i + half : 2 * i + 1;
        const double x0 = x[a], x1 = x[b];
        x[a] = static_cast<float>(x0 * c - x1 * s);
        x[b] = static_cast<float>(x1 * c + x0 * s);
    }
}

} // namespace vkmha
