// KernelPolicy: which kernel family vkmha runs on a device. DeviceLimits says what the device can do; the policy
// says what vkmha chooses, and only the policy takes overrides (tests run every variant on one device that way).
#pragma once

#include "vulkan/device_limits.h"

namespace vkmha {

struct KernelPolicy {
    // Tiles for CPU implementations: lane tiles (linear_lanes.comp and attention_lanes.comp, one SIMD vector of
    // invocations with a register tile each) where the head dim allows, else fewer, longer workgroups; llvmpipe runs
    // either faster than GPU tiles (ShaderLibrary::choose_attention_tiling has the figures). false: GPU tiles.
    bool cpu_tiling = false;
    // The kernels that use subgroup arithmetic (softmax_subgroup) where a subgroup-free one exists too.
    bool subgroup_arithmetic = false;
    bool operator==(const KernelPolicy&) const = default;
};

// What a caller may turn off. Each only narrows the choice: no option makes vkmha run what the device cannot.
struct KernelPolicyOverrides {
    bool allow_cpu_tiling = true;          // false: tile as for GPUs on CPU implementations too
    bool allow_subgroup_arithmetic = true; // false: the subgroup-free kernels even where subgroups are supported
};

// The default choice for a device's facts, narrowed by `overrides`.
inline KernelPolicy choose_kernel_policy(const DeviceLimits& limits, const KernelPolicyOverrides& overrides = {}) {
    return KernelPolicy{
        .cpu_tiling = limits.cpu_implementation && overrides.allow_cpu_tiling,
        .subgroup_arithmetic = limits.subgroup_arithmetic && overrides.allow_subgroup_arithmetic,
    };
}

} // namespace vkmha
