// DeviceLimits: what a device is, read once from Vulkan and never overwritten. What vkmha chooses to run on it is
// KernelPolicy's (kernel_policy.h), so a test or an option can change the choice without lying about the device.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>

namespace vkmha {

struct DeviceLimits {
    VkDeviceSize max_storage_buffer_range = 0;
    VkDeviceSize min_storage_buffer_offset_alignment = 0;
    uint32_t max_compute_shared_memory = 0;
    uint32_t max_workgroup_invocations = 0;
    uint32_t max_workgroup_count[3] = {0, 0, 0};
    uint32_t subgroup_size = 0;
    float timestamp_period_ns = 0;
    bool timestamps = false; // the queue family has timestampValidBits > 0
    // Loop iterations one invocation may run before the driver silently stops it; 0 = no such limit. llvmpipe
    // (lavapipe) has one: 65535 over all loops of an invocation (see shaders/README.md).
    uint32_t max_invocation_loop_iterations = 0;
    bool subgroup_arithmetic = false; // subgroup arithmetic operations are supported in compute shaders
    bool cpu_implementation = false;  // VK_PHYSICAL_DEVICE_TYPE_CPU (lavapipe, SwiftShader)
    // Compute units (AMD, VK_AMD_shader_core_properties), streaming multiprocessors (NVIDIA,
    // VK_NV_shader_sm_builtins) or shader cores (Arm, VK_ARM_shader_core_builtins); 0 where no extension says.
    uint32_t compute_units = 0;
};

} // namespace vkmha
