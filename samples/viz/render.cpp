// render.cpp: the grid of heat maps (one per head), their titles, axes and ticks, and the shared colour bar.
#include "render.h"

#include "colormap.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

namespace vkmha::viz {

using samples::Raster;

namespace {

constexpr int kScale = 2; // every label is the 5x7 font doubled: readable when GitHub shrinks a 1200 px picture
constexpr int kMargin = 24;
constexpr int kLineGap = 6;
constexpr int kPanelGapX = 36, kPanelGapY = 28;
constexpr int kTick = 5, kLabelGap = 4;
constexpr int kBarWidth = 320, kBarHeight = 18;
constexpr int kBarGap = 60; // caption to bar: room for half of the first tick label
constexpr int kMaxAutoCell = 48;

constexpr Rgb kBackground{255, 255, 255};
constexpr Rgb kInk{30, 30, 30};
constexpr Rgb kQuietInk{120, 120, 120}; // secondary text, e.g. a head's kv group
constexpr Rgb kFrame{90, 90, 90};
constexpr Rgb kMasked{214, 214, 214}; // outside viridis, which never reaches a neutral grey

int text_w(const std::string& s) { return Raster::text_width(s, kScale); }
int line_h() { return Raster::text_height(kScale) + kLineGap; }

// Picks the column count: about sqrt(heads), nudged up to a divisor of heads when one is near so no slot is empty.
int grid_columns(uint32_t heads) {
    const int h = static_cast<int>(heads);
    const int root = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(h))));
    for (int c = root; c <= root + 2 && c <= h; ++c)
        if (h % c == 0) return c;
    return std::min(root, h);
}

std::string head_label(uint32_t head) { return "head " + std::to_string(head); }

// "kv group g" with grouped-query attention, else empty.
std::string group_label(const HeatmapSet& set, uint32_t head) {
    if (set.kv_heads == 0 || set.kv_heads >= set.heads) return {};
    return "kv group " + std::to_string(head / (set.heads / set.kv_heads));
}

constexpr const char* kTitleSeparator = "  "; // between "head h" and "kv group g"

std::string panel_title(const HeatmapSet& set, uint32_t head) {
    const std::string group = group_label(set, head);
    return group.empty() ? head_label(head) : head_label(head) + kTitleSeparator + group;
}

// The smallest step of 1, 2, 5, 10, 20, ... indices that leaves `min_pixels` between ticks and at most 8 ticks.
uint32_t index_tick_step(uint32_t count, int cell, int min_pixels) {
    for (uint32_t magnitude = 1;; magnitude *= 10)
        for (uint32_t m : {1u, 2u, 5u}) {
            const uint32_t step = m * magnitude;
            if (static_cast<int64_t>(step) * cell >= min_pixels && count / step < 8) return step;
            if (step >= count) return step;
        }
}

std::string significant(double v) {
    std::array<char, 32> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "%.3g", v);
    return buffer.data();
}

std::string format_value(double v, int decimals) {
    std::array<char, 32> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "%.*f", decimals, v);
    return buffer.data();
}

// A step of 1, 2, 2.5 or 5 times a power of ten giving 3 to 5 intervals over [0, vmax], and its decimals.
void value_ticks(double vmax, double* step, int* decimals) {
    const double raw = vmax / 4.0;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
        if (m * magnitude >= raw * (1 - 1e-9)) {
            *step = m * magnitude;
            *decimals = std::max(0, static_cast<int>(-std::floor(std::log10(*step) + 1e-9))) + (m == 2.5 ? 1 : 0);
            return;
        }
    }
    *step = vmax, *decimals = 3;
}

int panel_content_width(const HeatmapSet& set, int cell, int* gutter) {
    const std::string widest_query = std::to_string(set.queries - 1);
    *gutter = Raster::text_height(kScale) + 8 + text_w(widest_query) + kLabelGap + kTick + 1;
    int title = 0;
    for (uint32_t h = 0; h < set.heads; ++h) title = std::max(title, text_w(panel_title(set, h)));
    const int map_w = static_cast<int>(set.keys) * cell;
    const int overhang = text_w(std::to_string(set.keys - 1)) / 2; // the last key label, centred on its column
    return *gutter + std::max(map_w + overhang, title);
}

std::string scale_caption(const HeatmapSet& set, double vmax) {
    return std::string(set.scale == Scale::log ? "log" : "linear") + " scale, all heads, max " + significant(vmax);
}

bool any_masked(const HeatmapSet& set) {
    return std::any_of(set.masked.begin(), set.masked.end(), [](uint8_t m) { return m != 0; });
}

int legend_caption_width(const HeatmapSet& set, double vmax) {
    return std::max(text_w("attention weight"), text_w(scale_caption(set, vmax)));
}

int legend_width(const HeatmapSet& set, double vmax) {
    return legend_caption_width(set, vmax) + kBarGap + kBarWidth + 36 +
           (any_masked(set) ? kBarHeight + 8 + text_w("masked") : 0);
}

// Where `w` falls on the colour scale, 0..1.
float scale_position(const HeatmapSet& set, double vmax, double w) {
    if (set.scale == Scale::linear) return static_cast<float>(w / vmax);
    if (!(w > 0.0)) return 0.0f;
    return static_cast<float>((std::log10(w / vmax) + kLogDecades) / kLogDecades);
}

double shared_max(const HeatmapSet& set) {
    float vmax = 0.0f;
    for (size_t i = 0; i < set.weights.size(); ++i)
        if (!set.masked[i] && std::isfinite(set.weights[i])) vmax = std::max(vmax, set.weights[i]);
    return vmax > 0.0f ? static_cast<double>(vmax) : 1.0;
}

Layout layout_for_cell(const HeatmapSet& set, int cell) {
    Layout l;
    l.cell = cell;
    l.columns = grid_columns(set.heads);
    l.rows = static_cast<int>((set.heads + static_cast<uint32_t>(l.columns) - 1) / static_cast<uint32_t>(l.columns));
    l.panel_title_height = Raster::text_height(kScale) + 8;
    const int below_map = 1 + kTick + kLabelGap + Raster::cap_height(kScale) + 10 + Raster::text_height(kScale);
    l.panel_width = panel_content_width(set, cell, &l.gutter);
    l.panel_height = l.panel_title_height + static_cast<int>(set.queries) * cell + below_map;
    l.title_height = static_cast<int>(set.title_lines.size()) * line_h() + 22;
    l.grid_width = l.columns * l.panel_width + (l.columns - 1) * kPanelGapX;
    l.grid_height = l.rows * l.panel_height + (l.rows - 1) * kPanelGapY;
    int content_w = std::max(l.grid_width, legend_width(set, shared_max(set)));
    for (const std::string& line : set.title_lines) content_w = std::max(content_w, text_w(line));
    l.grid_top = kMargin + l.title_height;
    l.legend_top = l.grid_top + l.grid_height + 24;
    l.width = content_w + 2 * kMargin;
    l.height = l.legend_top + 2 * line_h() + kMargin;
    return l;
}

} // namespace

Layout plan_layout(const HeatmapSet& set, int cell, int target_width) {
    if (cell > 0) return layout_for_cell(set, cell);
    // The largest cell whose grid of maps stays within a tenth of the target width, and whose height stays within
    // 1.5 times it (many queries over few keys make tall maps).
    for (cell = kMaxAutoCell; cell > 1; --cell) {
        const Layout l = layout_for_cell(set, cell);
        if (l.grid_width + 2 * kMargin <= target_width * 11 / 10 && l.grid_height <= target_width * 3 / 2) return l;
    }
    return layout_for_cell(set, 1);
}

Raster draw(const HeatmapSet& set, const Layout& l) {
    Raster image(l.width, l.height, kBackground);
    int y = kMargin;
    for (const std::string& line : set.title_lines) {
        image.text(kMargin, y, line, kInk, kScale);
        y += line_h();
    }
    const double vmax = shared_max(set);
    const int cap = Raster::cap_height(kScale);
    const int map_w = static_cast<int>(set.keys) * l.cell, map_h = static_cast<int>(set.queries) * l.cell;
    const uint32_t key_step = index_tick_step(set.keys, l.cell, text_w(std::to_string(set.keys - 1)) + 14);
    const uint32_t query_step = index_tick_step(set.queries, l.cell, cap + 12);
    const size_t plane = static_cast<size_t>(set.queries) * set.keys;

    for (uint32_t h = 0; h < set.heads; ++h) {
        const int column = static_cast<int>(h) % l.columns, row = static_cast<int>(h) / l.columns;
        const int px = kMargin + column * (l.panel_width + kPanelGapX);
        const int py = l.grid_top + row * (l.panel_height + kPanelGapY);
        const int mx = px + l.gutter, my = py + l.panel_title_height;
        // The group in a quieter ink: "head h" is what the eye should find first.
        const std::string head = head_label(h);
        image.text(mx, py, head, kInk, kScale);
        image.text(mx + text_w(head + kTitleSeparator) + kScale, py, group_label(set, h), kQuietInk, kScale);

        const float* w = set.weights.data() + h * plane;
        const uint8_t* masked = set.masked.data() + h * plane;
        for (uint32_t i = 0; i < set.queries; ++i)
            for (uint32_t j = 0; j < set.keys; ++j) {
                const size_t k = static_cast<size_t>(i) * set.keys + j;
                const Rgb c = masked[k] ? kMasked : viridis(scale_position(set, vmax, static_cast<double>(w[k])));
                image.fill_rect(mx + static_cast<int>(j) * l.cell, my + static_cast<int>(i) * l.cell, l.cell, l.cell,
                                c);
            }
        image.frame_rect(mx, my, map_w, map_h, kFrame);

        for (uint32_t i = 0; i < set.queries; i += query_step) {
            const int ty = my + static_cast<int>(i) * l.cell + l.cell / 2;
            image.fill_rect(mx - 1 - kTick, ty, kTick, 1, kFrame);
            const std::string label = std::to_string(i);
            image.text(mx - 1 - kTick - kLabelGap - text_w(label), ty - cap / 2, label, kInk, kScale);
        }
        for (uint32_t j = 0; j < set.keys; j += key_step) {
            const int tx = mx + static_cast<int>(j) * l.cell + l.cell / 2;
            image.fill_rect(tx, my + map_h + 1, 1, kTick, kFrame);
            const std::string label = std::to_string(j);
            image.text(tx - text_w(label) / 2, my + map_h + 1 + kTick + kLabelGap, label, kInk, kScale);
        }
        const int key_label_y = my + map_h + 1 + kTick + kLabelGap + cap + 10;
        image.text(mx + (map_w - text_w("key")) / 2, key_label_y, "key", kInk, kScale);
        image.text_up(px, my + (map_h + text_w("query")) / 2, "query", kInk, kScale);
    }

    // Legend: caption, colour bar with ticks, and the masked swatch.
    const std::string caption = scale_caption(set, vmax);
    image.text(kMargin, l.legend_top, "attention weight", kInk, kScale);
    image.text(kMargin, l.legend_top + line_h(), caption, kInk, kScale);
    const int bar_x = kMargin + legend_caption_width(set, vmax) + kBarGap, bar_y = l.legend_top + 2;
    for (int x = 0; x < kBarWidth; ++x)
        image.fill_rect(bar_x + x, bar_y, 1, kBarHeight, viridis(static_cast<float>(x) / (kBarWidth - 1)));
    image.frame_rect(bar_x, bar_y, kBarWidth, kBarHeight, kFrame);
    auto bar_tick = [&](double v, const std::string& label) {
        const int tx = bar_x + static_cast<int>(std::lround(scale_position(set, vmax, v) * (kBarWidth - 1)));
        image.fill_rect(tx, bar_y + kBarHeight + 1, 1, kTick, kFrame);
        image.text(tx - text_w(label) / 2, bar_y + kBarHeight + 1 + kTick + kLabelGap, label, kInk, kScale);
    };
    if (set.scale == Scale::linear) {
        double step = 0;
        int decimals = 0;
        value_ticks(vmax, &step, &decimals);
        for (int t = 0; t * step <= vmax * (1 + 1e-9); ++t) bar_tick(t * step, format_value(t * step, decimals));
    } else {
        // Powers of ten inside [vmax / 10^kLogDecades, vmax].
        const int top = static_cast<int>(std::floor(std::log10(vmax) + 1e-9));
        const double bottom = std::log10(vmax) - kLogDecades - 1e-9;
        for (int e = top; e >= bottom; --e)
            bar_tick(std::pow(10.0, e), format_value(std::pow(10.0, e), std::max(0, -e)));
    }
    if (any_masked(set)) {
        const int sx = bar_x + kBarWidth + 36;
        image.fill_rect(sx, bar_y, kBarHeight, kBarHeight, kMasked);
        image.frame_rect(sx, bar_y, kBarHeight, kBarHeight, kFrame);
        image.text(sx + kBarHeight + 8, bar_y + (kBarHeight - cap) / 2, "masked", kInk, kScale);
    }
    return image;
}

} // namespace vkmha::viz
