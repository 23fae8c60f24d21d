// The vkQueueSubmit shim; see submit_watch.h.
#undef VK_NO_PROTOTYPES // falls through to the loader's vkGetInstanceProcAddr, as an engine's dispatch layer would
#include "support/submit_watch.h"

#include <chrono>
#include <cstring>
#include <thread>

namespace vkmha::test::submit_watch {

VKAPI_ATTR VkResult VKAPI_CALL queue_submit(VkQueue queue, uint32_t count, const VkSubmitInfo* submits, VkFence fence) {
    if (g_inside.fetch_add(1) != 0) g_overlaps.fetch_add(1);
    g_calls.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const VkResult r = g_real_submit(queue, count, submits, fence);
    g_inside.fetch_sub(1);
    return r;
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL get_device_proc_addr(VkDevice device, const char* name) {
    if (std::strcmp(name, "vkQueueSubmit") == 0) return reinterpret_cast<PFN_vkVoidFunction>(&queue_submit);
    return g_real_gdpa(device, name);
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL get_instance_proc_addr(VkInstance instance, const char* name) {
    if (std::strcmp(name, "vkGetDeviceProcAddr") == 0)
        return reinterpret_cast<PFN_vkVoidFunction>(&get_device_proc_addr);
    if (std::strcmp(name, "vkQueueSubmit") == 0) return reinterpret_cast<PFN_vkVoidFunction>(&queue_submit);
    return vkGetInstanceProcAddr(instance, name);
}

} // namespace vkmha::test::submit_watch
