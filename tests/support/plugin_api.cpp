// Scaffolding shared by the C ABI suites; see plugin_api.h.
#undef VK_NO_PROTOTYPES // adopt_info hands vkmha the loader's vkGetInstanceProcAddr, as an engine would
#include "support/plugin_api.h"

#include "support/engine_device.h"

#include <doctest/doctest.h>

#include <dlfcn.h>

#include <algorithm>

namespace vkmha::test {

const Library& library() {
    static const Library lib = [] {
        Library l;
        l.handle = dlopen(VKMHA_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL);
        if (!l.handle) {
            const char* why = dlerror();
            l.error = std::string("dlopen(" VKMHA_LIBRARY_PATH ") failed: ") + (why ? why : "?");
            return l;
        }
        l.get_proc_table = reinterpret_cast<PFN_vkmhaGetProcTable>(dlsym(l.handle, "vkmhaGetProcTable"));
        if (!l.get_proc_table) {
            l.error = "libvkmha.so does not export vkmhaGetProcTable";
            return l;
        }
        if (l.get_proc_table(VKMHA_HEADER_VERSION, &l.table, sizeof l.table) != VKMHA_SUCCESS)
            l.error = "vkmhaGetProcTable(VKMHA_HEADER_VERSION) failed";
        return l;
    }();
    return lib;
}

const VkmhaProcTable& api() {
    const Library& l = library();
    REQUIRE_MESSAGE(l.error.empty(), l.error);
    return l.table;
}

// No REQUIRE here: doctest calls this while it logs an assertion (REQUIRE_VKMHA's message), and an assertion logged
// from inside that one deadlocks its reporter (seen with -s).
std::string last_error() {
    const Library& l = library();
    return l.table.getLastError ? l.table.getLastError() : l.error;
}

std::string result_name(VkmhaResult r) {
    switch (r) {
    case VKMHA_SUCCESS: return "VKMHA_SUCCESS";
    case VKMHA_NOT_READY: return "VKMHA_NOT_READY";
    case VKMHA_TIMEOUT: return "VKMHA_TIMEOUT";
    case VKMHA_ERROR_INVALID_ARGUMENT: return "VKMHA_ERROR_INVALID_ARGUMENT";
    case VKMHA_ERROR_VERSION_NOT_SUPPORTED: return "VKMHA_ERROR_VERSION_NOT_SUPPORTED";
    case VKMHA_ERROR_UNSUPPORTED: return "VKMHA_ERROR_UNSUPPORTED";
    case VKMHA_ERROR_OUT_OF_MEMORY: return "VKMHA_ERROR_OUT_OF_MEMORY";
    case VKMHA_ERROR_BUDGET_EXCEEDED: return "VKMHA_ERROR_BUDGET_EXCEEDED";
    case VKMHA_ERROR_OUT_OF_RANGE: return "VKMHA_ERROR_OUT_OF_RANGE";
    case VKMHA_ERROR_FRAME_IN_FLIGHT: return "VKMHA_ERROR_FRAME_IN_FLIGHT";
    case VKMHA_ERROR_IO: return "VKMHA_ERROR_IO";
    case VKMHA_ERROR_VULKAN: return "VKMHA_ERROR_VULKAN";
    case VKMHA_ERROR_INTERNAL: return "VKMHA_ERROR_INTERNAL";
    case VKMHA_ERROR_DEVICE_LOST: return "VKMHA_ERROR_DEVICE_LOST";
    default: return "(unknown VkmhaResult)";
    }
}

void check_failure(VkmhaResult got, VkmhaResult want, const std::string& message, const std::vector<std::string>& names,
                   const char* call, const char* file, int line) {
    const std::string what = call;
    if (got != want)
        ADD_FAIL_CHECK_AT(file, line,
                          what << " returned " << result_name(got) << ", expected " << result_name(want)
                               << " (last error: '" << message << "')");
    if (message.empty()) ADD_FAIL_CHECK_AT(file, line, what << ": getLastError() is empty after a failure");
    for (const std::string& name : names)
        if (message.find(name) == std::string::npos)
            ADD_FAIL_CHECK_AT(file, line, what << ": last error '" << message << "' does not name '" << name << "'");
}

void VKMHA_CALL LogCapture::callback(VkmhaLogLevel level, const char* message, void* user) {
    auto* self = static_cast<LogCapture*>(user);
    std::lock_guard<std::mutex> lock(self->m_mutex);
    self->m_entries.push_back({level, message ? message : ""});
}

bool LogCapture::contains(VkmhaLogLevel min_level, std::string_view text) const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return std::any_of(m_entries.begin(), m_entries.end(), [&](const Entry& e) {
        return e.level >= min_level && e.level != VKMHA_LOG_LEVEL_MAX_ENUM && e.text.find(text) != std::string::npos;
    });
}

size_t LogCapture::count(VkmhaLogLevel min_level) const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return static_cast<size_t>(
        std::count_if(m_entries.begin(), m_entries.end(), [&](const Entry& e) { return e.level >= min_level; }));
}

std::string LogCapture::text() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    std::string out;
    for (const Entry& e : m_entries) out += "\n  [" + std::to_string(e.level) + "] " + e.text;
    return out.empty() ? std::string(" (nothing)") : out;
}

VkmhaContextCreateInfo own_context_info(LogCapture* log) {
    VkmhaContextCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
    ci.deviceMode = VKMHA_DEVICE_MODE_OWN;
    if (log) {
        ci.pfnLogCallback = &LogCapture::callback;
        ci.pLogUserData = log;
    }
    return ci;
}

VkmhaContextProperties context_properties(VkmhaContext context) {
    VkmhaContextProperties p{};
    p.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
    REQUIRE_VKMHA(api().getContextProperties(context, &p));
    return p;
}

void check_no_validation_messages(VkmhaContext context, const LogCapture& log) {
    const VkmhaContextProperties p = context_properties(context);
    CHECK_MESSAGE(p.validationMessageCount == 0, "validation messages on vkmha's device:", log.text());
}

VkmhaAdoptDeviceInfo adopt_info(const EngineDevice& e, VkPipelineCache cache) {
    VkmhaAdoptDeviceInfo a{};
    a.sType = VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO;
    a.instance = e.instance();
    a.physicalDevice = e.physical_device();
    a.device = e.device();
    a.pfnGetInstanceProcAddr = &vkGetInstanceProcAddr;
    a.apiVersion = EngineDevice::kApiVersion;
    a.enabledInstanceExtensionCount = EngineDevice::enabled_instance_extension_count();
    a.ppEnabledInstanceExtensions = EngineDevice::enabled_instance_extensions();
    a.timelineSemaphoreEnabled = VK_TRUE;
    a.queue = e.queue();
    a.queueFamilyIndex = e.queue_family();
    a.pipelineCache = cache;
    return a;
}

void adopt_context(const EngineDevice& engine, ContextHandle& context) {
    VkmhaContextCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
    ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
    const VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
    ci.pAdoptDevice = &adopt;
    REQUIRE_VKMHA(api().createContext(&ci, context.out()));
}

std::vector<float> random_floats(std::mt19937& rng, size_t n, float scale) {
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

} // namespace vkmha::test
