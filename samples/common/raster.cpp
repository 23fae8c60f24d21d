// raster.cpp: coverage-based rasterisation (distance to segment, clamped to a one-pixel ramp) for lines and discs;
// the bitmap font for text.
#include "raster.h"

#include "font.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace vkmha::samples {

Raster::Raster(int width, int height, Rgb background)
    : m_width(width), m_height(height), m_rgb(static_cast<size_t>(width) * static_cast<size_t>(height) * 3) {
    fill_rect(0, 0, width, height, background);
}

void Raster::put(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= m_width || y >= m_height) return;
    uint8_t* p = &m_rgb[(static_cast<size_t>(y) * static_cast<size_t>(m_width) + static_cast<size_t>(x)) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

void Raster::blend(int x, int y, Rgb c, double alpha) {
    if (x < 0 || y < 0 || x >= m_width || y >= m_height || alpha <= 0) return;
    alpha = std::min(alpha, 1.0);
    uint8_t* p = &m_rgb[(static_cast<size_t>(y) * static_cast<size_t>(m_width) + static_cast<size_t>(x)) * 3];
    const uint8_t src[3] = {c.r, c.g, c.b};
    for (int i = 0; i < 3; ++i) p[i] = static_cast<uint8_t>(std::lround(p[i] + (src[i] - p[i]) * alpha));
}

void Raster::fill_rect(int x, int y, int w, int h, Rgb c) {
    const int x0 = std::max(x, 0), y0 = std::max(y, 0);
    const int x1 = std::min(x + w, m_width), y1 = std::min(y + h, m_height);
    for (int py = y0; py < y1; ++py)
        for (int px = x0; px < x1; ++px) put(px, py, c);
}

void Raster::frame_rect(int x, int y, int w, int h, Rgb c) {
    fill_rect(x - 1, y - 1, w + 2, 1, c);
    fill_rect(x - 1, y + h, w + 2, 1, c);
    fill_rect(x - 1, y, 1, h, c);
    fill_rect(x + w, y, 1, h, c);
}

void Raster::polyline(const std::vector<Point>& points, double width, Rgb c, Dash dash) {
    if (points.size() < 2) return;
    if (m_coverage.empty()) m_coverage.assign(static_cast<size_t>(m_width) * static_cast<size_t>(m_height), 0.0f);
    // on/off lengths in multiples of the line width, so the pattern scales with it
    const double on = dash == Dash::dashed ? 4.0 * width : 1.0 * width;
    const double period = dash == Dash::dashed ? 6.5 * width : 2.6 * width;
    const double half = width / 2;
    int x_lo = m_width, x_hi = -1, y_lo = m_height, y_hi = -1;
    double start_length = 0; // arc length at the current segment's start
    for (size_t i = 0; i + 1 < points.size(); ++i) {
        const Point a = points[i], b = points[i + 1];
        const double dx = b.x - a.x, dy = b.y - a.y, length2 = dx * dx + dy * dy, length = std::sqrt(length2);
        const int x0 = std::max(0, int(std::floor(std::min(a.x, b.x) - half - 1)));
        const int x1 = std::min(m_width - 1, int(std::ceil(std::max(a.x, b.x) + half + 1)));
        const int y0 = std::max(0, int(std::floor(std::min(a.y, b.y) - half - 1)));
        const int y1 = std::min(m_height - 1, int(std::ceil(std::max(a.y, b.y) + half + 1)));
        x_lo = std::min(x_lo, x0), x_hi = std::max(x_hi, x1), y_lo = std::min(y_lo, y0), y_hi = std::max(y_hi, y1);
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) {
                const double px = x + 0.5 - a.x, py = y + 0.5 - a.y;
                const double t = length2 > 0 ? std::clamp((px * dx + py * dy) / length2, 0.0, 1.0) : 0.0;
                if (dash != Dash::solid && std::fmod(start_length + t * length, period) > on) continue;
                const double ex = px - t * dx, ey = py - t * dy;
                const double coverage = std::clamp(half + 0.5 - std::sqrt(ex * ex + ey * ey), 0.0, 1.0);
                float& cell = m_coverage[size_t(y) * size_t(m_width) + size_t(x)];
                cell = std::max(cell, static_cast<float>(coverage));
            }
        start_length += length;
    }
    for (int y = y_lo; y <= y_hi; ++y)
        for (int x = x_lo; x <= x_hi; ++x) {
            float& cell = m_coverage[size_t(y) * size_t(m_width) + size_t(x)];
            blend(x, y, c, cell);
            cell = 0;
        }
}

void Raster::disc(Point centre, double radius, Rgb c) {
    for (int y = int(std::floor(centre.y - radius - 1)); y <= int(std::ceil(centre.y + radius + 1)); ++y)
        for (int x = int(std::floor(centre.x - radius - 1)); x <= int(std::ceil(centre.x + radius + 1)); ++x) {
            const double dx = x + 0.5 - centre.x, dy = y + 0.5 - centre.y;
            blend(x, y, c, std::clamp(radius + 0.5 - std::sqrt(dx * dx + dy * dy), 0.0, 1.0));
        }
}

void Raster::text(int x, int y, const std::string& s, Rgb c, int scale) {
    for (char ch : s) {
        const uint8_t* rows = glyph_rows(ch);
        for (int row = 0; row < kGlyphRows; ++row)
            for (int col = 0; col < kGlyphWidth; ++col)
                if (rows[row] & (0x10 >> col)) fill_rect(x + col * scale, y + row * scale, scale, scale, c);
        x += kGlyphAdvance * scale;
    }
}

void Raster::text_up(int x, int y, const std::string& s, Rgb c, int scale) {
    // Glyph column `col` runs upwards from y; glyph row `row` lies at x + row (the cap's top row leftmost).
    for (char ch : s) {
        const uint8_t* rows = glyph_rows(ch);
        for (int row = 0; row < kGlyphRows; ++row)
            for (int col = 0; col < kGlyphWidth; ++col)
                if (rows[row] & (0x10 >> col)) fill_rect(x + row * scale, y - (col + 1) * scale, scale, scale, c);
        y -= kGlyphAdvance * scale;
    }
}

int Raster::text_width(const std::string& s, int scale) {
    return s.empty() ? 0 : (static_cast<int>(s.size()) * kGlyphAdvance - 1) * scale;
}

int Raster::cap_height(int scale) { return kGlyphCapHeight * scale; }

int Raster::text_height(int scale) { return kGlyphRows * scale; }

} // namespace vkmha::samples
