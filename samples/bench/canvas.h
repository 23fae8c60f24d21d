// canvas.h: a small RGB rasterizer with what a line chart needs: rectangles, anti-aliased thick polylines (solid,
// dashed or dotted), round markers, and text in the embedded 5x7 font, horizontal or rotated a quarter turn.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bench {

struct Color {
    uint8_t r, g, b;
};

enum class Dash { solid, dashed, dotted };

struct Point {
    double x, y;
};

class Canvas {
  public:
    Canvas(int width, int height, Color background);

    int width() const { return m_width; }
    int height() const { return m_height; }
    const std::vector<uint8_t>& rgb() const { return m_rgb; } // rows top to bottom, 3 bytes per pixel

    void fill_rect(int x, int y, int w, int h, Color c);
    // Pixel centres lie at integer + 0.5; a polyline is blended once, so its joints do not darken.
    void polyline(const std::vector<Point>& points, double width, Color c, Dash dash = Dash::solid);
    void disc(Point centre, double radius, Color c);

    // Text with its top-left corner at (x, y); each font pixel becomes scale x scale pixels.
    void text(int x, int y, const std::string& s, Color c, int scale);
    // Text reading bottom to top (for a y-axis title) with its bottom-left corner at (x, y).
    void text_up(int x, int y, const std::string& s, Color c, int scale);
    static int text_width(const std::string& s, int scale);
    static int text_height(int scale);

  private:
    void blend(int x, int y, Color c, double alpha);

    int m_width, m_height;
    std::vector<uint8_t> m_rgb;
    std::vector<float> m_coverage; // scratch for polyline
};

} // namespace bench
