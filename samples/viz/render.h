// render.h: lays out and draws one batch item's per-head attention weights as a grid of labelled heat maps with a
// shared colour bar. Planning (sizes) is separate from drawing so the caller can refuse an oversized picture
// before any pixel is allocated.
#pragma once

#include "common/raster.h"

#include <cstdint>
#include <string>
#include <vector>

namespace vkmha::viz {

// How weights map to colour. Attention weights are probabilities that span decades (a causal row i spreads over
// i + 1 keys), so a linear scale shows the few large ones and a logarithmic one the shape of the rest.
enum class Scale { linear, log };
inline constexpr double kLogDecades = 3; // the log scale spans max / 1000 .. max; smaller weights get the lowest colour

// What to draw: the weights of `heads` heads over `queries` x `keys` (already cropped), head-major.
struct HeatmapSet {
    Scale scale = Scale::linear;
    std::vector<std::string> title_lines;
    uint32_t heads = 0, kv_heads = 0; // kv_heads < heads adds "kv group g" to each panel's title
    uint32_t queries = 0, keys = 0;
    std::vector<float> weights;  // [heads, queries, keys]
    std::vector<uint8_t> masked; // [heads, queries, keys]; nonzero = the key was not allowed (drawn grey)
};

struct Layout {
    int cell = 1; // pixels per weight, each way
    int columns = 1, rows = 1;
    int width = 0, height = 0;
    // Derived placement, filled by plan_layout.
    int title_height = 0, grid_width = 0, grid_height = 0;
    int panel_width = 0, panel_height = 0, gutter = 0, panel_title_height = 0;
    int grid_top = 0, legend_top = 0;
};

// `cell` 0 picks the largest size that keeps the picture about `target_width` pixels wide (at least 1).
Layout plan_layout(const HeatmapSet& set, int cell, int target_width);

samples::Raster draw(const HeatmapSet& set, const Layout& layout);

} // namespace vkmha::viz
