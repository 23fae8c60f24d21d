// Arena: a set of buffers sub-allocated from one VkDeviceMemory per memory kind, created all at once, so a
// model or session owns its GPU memory from creation to destruction and per-frame calls allocate nothing.
#pragma once

#include "vulkan/handle.h"

#include <string>
#include <vector>

namespace vkmha {

enum class MemoryKind { device_local, host_visible };

struct BufferRequest {
    std::string name; // shown in debuggers (VK_EXT_debug_utils object name)
    VkDeviceSize size = 0;
    MemoryKind kind = MemoryKind::device_local;
};

struct BufferView {
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceSize offset = 0; // always 0 for arena buffers; engine bindings carry their own
    VkDeviceSize size = 0;
    void* mapped = nullptr; // host_visible only
};

class Arena {
  public:
    // Bytes the arena would take for these requests on this device (buffer alignment included).
    static Result<VkDeviceSize> measure(const Device&, const std::vector<BufferRequest>&);
    static Result<Arena> create(const Device&, const std::vector<BufferRequest>&);

    const BufferView& operator[](size_t i) const { return m_views[i]; }
    size_t size() const { return m_views.size(); }
    VkDeviceSize bytes() const { return m_bytes; }

  private:
    struct Block {
        Handle<VkDeviceMemory> memory;
        bool mapped = false;
    };
    std::vector<Handle<VkBuffer>> m_buffers;
    std::vector<BufferView> m_views;
    std::vector<Block> m_blocks;
    VkDeviceSize m_bytes = 0;
    const Device* m_device = nullptr;

  public:
    Arena() = default;
    Arena(Arena&&) noexcept = default;
    Arena& operator=(Arena&&) noexcept = default;
    ~Arena();
};

} // namespace vkmha
