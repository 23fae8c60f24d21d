// ScratchArena: device memory that sessions of one context share for their scratch, so the layers of a model, which
// run one after another, need the scratch of the largest layer instead of the sum of all. It holds one buffer per
// frame slot; a session sharing it binds its scratch buffers as ranges of its frame slot's buffer, and the arena
// remembers which frame last used each slot, so that a record of another frame into a slot still in flight is
// refused (sessions of one arena must record the same frame indices and must not run concurrently on the GPU).
#pragma once

#include "context.h"
#include "external_buffer.h" // kNoFrame
#include "vulkan/arena.h"

#include <memory>
#include <vector>

namespace vkmha {

struct ScratchArenaLimits {
    VkDeviceSize bytes_per_frame = 0; // >= 1; rounded up to kScratchAlignment
    uint32_t frames_in_flight = 2;    // 1..8
    uint64_t memory_budget = 0;       // bytes; 0 = no limit
};

// Every scratch range of a session starts at a multiple of this: Vulkan caps minStorageBufferOffsetAlignment at
// 256, so the ranges bind on any device and a session's scratch bytes do not depend on the device.
constexpr VkDeviceSize kScratchAlignment = 256;

inline VkDeviceSize align_scratch(VkDeviceSize bytes) {
    return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment;
}

class ScratchArena {
  public:
    static Result<VkDeviceSize> memory_required(const Context&, const ScratchArenaLimits&);
    static Result<std::shared_ptr<ScratchArena>> create(const Context&, const ScratchArenaLimits&);

    const Context& context() const { return *m_ctx; }
    uint32_t frames_in_flight() const { return m_limits.frames_in_flight; }
    VkDeviceSize bytes_per_frame() const { return m_limits.bytes_per_frame; }
    VkDeviceSize bytes() const { return m_arena.bytes(); }
    const BufferView& frame_buffer(uint32_t frame_slot) const { return m_arena[frame_slot]; }

    // Whether `frame` may record into its frame slot: the slot is free, already holds this frame (an earlier
    // session's record of it, which vkmha's entry barrier orders before this one), or its frame has completed.
    Status check_claim(uint64_t frame, uint64_t completed_frame) const;
    void mark_recorded(uint64_t frame);

  private:
    ScratchArena() = default;
    const Context* m_ctx = nullptr;
    ScratchArenaLimits m_limits;
    Arena m_arena;
    std::vector<uint64_t> m_slot_frame; // the last frame recorded into each frame slot, kNoFrame: none
};

} // namespace vkmha
