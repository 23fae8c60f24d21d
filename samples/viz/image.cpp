// image.cpp: the raster, its text, and PNG encoding through libpng.
#include "image.h"

#include "font.h"

#include <algorithm>
#include <cstddef>

// libpng (Debian: libpng-dev), the reference PNG library: well kept, fuzzed, in every distribution. Its simplified
// png_image API handles the zlib stream, CRCs and chunk layout, so none of that lives here.
#include <png.h>

namespace vkmha::viz {

Image::Image(int width, int height, Rgb background)
    : m_width(width), m_height(height), m_rgb(static_cast<size_t>(width) * static_cast<size_t>(height) * 3) {
    fill_rect(0, 0, width, height, background);
}

void Image::put(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= m_width || y >= m_height) return;
    uint8_t* p = &m_rgb[(static_cast<size_t>(y) * static_cast<size_t>(m_width) + static_cast<size_t>(x)) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

void Image::fill_rect(int x, int y, int w, int h, Rgb c) {
    const int x0 = std::max(x, 0), y0 = std::max(y, 0);
    const int x1 = std::min(x + w, m_width), y1 = std::min(y + h, m_height);
    for (int py = y0; py < y1; ++py)
        for (int px = x0; px < x1; ++px) put(px, py, c);
}

void Image::frame_rect(int x, int y, int w, int h, Rgb c) {
    fill_rect(x - 1, y - 1, w + 2, 1, c);
    fill_rect(x - 1, y + h, w + 2, 1, c);
    fill_rect(x - 1, y, 1, h, c);
    fill_rect(x + w, y, 1, h, c);
}

void Image::text(int x, int y, const std::string& s, Rgb c, int scale) {
    for (char ch : s) {
        const uint8_t* rows = glyph_rows(ch);
        for (int row = 0; row < kGlyphRows; ++row)
            for (int col = 0; col < kGlyphWidth; ++col)
                if (rows[row] & (0x10 >> col)) fill_rect(x + col * scale, y + row * scale, scale, scale, c);
        x += kGlyphAdvance * scale;
    }
}

void Image::text_up(int x, int y, const std::string& s, Rgb c, int scale) {
    // Glyph column `col` runs upwards from y; glyph row `row` lies at x + row (the cap's top row leftmost).
    for (char ch : s) {
        const uint8_t* rows = glyph_rows(ch);
        for (int row = 0; row < kGlyphRows; ++row)
            for (int col = 0; col < kGlyphWidth; ++col)
                if (rows[row] & (0x10 >> col)) fill_rect(x + row * scale, y - (col + 1) * scale, scale, scale, c);
        y -= kGlyphAdvance * scale;
    }
}

int Image::text_width(const std::string& s, int scale) {
    return s.empty() ? 0 : (static_cast<int>(s.size()) * kGlyphAdvance - 1) * scale;
}

int Image::cap_height(int scale) { return kGlyphCapHeight * scale; }

int Image::text_height(int scale) { return kGlyphRows * scale; }

std::string Image::write_png(const std::string& path) const {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = static_cast<png_uint_32>(m_width);
    image.height = static_cast<png_uint_32>(m_height);
    image.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&image, path.c_str(), 0, m_rgb.data(), 0, nullptr)) {
        std::string message = path + ": " + image.message;
        png_image_free(&image);
        return message;
    }
    return {};
}

} // namespace vkmha::viz
