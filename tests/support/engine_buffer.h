// An engine-owned, host-visible buffer around one binding: the payload at an offset the test chooses, every other
// byte a guard value, so that a write past a binding's range shows up as a changed guard.
// Callers include this after `#undef VK_NO_PROTOTYPES` (see engine_device.h).
#pragma once

#include "support/engine_device.h"

#include "vkmha/vkmha.h"

#include <cstddef>
#include <cstdint>

namespace vkmha::test {

// An engine-owned buffer with `bytes` of payload at `offset`, the rest (before and `tail` after) guard bytes.
struct EngineBuffer {
    HostBuffer buffer;
    VkDeviceSize offset = 0;
    VkDeviceSize range = 0;
    uint8_t guard = 0;

    uint8_t* payload() const { return buffer.bytes() + offset; }
    VkmhaBufferBinding binding(VkPipelineStageFlags stage = 0, VkAccessFlags access = 0) const {
        return VkmhaBufferBinding{buffer.buffer(), offset, range, stage, access};
    }
    // Whether every byte outside [offset, offset + range) still holds the guard.
    bool guards_intact() const {
        for (VkDeviceSize i = 0; i < buffer.size(); ++i)
            if ((i < offset || i >= offset + range) && buffer.bytes()[i] != guard) return false;
        return true;
    }
};

// `data` (may be null: guard bytes throughout) copied to the payload; REQUIREs the buffer.
EngineBuffer engine_buffer(EngineDevice& e, const void* data, size_t bytes, VkDeviceSize offset, VkDeviceSize tail,
                           uint8_t guard);

} // namespace vkmha::test
