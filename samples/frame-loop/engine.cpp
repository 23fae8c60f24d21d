// The engine side of frame-loop, shared by its modes (see engine.h).
#include "engine.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace frame_loop {

std::atomic<uint32_t> g_validation_messages{0};

// The one way this program fails: one line on stderr, exit code 1.
void die(const std::string& message) {
    std::fprintf(stderr, "frame-loop: %s\n", message.c_str());
    std::exit(1);
}

const char* vk_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    default: return "VkResult(other)";
    }
}

// Every Vulkan call that returns a VkResult goes through here: a failure prints the call's name and exits.
void vk_check(VkResult result, const char* call) {
    if (result == VK_SUCCESS) return;
    const char* paren = std::strchr(call, '(');
    die(std::string(call, paren ? size_t(paren - call) : std::strlen(call)) + " failed: " + vk_result_name(result) +
        " (" + std::to_string(result) + ")");
}

VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                VkDebugUtilsMessageTypeFlagsEXT,
                                                const VkDebugUtilsMessengerCallbackDataEXT* data, void*) {
    g_validation_messages.fetch_add(1);
    const bool error = (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) != 0;
    std::fprintf(stderr, "frame-loop: validation %s: %s\n", error ? "error" : "warning",
                 data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE; // never make the call fail: we want to see what happens next
}

VkDebugUtilsMessengerCreateInfoEXT messenger_info() {
    VkDebugUtilsMessengerCreateInfoEXT mi{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    mi.messageSeverity =
        VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    mi.pfnUserCallback = &on_debug_message;
    return mi;
}

bool has_extension(const std::vector<VkExtensionProperties>& list, const char* name) {
    return std::any_of(list.begin(), list.end(),
                       [&](const VkExtensionProperties& e) { return std::strcmp(e.extensionName, name) == 0; });
}

std::string version_text(uint32_t v) {
    return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v));
}

void create_instance(Engine& e) {
    VK_CHECK(vkEnumerateInstanceVersion(&e.instance_version));
    if (e.instance_version < VK_API_VERSION_1_1) die("the Vulkan loader supports only Vulkan 1.0; vkmha needs 1.1");
    e.instance_version = std::min<uint32_t>(e.instance_version, VK_API_VERSION_1_3);

    uint32_t count = 0;
    VK_CHECK(vkEnumerateInstanceExtensionProperties(nullptr, &count, nullptr));
    std::vector<VkExtensionProperties> available(count);
    VK_CHECK(vkEnumerateInstanceExtensionProperties(nullptr, &count, available.data()));
    // debug_utils gives us the validation messenger, and gives vkmha's passes labels in RenderDoc/Nsight.
    const bool debug_utils = has_extension(available, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    if (debug_utils) e.instance_extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);

    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "frame-loop";
    app.pEngineName = "frame-loop";
    app.apiVersion = e.instance_version;
    // Chaining the messenger info also reports messages from vkCreateInstance/vkDestroyInstance themselves.
    VkDebugUtilsMessengerCreateInfoEXT mi = messenger_info();
    VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ci.pNext = debug_utils ? &mi : nullptr;
    ci.pApplicationInfo = &app;
    ci.enabledExtensionCount = static_cast<uint32_t>(e.instance_extensions.size());
    ci.ppEnabledExtensionNames = e.instance_extensions.data();
    VK_CHECK(vkCreateInstance(&ci, nullptr, &e.instance));

    if (debug_utils) {
        auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(e.instance, "vkCreateDebugUtilsMessengerEXT"));
        e.destroy_messenger = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(e.instance, "vkDestroyDebugUtilsMessengerEXT"));
        if (!create || !e.destroy_messenger) die("VK_EXT_debug_utils is enabled but its functions are missing");
        VK_CHECK(create(e.instance, &mi, nullptr, &e.messenger));
    }
}

int device_type_rank(VkPhysicalDeviceType type) {
    switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

// The best Vulkan 1.1 device with a compute queue; an engine would also ask for graphics and present support.
void pick_physical_device(Engine& e) {
    uint32_t count = 0;
    VK_CHECK(vkEnumeratePhysicalDevices(e.instance, &count, nullptr));
    std::vector<VkPhysicalDevice> devices(count);
    VK_CHECK(vkEnumeratePhysicalDevices(e.instance, &count, devices.data()));
    int best_rank = 99;
    for (VkPhysicalDevice pd : devices) {
        VkPhysicalDeviceProperties p{};
        vkGetPhysicalDeviceProperties(pd, &p);
        if (p.apiVersion < VK_API_VERSION_1_1) continue;
        if (device_type_rank(p.deviceType) < best_rank) {
            best_rank = device_type_rank(p.deviceType);
            e.physical = pd;
            e.properties = p;
        }
    }
    if (!e.physical) die("no Vulkan 1.1 device found");
    e.api_version = std::min(e.instance_version, e.properties.apiVersion);
    vkGetPhysicalDeviceMemoryProperties(e.physical, &e.memory);

    // One family that can do compute (the engine's work and vkmha's); prefer graphics+compute, as an engine's
    // main queue is, with timestamps so vkmha can time its passes.
    uint32_t family_count = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(e.physical, &family_count, nullptr);
    std::vector<VkQueueFamilyProperties> families(family_count);
    vkGetPhysicalDeviceQueueFamilyProperties(e.physical, &family_count, families.data());
    int chosen = -1, chosen_score = -1;
    for (uint32_t i = 0; i < family_count; ++i) {
        if (!(families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        const int score =
            ((families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) ? 2 : 0) + (families[i].timestampValidBits > 0 ? 1 : 0);
        if (score > chosen_score) chosen = static_cast<int>(i), chosen_score = score;
    }
    if (chosen < 0) die(std::string("device '") + e.properties.deviceName + "' has no compute queue");
    e.queue_family = static_cast<uint32_t>(chosen);
}

void create_device(Engine& e, const VkmhaDeviceRequirements& req) {
    if (e.api_version < req.minApiVersion)
        die("device '" + std::string(e.properties.deviceName) + "' supports Vulkan " + version_text(e.api_version) +
            ", vkmha needs " + version_text(req.minApiVersion));
    uint32_t count = 0;
    VK_CHECK(vkEnumerateDeviceExtensionProperties(e.physical, nullptr, &count, nullptr));
    std::vector<VkExtensionProperties> available(count);
    VK_CHECK(vkEnumerateDeviceExtensionProperties(e.physical, nullptr, &count, available.data()));
    for (uint32_t i = 0; i < req.requiredDeviceExtensionCount; ++i) {
        if (!has_extension(available, req.ppRequiredDeviceExtensions[i]))
            die(std::string("device lacks ") + req.ppRequiredDeviceExtensions[i] + ", which vkmha requires");
        e.device_extensions.push_back(req.ppRequiredDeviceExtensions[i]);
    }
    for (uint32_t i = 0; i < req.optionalDeviceExtensionCount; ++i) {
        const char* name = req.ppOptionalDeviceExtensions[i];
        // Timeline semaphores are core from 1.2: enable the extension only on a 1.1 device.
        if (std::strcmp(name, VK_KHR_TIMELINE_SEMAPHORE_EXTENSION_NAME) == 0 && e.api_version >= VK_API_VERSION_1_2)
            continue;
        if (has_extension(available, name)) e.device_extensions.push_back(name);
    }

    // timelineSemaphore is only needed for vkmha's standalone submit/wait; an engine that records into its own
    // command buffers (as here) does not need it, but enabling it when present costs nothing.
    const bool timeline_available =
        e.api_version >= VK_API_VERSION_1_2 ||
        std::any_of(e.device_extensions.begin(), e.device_extensions.end(),
                    [](const char* n) { return std::strcmp(n, VK_KHR_TIMELINE_SEMAPHORE_EXTENSION_NAME) == 0; });
    VkPhysicalDeviceTimelineSemaphoreFeatures timeline{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
    VkPhysicalDeviceFeatures2 features{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    if (timeline_available && req.wantsTimelineSemaphore) {
        features.pNext = &timeline;
        vkGetPhysicalDeviceFeatures2(e.physical, &features);
    }
    e.timeline_semaphore = timeline.timelineSemaphore == VK_TRUE;
    VkPhysicalDeviceTimelineSemaphoreFeatures enable_timeline{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
    enable_timeline.timelineSemaphore = VK_TRUE;

    const float priority = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = e.queue_family;
    qci.queueCount = 1;
    qci.pQueuePriorities = &priority;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.pNext = e.timeline_semaphore ? &enable_timeline : nullptr;
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    dci.enabledExtensionCount = static_cast<uint32_t>(e.device_extensions.size());
    dci.ppEnabledExtensionNames = e.device_extensions.data();
    VK_CHECK(vkCreateDevice(e.physical, &dci, nullptr, &e.device));
    vkGetDeviceQueue(e.device, e.queue_family, 0, &e.queue);
}

Buffer create_buffer(const Engine& e, VkDeviceSize size, VkBufferUsageFlags usage, VkMemoryPropertyFlags required,
                     VkMemoryPropertyFlags preferred) {
    Buffer b;
    b.size = size;
    VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.size = size;
    bi.usage = usage;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VK_CHECK(vkCreateBuffer(e.device, &bi, nullptr, &b.buffer));
    VkMemoryRequirements mr{};
    vkGetBufferMemoryRequirements(e.device, b.buffer, &mr);
    int32_t type = -1;
    for (uint32_t i = 0; i < e.memory.memoryTypeCount && type < 0; ++i)
        if ((mr.memoryTypeBits & (1u << i)) &&
            (e.memory.memoryTypes[i].propertyFlags & (required | preferred)) == (required | preferred))
            type = static_cast<int32_t>(i);
    for (uint32_t i = 0; i < e.memory.memoryTypeCount && type < 0; ++i)
        if ((mr.memoryTypeBits & (1u << i)) && (e.memory.memoryTypes[i].propertyFlags & required) == required)
            type = static_cast<int32_t>(i);
    if (type < 0) die("no memory type for a buffer of " + std::to_string(size) + " bytes");
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = mr.size;
    ai.memoryTypeIndex = static_cast<uint32_t>(type);
    VK_CHECK(vkAllocateMemory(e.device, &ai, nullptr, &b.memory));
    VK_CHECK(vkBindBufferMemory(e.device, b.buffer, b.memory, 0));
    if (required & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)
        VK_CHECK(vkMapMemory(e.device, b.memory, 0, VK_WHOLE_SIZE, 0, &b.mapped));
    return b;
}

void destroy_buffer(const Engine& e, Buffer& b) {
    if (b.mapped) vkUnmapMemory(e.device, b.memory);
    vkDestroyBuffer(e.device, b.buffer, nullptr);
    vkFreeMemory(e.device, b.memory, nullptr);
    b = {};
}

void create_frame_resources(const Engine& e, VkDeviceSize io_bytes, FrameResources& s) {
    const VkMemoryPropertyFlags host_memory =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pi.flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
    pi.queueFamilyIndex = e.queue_family;
    VK_CHECK(vkCreateCommandPool(e.device, &pi, nullptr, &s.pool));
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = s.pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VK_CHECK(vkAllocateCommandBuffers(e.device, &ai, &s.cmd));
    VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_CHECK(vkCreateFence(e.device, &fi, nullptr, &s.fence));
    s.staging = create_buffer(e, io_bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, host_memory, 0);
    // vkmha binds its inputs and outputs as storage buffers: they need STORAGE_BUFFER usage.
    s.query = create_buffer(e, io_bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                            VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    s.output = create_buffer(e, io_bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                             host_memory, VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
}

void destroy_frame_resources(const Engine& e, FrameResources& s) {
    destroy_buffer(e, s.staging);
    destroy_buffer(e, s.query);
    destroy_buffer(e, s.output);
    vkDestroyFence(e.device, s.fence, nullptr);
    vkDestroyCommandPool(e.device, s.pool, nullptr); // frees its command buffer
    s.fence = VK_NULL_HANDLE;
    s.pool = VK_NULL_HANDLE;
    s.cmd = VK_NULL_HANDLE;
}

void begin_frame(const Engine& e, FrameResources& s) {
    VK_CHECK(vkResetFences(e.device, 1, &s.fence));
    VK_CHECK(vkResetCommandPool(e.device, s.pool, 0));
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    VK_CHECK(vkBeginCommandBuffer(s.cmd, &bi));
}

void submit_frame(const Engine& e, FrameResources& s) {
    VK_CHECK(vkEndCommandBuffer(s.cmd));
    VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    submit.commandBufferCount = 1;
    submit.pCommandBuffers = &s.cmd;
    VK_CHECK(vkQueueSubmit(e.queue, 1, &submit, s.fence));
}

std::string executable_dir() {
    std::vector<char> path(4096);
    const ssize_t n = readlink("/proc/self/exe", path.data(), path.size() - 1);
    if (n <= 0) return ".";
    std::string exe(path.data(), static_cast<size_t>(n));
    const size_t slash = exe.rfind('/');
    return slash == std::string::npos ? "." : exe.substr(0, slash);
}

Plugin load_plugin() {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("VKMHA_LIBRARY"); env && *env) {
        candidates.push_back(env); // an explicit choice: no silent fallback to another copy
    } else {
        const std::string dir = executable_dir();
        candidates = {dir + "/../lib/libvkmha.so.1", dir + "/../lib/libvkmha.so", "libvkmha.so.1"};
    }
    Plugin p;
    std::string errors;
    for (const std::string& path : candidates) {
        // RTLD_LOCAL: vkmha's symbols stay out of the engine's namespace (it exports only vkmhaGetProcTable).
        p.library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (p.library) {
            std::printf("frame-loop: loaded %s\n", path.c_str());
            break;
        }
        const char* why = dlerror();
        errors += (errors.empty() ? "" : "; ") + std::string(why ? why : path);
    }
    if (!p.library) die("cannot load libvkmha (set VKMHA_LIBRARY to its path): " + errors);
    auto get_table = reinterpret_cast<PFN_vkmhaGetProcTable>(dlsym(p.library, "vkmhaGetProcTable"));
    if (!get_table) die("libvkmha has no vkmhaGetProcTable");
    // The header version we were built with; a newer 1.x library fills the same (append-only) table.
    const VkmhaResult r = get_table(VKMHA_HEADER_VERSION, &p.api, sizeof p.api);
    if (r != VKMHA_SUCCESS)
        die("vkmhaGetProcTable failed (" + std::to_string(r) + ")" +
            (p.api.getLastError ? std::string(": ") + p.api.getLastError() : ""));
    return p;
}

Weights random_weights(std::mt19937& rng) {
    const float scale = 1.0f / std::sqrt(float(kEmbedDim)); // keeps activations O(1), like PyTorch's init
    std::uniform_real_distribution<float> w(-scale, scale), b(-0.1f, 0.1f);
    Weights m;
    m.in_proj_weight.resize(size_t(3) * kEmbedDim * kEmbedDim);
    m.in_proj_bias.resize(size_t(3) * kEmbedDim);
    m.out_proj_weight.resize(size_t(kEmbedDim) * kEmbedDim);
    m.out_proj_bias.resize(kEmbedDim);
    for (float& x : m.in_proj_weight) x = w(rng);
    for (float& x : m.in_proj_bias) x = b(rng);
    for (float& x : m.out_proj_weight) x = w(rng);
    for (float& x : m.out_proj_bias) x = b(rng);
    return m;
}

VkmhaTensor tensor(const char* name, const std::vector<float>& data, uint64_t rows, uint64_t cols) {
    VkmhaTensor t{};
    t.pName = name;
    t.dataType = VKMHA_DATA_TYPE_F32;
    t.rank = cols ? 2 : 1;
    t.shape[0] = rows;
    t.shape[1] = cols;
    t.pData = data.data();
    return t;
}

// The CPU reference for one frame, from the same weights; in_proj_weight rows are [Wq; Wk; Wv].

std::vector<float> reference_output(const Weights& m, const std::vector<float>& query, uint32_t batch, uint32_t length,
                                    bool causal) {
    const size_t ee = size_t(kEmbedDim) * kEmbedDim;
    vkmha::AttentionConfig config;
    config.embed_dim = kEmbedDim;
    config.num_heads = config.num_kv_heads = kHeads;
    config.kdim = config.vdim = kEmbedDim;
    vkmha::AttentionWeights w;
    w.wq.assign(m.in_proj_weight.begin(), m.in_proj_weight.begin() + long(ee));
    w.wk.assign(m.in_proj_weight.begin() + long(ee), m.in_proj_weight.begin() + long(2 * ee));
    w.wv.assign(m.in_proj_weight.begin() + long(2 * ee), m.in_proj_weight.end());
    w.bq.assign(m.in_proj_bias.begin(), m.in_proj_bias.begin() + kEmbedDim);
    w.bk.assign(m.in_proj_bias.begin() + kEmbedDim, m.in_proj_bias.begin() + 2 * kEmbedDim);
    w.bv.assign(m.in_proj_bias.begin() + 2 * kEmbedDim, m.in_proj_bias.end());
    w.wo = m.out_proj_weight;
    w.bo = m.out_proj_bias;
    vkmha::AttentionOptions options;
    options.causal = causal;
    vkmha::AttentionInputs inputs;
    inputs.query = query.data(); // key and value null: self-attention, as recorded
    auto out = vkmha::reference_attention(config, w, {batch, length, length}, options, inputs);
    if (!out) die("CPU reference: " + out.error().message);
    return std::move(out->output);
}

void start_runtime(Runtime& rt, std::mt19937& rng) {
    rt.plugin = load_plugin();
    const Plugin& plugin = rt.plugin;
    const VkmhaProcTable& api = plugin.api;
    Engine& engine = rt.engine;
    VkmhaContext& context = rt.context;
    VkmhaModel& model = rt.model;

    // Ask vkmha what it needs before creating the device, as an engine must: features cannot be added later.
    VkmhaDeviceRequirements req{};
    plugin.check(api.getDeviceRequirements(&req), "getDeviceRequirements");
    std::printf("frame-loop: vkmha needs Vulkan %s; required device extensions:",
                version_text(req.minApiVersion).c_str());
    for (uint32_t i = 0; i < req.requiredDeviceExtensionCount; ++i)
        std::printf(" %s", req.ppRequiredDeviceExtensions[i]);
    std::printf("%s; optional device:", req.requiredDeviceExtensionCount ? "" : " none");
    for (uint32_t i = 0; i < req.optionalDeviceExtensionCount; ++i)
        std::printf(" %s", req.ppOptionalDeviceExtensions[i]);
    std::printf("; optional instance:");
    for (uint32_t i = 0; i < req.optionalInstanceExtensionCount; ++i)
        std::printf(" %s", req.ppOptionalInstanceExtensions[i]);
    std::printf("; timelineSemaphore: %s\n", req.wantsTimelineSemaphore ? "wanted (submit/wait only)" : "not used");

    create_instance(engine);
    pick_physical_device(engine);
    create_device(engine, req);
    std::printf("frame-loop: device %s (Vulkan %s), queue family %u, timelineSemaphore %s\n",
                engine.properties.deviceName, version_text(engine.api_version).c_str(), engine.queue_family,
                engine.timeline_semaphore ? "on" : "off");

    // Adopt: vkmha uses our instance/device/queue through our vkGetInstanceProcAddr (so it sees the same layers)
    // and destroys none of them.
    VkmhaAdoptDeviceInfo adopt{};
    adopt.sType = VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO;
    adopt.instance = engine.instance;
    adopt.physicalDevice = engine.physical;
    adopt.device = engine.device;
    adopt.pfnGetInstanceProcAddr = vkGetInstanceProcAddr;
    adopt.apiVersion = engine.api_version;
    adopt.enabledInstanceExtensionCount = static_cast<uint32_t>(engine.instance_extensions.size());
    adopt.ppEnabledInstanceExtensions = engine.instance_extensions.data();
    adopt.enabledDeviceExtensionCount = static_cast<uint32_t>(engine.device_extensions.size());
    adopt.ppEnabledDeviceExtensions = engine.device_extensions.data();
    adopt.timelineSemaphoreEnabled = engine.timeline_semaphore ? VK_TRUE : VK_FALSE;
    adopt.queue = engine.queue; // createModel uploads the weights through it (on this thread, during the call)
    adopt.queueFamilyIndex = engine.queue_family;
    VkmhaContextCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
    ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
    ci.pAdoptDevice = &adopt;
    ci.pfnLogCallback = [](VkmhaLogLevel level, const char* message, void*) {
        if (level >= VKMHA_LOG_LEVEL_WARNING) std::fprintf(stderr, "frame-loop: vkmha: %s\n", message);
    };
    plugin.check(api.createContext(&ci, &context), "createContext");
    VkmhaContextProperties cp{};
    cp.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
    plugin.check(api.getContextProperties(context, &cp), "getContextProperties");
    std::printf("frame-loop: vkmha adopted the device: subgroup %u, timestamps %s, debug labels %s, %u pipelines "
                "(%d from cache; -1: unknown)\n",
                cp.subgroupSize, cp.timestamps ? "on" : "off", cp.debugUtils ? "on" : "off", cp.pipelineCount,
                cp.pipelinesFromCache);

    rt.weights = random_weights(rng);
    model = create_model(plugin, context, rt.weights);
}

VkmhaModel create_model(const Plugin& plugin, VkmhaContext context, const Weights& weights) {
    const VkmhaTensor tensors[] = {
        tensor("in_proj_weight", weights.in_proj_weight, 3 * kEmbedDim, kEmbedDim),
        tensor("in_proj_bias", weights.in_proj_bias, 3 * kEmbedDim, 0),
        tensor("out_proj.weight", weights.out_proj_weight, kEmbedDim, kEmbedDim),
        tensor("out_proj.bias", weights.out_proj_bias, kEmbedDim, 0),
    };
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.numHeads = kHeads;
    mi.tensorCount = static_cast<uint32_t>(std::size(tensors));
    mi.pTensors = tensors; // copied during the call: `weights` could be freed now
    VkmhaModel model = nullptr;
    plugin.check(plugin.api.createModel(context, &mi, &model), "createModel");
    return model;
}

void stop_runtime(Runtime& rt) {
    rt.api().destroyModel(rt.model);
    rt.api().destroyContext(rt.context); // adopt mode: leaves our instance, device and queue alone
    dlclose(rt.plugin.library);
    rt.model = nullptr;
    rt.context = nullptr;
    Engine& engine = rt.engine;
    vkDestroyDevice(engine.device, nullptr);
    if (engine.messenger) engine.destroy_messenger(engine.instance, engine.messenger, nullptr);
    vkDestroyInstance(engine.instance, nullptr);
}

} // namespace frame_loop
