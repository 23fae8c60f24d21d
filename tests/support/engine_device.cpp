// The tests' stand-in engine device: created and destroyed through the Vulkan loader, as an engine would.
#undef VK_NO_PROTOTYPES // an engine links the loader; vkmha itself never does
#include "support/engine_device.h"

#include <cstdio>
#include <vector>

namespace vkmha::test {

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
    if (this != &other) {
        reset();
        m_device = std::exchange(other.m_device, VK_NULL_HANDLE);
        m_buffer = std::exchange(other.m_buffer, VK_NULL_HANDLE);
        m_memory = std::exchange(other.m_memory, VK_NULL_HANDLE);
        m_size = std::exchange(other.m_size, 0);
        m_mapped = std::exchange(other.m_mapped, nullptr);
    }
    return *this;
}

void HostBuffer::reset() {
    if (m_buffer) vkDestroyBuffer(m_device, m_buffer, nullptr);
    if (m_memory) vkFreeMemory(m_device, m_memory, nullptr); // unmaps
    m_buffer = VK_NULL_HANDLE;
    m_memory = VK_NULL_HANDLE;
    m_mapped = nullptr;
    m_size = 0;
}

void EngineDevice::fail(std::string message) {
    if (m_error.empty()) m_error = std::move(message);
    destroy();
}

EngineDevice::EngineDevice() { create(); }

void EngineDevice::create() {
    VkDebugUtilsMessengerCreateInfoEXT mi{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    mi.messageSeverity =
        VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    mi.pfnUserCallback = &EngineDevice::on_message;
    mi.pUserData = this;

    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "vkmha-tests engine";
    app.apiVersion = kApiVersion;
    VkInstanceCreateInfo ici{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ici.pNext = &mi; // also catches messages from vkCreateInstance/vkDestroyInstance
    ici.pApplicationInfo = &app;
    ici.enabledExtensionCount = enabled_instance_extension_count();
    ici.ppEnabledExtensionNames = kInstanceExtensions;
    VkResult r = vkCreateInstance(&ici, nullptr, &m_instance);
    if (r != VK_SUCCESS) return fail("vkCreateInstance failed: " + std::to_string(r));
    auto create_messenger = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(m_instance, "vkCreateDebugUtilsMessengerEXT"));
    if (!create_messenger) return fail("vkCreateDebugUtilsMessengerEXT is missing");
    r = create_messenger(m_instance, &mi, nullptr, &m_messenger);
    if (r != VK_SUCCESS) return fail("vkCreateDebugUtilsMessengerEXT failed: " + std::to_string(r));

    uint32_t count = 0;
    vkEnumeratePhysicalDevices(m_instance, &count, nullptr);
    if (count == 0) return fail("no physical device");
    std::vector<VkPhysicalDevice> devices(count);
    vkEnumeratePhysicalDevices(m_instance, &count, devices.data());
    m_physical = devices[0];

    uint32_t families = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(m_physical, &families, nullptr);
    std::vector<VkQueueFamilyProperties> props(families);
    vkGetPhysicalDeviceQueueFamilyProperties(m_physical, &families, props.data());
    bool found = false;
    for (uint32_t i = 0; i < families && !found; ++i)
        if (props[i].queueFlags & VK_QUEUE_COMPUTE_BIT) m_queue_family = i, found = true;
    if (!found) return fail("no compute queue family");

    VkPhysicalDeviceTimelineSemaphoreFeatures timeline_supported{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
    VkPhysicalDevice16BitStorageFeatures storage16_supported{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceFeatures2 features2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    features2.pNext = &timeline_supported;
    timeline_supported.pNext = &storage16_supported;
    vkGetPhysicalDeviceFeatures2(m_physical, &features2);
    if (!timeline_supported.timelineSemaphore) return fail("the device has no timelineSemaphore feature");

    VkPhysicalDevice16BitStorageFeatures storage16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    storage16.storageBuffer16BitAccess = storage16_supported.storageBuffer16BitAccess;
    m_storage16 = storage16.storageBuffer16BitAccess == VK_TRUE;
    VkPhysicalDeviceTimelineSemaphoreFeatures timeline{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
    timeline.timelineSemaphore = VK_TRUE;
    timeline.pNext = &storage16;
    const float priority = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = m_queue_family;
    qci.queueCount = 1;
    qci.pQueuePriorities = &priority;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.pNext = &timeline;
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    r = vkCreateDevice(m_physical, &dci, nullptr, &m_device);
    if (r != VK_SUCCESS) return fail("vkCreateDevice failed: " + std::to_string(r));
    vkGetDeviceQueue(m_device, m_queue_family, 0, &m_queue);
}

void EngineDevice::destroy() {
    if (m_device) {
        vkDeviceWaitIdle(m_device);
        vkDestroyDevice(m_device, nullptr);
        m_device = VK_NULL_HANDLE;
        m_queue = VK_NULL_HANDLE;
    }
    if (m_messenger) {
        auto destroy_messenger = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(m_instance, "vkDestroyDebugUtilsMessengerEXT"));
        if (destroy_messenger) destroy_messenger(m_instance, m_messenger, nullptr);
        m_messenger = VK_NULL_HANDLE;
    }
    if (m_instance) {
        vkDestroyInstance(m_instance, nullptr);
        m_instance = VK_NULL_HANDLE;
    }
}

std::string EngineDevice::last_validation_message() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_last_message;
}

VKAPI_ATTR VkBool32 VKAPI_CALL EngineDevice::on_message(VkDebugUtilsMessageSeverityFlagBitsEXT,
                                                        VkDebugUtilsMessageTypeFlagsEXT,
                                                        const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
    auto* self = static_cast<EngineDevice*>(user);
    const char* text = data && data->pMessage ? data->pMessage : "(no message)";
    self->m_messages.fetch_add(1);
    {
        std::lock_guard<std::mutex> lock(self->m_mutex);
        self->m_last_message = text;
    }
    std::fprintf(stderr, "[engine validation] %s\n", text);
    return VK_FALSE;
}

HostBuffer EngineDevice::create_host_buffer(VkDeviceSize size) {
    HostBuffer out;
    VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.size = size;
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkBuffer buffer = VK_NULL_HANDLE;
    if (vkCreateBuffer(m_device, &bi, nullptr, &buffer) != VK_SUCCESS) return out;
    out.m_device = m_device;
    out.m_buffer = buffer;
    out.m_size = size;
    VkMemoryRequirements req{};
    vkGetBufferMemoryRequirements(m_device, buffer, &req);
    VkPhysicalDeviceMemoryProperties mp{};
    vkGetPhysicalDeviceMemoryProperties(m_physical, &mp);
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = UINT32_MAX;
    for (uint32_t i = 0; i < mp.memoryTypeCount && type == UINT32_MAX; ++i)
        if ((req.memoryTypeBits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want) type = i;
    if (type == UINT32_MAX) {
        out.reset();
        return out;
    }
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = type;
    if (vkAllocateMemory(m_device, &ai, nullptr, &out.m_memory) != VK_SUCCESS ||
        vkBindBufferMemory(m_device, buffer, out.m_memory, 0) != VK_SUCCESS ||
        vkMapMemory(m_device, out.m_memory, 0, VK_WHOLE_SIZE, 0, &out.m_mapped) != VK_SUCCESS)
        out.reset();
    return out;
}

VkCommandPool EngineDevice::create_command_pool() const {
    VkCommandPoolCreateInfo ci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    ci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    ci.queueFamilyIndex = m_queue_family;
    VkCommandPool pool = VK_NULL_HANDLE;
    vkCreateCommandPool(m_device, &ci, nullptr, &pool);
    return pool;
}

VkCommandBuffer EngineDevice::allocate_command_buffer(VkCommandPool pool) const {
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    vkAllocateCommandBuffers(m_device, &ai, &cmd);
    return cmd;
}

VkFence EngineDevice::create_fence() const {
    VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence fence = VK_NULL_HANDLE;
    vkCreateFence(m_device, &fi, nullptr, &fence);
    return fence;
}

VkResult EngineDevice::submit(VkCommandBuffer cmd, VkFence fence) const {
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd;
    return vkQueueSubmit(m_queue, 1, &si, fence);
}

} // namespace vkmha::test
