// raster.h: an 8-bit RGB raster with what the samples' pictures need: filled and framed rectangles, anti-aliased
// thick polylines (solid, dashed or dotted) and discs, and text in the embedded 5x7 font, horizontal or reading
// bottom to top. png.h writes it out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vkmha::samples {

struct Rgb {
    uint8_t r, g, b;
};

struct Point {
    double x, y;
};

enum class Dash { solid, dashed, dotted };

class Raster {
  public:
    Raster(int width, int height, Rgb background);

    int width() const { return m_width; }
    int height() const { return m_height; }
    const std::vector<uint8_t>& rgb() const { return m_rgb; } // rows top to bottom, 3 bytes per pixel

    // Everything is clipped to the raster.
    void fill_rect(int x, int y, int w, int h, Rgb c);
    void frame_rect(int x, int y, int w, int h, Rgb c); // a one-pixel outline just outside the rectangle
    // Pixel centres lie at integer + 0.5; a polyline is blended once, so its joints do not darken.
    void polyline(const std::vector<Point>& points, double width, Rgb c, Dash dash = Dash::solid);
    void disc(Point centre, double radius, Rgb c);

    // Text whose first glyph's top-left corner is (x, y); each font pixel becomes scale x scale pixels.
    void text(int x, int y, const std::string& s, Rgb c, int scale);
    // Text turned a quarter turn anticlockwise, reading bottom to top (a y-axis label): it occupies
    // x .. x + text_height(scale) across, with the glyphs' tops at x, and y - text_width(s, scale) .. y up the page.
    void text_up(int x, int y, const std::string& s, Rgb c, int scale);
    static int text_width(const std::string& s, int scale);
    static int cap_height(int scale);  // digits and capitals: what layout aligns on
    static int text_height(int scale); // with descenders

  private:
    void put(int x, int y, Rgb c);
    void blend(int x, int y, Rgb c, double alpha);

    int m_width, m_height;
    std::vector<uint8_t> m_rgb;
    std::vector<float> m_coverage; // polyline's scratch, one cell per pixel, allocated by the first polyline
};

} // namespace vkmha::samples
