// Guarded engine buffers; see engine_buffer.h.
#undef VK_NO_PROTOTYPES // the engine's side calls the Vulkan loader directly; the library never does
#include "support/engine_buffer.h"

#include <doctest/doctest.h>

#include <cstring>

namespace vkmha::test {

EngineBuffer engine_buffer(EngineDevice& e, const void* data, size_t bytes, VkDeviceSize offset, VkDeviceSize tail,
                           uint8_t guard) {
    EngineBuffer b;
    b.buffer = e.create_host_buffer(offset + bytes + tail);
    REQUIRE(b.buffer);
    b.offset = offset;
    b.range = bytes;
    b.guard = guard;
    std::memset(b.buffer.bytes(), guard, b.buffer.size());
    if (data) std::memcpy(b.payload(), data, bytes);
    return b;
}

} // namespace vkmha::test
