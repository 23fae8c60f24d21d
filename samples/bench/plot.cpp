// plot.cpp: layout, scales (log2 length, log10 time, linear GFLOP/s), ticks and legend of the benchmark chart.
#include "plot.h"

#include "common/png_writer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

namespace bench {
namespace {

using vkmha::samples::Point;
using vkmha::samples::Raster;
using vkmha::samples::Rgb;

constexpr Rgb kWhite{255, 255, 255}, kInk{34, 34, 34}, kAxis{90, 90, 90}, kGrid{225, 225, 225};
constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
                            {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
constexpr int kFont = 2; // scale of the 5x7 font for labels
constexpr int kTitleFont = 3;
constexpr int kWidth = 1400;
constexpr int kPlotHeight = 440;
constexpr double kLineWidth = 2.5;

Rgb palette(int i) { return i < 0 ? kInk : kPalette[static_cast<size_t>(i) % std::size(kPalette)]; }

std::string format_number(double v) {
    char text[32];
    if (std::fabs(v) >= 100 || v == std::floor(v))
        std::snprintf(text, sizeof text, "%.0f", v);
    else
        std::snprintf(text, sizeof text, "%.3g", v);
    return text;
}

struct Tick {
    double value;
    std::string label;
};

// Maps a data value to [0, 1] along an axis.
struct Scale {
    bool log = false;
    double lo = 0, hi = 1; // in axis units (log10 of the value when log)
    double operator()(double v) const {
        const double u = log ? std::log10(std::max(v, 1e-30)) : v;
        return hi > lo ? (u - lo) / (hi - lo) : 0.5;
    }
};

// Lengths: log scale, ticks at the measured values (powers of two when there are too many).
Scale length_scale(const std::vector<double>& xs, std::vector<Tick>* ticks) {
    std::vector<double> v = xs;
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    const double lo = std::log10(v.front()), hi = std::log10(v.back());
    const double pad = hi > lo ? (hi - lo) * 0.06 : 0.3;
    if (v.size() > 10) {
        const double first = v.front(), last = v.back();
        v.clear();
        for (double p = std::exp2(std::ceil(std::log2(first))); p <= last; p *= 2) v.push_back(p);
    }
    for (double x : v) ticks->push_back({x, format_number(x)});
    return {true, lo - pad, hi + pad};
}

// Times: log scale spanning at least a decade and ending on 1, 2, 5 x 10^k, ticks at those (decades only when
// crowded).
Scale time_scale(double min_ms, double max_ms, std::vector<Tick>* ticks) {
    double lo = std::log10(std::max(min_ms, 1e-4)), hi = std::log10(std::max(max_ms, 1e-4));
    const double span = std::max(hi - lo, 1.0), centre = (lo + hi) / 2;
    lo = std::min(lo, centre - span / 2);
    hi = std::max(hi, centre + span / 2);
    const double steps[] = {0, std::log10(2.0), std::log10(5.0), 1};
    const double lo_decade = std::floor(lo), hi_decade = std::floor(hi);
    double snapped_lo = lo_decade, snapped_hi = hi_decade + 1;
    for (double s : steps)
        if (lo_decade + s <= lo + 1e-9) snapped_lo = lo_decade + s;
    for (int i = 3; i >= 0; --i)
        if (hi_decade + steps[i] >= hi - 1e-9) snapped_hi = hi_decade + steps[i];
    lo = snapped_lo - 0.03;
    hi = snapped_hi + 0.03;
    for (int pass = 0; pass < 2; ++pass) {
        ticks->clear();
        const std::vector<double> mantissas = pass == 0 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
        for (int k = int(std::floor(lo)); k <= int(std::ceil(hi)); ++k)
            for (double m : mantissas) {
                const double v = m * std::pow(10.0, k);
                if (std::log10(v) >= lo && std::log10(v) <= hi) ticks->push_back({v, format_number(v)});
            }
        if (ticks->size() <= 12) break;
    }
    return {true, lo, hi};
}

// Rates: linear from zero, about five ticks at a 1/2/2.5/5 x 10^k step.
Scale rate_scale(double max_value, std::vector<Tick>* ticks) {
    const double top = max_value > 0 ? max_value * 1.08 : 1;
    const double raw = top / 5, magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = magnitude * 10;
    for (double m : {1.0, 2.0, 2.5, 5.0})
        if (m * magnitude >= raw) {
            step = m * magnitude;
            break;
        }
    const double hi = std::ceil(top / step) * step;
    for (int i = 0; i * step <= hi * (1 + 1e-9); ++i) ticks->push_back({i * step, format_number(i * step)});
    return {false, 0, hi};
}

struct Rect {
    int x, y, w, h;
};

void draw_marker(Raster& canvas, Point p, Marker marker, Rgb c) {
    switch (marker) {
    case Marker::disc: canvas.disc(p, 4.0, c); break;
    case Marker::ring:
        canvas.disc(p, 4.5, c);
        canvas.disc(p, 2.2, kWhite);
        break;
    case Marker::square: canvas.fill_rect(int(std::lround(p.x - 4)), int(std::lround(p.y - 4)), 8, 8, c); break;
    }
}

// One panel: frame, grid, ticks and labels of both axes, then every series' line and markers.
void draw_panel(Raster& canvas, Rect r, const std::string& title, const std::string& x_title,
                const std::string& y_title, const Scale& xs, const std::vector<Tick>& x_ticks, const Scale& ys,
                const std::vector<Tick>& y_ticks, const std::vector<PlotSeries>& series,
                const std::function<const std::vector<double>&(const PlotSeries&)>& values) {
    const int th = Raster::cap_height(kFont);
    auto px = [&](double x) { return r.x + xs(x) * r.w; };
    auto py = [&](double y) { return r.y + r.h - ys(y) * r.h; };
    canvas.text(r.x + (r.w - Raster::text_width(title, kFont)) / 2, r.y - th - 12, title, kInk, kFont);
    int widest = 0;
    for (const Tick& t : y_ticks) {
        const int y = int(std::lround(py(t.value)));
        canvas.fill_rect(r.x, y, r.w, 1, kGrid);
        canvas.fill_rect(r.x - 5, y, 5, 1, kAxis);
        const int w = Raster::text_width(t.label, kFont);
        widest = std::max(widest, w);
        canvas.text(r.x - 9 - w, y - th / 2, t.label, kInk, kFont);
    }
    int last_right = -1 << 30;
    for (const Tick& t : x_ticks) {
        const int x = int(std::lround(px(t.value)));
        canvas.fill_rect(x, r.y, 1, r.h, kGrid);
        canvas.fill_rect(x, r.y + r.h, 1, 5, kAxis);
        const int w = Raster::text_width(t.label, kFont);
        if (x - w / 2 <= last_right + 8) continue; // would overlap the previous label
        canvas.text(x - w / 2, r.y + r.h + 9, t.label, kInk, kFont);
        last_right = x - w / 2 + w;
    }
    canvas.fill_rect(r.x, r.y, r.w, 1, kAxis);
    canvas.fill_rect(r.x, r.y + r.h, r.w + 1, 1, kAxis);
    canvas.fill_rect(r.x, r.y, 1, r.h, kAxis);
    canvas.fill_rect(r.x + r.w, r.y, 1, r.h, kAxis);
    canvas.text(r.x + (r.w - Raster::text_width(x_title, kFont)) / 2, r.y + r.h + 9 + th + 12, x_title, kInk, kFont);
    canvas.text_up(r.x - 9 - widest - 12 - th, r.y + (r.h + Raster::text_width(y_title, kFont)) / 2, y_title, kInk,
                   kFont);
    for (const PlotSeries& s : series) {
        const std::vector<double>& v = values(s);
        std::vector<Point> points;
        for (size_t i = 0; i < s.x.size(); ++i) points.push_back({px(s.x[i]), py(v[i])});
        canvas.polyline(points, kLineWidth, palette(s.color), s.dash);
        for (const Point& p : points) draw_marker(canvas, p, s.marker, palette(s.color));
    }
}

} // namespace

std::string write_plot(const std::string& path, const std::string& title, const std::string& x_title,
                       const std::vector<PlotSeries>& series, const std::vector<LegendSection>& legend) {
    std::vector<double> xs;
    double min_ms = INFINITY, max_ms = 0, max_rate = 0;
    for (const PlotSeries& s : series)
        for (size_t i = 0; i < s.x.size(); ++i) {
            xs.push_back(s.x[i]);
            if (s.time_ms[i] > 0) min_ms = std::min(min_ms, s.time_ms[i]);
            max_ms = std::max(max_ms, s.time_ms[i]);
            max_rate = std::max(max_rate, s.gflops[i]);
        }
    if (xs.empty()) return "nothing to plot";
    if (!(min_ms < INFINITY)) min_ms = max_ms = 1;
    std::vector<Tick> x_ticks, time_ticks, rate_ticks;
    const Scale x_scale = length_scale(xs, &x_ticks);
    const Scale time = time_scale(min_ms, max_ms, &time_ticks);
    const Scale rate = rate_scale(max_rate, &rate_ticks);

    // Layout: title, two panels side by side, legend below them in as many columns as fit.
    const int th = Raster::cap_height(kFont), margin = 24;
    int title_scale = kTitleFont;
    if (Raster::text_width(title, title_scale) > kWidth - 2 * margin) title_scale = kFont;
    auto tick_width = [](const std::vector<Tick>& ticks) {
        int w = 0;
        for (const Tick& t : ticks) w = std::max(w, Raster::text_width(t.label, kFont));
        return w;
    };
    const int panel_w = (kWidth - 2 * margin - 40) / 2;
    const int top = margin + Raster::cap_height(title_scale) + 24 + th + 12;
    auto plot_rect = [&](int panel_x, const std::vector<Tick>& y_ticks) {
        const int left = th + 12 + tick_width(y_ticks) + 9;
        return Rect{panel_x + left, top, panel_w - left - 12, kPlotHeight};
    };
    const Rect left = plot_rect(margin, time_ticks), right = plot_rect(margin + panel_w + 40, rate_ticks);

    // Legend sections below the panels: a heading on the left, entries in columns after it.
    const int sample_w = 44, row_h = th + 12, usable = kWidth - 2 * margin;
    struct Placed {
        int x, y;
        const LegendEntry* entry;
    };
    std::vector<Placed> placed;
    std::vector<std::pair<int, const std::string*>> headings;
    int y = top + kPlotHeight + 9 + th + 12 + th + 28;
    for (const LegendSection& section : legend) {
        if (section.entries.empty()) continue;
        const int heading_w = Raster::text_width(section.heading, kFont) + 20;
        headings.emplace_back(y, &section.heading);
        int label_w = 0;
        for (const LegendEntry& e : section.entries) label_w = std::max(label_w, Raster::text_width(e.label, kFont));
        const int column_w = sample_w + 10 + label_w + 32;
        const int columns = std::max(1, std::min<int>(int(section.entries.size()), (usable - heading_w) / column_w));
        for (size_t i = 0; i < section.entries.size(); ++i)
            placed.push_back(
                {margin + heading_w + int(i) % columns * column_w, y + int(i) / columns * row_h, &section.entries[i]});
        y += (int(section.entries.size()) + columns - 1) / columns * row_h + 8;
    }
    const int height = y + margin;

    Raster canvas(kWidth, height, kWhite);
    canvas.text(margin, margin, title, kInk, title_scale);
    draw_panel(canvas, left, "GPU time per pass (all stages)", x_title, "ms (log scale)", x_scale, x_ticks, time,
               time_ticks, series, [](const PlotSeries& s) -> const std::vector<double>& { return s.time_ms; });
    draw_panel(canvas, right, "attention core throughput", x_title, "GFLOP/s", x_scale, x_ticks, rate, rate_ticks,
               series, [](const PlotSeries& s) -> const std::vector<double>& { return s.gflops; });
    for (const auto& [heading_y, heading] : headings) canvas.text(margin, heading_y, *heading, kAxis, kFont);
    for (const Placed& p : placed) {
        const double cy = p.y + th / 2.0;
        const Rgb c = palette(p.entry->color);
        canvas.polyline({{double(p.x), cy}, {double(p.x + sample_w), cy}}, kLineWidth, c, p.entry->dash);
        draw_marker(canvas, {p.x + sample_w / 2.0, cy}, p.entry->marker, c);
        canvas.text(p.x + sample_w + 10, p.y, p.entry->label, kInk, kFont);
    }
    return vkmha::samples::write_png(path, canvas);
}

} // namespace bench
