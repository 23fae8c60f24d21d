// png_writer.cpp: libpng's png_image API, which handles the zlib stream, CRCs and chunk layout for us.
#include "png_writer.h"

#include <png.h>

namespace bench {

std::string write_png(const std::string& path, int width, int height, const std::vector<uint8_t>& rgb) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = static_cast<png_uint_32>(width);
    image.height = static_cast<png_uint_32>(height);
    image.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&image, path.c_str(), 0, rgb.data(), 0, nullptr)) {
        const std::string message = image.message;
        png_image_free(&image);
        return path + ": " + message;
    }
    return {};
}

} // namespace bench
