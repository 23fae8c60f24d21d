// Device: the Vulkan instance/device/queue vkmha runs on, either created here ("own") or lent by an engine
// ("adopt"; never destroyed by us), with its function tables, limits and optional capabilities.
#pragma once

#include "result.h"
#include "vulkan/device_limits.h"
#include "vulkan/dispatch.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace vkmha {

enum class LogLevel { debug, info, warning, error };
using LogFunction = std::function<void(LogLevel, const std::string&)>;

struct PhysicalDeviceInfo {
    std::string name;
    VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
    uint32_t vendor_id = 0;
    uint32_t api_version = 0;
    // Mesa's RADV "null hardware" device (RADV_FORCE_FAMILY set without that GPU): it compiles pipelines with the
    // real compiler (ACO) but cannot run anything, so only compile-only contexts may use it.
    bool null_hardware = false;
};

struct OwnDeviceOptions {
    int32_t device_index = -1;      // -1: best by type (discrete > integrated > virtual > cpu)
    std::string device_name;        // non-empty: first device whose name contains this (case-insensitive)
    bool enable_debug_utils = true; // labels, object names, and validation messages routed to the log
    // Build pipelines, never submit work: enables VK_KHR_pipeline_executable_properties where the device has it
    // (shader statistics) and accepts devices that cannot execute (PhysicalDeviceInfo::null_hardware).
    bool compile_only = false;
};

struct AdoptDeviceOptions {
    VkInstance instance = VK_NULL_HANDLE;
    VkPhysicalDevice physical_device = VK_NULL_HANDLE;
    VkDevice device = VK_NULL_HANDLE;
    PFN_vkGetInstanceProcAddr get_instance_proc_addr = nullptr;
    uint32_t api_version = VK_API_VERSION_1_1; // the version the engine created its instance/device with
    std::vector<std::string> enabled_device_extensions;
    std::vector<std::string> enabled_instance_extensions;
    bool timeline_semaphore_enabled = false;          // feature the engine enabled
    bool storage_buffer_16bit_access_enabled = false; // feature the engine enabled (fp16 models need it)
    bool queue_given = false;
    VkQueue queue = VK_NULL_HANDLE; // optional: for standalone submit
    uint32_t queue_family_index = 0;
    VkPipelineCache pipeline_cache = VK_NULL_HANDLE;  // optional; used, never destroyed
    const VkAllocationCallbacks* allocator = nullptr; // optional
    bool compile_only = false;                        // never submit to the engine's queue (OwnDeviceOptions)
};

class Device {
  public:
    static Result<std::vector<PhysicalDeviceInfo>> enumerate();
    static Result<std::unique_ptr<Device>> create_own(const OwnDeviceOptions&, LogFunction log);
    static Result<std::unique_ptr<Device>> adopt(const AdoptDeviceOptions&, LogFunction log);
    ~Device();
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    const vk::DeviceTable& vk() const { return m_vk; }
    const vk::InstanceTable& vki() const { return m_vki; }
    VkDevice handle() const { return m_device; }
    VkPhysicalDevice physical_device() const { return m_physical; }
    VkInstance instance() const { return m_instance; }
    const VkAllocationCallbacks* allocator() const { return m_allocator; }
    bool has_queue() const { return m_queue != VK_NULL_HANDLE; }
    VkQueue queue() const { return m_queue; }
    // vkQueueSubmit on queue(), serialised: sessions on different threads share the one queue, which Vulkan
    // requires to be externally synchronised.
    VkResult submit(uint32_t count, const VkSubmitInfo* submits, VkFence fence) const {
        std::lock_guard<std::mutex> lock(m_queue_mutex);
        return m_vk.vkQueueSubmit(m_queue, count, submits, fence);
    }
    uint32_t queue_family() const { return m_queue_family; }
    // Facts only: what vkmha chooses to run here is the context's KernelPolicy.
    const DeviceLimits& limits() const { return m_limits; }
    const PhysicalDeviceInfo& info() const { return m_info; }
    bool debug_utils() const { return m_vki.vkCmdBeginDebugUtilsLabelEXT != nullptr; }
    bool timeline_semaphores() const { return m_timeline; }
    // storageBuffer16BitAccess (VkPhysicalDevice16BitStorageFeatures, core 1.1) is enabled: fp16 storage variants of
    // the kernels may run, so fp16 models are possible.
    bool storage16() const { return m_storage16; }
    // VK_EXT_pipeline_creation_feedback (core in 1.3): tells whether a pipeline came from the cache.
    bool creation_feedback() const { return m_creation_feedback; }
    bool owns_device() const { return m_owns; }
    // Work is never submitted here (OwnDeviceOptions::compile_only): the device may be one that cannot execute.
    bool compile_only() const { return m_compile_only; }
    // VK_KHR_pipeline_executable_properties is enabled: pipelines are created with their statistics captured.
    bool pipeline_statistics() const { return m_vk.vkGetPipelineExecutableStatisticsKHR != nullptr && m_statistics; }
    VkPipelineCache external_pipeline_cache() const { return m_external_cache; }
    uint64_t validation_message_count() const { return m_validation_messages.load(); }

    // Memory type index with all of `required` (and `preferred` if possible) among `type_bits`, or -1.
    int32_t find_memory_type(uint32_t type_bits, VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) const;
    void set_name(VkObjectType type, uint64_t handle, const char* name) const;
    void log(LogLevel level, const std::string& message) const {
        if (m_log) m_log(level, message);
    }
    // A Vulkan error as a vkmha Error naming the call and result. VK_ERROR_DEVICE_LOST marks the device lost.
    Error vk_error(const char* what, VkResult result) const;
    // Some call returned VK_ERROR_DEVICE_LOST: the device is unusable for good (Vulkan's lost-device rules).
    bool lost() const { return m_lost.load(); }

  private:
    Device() = default;
    // Reads the limits once the physical device and queue family are known; `families` are the device's.
    void read_limits(const std::vector<VkQueueFamilyProperties>& families);
    // Own mode: routes validation messages to the log and counts them, where VK_EXT_debug_utils is on.
    void install_messenger();
    static VKAPI_ATTR VkBool32 VKAPI_CALL debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT,
                                                         VkDebugUtilsMessageTypeFlagsEXT,
                                                         const VkDebugUtilsMessengerCallbackDataEXT*, void*);

    void* m_loader_library = nullptr; // dlopen handle (own mode only)
    vk::InstanceTable m_vki{};
    vk::DeviceTable m_vk{};
    VkInstance m_instance = VK_NULL_HANDLE;
    VkPhysicalDevice m_physical = VK_NULL_HANDLE;
    VkDevice m_device = VK_NULL_HANDLE;
    VkQueue m_queue = VK_NULL_HANDLE;
    uint32_t m_queue_family = 0;
    VkDebugUtilsMessengerEXT m_messenger = VK_NULL_HANDLE;
    VkPipelineCache m_external_cache = VK_NULL_HANDLE;
    const VkAllocationCallbacks* m_allocator = nullptr;
    bool m_owns = false;
    bool m_timeline = false;
    bool m_storage16 = false;
    bool m_creation_feedback = false;
    bool m_compile_only = false;
    bool m_statistics = false;
    uint32_t m_api_version = VK_API_VERSION_1_1; // effective: min(instance's, device's)
    DeviceLimits m_limits{};
    PhysicalDeviceInfo m_info{};
    LogFunction m_log;
    std::atomic<uint64_t> m_validation_messages{0};
    mutable std::atomic<bool> m_lost{false};
    mutable std::mutex m_queue_mutex;
};

} // namespace vkmha
