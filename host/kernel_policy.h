// KernelPolicy: which kernel family vkmha runs on a device. DeviceLimits says what the device can do; the policy
// says what vkmha chooses, and only the policy takes overrides (tests run every variant on one device that way).
#pragma once

#include "vulkan/device_limits.h"

#include <cstdint>

namespace vkmha {

// Device classes for the GPU tiles' sizes (ShaderLibrary::choose_attention_tiling); docs/PERFORMANCE.md, "GPU kernels
// on AMD's compiler", has the statistics behind each choice.
enum class TileClass : uint32_t {
    // 32-wide subgroups with 48+ KiB of shared memory (NVIDIA-like) and 8/16/32-wide ones (Intel-like, CPUs): the
    // fused kernel stages 32 head-dim columns of Q and K per step (14.5 KiB per 64-invocation workgroup).
    standard,
    // 64-wide subgroups (AMD GCN/RDNA: 32 KiB of LDS per SIMD) and devices with at most 16 KiB of shared memory
    // (mobile): 8 columns per step, 7 KiB (decode 3.5 KiB), so that shared memory no longer caps occupancy.
    compact,
};

struct KernelPolicy {
    // Tiles for CPU implementations: lane tiles (linear_lanes.comp and attention_lanes.comp, one SIMD vector of
    // invocations with a register tile each) where the head dim allows, else fewer, longer workgroups; llvmpipe runs
    // either faster than GPU tiles (ShaderLibrary::choose_attention_tiling has the figures). false: GPU tiles.
    bool cpu_tiling = false;
    // The kernels that use subgroup arithmetic (softmax_subgroup) where a subgroup-free one exists too.
    bool subgroup_arithmetic = false;
    TileClass tile_class = TileClass::standard;
    bool operator==(const KernelPolicy&) const = default;
};

// What a caller may turn off. Each only narrows the choice: no option makes vkmha run what the device cannot.
struct KernelPolicyOverrides {
    bool allow_cpu_tiling = true;          // false: tile as for GPUs on CPU implementations too
    bool allow_subgroup_arithmetic = true; // false: the subgroup-free kernels even where subgroups are supported
    // true: the compact GPU tiles whatever the device (they fit Vulkan's minimum limits): the tests run the AMD and
    // mobile tiling on lavapipe against the CPU reference this way.
    bool force_compact_tiles = false;
};

// The default choice for a device's facts, narrowed by `overrides`.
inline KernelPolicy choose_kernel_policy(const DeviceLimits& limits, const KernelPolicyOverrides& overrides = {}) {
    return KernelPolicy{
        .cpu_tiling = limits.cpu_implementation && overrides.allow_cpu_tiling,
        .subgroup_arithmetic = limits.subgroup_arithmetic && overrides.allow_subgroup_arithmetic,
        .tile_class =
            overrides.force_compact_tiles || limits.subgroup_size >= 64 || limits.max_compute_shared_memory <= 16384
                ? TileClass::compact
                : TileClass::standard,
    };
}

} // namespace vkmha
