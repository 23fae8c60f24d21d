// png_writer.h: writes a Raster as an 8-bit RGB PNG file.
#pragma once

#include "raster.h"

#include <string>

namespace vkmha::samples {

// Empty on success, else a one-line message naming the file.
std::string write_png(const std::string& path, const Raster& image);

} // namespace vkmha::samples
