// canvas.cpp: coverage-based rasterisation (distance to segment, clamped to a one-pixel ramp) for lines and discs;
// the bitmap font for text.
#include "canvas.h"

#include "font.h"

#include <algorithm>
#include <cmath>

namespace bench {

Canvas::Canvas(int width, int height, Color background)
    : m_width(width), m_height(height), m_rgb(size_t(width) * size_t(height) * 3),
      m_coverage(size_t(width) * size_t(height)) {
    fill_rect(0, 0, width, height, background);
}

void Canvas::fill_rect(int x, int y, int w, int h, Color c) {
    for (int py = std::max(y, 0); py < std::min(y + h, m_height); ++py)
        for (int px = std::max(x, 0); px < std::min(x + w, m_width); ++px) blend(px, py, c, 1.0);
}

void Canvas::blend(int x, int y, Color c, double alpha) {
    if (x < 0 || y < 0 || x >= m_width || y >= m_height || alpha <= 0) return;
    alpha = std::min(alpha, 1.0);
    uint8_t* p = &m_rgb[(size_t(y) * size_t(m_width) + size_t(x)) * 3];
    const uint8_t src[3] = {c.r, c.g, c.b};
    for (int i = 0; i < 3; ++i) p[i] = static_cast<uint8_t>(std::lround(p[i] + (src[i] - p[i]) * alpha));
}

void Canvas::polyline(const std::vector<Point>& points, double width, Color c, Dash dash) {
    if (points.size() < 2) return;
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

void Canvas::disc(Point centre, double radius, Color c) {
    for (int y = int(std::floor(centre.y - radius - 1)); y <= int(std::ceil(centre.y + radius + 1)); ++y)
        for (int x = int(std::floor(centre.x - radius - 1)); x <= int(std::ceil(centre.x + radius + 1)); ++x) {
            const double dx = x + 0.5 - centre.x, dy = y + 0.5 - centre.y;
            blend(x, y, c, std::clamp(radius + 0.5 - std::sqrt(dx * dx + dy * dy), 0.0, 1.0));
        }
}

void Canvas::text(int x, int y, const std::string& s, Color c, int scale) {
    for (size_t i = 0; i < s.size(); ++i) {
        const uint16_t* columns = glyph(s[i]);
        const int gx = x + int(i) * kGlyphAdvance * scale;
        for (int col = 0; col < kGlyphWidth; ++col)
            for (int row = 0; row < kGlyphHeight + kGlyphDescent; ++row)
                if (columns[col] >> row & 1) fill_rect(gx + col * scale, y + row * scale, scale, scale, c);
    }
}

void Canvas::text_up(int x, int y, const std::string& s, Color c, int scale) {
    // A quarter turn counter-clockwise: the glyph's columns run upwards, its rows run rightwards.
    for (size_t i = 0; i < s.size(); ++i) {
        const uint16_t* columns = glyph(s[i]);
        const int gy = y - int(i) * kGlyphAdvance * scale;
        for (int col = 0; col < kGlyphWidth; ++col)
            for (int row = 0; row < kGlyphHeight + kGlyphDescent; ++row)
                if (columns[col] >> row & 1) fill_rect(x + row * scale, gy - (col + 1) * scale, scale, scale, c);
    }
}

int Canvas::text_width(const std::string& s, int scale) {
    return s.empty() ? 0 : (int(s.size()) * kGlyphAdvance - 1) * scale;
}

int Canvas::text_height(int scale) { return kGlyphHeight * scale; }

} // namespace bench
