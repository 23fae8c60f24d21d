// png_writer.h: writes an 8-bit RGB image as a PNG file (libpng's simplified write API).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

// Empty on success, else a one-line error naming the file.
std::string write_png(const std::string& path, int width, int height, const std::vector<uint8_t>& rgb);

} // namespace bench
