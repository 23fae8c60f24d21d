// A dispatch shim over the engine's vkQueueSubmit that counts overlapping calls (the queue must be externally
// synchronised) and lingers inside each call so that an unsynchronised caller overlaps almost surely. A test sets
// the real entry points, hands vkmha get_instance_proc_addr as the engine's, and reads the counters afterwards.
// Callers include this after `#undef VK_NO_PROTOTYPES` (see engine_device.h).
#pragma once

#include <vulkan/vulkan.h>

#include <atomic>

namespace vkmha::test::submit_watch {

inline PFN_vkGetDeviceProcAddr g_real_gdpa = nullptr;
inline PFN_vkQueueSubmit g_real_submit = nullptr;
inline std::atomic<int> g_inside{0};
inline std::atomic<int> g_overlaps{0};
inline std::atomic<int> g_calls{0};

VKAPI_ATTR VkResult VKAPI_CALL queue_submit(VkQueue queue, uint32_t count, const VkSubmitInfo* submits, VkFence fence);
VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL get_device_proc_addr(VkDevice device, const char* name);
// The loader's vkGetInstanceProcAddr, except that vkGetDeviceProcAddr and vkQueueSubmit lead to the shim.
VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL get_instance_proc_addr(VkInstance instance, const char* name);

} // namespace vkmha::test::submit_watch
