// A minimal stand-in for a game engine's Vulkan setup, for the adopt-mode tests of the C ABI: its own instance
// (VK_EXT_debug_utils, with a messenger that counts validation warnings and errors), the first physical device, a
// device with one compute queue, timelineSemaphore and (where supported) storageBuffer16BitAccess enabled, and the
// few helpers an engine uses around a record.
// Callers include this after `#undef VK_NO_PROTOTYPES`: it calls the Vulkan loader directly, as an engine would.
#pragma once

#include <vulkan/vulkan.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

namespace vkmha::test {

class EngineDevice;

// A host-visible, host-coherent buffer (storage + transfer src/dst), mapped for its whole life.
class HostBuffer {
  public:
    HostBuffer() = default;
    HostBuffer(HostBuffer&& other) noexcept { *this = std::move(other); }
    HostBuffer& operator=(HostBuffer&& other) noexcept;
    HostBuffer(const HostBuffer&) = delete;
    HostBuffer& operator=(const HostBuffer&) = delete;
    ~HostBuffer() { reset(); }

    void reset();
    VkBuffer buffer() const { return m_buffer; }
    VkDeviceSize size() const { return m_size; }
    uint8_t* bytes() const { return static_cast<uint8_t*>(m_mapped); }
    explicit operator bool() const { return m_buffer != VK_NULL_HANDLE; }

  private:
    friend class EngineDevice;
    VkDevice m_device = VK_NULL_HANDLE;
    VkBuffer m_buffer = VK_NULL_HANDLE;
    VkDeviceMemory m_memory = VK_NULL_HANDLE;
    VkDeviceSize m_size = 0;
    void* m_mapped = nullptr;
};

class EngineDevice {
  public:
    static constexpr uint32_t kApiVersion = VK_API_VERSION_1_2;

    // Creates everything; on failure ok() is false and error() says why.
    EngineDevice();
    ~EngineDevice() { destroy(); }
    EngineDevice(const EngineDevice&) = delete;
    EngineDevice& operator=(const EngineDevice&) = delete;

    // Destroys the device, messenger and instance (idempotent); the message count stays readable, and includes
    // what the validation layer reports at vkDestroyDevice (e.g. objects someone forgot to destroy).
    void destroy();

    bool ok() const { return m_device != VK_NULL_HANDLE; }
    const std::string& error() const { return m_error; }

    VkInstance instance() const { return m_instance; }
    VkPhysicalDevice physical_device() const { return m_physical; }
    VkDevice device() const { return m_device; }
    VkQueue queue() const { return m_queue; }
    uint32_t queue_family() const { return m_queue_family; }
    bool storage16() const { return m_storage16; } // storageBuffer16BitAccess is enabled
    static const char* const* enabled_instance_extensions() { return kInstanceExtensions; }
    static uint32_t enabled_instance_extension_count() { return 1; }

    // Validation warnings and errors the messenger has seen since creation.
    uint64_t validation_messages() const { return m_messages.load(); }
    std::string last_validation_message() const;

    HostBuffer create_host_buffer(VkDeviceSize size);
    VkCommandPool create_command_pool() const; // resettable command buffers, on the compute family
    VkCommandBuffer allocate_command_buffer(VkCommandPool pool) const;
    VkFence create_fence() const;
    // Submits one command buffer to the queue, signalling `fence` (may be VK_NULL_HANDLE).
    VkResult submit(VkCommandBuffer cmd, VkFence fence) const;

  private:
    static constexpr const char* kInstanceExtensions[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT,
                                                     VkDebugUtilsMessageTypeFlagsEXT,
                                                     const VkDebugUtilsMessengerCallbackDataEXT*, void*);
    void create();
    void fail(std::string message);

    VkInstance m_instance = VK_NULL_HANDLE;
    VkDebugUtilsMessengerEXT m_messenger = VK_NULL_HANDLE;
    VkPhysicalDevice m_physical = VK_NULL_HANDLE;
    VkDevice m_device = VK_NULL_HANDLE;
    VkQueue m_queue = VK_NULL_HANDLE;
    uint32_t m_queue_family = 0;
    bool m_storage16 = false;
    std::string m_error;
    std::atomic<uint64_t> m_messages{0};
    mutable std::mutex m_mutex;
    std::string m_last_message;
};

} // namespace vkmha::test
