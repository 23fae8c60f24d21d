// colormap.h: viridis, the perceptually uniform colour map, as a table, so equal steps in attention weight look
// like equal steps in colour and the picture survives greyscale printing and colour-vision deficiency.
#pragma once

#include "common/raster.h"

#include <algorithm>
#include <cstdint>

namespace vkmha::viz {

using samples::Rgb;

// matplotlib's viridis (Smith, van der Walt and Firing; CC0), resampled at 33 evenly spaced points and rounded to
// 8 bits. Linear interpolation between them stays within 2/255 of the 256-entry original in every channel.
inline constexpr Rgb kViridis[33] = {
    {68, 1, 84},    {71, 13, 96},   {72, 24, 106},  {72, 35, 116},  {71, 45, 123},  {69, 54, 129},  {66, 64, 134},
    {63, 73, 137},  {59, 82, 139},  {55, 90, 141},  {51, 99, 141},  {47, 106, 142}, {44, 114, 142}, {41, 122, 142},
    {38, 129, 142}, {35, 137, 142}, {33, 144, 140}, {31, 152, 139}, {31, 159, 136}, {33, 166, 133}, {40, 174, 128},
    {49, 181, 123}, {62, 188, 116}, {76, 194, 108}, {93, 201, 99},  {110, 206, 88}, {130, 211, 76}, {150, 216, 63},
    {171, 220, 50}, {192, 223, 36}, {213, 226, 26}, {234, 229, 26}, {253, 231, 37},
};

// t in [0, 1] (clamped; NaN gives the low end).
inline Rgb viridis(float t) {
    if (!(t > 0.0f)) return kViridis[0];
    if (t >= 1.0f) return kViridis[32];
    const float x = t * 32.0f;
    const int i = std::min(static_cast<int>(x), 31);
    const float f = x - static_cast<float>(i);
    auto mix = [f](uint8_t a, uint8_t b) {
        return static_cast<uint8_t>(static_cast<float>(a) + (static_cast<float>(b) - static_cast<float>(a)) * f + 0.5f);
    };
    const Rgb a = kViridis[i], b = kViridis[i + 1];
    return {mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)};
}

} // namespace vkmha::viz
