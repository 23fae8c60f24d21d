// picture.cpp: vkmha-heads' PNG: per input, a heat map of heads x metrics (each metric's colour scaled over every
// head and input, its value written in the cell), and below, relative error against KV bytes per token and against
// decode time at 4096 keys, one labelled point per configuration.
#include "study.h"

#include "common/png_writer.h"
#include "common/raster.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace vkmha::heads {
namespace {

using samples::Point;
using samples::Raster;
using samples::Rgb;

constexpr Rgb kWhite{255, 255, 255}, kInk{30, 30, 30}, kGrid{200, 200, 200};
constexpr int kCellW = 86, kCellH = 20, kMargin = 24, kLabelW = 60, kChartW = 440, kChartH = 260;
const char* const kMetricNames[] = {"entropy", "norm ent", "distance", "top1", "importance", "similarity"};
constexpr int kMetrics = 6;

double metric(const HeadMetrics& m, int k) {
    const double v[kMetrics] = {m.entropy, m.normalized_entropy, m.mean_distance, m.top1, m.importance, m.similarity};
    return v[k];
}

// White (low) to a dark blue (high).
Rgb shade(double t) {
    t = std::clamp(t, 0.0, 1.0);
    auto mix = [t](int a, int b) { return static_cast<uint8_t>(a + (b - a) * t); };
    return {mix(247, 33), mix(251, 102), mix(255, 172)};
}

std::string number(double v) {
    char text[32];
    std::snprintf(text, sizeof text, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.3f", v);
    return text;
}

void draw_heatmaps(Raster& r, const Study& s, uint32_t H, int top) {
    double lo[kMetrics], hi[kMetrics];
    for (int k = 0; k < kMetrics; ++k) {
        lo[k] = 1e300, hi[k] = -1e300;
        for (const HeadRow& row : s.heads)
            lo[k] = std::min(lo[k], metric(row.metrics, k)), hi[k] = std::max(hi[k], metric(row.metrics, k));
    }
    const int block_w = kLabelW + kMetrics * kCellW + kMargin;
    for (size_t in = 0; in < s.inputs.size(); ++in) {
        const int x0 = kMargin + int(in) * block_w;
        r.text(x0, top, "input " + std::to_string(in) + ": " + std::to_string(s.lengths[in]) + " tokens", kInk, 2);
        const int y0 = top + 24;
        for (int k = 0; k < kMetrics; ++k) r.text(x0 + kLabelW + k * kCellW + 4, y0, kMetricNames[k], kInk, 1);
        for (const HeadRow& row : s.heads) {
            if (row.input != in) continue;
            const int y = y0 + 14 + int(row.head) * kCellH;
            r.text(x0, y + 6, "head " + std::to_string(row.head), kInk, 1);
            for (int k = 0; k < kMetrics; ++k) {
                const double v = metric(row.metrics, k);
                const double t = hi[k] > lo[k] ? (v - lo[k]) / (hi[k] - lo[k]) : 0.5;
                const int x = x0 + kLabelW + k * kCellW;
                r.fill_rect(x, y, kCellW - 2, kCellH - 2, shade(t));
                r.text(x + 4, y + 6, number(v) + (k == 5 ? " h" + std::to_string(row.metrics.most_similar_head) : ""),
                       t > 0.55 ? kWhite : kInk, 1);
            }
        }
    }
    (void)H;
}

// One scatter chart: relative error (y) against a cost (x), each configuration a labelled point.
void draw_chart(Raster& r, const Study& s, int x0, int y0, const std::string& x_name, bool kv_bytes) {
    auto cost = [&](const ConfigRow& c) { return kv_bytes ? double(c.kv_bytes_per_token) : c.decode_ms_4096; };
    double x_hi = 0, y_hi = 0;
    for (const ConfigRow& c : s.configs) x_hi = std::max(x_hi, cost(c)), y_hi = std::max(y_hi, c.relative_error);
    x_hi = x_hi > 0 ? x_hi * 1.1 : 1, y_hi = y_hi > 0 ? y_hi * 1.1 : 1;
    const int pw = kChartW - 60, ph = kChartH - 50, px = x0 + 50, py = y0 + 10;
    r.frame_rect(px, py, pw, ph, kGrid);
    r.text(px, py + ph + 8, "0", kInk, 1);
    r.text(px + pw - 40, py + ph + 8, number(x_hi), kInk, 1);
    r.text(px + pw / 2 - 60, py + ph + 22, x_name, kInk, 1);
    r.text(x0, py, number(y_hi), kInk, 1);
    r.text_up(x0 + 2, py + ph - 10, "relative error", kInk, 1);
    for (const ConfigRow& c : s.configs) {
        const Point p{px + pw * cost(c) / x_hi, py + ph - ph * c.relative_error / y_hi};
        r.disc(p, 4, c.kind == "baseline" ? Rgb{0, 0, 0} : c.kind == "prune" ? Rgb{200, 60, 40} : Rgb{40, 120, 200});
        const std::string label = c.kind == "baseline" ? "base"
                                  : c.kind == "prune"  ? "keep " + std::to_string(c.heads)
                                                       : "gqa " + std::to_string(c.kv_heads);
        // gqa labels sit below their point, prune labels above: a pair at one cost stays readable.
        r.text(int(p.x) + 6, int(p.y) + (c.kind == "gqa" ? 5 : -9), label, kInk, 1);
    }
}

} // namespace

std::string write_picture(const std::string& path, const Study& s) {
    uint32_t H = 0;
    for (const HeadRow& row : s.heads) H = std::max(H, row.head + 1);
    const int block_w = kLabelW + kMetrics * kCellW + kMargin;
    const int heat_h = 24 + 14 + int(H) * kCellH + kMargin;
    const int width = std::max(kMargin + int(s.inputs.size()) * block_w, 2 * kChartW + 3 * kMargin);
    const int height = kMargin + 20 + heat_h + kChartH + kMargin;
    Raster r(width, height, kWhite);
    r.text(kMargin, 6, "vkmha-heads on " + s.device, kInk, 2);
    draw_heatmaps(r, s, H, kMargin + 10);
    const int chart_top = kMargin + 20 + heat_h;
    draw_chart(r, s, kMargin, chart_top, "KV-cache bytes per token", true);
    draw_chart(r, s, 2 * kMargin + kChartW, chart_top, "decode GPU ms at 4096 keys", false);
    return samples::write_png(path, r);
}

} // namespace vkmha::heads
