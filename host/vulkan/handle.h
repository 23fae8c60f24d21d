// Handle<T>: a move-only owner of one Vulkan device-level object, destroyed through the device's table.
#pragma once

#include "vulkan/device.h"

#include <utility>

namespace vkmha {

template <typename T> struct HandleTraits;
#define VKMHA_HANDLE_TRAITS(Type, destroy_fn)                                                                          \
    template <> struct HandleTraits<Type> {                                                                            \
        static void destroy(const Device& d, Type h) { d.vk().destroy_fn(d.handle(), h, d.allocator()); }              \
    };
VKMHA_HANDLE_TRAITS(VkBuffer, vkDestroyBuffer)
VKMHA_HANDLE_TRAITS(VkDeviceMemory, vkFreeMemory)
VKMHA_HANDLE_TRAITS(VkShaderModule, vkDestroyShaderModule)
VKMHA_HANDLE_TRAITS(VkPipeline, vkDestroyPipeline)
VKMHA_HANDLE_TRAITS(VkPipelineLayout, vkDestroyPipelineLayout)
VKMHA_HANDLE_TRAITS(VkPipelineCache, vkDestroyPipelineCache)
VKMHA_HANDLE_TRAITS(VkDescriptorSetLayout, vkDestroyDescriptorSetLayout)
VKMHA_HANDLE_TRAITS(VkDescriptorPool, vkDestroyDescriptorPool)
VKMHA_HANDLE_TRAITS(VkCommandPool, vkDestroyCommandPool)
VKMHA_HANDLE_TRAITS(VkFence, vkDestroyFence)
VKMHA_HANDLE_TRAITS(VkSemaphore, vkDestroySemaphore)
VKMHA_HANDLE_TRAITS(VkQueryPool, vkDestroyQueryPool)
#undef VKMHA_HANDLE_TRAITS

template <typename T> class Handle {
  public:
    Handle() = default;
    Handle(const Device* device, T handle) : m_device(device), m_handle(handle) {}
    ~Handle() { reset(); }
    Handle(Handle&& o) noexcept : m_device(o.m_device), m_handle(std::exchange(o.m_handle, T(VK_NULL_HANDLE))) {}
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            reset();
            m_device = o.m_device;
            m_handle = std::exchange(o.m_handle, T(VK_NULL_HANDLE));
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    T get() const { return m_handle; }
    explicit operator bool() const { return m_handle != T(VK_NULL_HANDLE); }
    void reset() {
        if (m_handle != T(VK_NULL_HANDLE)) HandleTraits<T>::destroy(*m_device, m_handle);
        m_handle = T(VK_NULL_HANDLE);
    }

  private:
    const Device* m_device = nullptr;
    T m_handle = T(VK_NULL_HANDLE);
};

} // namespace vkmha
