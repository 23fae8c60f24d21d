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
    PhysicalDeviceInfo info{props.deviceName, props.deviceType, props.vendorID, props.apiVersion};
    // RADV names its null-winsys device this way (Mesa 22.3 and later); nothing else in the properties tells it
    // apart from the real GPU it pretends to be.
    constexpr uint32_t kAmdVendorId = 0x1002;
    info.null_hardware = props.vendorID == kAmdVendorId && info.name.rfind("Null hardware", 0) == 0;
    return info;
}

std::vector<VkQueueFamilyProperties> queue_families(const vk::InstanceTable& vki, VkPhysicalDevice pd) {
    uint32_t count = 0;
    vki.vkGetPhysicalDeviceQueueFamilyProperties(pd, &count, nullptr);
    std::vector<VkQueueFamilyProperties> families(count);
    vki.vkGetPhysicalDeviceQueueFamilyProperties(pd, &count, families.data());
    families.resize(count);
    return families;
}

std::vector<VkExtensionProperties> device_extensions(const vk::InstanceTable& vki, VkPhysicalDevice pd) {
    uint32_t count = 0;
    vki.vkEnumerateDeviceExtensionProperties(pd, nullptr, &count, nullptr);
    std::vector<VkExtensionProperties> extensions(count);
    vki.vkEnumerateDeviceExtensionProperties(pd, nullptr, &count, extensions.data());
    extensions.resize(count);
    return extensions;
}

// Own mode, step 1: the device the options name (by index or by part of its name), else the best type among the
// Vulkan 1.1 devices.
Result<VkPhysicalDevice> pick_physical_device(const vk::InstanceTable& vki, VkInstance instance,
                                              const OwnDeviceOptions& options) {
    const std::vector<VkPhysicalDevice> devices = physical_devices(vki, instance);
    if (devices.empty()) return make_error(ErrorCode::unsupported, "no Vulkan physical device found");
    if (options.device_index >= 0) {
        if (static_cast<size_t>(options.device_index) >= devices.size())
            return make_error(ErrorCode::invalid_argument, "device index " + std::to_string(options.device_index) +
                                                               " is out of range (" + std::to_string(devices.size()) +
                                                               " devices)");
        return devices[static_cast<size_t>(options.device_index)];
    }
    if (!options.device_name.empty()) {
        for (VkPhysicalDevice pd : devices)
            if (lower(describe(vki, pd).name).find(lower(options.device_name)) != std::string::npos) return pd;
        return make_error(ErrorCode::invalid_argument, "no Vulkan device name contains '" + options.device_name + "'");
    }
    VkPhysicalDevice best = devices.front();
    int best_rank = 99;
    for (VkPhysicalDevice pd : devices) {
        const PhysicalDeviceInfo info = describe(vki, pd);
        // A device that cannot execute is chosen by default only for a compile-only context.
        const bool runs = !info.null_hardware || options.compile_only;
        const int rank = info.api_version < VK_API_VERSION_1_1 ? 50 : !runs ? 40 : type_rank(info.type);
        if (rank < best_rank) best_rank = rank, best = pd;
    }
    return best;
}

// Own mode, step 2: a compute queue family, preferring one whose queues can write timestamps.
Result<uint32_t> pick_queue_family(const std::vector<VkQueueFamilyProperties>& families, const std::string& device) {
    int family = -1;
    for (size_t i = 0; i < families.size(); ++i) {
        if (!(families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        if (family < 0 ||
            (families[static_cast<size_t>(family)].timestampValidBits == 0 && families[i].timestampValidBits > 0))
            family = static_cast<int>(i);
    }
    if (family < 0) return make_error(ErrorCode::unsupported, "device '" + device + "' has no compute queue");
    return static_cast<uint32_t>(family);
}

// What own mode enables of what the device supports, and the extensions that enabling it takes.
struct OwnDeviceFeatures {
    bool storage16 = false;         // storageBuffer16BitAccess (core 1.1): fp16 models
    bool timeline = false;          // timelineSemaphore (core 1.2, an extension before): standalone submit/wait
    bool creation_feedback = false; // core 1.3, an extension before: pipeline-cache hits
    bool statistics = false;        // VK_KHR_pipeline_executable_properties (compile-only contexts only)
    std::vector<const char*> extensions;
};

// Own mode, step 3. `api_version`: the instance's and the device's, whichever is lower.
OwnDeviceFeatures probe_features(const vk::InstanceTable& vki, VkPhysicalDevice pd, uint32_t api_version,
                                 bool want_statistics) {
    const std::vector<VkExtensionProperties> available = device_extensions(vki, pd);
    OwnDeviceFeatures f;
    if (has_extension(available, "VK_KHR_portability_subset")) f.extensions.push_back("VK_KHR_portability_subset");
    const bool core12 = api_version >= VK_API_VERSION_1_2;
    VkPhysicalDeviceTimelineSemaphoreFeatures timeline{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
    VkPhysicalDevice16BitStorageFeatures storage16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR executables{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
    VkPhysicalDeviceFeatures2 features2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    features2.pNext = &storage16;
    // The timeline struct is known to the driver only where the feature exists (core or extension).
    if (core12 || has_extension(available, VK_KHR_TIMELINE_SEMAPHORE_EXTENSION_NAME)) storage16.pNext = &timeline;
    const bool has_executables = has_extension(available, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    if (want_statistics && has_executables) {
        executables.pNext = features2.pNext;
        features2.pNext = &executables;
    }
    vki.vkGetPhysicalDeviceFeatures2(pd, &features2);
    if (want_statistics && executables.pipelineExecutableInfo == VK_TRUE) {
        f.statistics = true;
        f.extensions.push_back(VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    }
    f.storage16 = storage16.storageBuffer16BitAccess == VK_TRUE;
    f.timeline = timeline.timelineSemaphore == VK_TRUE;
    if (f.timeline && !core12) f.extensions.push_back(VK_KHR_TIMELINE_SEMAPHORE_EXTENSION_NAME);
    if (api_version >= VK_API_VERSION_1_3) {
        f.creation_feedback = true;
    } else if (has_extension(available, VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME)) {
        f.extensions.push_back(VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME);
        f.creation_feedback = true;
    }
    return f;
}

// Own mode, step 4: the logical device with one queue of `family` and the probed features enabled.
VkResult create_logical_device(const vk::InstanceTable& vki, VkPhysicalDevice pd, uint32_t family,
                               const OwnDeviceFeatures& f, VkDevice& device) {
    VkPhysicalDeviceTimelineSemaphoreFeatures timeline{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
    VkPhysicalDevice16BitStorageFeatures storage16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceFeatures2 features2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    features2.pNext = &storage16;
    storage16.storageBuffer16BitAccess = f.storage16 ? VK_TRUE : VK_FALSE;
    if (f.timeline) {
        timeline.timelineSemaphore = VK_TRUE;
        storage16.pNext = &timeline;
    }
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR executables{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
    if (f.statistics) {
        executables.pipelineExecutableInfo = VK_TRUE;
        executables.pNext = features2.pNext;
        features2.pNext = &executables;
    }
    const float priority = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = family;
    qci.queueCount = 1;
    qci.pQueuePriorities = &priority;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.pNext = &features2;
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    dci.enabledExtensionCount = static_cast<uint32_t>(f.extensions.size());
    dci.ppEnabledExtensionNames = f.extensions.data();
    return vki.vkCreateDevice(pd, &dci, nullptr, &device);
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
    d->install_messenger();

    auto physical = pick_physical_device(d->m_vki, d->m_instance, options);
    if (!physical) return physical.take_error();
    d->m_physical = physical.value();
    d->m_info = describe(d->m_vki, d->m_physical);
    d->m_api_version = std::min(d->m_info.api_version, setup->api_version);
    if (d->m_info.api_version < VK_API_VERSION_1_1)
        return make_error(ErrorCode::unsupported,
                          "device '" + d->m_info.name + "' supports only Vulkan 1.0; vkmha needs 1.1");
    if (d->m_info.null_hardware && !options.compile_only)
        return make_error(ErrorCode::unsupported, "device '" + d->m_info.name +
                                                      "' has no GPU behind it (RADV_FORCE_FAMILY): it compiles "
                                                      "pipelines but cannot run them; only a compile-only context "
                                                      "(VkmhaContextCompileOnlyInfo) can use it");
    d->m_compile_only = options.compile_only;
    const std::vector<VkQueueFamilyProperties> families = queue_families(d->m_vki, d->m_physical);
    auto family = pick_queue_family(families, d->m_info.name);
    if (!family) return family.take_error();
    d->m_queue_family = family.value();
    const OwnDeviceFeatures features = probe_features(d->m_vki, d->m_physical, d->m_api_version, options.compile_only);

    VkResult r = create_logical_device(d->m_vki, d->m_physical, d->m_queue_family, features, d->m_device);
    if (r != VK_SUCCESS) return d->vk_error("vkCreateDevice", r);
    d->m_storage16 = features.storage16;
    d->m_timeline = features.timeline;
    d->m_creation_feedback = features.creation_feedback;
    d->m_statistics = features.statistics;
    const char* missing = nullptr;
    if (!vk::load_device_table(d->m_vki, d->m_device, d->m_vk, missing))
        return make_error(ErrorCode::unsupported, std::string("Vulkan device lacks ") + missing);
    d->m_vk.vkGetDeviceQueue(d->m_device, d->m_queue_family, 0, &d->m_queue);
    d->read_limits(families);
    return d;
}

void Device::install_messenger() {
    if (!m_vki.vkCreateDebugUtilsMessengerEXT) return;
    VkDebugUtilsMessengerCreateInfoEXT mi{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    mi.messageSeverity =
        VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    mi.pfnUserCallback = &Device::debug_callback;
    mi.pUserData = this;
    m_vki.vkCreateDebugUtilsMessengerEXT(m_instance, &mi, nullptr, &m_messenger);
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
    d->m_compile_only = o.compile_only;
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
    const std::vector<VkQueueFamilyProperties> families = queue_families(d->m_vki, o.physical_device);
    if (o.queue_given) {
        if (o.queue == VK_NULL_HANDLE) return make_error(ErrorCode::invalid_argument, "adopt: queue is VK_NULL_HANDLE");
        d->m_queue = o.queue;
        d->m_queue_family = o.queue_family_index;
    } else {
        for (uint32_t i = 0; i < families.size(); ++i)
            if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
                d->m_queue_family = i; // for timestamp validity only; no queue is used without one given
                break;
            }
    }
    d->read_limits(families);
    return d;
}

void Device::read_limits(const std::vector<VkQueueFamilyProperties>& families) {
    VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 props2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    props2.pNext = &subgroup;
    // Driver identity is core in 1.2 (VK_KHR_driver_properties before); chain it only where it is known.
    if (m_api_version >= VK_API_VERSION_1_2) subgroup.pNext = &driver;
    // Core counts, for sizing split-K (plan_common.cpp); each struct only where the device has its extension.
    const std::vector<VkExtensionProperties> extensions = device_extensions(m_vki, m_physical);
    VkPhysicalDeviceShaderCorePropertiesAMD amd{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CORE_PROPERTIES_AMD};
    VkPhysicalDeviceShaderSMBuiltinsPropertiesNV nv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV};
    // Arm's core count, from VK_ARM_shader_core_builtins (VK_ARM_shader_core_properties is newer than these headers).
    VkPhysicalDeviceShaderCoreBuiltinsPropertiesARM arm{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CORE_BUILTINS_PROPERTIES_ARM};
    auto chain = [&](bool supported, auto& properties) {
        if (!supported) return;
        properties.pNext = props2.pNext;
        props2.pNext = &properties;
    };
    chain(has_extension(extensions, VK_AMD_SHADER_CORE_PROPERTIES_EXTENSION_NAME), amd);
    chain(has_extension(extensions, VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME), nv);
    chain(has_extension(extensions, VK_ARM_SHADER_CORE_BUILTINS_EXTENSION_NAME), arm);
    m_vki.vkGetPhysicalDeviceProperties2(m_physical, &props2);
    m_limits.compute_units = amd.shaderEngineCount * amd.shaderArraysPerEngineCount * amd.computeUnitsPerShaderArray;
    if (!m_limits.compute_units) m_limits.compute_units = nv.shaderSMCount;
    if (!m_limits.compute_units) m_limits.compute_units = arm.shaderCoreCount;
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
    m_limits.cpu_implementation = props2.properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    if (driver.driverID == VK_DRIVER_ID_MESA_LLVMPIPE) m_limits.max_invocation_loop_iterations = 65535;
    m_limits.timestamps =
        m_queue_family < families.size() && families[m_queue_family].timestampValidBits > 0 && l.timestampPeriod > 0;
}

Device::~Device() {
    if (!m_owns) return; // adopted handles belong to the engine
    if (m_device) {
        // A compile-only device never ran anything, and RADV's null device crashes in vkDeviceWaitIdle.
        if (!m_compile_only) m_vk.vkDeviceWaitIdle(m_device);
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
