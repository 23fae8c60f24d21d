// Loads vkmha's Vulkan function tables through the vkGetInstanceProcAddr it was given.
#include "vulkan/dispatch.h"

namespace vkmha::vk {

bool load_loader_table(PFN_vkGetInstanceProcAddr gipa, LoaderTable& out, const char*& missing) {
    out.vkGetInstanceProcAddr = gipa;
    out.vkCreateInstance = reinterpret_cast<PFN_vkCreateInstance>(gipa(VK_NULL_HANDLE, "vkCreateInstance"));
    out.vkEnumerateInstanceVersion =
        reinterpret_cast<PFN_vkEnumerateInstanceVersion>(gipa(VK_NULL_HANDLE, "vkEnumerateInstanceVersion"));
    out.vkEnumerateInstanceExtensionProperties = reinterpret_cast<PFN_vkEnumerateInstanceExtensionProperties>(
        gipa(VK_NULL_HANDLE, "vkEnumerateInstanceExtensionProperties"));
    out.vkEnumerateInstanceLayerProperties = reinterpret_cast<PFN_vkEnumerateInstanceLayerProperties>(
        gipa(VK_NULL_HANDLE, "vkEnumerateInstanceLayerProperties"));
    if (!out.vkCreateInstance)
        missing = "vkCreateInstance";
    else if (!out.vkEnumerateInstanceExtensionProperties)
        missing = "vkEnumerateInstanceExtensionProperties";
    else if (!out.vkEnumerateInstanceLayerProperties)
        missing = "vkEnumerateInstanceLayerProperties";
    else
        return true;
    return false;
}

bool load_instance_table(PFN_vkGetInstanceProcAddr gipa, VkInstance instance, InstanceTable& out,
                         const char*& missing) {
    out.vkGetInstanceProcAddr = gipa;
#define VKMHA_LOAD(name) out.name = reinterpret_cast<PFN_##name>(gipa(instance, #name));
    VKMHA_INSTANCE_FUNCTIONS(VKMHA_LOAD)
    VKMHA_INSTANCE_OPTIONAL_FUNCTIONS(VKMHA_LOAD)
#undef VKMHA_LOAD
    // 1.0 instances only have the KHR aliases of the *2 queries.
    if (!out.vkGetPhysicalDeviceProperties2)
        out.vkGetPhysicalDeviceProperties2 =
            reinterpret_cast<PFN_vkGetPhysicalDeviceProperties2>(gipa(instance, "vkGetPhysicalDeviceProperties2KHR"));
    if (!out.vkGetPhysicalDeviceFeatures2)
        out.vkGetPhysicalDeviceFeatures2 =
            reinterpret_cast<PFN_vkGetPhysicalDeviceFeatures2>(gipa(instance, "vkGetPhysicalDeviceFeatures2KHR"));
#define VKMHA_CHECK(name)                                                                                              \
    if (!out.name) {                                                                                                   \
        missing = #name;                                                                                               \
        return false;                                                                                                  \
    }
    VKMHA_INSTANCE_FUNCTIONS(VKMHA_CHECK)
    return true;
}

bool load_device_table(const InstanceTable& instance, VkDevice device, DeviceTable& out, const char*& missing) {
    PFN_vkGetDeviceProcAddr gdpa = instance.vkGetDeviceProcAddr;
#define VKMHA_LOAD(name) out.name = reinterpret_cast<PFN_##name>(gdpa(device, #name));
    VKMHA_DEVICE_FUNCTIONS(VKMHA_LOAD)
    VKMHA_DEVICE_TIMELINE_FUNCTIONS(VKMHA_LOAD)
    VKMHA_DEVICE_OPTIONAL_FUNCTIONS(VKMHA_LOAD)
#undef VKMHA_LOAD
    if (!out.vkWaitSemaphores)
        out.vkWaitSemaphores = reinterpret_cast<PFN_vkWaitSemaphores>(gdpa(device, "vkWaitSemaphoresKHR"));
    if (!out.vkGetSemaphoreCounterValue)
        out.vkGetSemaphoreCounterValue =
            reinterpret_cast<PFN_vkGetSemaphoreCounterValue>(gdpa(device, "vkGetSemaphoreCounterValueKHR"));
    VKMHA_DEVICE_FUNCTIONS(VKMHA_CHECK)
#undef VKMHA_CHECK
    return true;
}

const char* result_name(VkResult result) {
    switch (result) {
#define VKMHA_CASE(r)                                                                                                  \
    case r: return #r;
        VKMHA_CASE(VK_SUCCESS)
        VKMHA_CASE(VK_NOT_READY)
        VKMHA_CASE(VK_TIMEOUT)
        VKMHA_CASE(VK_INCOMPLETE)
        VKMHA_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
        VKMHA_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        VKMHA_CASE(VK_ERROR_INITIALIZATION_FAILED)
        VKMHA_CASE(VK_ERROR_DEVICE_LOST)
        VKMHA_CASE(VK_ERROR_MEMORY_MAP_FAILED)
        VKMHA_CASE(VK_ERROR_LAYER_NOT_PRESENT)
        VKMHA_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
        VKMHA_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
        VKMHA_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
        VKMHA_CASE(VK_ERROR_TOO_MANY_OBJECTS)
        VKMHA_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
        VKMHA_CASE(VK_ERROR_FRAGMENTED_POOL)
        VKMHA_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
        VKMHA_CASE(VK_ERROR_UNKNOWN)
#undef VKMHA_CASE
    default: return "VkResult(unknown)";
    }
}

} // namespace vkmha::vk
