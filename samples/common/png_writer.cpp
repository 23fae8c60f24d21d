// png_writer.cpp: PNG encoding through libpng (Debian: libpng-dev), the reference PNG library: well kept, fuzzed,
// in every distribution. Its simplified png_image API handles the zlib stream, CRCs and chunk layout, so none of
// that lives here.
#include "png_writer.h"

#include <png.h>

namespace vkmha::samples {

std::string write_png(const std::string& path, const Raster& image) {
    png_image png{};
    png.version = PNG_IMAGE_VERSION;
    png.width = static_cast<png_uint_32>(image.width());
    png.height = static_cast<png_uint_32>(image.height());
    png.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&png, path.c_str(), 0, image.rgb().data(), 0, nullptr)) {
        std::string message = path + ": " + png.message;
        png_image_free(&png);
        return message;
    }
    return {};
}

} // namespace vkmha::samples
