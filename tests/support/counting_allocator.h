// Allocation callbacks an engine might pass in adopt mode: malloc-backed, aligned, counting what is still live, so
// that a test can check that vkmha used them and freed everything it allocated through them.
#pragma once

#include <vulkan/vulkan.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace vkmha::test {

class CountingAllocator {
  public:
    VkAllocationCallbacks callbacks();
    int64_t live() const { return m_live.load(); }
    int64_t total() const { return m_total.load(); }

  private:
    struct Header {
        void* base;
        size_t size;
    };
    static VKAPI_ATTR void* VKAPI_CALL allocate(void* user, size_t size, size_t alignment, VkSystemAllocationScope);
    static VKAPI_ATTR void* VKAPI_CALL reallocate(void* user, void* original, size_t size, size_t alignment,
                                                  VkSystemAllocationScope scope);
    static VKAPI_ATTR void VKAPI_CALL release(void* user, void* memory);
    std::atomic<int64_t> m_live{0};
    std::atomic<int64_t> m_total{0};
};

} // namespace vkmha::test
