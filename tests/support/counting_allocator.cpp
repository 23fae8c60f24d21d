// Counting allocation callbacks; see counting_allocator.h.
#include "support/counting_allocator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace vkmha::test {

VkAllocationCallbacks CountingAllocator::callbacks() {
    VkAllocationCallbacks c{};
    c.pUserData = this;
    c.pfnAllocation = &allocate;
    c.pfnReallocation = &reallocate;
    c.pfnFree = &release;
    return c;
}

VKAPI_ATTR void* VKAPI_CALL CountingAllocator::allocate(void* user, size_t size, size_t alignment,
                                                        VkSystemAllocationScope) {
    size = std::max<size_t>(size, 1); // drivers ask for 0 bytes and read NULL as out of memory
    alignment = std::max(alignment, alignof(Header));
    void* base = std::malloc(size + alignment + sizeof(Header));
    if (!base) return nullptr;
    uintptr_t p = reinterpret_cast<uintptr_t>(base) + sizeof(Header);
    p = (p + alignment - 1) & ~(uintptr_t(alignment) - 1);
    Header* h = reinterpret_cast<Header*>(p) - 1;
    h->base = base;
    h->size = size;
    auto* self = static_cast<CountingAllocator*>(user);
    self->m_live.fetch_add(1);
    self->m_total.fetch_add(1);
    return reinterpret_cast<void*>(p);
}

VKAPI_ATTR void* VKAPI_CALL CountingAllocator::reallocate(void* user, void* original, size_t size, size_t alignment,
                                                          VkSystemAllocationScope scope) {
    if (!original) return allocate(user, size, alignment, scope);
    if (size == 0) {
        release(user, original);
        return nullptr;
    }
    void* fresh = allocate(user, size, alignment, scope);
    if (!fresh) return nullptr;
    std::memcpy(fresh, original, std::min(size, (reinterpret_cast<Header*>(original) - 1)->size));
    release(user, original);
    return fresh;
}

VKAPI_ATTR void VKAPI_CALL CountingAllocator::release(void* user, void* memory) {
    if (!memory) return;
    std::free((reinterpret_cast<Header*>(memory) - 1)->base);
    static_cast<CountingAllocator*>(user)->m_live.fetch_sub(1);
}

} // namespace vkmha::test
