// Vulkan function tables loaded from a vkGetInstanceProcAddr: vkmha links no Vulkan symbol, so an engine's
// loader (or its layers) is the one we call through, and libvkmha can be dlopen'ed next to any engine.
#pragma once

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

namespace vkmha::vk {

#define VKMHA_INSTANCE_FUNCTIONS(X)                                                                                    \
    X(vkDestroyInstance)                                                                                               \
    X(vkEnumeratePhysicalDevices)                                                                                      \
    X(vkGetPhysicalDeviceProperties)                                                                                   \
    X(vkGetPhysicalDeviceProperties2)                                                                                  \
    X(vkGetPhysicalDeviceFeatures2)                                                                                    \
    X(vkGetPhysicalDeviceMemoryProperties)                                                                             \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                                                        \
    X(vkEnumerateDeviceExtensionProperties)                                                                            \
    X(vkCreateDevice)                                                                                                  \
    X(vkGetDeviceProcAddr)

// Optional instance functions (VK_EXT_debug_utils); null when the extension is off.
#define VKMHA_INSTANCE_OPTIONAL_FUNCTIONS(X)                                                                           \
    X(vkCreateDebugUtilsMessengerEXT)                                                                                  \
    X(vkDestroyDebugUtilsMessengerEXT)                                                                                 \
    X(vkSetDebugUtilsObjectNameEXT)                                                                                    \
    X(vkCmdBeginDebugUtilsLabelEXT)                                                                                    \
    X(vkCmdEndDebugUtilsLabelEXT)

#define VKMHA_DEVICE_FUNCTIONS(X)                                                                                      \
    X(vkDestroyDevice)                                                                                                 \
    X(vkGetDeviceQueue)                                                                                                \
    X(vkDeviceWaitIdle)                                                                                                \
    X(vkQueueSubmit)                                                                                                   \
    X(vkAllocateMemory)                                                                                                \
    X(vkFreeMemory)                                                                                                    \
    X(vkMapMemory)                                                                                                     \
    X(vkUnmapMemory)                                                                                                   \
    X(vkFlushMappedMemoryRanges)                                                                                       \
    X(vkInvalidateMappedMemoryRanges)                                                                                  \
    X(vkCreateBuffer)                                                                                                  \
    X(vkDestroyBuffer)                                                                                                 \
    X(vkGetBufferMemoryRequirements)                                                                                   \
    X(vkBindBufferMemory)                                                                                              \
    X(vkCreateShaderModule)                                                                                            \
    X(vkDestroyShaderModule)                                                                                           \
    X(vkCreatePipelineCache)                                                                                           \
    X(vkDestroyPipelineCache)                                                                                          \
    X(vkGetPipelineCacheData)                                                                                          \
    X(vkCreateComputePipelines)                                                                                        \
    X(vkDestroyPipeline)                                                                                               \
    X(vkCreatePipelineLayout)                                                                                          \
    X(vkDestroyPipelineLayout)                                                                                         \
    X(vkCreateDescriptorSetLayout)                                                                                     \
    X(vkDestroyDescriptorSetLayout)                                                                                    \
    X(vkCreateDescriptorPool)                                                                                          \
    X(vkDestroyDescriptorPool)                                                                                         \
    X(vkAllocateDescriptorSets)                                                                                        \
    X(vkUpdateDescriptorSets)                                                                                          \
    X(vkCreateCommandPool)                                                                                             \
    X(vkDestroyCommandPool)                                                                                            \
    X(vkAllocateCommandBuffers)                                                                                        \
    X(vkFreeCommandBuffers)                                                                                            \
    X(vkBeginCommandBuffer)                                                                                            \
    X(vkEndCommandBuffer)                                                                                              \
    X(vkResetCommandBuffer)                                                                                            \
    X(vkCreateFence)                                                                                                   \
    X(vkDestroyFence)                                                                                                  \
    X(vkWaitForFences)                                                                                                 \
    X(vkResetFences)                                                                                                   \
    X(vkCreateSemaphore)                                                                                               \
    X(vkDestroySemaphore)                                                                                              \
    X(vkCreateQueryPool)                                                                                               \
    X(vkDestroyQueryPool)                                                                                              \
    X(vkGetQueryPoolResults)                                                                                           \
    X(vkCmdResetQueryPool)                                                                                             \
    X(vkCmdWriteTimestamp)                                                                                             \
    X(vkCmdBindPipeline)                                                                                               \
    X(vkCmdBindDescriptorSets)                                                                                         \
    X(vkCmdPushConstants)                                                                                              \
    X(vkCmdDispatch)                                                                                                   \
    X(vkCmdPipelineBarrier)                                                                                            \
    X(vkCmdCopyBuffer)                                                                                                 \
    X(vkCmdFillBuffer)

// Timeline semaphores: core in 1.2, VK_KHR_timeline_semaphore before; loaded under either name.
#define VKMHA_DEVICE_TIMELINE_FUNCTIONS(X)                                                                             \
    X(vkWaitSemaphores)                                                                                                \
    X(vkGetSemaphoreCounterValue)

// VK_KHR_pipeline_executable_properties: shader statistics (compile-only contexts); null where not enabled.
#define VKMHA_DEVICE_OPTIONAL_FUNCTIONS(X)                                                                             \
    X(vkGetPipelineExecutablePropertiesKHR)                                                                            \
    X(vkGetPipelineExecutableStatisticsKHR)

struct InstanceTable {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
#define VKMHA_DECLARE(name) PFN_##name name = nullptr;
    VKMHA_INSTANCE_FUNCTIONS(VKMHA_DECLARE)
    VKMHA_INSTANCE_OPTIONAL_FUNCTIONS(VKMHA_DECLARE)
};

struct DeviceTable {
    VKMHA_DEVICE_FUNCTIONS(VKMHA_DECLARE)
    VKMHA_DEVICE_TIMELINE_FUNCTIONS(VKMHA_DECLARE)
    VKMHA_DEVICE_OPTIONAL_FUNCTIONS(VKMHA_DECLARE)
#undef VKMHA_DECLARE
};

// Global-level functions (no instance yet).
struct LoaderTable {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
    PFN_vkCreateInstance vkCreateInstance = nullptr;
    PFN_vkEnumerateInstanceVersion vkEnumerateInstanceVersion = nullptr; // null on 1.0 loaders
    PFN_vkEnumerateInstanceExtensionProperties vkEnumerateInstanceExtensionProperties = nullptr;
    PFN_vkEnumerateInstanceLayerProperties vkEnumerateInstanceLayerProperties = nullptr;
};

// Returns false (and names the first missing function in `missing`) when a required function is absent.
bool load_loader_table(PFN_vkGetInstanceProcAddr gipa, LoaderTable& out, const char*& missing);
bool load_instance_table(PFN_vkGetInstanceProcAddr gipa, VkInstance instance, InstanceTable& out, const char*& missing);
bool load_device_table(const InstanceTable& instance, VkDevice device, DeviceTable& out, const char*& missing);

const char* result_name(VkResult result);

} // namespace vkmha::vk
