// Arena: buffers bound into one allocation per memory kind.
#include "vulkan/arena.h"

#include "checked_math.h"

#include <algorithm>

namespace vkmha {
namespace {

constexpr VkBufferUsageFlags kUsage =
    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

VkDeviceSize align_up(VkDeviceSize v, VkDeviceSize a) { return (v + a - 1) / a * a; }

struct Layout {
    std::vector<Handle<VkBuffer>> buffers;
    std::vector<VkDeviceSize> offsets;
    VkDeviceSize total[2] = {0, 0};
    uint32_t type_bits[2] = {~0u, ~0u};
};

Result<Layout> lay_out(const Device& d, const std::vector<BufferRequest>& requests) {
    Layout layout;
    // Sizes come from caller shapes: a total past 2^64 bytes is refused, never wrapped into a small allocation (and
    // never asked of vkCreateBuffer).
    const auto overflows = [&](int k, VkDeviceSize alignment, VkDeviceSize size) {
        return saturating_add(saturating_add(layout.total[k], alignment), size) == kSaturated;
    };
    for (const BufferRequest& r : requests) {
        if (overflows(r.kind == MemoryKind::host_visible ? 1 : 0, 256, r.size))
            return make_error(ErrorCode::unsupported,
                              "vkmha's buffers up to " + r.name + " need more than 2^64 bytes of memory in all");
        VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
        bi.size = std::max<VkDeviceSize>(r.size, 16); // zero-sized buffers are invalid; unused slots stay tiny
        bi.usage = kUsage;
        bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
        VkBuffer buffer = VK_NULL_HANDLE;
        VkResult res = d.vk().vkCreateBuffer(d.handle(), &bi, d.allocator(), &buffer);
        if (res != VK_SUCCESS) return d.vk_error(("vkCreateBuffer(" + r.name + ")").c_str(), res);
        layout.buffers.emplace_back(&d, buffer);
        VkMemoryRequirements req{};
        d.vk().vkGetBufferMemoryRequirements(d.handle(), buffer, &req);
        int k = r.kind == MemoryKind::host_visible ? 1 : 0;
        const VkDeviceSize alignment = std::max<VkDeviceSize>(req.alignment, 256);
        if (overflows(k, alignment, req.size))
            return make_error(ErrorCode::unsupported,
                              "vkmha's buffers up to " + r.name + " need more than 2^64 bytes of memory in all");
        VkDeviceSize offset = align_up(layout.total[k], alignment);
        layout.offsets.push_back(offset);
        layout.total[k] = offset + req.size;
        layout.type_bits[k] &= req.memoryTypeBits;
    }
    return layout;
}

} // namespace

Result<VkDeviceSize> Arena::measure(const Device& d, const std::vector<BufferRequest>& requests) {
    auto layout = lay_out(d, requests);
    if (!layout) return layout.take_error();
    return layout->total[0] + layout->total[1];
}

Result<Arena> Arena::create(const Device& d, const std::vector<BufferRequest>& requests) {
    auto layout = lay_out(d, requests);
    if (!layout) return layout.take_error();
    Arena arena;
    arena.m_device = &d;
    arena.m_blocks.resize(2);
    void* base[2] = {nullptr, nullptr};
    for (int k = 0; k < 2; ++k) {
        if (layout->total[k] == 0) continue;
        VkMemoryPropertyFlags required =
            k == 1 ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
                   : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
        VkMemoryPropertyFlags preferred = k == 1 ? VK_MEMORY_PROPERTY_HOST_CACHED_BIT : 0;
        int32_t type = d.find_memory_type(layout->type_bits[k], required, preferred);
        if (type < 0 && k == 0) type = d.find_memory_type(layout->type_bits[k], 0, 0);
        if (type < 0) return make_error(ErrorCode::unsupported, "no suitable Vulkan memory type for vkmha buffers");
        VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
        ai.allocationSize = layout->total[k];
        ai.memoryTypeIndex = static_cast<uint32_t>(type);
        VkDeviceMemory memory = VK_NULL_HANDLE;
        VkResult r = d.vk().vkAllocateMemory(d.handle(), &ai, d.allocator(), &memory);
        if (r != VK_SUCCESS)
            return d.vk_error(("vkAllocateMemory(" + std::to_string(layout->total[k]) + " bytes)").c_str(), r);
        arena.m_blocks[static_cast<size_t>(k)].memory = Handle<VkDeviceMemory>(&d, memory);
        if (k == 1) {
            r = d.vk().vkMapMemory(d.handle(), memory, 0, VK_WHOLE_SIZE, 0, &base[1]);
            if (r != VK_SUCCESS) return d.vk_error("vkMapMemory", r);
            arena.m_blocks[1].mapped = true;
        }
        arena.m_bytes += layout->total[k];
    }
    for (size_t i = 0; i < requests.size(); ++i) {
        int k = requests[i].kind == MemoryKind::host_visible ? 1 : 0;
        VkDeviceMemory memory = arena.m_blocks[static_cast<size_t>(k)].memory.get();
        VkBuffer buffer = layout->buffers[i].get();
        VkResult r = d.vk().vkBindBufferMemory(d.handle(), buffer, memory, layout->offsets[i]);
        if (r != VK_SUCCESS) return d.vk_error("vkBindBufferMemory", r);
        d.set_name(VK_OBJECT_TYPE_BUFFER, reinterpret_cast<uint64_t>(buffer), requests[i].name.c_str());
        BufferView view;
        view.buffer = buffer;
        view.size = requests[i].size;
        if (k == 1) view.mapped = static_cast<char*>(base[1]) + layout->offsets[i];
        arena.m_views.push_back(view);
    }
    arena.m_buffers = std::move(layout->buffers);
    return arena;
}

Arena::~Arena() {
    // Buffers go before their memory; Handle members would otherwise be destroyed in declaration order anyway.
    m_buffers.clear();
    if (m_device && m_blocks.size() > 1 && m_blocks[1].mapped && m_blocks[1].memory)
        m_device->vk().vkUnmapMemory(m_device->handle(), m_blocks[1].memory.get());
    m_blocks.clear();
}

} // namespace vkmha
