// image.h: an 8-bit RGB raster with the few drawing operations the attention maps need (filled rectangles and
// text in the embedded font, horizontal or reading bottom to top), and PNG output.
#pragma once

#include "colormap.h"

#include <cstdint>
#include <string>
#include <vector>

namespace vkmha::viz {

class Image {
  public:
    Image(int width, int height, Rgb background);

    int width() const { return m_width; }
    int height() const { return m_height; }

    // Clipped to the image.
    void fill_rect(int x, int y, int w, int h, Rgb c);
    void frame_rect(int x, int y, int w, int h, Rgb c); // a one-pixel outline just outside the rectangle

    // Text whose first glyph's top-left corner is (x, y); each font pixel becomes scale x scale pixels.
    void text(int x, int y, const std::string& s, Rgb c, int scale);
    // Text turned a quarter turn anticlockwise, reading bottom to top (a y-axis label): it occupies
    // x .. x + text_height(scale) across, with the glyphs' tops at x, and y - text_width(s, scale) .. y up the page.
    void text_up(int x, int y, const std::string& s, Rgb c, int scale);
    static int text_width(const std::string& s, int scale);
    static int cap_height(int scale);  // digits and capitals
    static int text_height(int scale); // with descenders

    // Empty on success, else a one-line message naming the file.
    std::string write_png(const std::string& path) const;

  private:
    void put(int x, int y, Rgb c);

    int m_width, m_height;
    std::vector<uint8_t> m_rgb; // rows top to bottom, 3 bytes per pixel
};

} // namespace vkmha::viz
