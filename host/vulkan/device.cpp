// Device: instance/device creation (own mode), adoption of an engine's device, and device facts.
#include "vulkan/device.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace vkmha {
namespace {

struct LoaderLibrary {
    void* handle = nullptr;
    PFN_vkGetInstanceProcAddr gipa = nullptr;
};

Result<LoaderLibrary> open_loader() {
    LoaderLibrary lib;
    for (const char* name : {"libvulkan.so.1", "libvulkan.so"}) {
        lib.handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (lib.handle) break;
    }
    if (!lib.handle)
        return make_error(ErrorCode::unsupported,
                          "cannot load the Vulkan loader libvulkan.so.1 (is libvulkan1 installed?)");
    lib.gipa = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib.handle, "vkGetInstanceProcAddr"));
    if (!lib.gipa) {
        dlclose(lib.handle);
        return make_error(ErrorCode::unsupported, "libvulkan.so.1 has no vkGetInstanceProcAddr");
    }
    return lib;
}

int type_rank(VkPhysicalDeviceType type) {
    switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool has_extension(const std::vector<VkExtensionProperties>& list, const char* name) {
    return std::any_of(list.begin(), list.end(),
                       [&](const VkExtensionProperties& e) { return std::strcmp(e.extensionName, name) == 0; });
}

// Creates a bare instance for enumeration or for own mode.
struct InstanceSetup {
    LoaderLibrary lib;
    vk::InstanceTable vki{};
    VkInstance instance = VK_NULL_HANDLE;
    uint32_t api_version = VK_API_VERSION_1_1;
    bool debug_utils = false;
};

Result<InstanceSetup> create_instance(bool want_debug_utils) {
    auto lib = open_loader();
    if (!lib) return lib.take_error();
    InstanceSetup setup;
    setup.lib = lib.value();
    auto fail = [&](Error e) -> Result<InstanceSetup> {
        dlclose(setup.lib.handle);
        return e;
    };
    vk::LoaderTable loader;
    const char* missing = nullptr;
    if (!vk::load_loader_table(setup.lib.gipa, loader, missing))
        return fail(make_error(ErrorCode::unsupported, std::string("Vulkan loader lacks ") + missing));
    uint32_t loader_version = VK_API_VERSION_1_0;
    if (loader.vkEnumerateInstanceVersion) loader.vkEnumerateInstanceVersion(&loader_version);
    if (loader_version < VK_API_VERSION_1_1)
        return fail(make_error(ErrorCode::unsupported, "the Vulkan loader supports only Vulkan 1.0; vkmha needs 1.1"));
    setup.api_version = std::min<uint32_t>(loader_version, VK_API_VERSION_1_3);

    uint32_t count = 0;
    loader.vkEnumerateInstanceExtensionProperties(nullptr, &count, nullptr);
    std::vector<VkExtensionProperties> available(count);
    loader.vkEnumerateInstanceExtensionProperties(nullptr, &count, available.data());
    std::vector<const char*> extensions;
    if (want_debug_utils && has_extension(available, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
        extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        setup.debug_utils = true;
    }
    VkInstanceCreateFlags flags = 0;
    if (has_extension(available, "VK_KHR_portability_enumeration")) {
        extensions.push_back("VK_KHR_portability_enumeration");
        flags |= 0x00000001; // VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR: list MoltenVK-style devices too
    }
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "vkmha";
    app.pEngineName = "vkmha";
    app.apiVersion = setup.api_version;
    VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ci.flags = flags;
    ci.pApplicationInfo = &app;
    ci.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
    ci.ppEnabledExtensionNames = extensions.data();
    VkResult r = loader.vkCreateInstance(&ci, nullptr, &setup.instance);
    if (r != VK_SUCCESS)
        return fail(make_error(ErrorCode::vulkan, std::string("vkCreateInstance failed: ") + vk::result_name(r)));
    if (!vk::load_instance_table(setup.lib.gipa, setup.instance, setup.vki, missing)) {
        auto destroy = reinterpret_cast<PFN_vkDestroyInstance>(setup.lib.gipa(setup.instance, "vkDestroyInstance"));
        if (destroy) destroy(setup.instance, nullptr);
        return fail(make_error(ErrorCode::unsupported, std::string("Vulkan instance lacks ") + missing));
    }
    return setup;
}

std::vector<VkPhysicalDevice> physical_devices(const vk::InstanceTable& vki, VkInstance instance) {
    uint32_t count = 0;
    vki.vkEnumeratePhysicalDevices(instance, &count, nullptr);
    std::vector<VkPhysicalDevice> devices(count);
    vki.vkEnumeratePhysicalDevices(instance, &count, devices.data());
    devices.resize(count);
    return devices;
}

PhysicalDeviceInfo describe(const vk::InstanceTable& vki, VkPhysicalDevice pd) {
    VkPhysicalDeviceProperties props{};
    vki.vkGetPhysicalDeviceProperties(pd, &props);
    return PhysicalDeviceInfo{props.deviceName, props.deviceType, props.vendorID, props.apiVersion};
}

} // namespace

Result<std::vector<PhysicalDeviceInfo>> Device::enumerate() {
    auto setup = create_instance(false);
    if (!setup) return setup.take_error();
    std::vector<PhysicalDeviceInfo> out;
    for (VkPhysicalDevice pd : physical_devices(setup->vki, setup->instance)) out.push_back(describe(setup->vki, pd));
    setup->vki.vkDestroyInstance(setup->instance, nullptr);
    dlclose(setup->lib.handle);
    return out;
}

Result<std::unique_ptr<Device>> Device::create_own(const OwnDeviceOptions& options, LogFunction log) {
    auto setup = create_instance(options.enable_debug_utils);
    if (!setup) return setup.take_error();
    std::unique_ptr<Device> d(new Device());
    d->m_log = std::move(log);
    d->m_owns = true;
    d->m_loader_library = setup->lib.handle;
    d->m_instance = setup->instance;
    d->m_vki = setup->vki;
    if (!setup->debug_utils) {
        // Keep the label/naming entry points null so debug_utils() reports the truth.
        d->m_vki.vkCmdBeginDebugUtilsLabelEXT = nullptr;
        d->m_vki.vkCmdEndDebugUtilsLabelEXT = nullptr;
        d->m_vki.vkSetDebugUtilsObjectNameEXT = nullptr;
        d->m_vki.vkCreateDebugUtilsMessengerEXT = nullptr;
    }
    if (d->m_vki.vkCreateDebugUtilsMessengerEXT) {
        VkDebugUtilsMessengerCreateInfoEXT mi{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
        mi.messageSeverity =
            VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
        mi.messageType =
            VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
        mi.pfnUserCallback = &Device::debug_callback;
        mi.pUserData = d.get();
        d->m_vki.vkCreateDebugUtilsMessengerEXT(d->m_instance, &mi, nullptr, &d->m_messenger);
    }

    auto devices = physical_devices(d->m_vki, d->m_instance);
    if (devices.empty()) return make_error(ErrorCode::unsupported, "no Vulkan physical device found");
    int chosen = -1;
    if (options.device_index >= 0) {
        if (static_cast<size_t>(options.device_index) >= devices.size())
            return make_error(ErrorCode::invalid_argument, "device index " + std::to_string(options.device_index) +
                                                               " is out of range (" + std::to_string(devices.size()) +
                                                               " devices)");
        chosen = options.device_index;
    } else if (!options.device_name.empty()) {
        for (size_t i = 0; i < devices.size() && chosen < 0; ++i)
            if (lower(describe(d->m_vki, devices[i]).name).find(lower(options.device_name)) != std::string::npos)
                chosen = static_cast<int>(i);
        if (chosen < 0)
            return make_error(ErrorCode::invalid_argument,
                              "no Vulkan device name contains '" + options.device_name + "'");
    } else {
        int best_rank = 99;
        for (size_t i = 0; i < devices.size(); ++i) {
            PhysicalDeviceInfo info = describe(d->m_vki, devices[i]);
            int rank = info.api_version >= VK_API_VERSION_1_1 ? type_rank(info.type) : 50;
            if (rank < best_rank) best_rank = rank, chosen = static_cast<int>(i);
        }
    }
    d->m_physical = devices[static_cast<size_t>(chosen)];
    d->m_info = describe(d->m_vki, d->m_physical);
    d->m_api_version = std::min(d->m_info.api_version, setup->api_version);
    if (d->m_info.api_version < VK_API_VERSION_1_1)
        return make_error(ErrorCode::unsupported,
                          "device '" + d->m_info.name + "' supports only Vulkan 1.0; vkmha needs 1.1");

    uint32_t family_count = 0;
    d->m_vki.vkGetPhysicalDeviceQueueFamilyProperties(d->m_physical, &family_count, nullptr);
    std::vector<VkQueueFamilyProperties> families(family_count);
    d->m_vki.vkGetPhysicalDeviceQueueFamilyProperties(d->m_physical, &family_count, families.data());
    int family = -1;
    for (uint32_t i = 0; i < family_count; ++i) {
        if (!(families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        if (family < 0 ||
            (families[static_cast<size_t>(family)].timestampValidBits == 0 && families[i].timestampValidBits > 0))
            family = static_cast<int>(i);
    }
    if (family < 0) return make_error(ErrorCode::unsupported, "device '" + d->m_info.name + "' has no compute queue");
    d->m_queue_family = static_cast<uint32_t>(family);

    uint32_t ext_count = 0;
    d->m_vki.vkEnumerateDeviceExtensionProperties(d->m_physical, nullptr, &ext_count, nullptr);
    std::vector<VkExtensionProperties> exts(ext_count);
    d->m_vki.vkEnumerateDeviceExtensionProperties(d->m_physical, nullptr, &ext_count, exts.data());
    std::vector<const char*> enabled;
    if (has_extension(exts, "VK_KHR_portability_subset")) enabled.push_back("VK_KHR_portability_subset");

    // Timeline semaphores back standalone submit/wait: core feature in 1.2, an extension before. 16-bit storage
    // (core in 1.1) backs fp16 models.
    VkPhysicalDeviceTimelineSemaphoreFeatures timeline{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
    VkPhysicalDevice16BitStorageFeatures storage16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceFeatures2 features2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    bool timeline_ext = has_extension(exts, VK_KHR_TIMELINE_SEMAPHORE_EXTENSION_NAME);
    bool core12 = d->m_info.api_version >= VK_API_VERSION_1_2 && setup->api_version >= VK_API_VERSION_1_2;
    auto core13 = [&] {
        return d->m_info.api_version >= VK_API_VERSION_1_3 && setup->api_version >= VK_API_VERSION_1_3;
    };
    features2.pNext = &storage16;
    if (core12 || timeline_ext) storage16.pNext = &timeline;
    d->m_vki.vkGetPhysicalDeviceFeatures2(d->m_physical, &features2);
    VkPhysicalDeviceFeatures2 enable2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    VkPhysicalDeviceTimelineSemaphoreFeatures enable_timeline{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
    VkPhysicalDevice16BitStorageFeatures enable_storage16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    enable2.pNext = &enable_storage16;
    if (storage16.storageBuffer16BitAccess) {
        enable_storage16.storageBuffer16BitAccess = VK_TRUE;
        d->m_storage16 = true;
    }
    if (timeline.timelineSemaphore) {
        enable_timeline.timelineSemaphore = VK_TRUE;
        enable_storage16.pNext = &enable_timeline;
        if (!core12) enabled.push_back(VK_KHR_TIMELINE_SEMAPHORE_EXTENSION_NAME);
        d->m_timeline = true;
    }

    if (core13()) {
        d->m_creation_feedback = true;
    } else if (has_extension(exts, VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME)) {
        enabled.push_back(VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME);
        d->m_creation_feedback = true;
    }

    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = d->m_queue_family;
    qci.queueCount = 1;
    qci.pQueuePriorities = &priority;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.pNext = &enable2;
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    dci.enabledExtensionCount = static_cast<uint32_t>(enabled.size());
    dci.ppEnabledExtensionNames = enabled.data();
    VkResult r = d->m_vki.vkCreateDevice(d->m_physical, &dci, nullptr, &d->m_device);
    if (r != VK_SUCCESS) return d->vk_error("vkCreateDevice", r);
    const char* missing = nullptr;
    if (!vk::load_device_table(d->m_vki, d->m_device, d->m_vk, missing))
        return make_error(ErrorCode::unsupported, std::string("Vulkan device lacks ") + missing);
    d->m_vk.vkGetDeviceQueue(d->m_device, d->m_queue_family, 0, &d->m_queue);
    VKMHA_TRY(d->finish_setup());
    if (!options.subgroup_operations) d->m_limits.subgroup_arithmetic = false;
    if (!options.cpu_tiling) d->m_limits.cpu = false;
    return d;
}

Result<std::unique_ptr<Device>> Device::adopt(const AdoptDeviceOptions& o, LogFunction log) {
    if (!o.get_instance_proc_addr)
        return make_error(ErrorCode::invalid_argument, "adopt: pfnGetInstanceProcAddr is NULL");
    if (o.instance == VK_NULL_HANDLE)
        return make_error(ErrorCode::invalid_argument, "adopt: instance is VK_NULL_HANDLE");
    if (o.physical_device == VK_NULL_HANDLE)
        return make_error(ErrorCode::invalid_argument, "adopt: physicalDevice is VK_NULL_HANDLE");
    if (o.device == VK_NULL_HANDLE) return make_error(ErrorCode::invalid_argument, "adopt: device is VK_NULL_HANDLE");
    if (o.api_version < VK_API_VERSION_1_1)
        return make_error(ErrorCode::unsupported, "adopt: apiVersion " +
                                                      std::to_string(VK_API_VERSION_MAJOR(o.api_version)) + "." +
                                                      std::to_string(VK_API_VERSION_MINOR(o.api_version)) +
                                                      " is below the Vulkan 1.1 vkmha needs");
    std::unique_ptr<Device> d(new Device());
    d->m_log = std::move(log);
    d->m_instance = o.instance;
    d->m_physical = o.physical_device;
    d->m_device = o.device;
    d->m_allocator = o.allocator;
    d->m_external_cache = o.pipeline_cache;
    const char* missing = nullptr;
    if (!vk::load_instance_table(o.get_instance_proc_addr, o.instance, d->m_vki, missing))
        return make_error(ErrorCode::unsupported, std::string("adopt: instance lacks ") + missing);
    bool engine_debug_utils = std::find(o.enabled_instance_extensions.begin(), o.enabled_instance_extensions.end(),
                                        VK_EXT_DEBUG_UTILS_EXTENSION_NAME) != o.enabled_instance_extensions.end();
    if (!engine_debug_utils) {
        d->m_vki.vkCmdBeginDebugUtilsLabelEXT = nullptr;
        d->m_vki.vkCmdEndDebugUtilsLabelEXT = nullptr;
        d->m_vki.vkSetDebugUtilsObjectNameEXT = nullptr;
    }
    if (!vk::load_device_table(d->m_vki, o.device, d->m_vk, missing))
        return make_error(ErrorCode::unsupported, std::string("adopt: device lacks ") + missing);
    d->m_info = describe(d->m_vki, o.physical_device);
    d->m_api_version = std::min(d->m_info.api_version, o.api_version);
    d->m_timeline = o.timeline_semaphore_enabled && d->m_vk.vkWaitSemaphores && d->m_vk.vkGetSemaphoreCounterValue;
    d->m_storage16 = o.storage_buffer_16bit_access_enabled;
    d->m_creation_feedback =
        (o.api_version >= VK_API_VERSION_1_3 && d->m_info.api_version >= VK_API_VERSION_1_3) ||
        std::find(o.enabled_device_extensions.begin(), o.enabled_device_extensions.end(),
                  VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME) != o.enabled_device_extensions.end();
    if (o.queue_given) {
        if (o.queue == VK_NULL_HANDLE) return make_error(ErrorCode::invalid_argument, "adopt: queue is VK_NULL_HANDLE");
        d->m_queue = o.queue;
        d->m_queue_family = o.queue_family_index;
    } else {
        uint32_t family_count = 0;
        d->m_vki.vkGetPhysicalDeviceQueueFamilyProperties(o.physical_device, &family_count, nullptr);
        std::vector<VkQueueFamilyProperties> families(family_count);
        d->m_vki.vkGetPhysicalDeviceQueueFamilyProperties(o.physical_device, &family_count, families.data());
        for (uint32_t i = 0; i < family_count; ++i)
            if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
                d->m_queue_family = i; // for timestamp validity only; no queue is used without one given
                break;
            }
    }
    VKMHA_TRY(d->finish_setup());
    return d;
}

Status Device::finish_setup() {
    VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 props2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    props2.pNext = &subgroup;
    // Driver identity is core in 1.2 (VK_KHR_driver_properties before); chain it only where it is known.
    if (m_api_version >= VK_API_VERSION_1_2) subgroup.pNext = &driver;
    m_vki.vkGetPhysicalDeviceProperties2(m_physical, &props2);
    const VkPhysicalDeviceLimits& l = props2.properties.limits;
    m_limits.max_storage_buffer_range = l.maxStorageBufferRange;
    m_limits.min_storage_buffer_offset_alignment = std::max<VkDeviceSize>(l.minStorageBufferOffsetAlignment, 4);
    m_limits.max_compute_shared_memory = l.maxComputeSharedMemorySize;
    m_limits.max_workgroup_invocations = l.maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; ++i) m_limits.max_workgroup_count[i] = l.maxComputeWorkGroupCount[i];
    m_limits.subgroup_size = subgroup.subgroupSize;
    m_limits.subgroup_arithmetic = (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                                   (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                                   (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    m_limits.timestamp_period_ns = l.timestampPeriod;
    m_limits.cpu = props2.properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    if (driver.driverID == VK_DRIVER_ID_MESA_LLVMPIPE) m_limits.max_invocation_loop_iterations = 65535;
    uint32_t family_count = 0;
    m_vki.vkGetPhysicalDeviceQueueFamilyProperties(m_physical, &family_count, nullptr);
    std::vector<VkQueueFamilyProperties> families(family_count);
    m_vki.vkGetPhysicalDeviceQueueFamilyProperties(m_physical, &family_count, families.data());
    m_limits.timestamps =
        m_queue_family < family_count && families[m_queue_family].timestampValidBits > 0 && l.timestampPeriod > 0;
    return {};
}

Device::~Device() {
    if (!m_owns) return; // adopted handles belong to the engine
    if (m_device) {
        m_vk.vkDeviceWaitIdle(m_device);
        m_vk.vkDestroyDevice(m_device, nullptr);
    }
    if (m_messenger) m_vki.vkDestroyDebugUtilsMessengerEXT(m_instance, m_messenger, nullptr);
    if (m_instance) m_vki.vkDestroyInstance(m_instance, nullptr);
    if (m_loader_library) dlclose(m_loader_library);
}

int32_t Device::find_memory_type(uint32_t type_bits, VkMemoryPropertyFlags required,
                                 VkMemoryPropertyFlags preferred) const {
    VkPhysicalDeviceMemoryProperties mp{};
    m_vki.vkGetPhysicalDeviceMemoryProperties(m_physical, &mp);
    int32_t fallback = -1;
    for (uint32_t i = 0; i < mp.memoryTypeCount; ++i) {
        if (!(type_bits & (1u << i))) continue;
        VkMemoryPropertyFlags f = mp.memoryTypes[i].propertyFlags;
        if ((f & required) != required) continue;
        if ((f & preferred) == preferred) return static_cast<int32_t>(i);
        if (fallback < 0) fallback = static_cast<int32_t>(i);
    }
    return fallback;
}

void Device::set_name(VkObjectType type, uint64_t handle, const char* name) const {
    if (!m_vki.vkSetDebugUtilsObjectNameEXT || !handle) return;
    VkDebugUtilsObjectNameInfoEXT info{VK_STRUCTURE_TYPE_DEBUG_UTILS_OBJECT_NAME_INFO_EXT};
    info.objectType = type;
    info.objectHandle = handle;
    info.pObjectName = name;
    m_vki.vkSetDebugUtilsObjectNameEXT(m_device, &info);
}

Error Device::vk_error(const char* what, VkResult result) const {
    ErrorCode code = ErrorCode::vulkan;
    if (result == VK_ERROR_OUT_OF_DEVICE_MEMORY || result == VK_ERROR_OUT_OF_HOST_MEMORY)
        code = ErrorCode::out_of_memory;
    if (result == VK_ERROR_DEVICE_LOST) {
        code = ErrorCode::device_lost;
        m_lost.store(true);
    }
    return make_error(code, std::string(what) + " failed: " + vk::result_name(result));
}

VKAPI_ATTR VkBool32 VKAPI_CALL Device::debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                      VkDebugUtilsMessageTypeFlagsEXT,
                                                      const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
    auto* self = static_cast<Device*>(user);
    self->m_validation_messages.fetch_add(1);
    LogLevel level = (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ? LogLevel::error : LogLevel::warning;
    self->log(level, std::string("validation: ") + (data && data->pMessage ? data->pMessage : "(no message)"));
    return VK_FALSE;
}

} // namespace vkmha
