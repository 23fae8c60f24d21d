// The kernel policy: what vkmha chooses to run on a device, chosen from its facts (DeviceLimits) and narrowed by
// overrides that never rewrite the facts.
#include "context.h"
#include "kernel_policy.h"
#include "shader_library.h"
#include "support/gpu_context.h"

#include <doctest/doctest.h>

using namespace vkmha;

namespace {

DeviceLimits cpu_facts() {
    DeviceLimits l;
    l.cpu_implementation = true;
    l.subgroup_arithmetic = true;
    l.subgroup_size = 8;
    l.max_compute_shared_memory = 32768;
    l.max_workgroup_invocations = 1024;
    return l;
}

bool same_tiling(const AttentionTiling& a, const AttentionTiling& b) {
    return a.lanes == b.lanes && a.workgroup == b.workgroup && a.rows == b.rows && a.keys == b.keys &&
           a.dims == b.dims && a.max_head_dim == b.max_head_dim;
}

} // namespace

TEST_SUITE("kernel_policy") {
    TEST_CASE("policy: chosen from the facts, and overrides only narrow it") {
        const DeviceLimits cpu = cpu_facts();
        CHECK(choose_kernel_policy(cpu) == KernelPolicy{.cpu_tiling = true, .subgroup_arithmetic = true});
        CHECK(choose_kernel_policy(cpu, {.allow_cpu_tiling = false}) ==
              KernelPolicy{.cpu_tiling = false, .subgroup_arithmetic = true});
        CHECK(choose_kernel_policy(cpu, {.allow_subgroup_arithmetic = false}) ==
              KernelPolicy{.cpu_tiling = true, .subgroup_arithmetic = false});

        DeviceLimits gpu_without_subgroups = cpu;
        gpu_without_subgroups.cpu_implementation = false;
        gpu_without_subgroups.subgroup_arithmetic = false;
        CHECK(choose_kernel_policy(gpu_without_subgroups) == KernelPolicy{});
        // Allowing is not enabling: no override makes vkmha run what the device cannot.
        CHECK(choose_kernel_policy(gpu_without_subgroups, {true, true}) == KernelPolicy{});
    }

    TEST_CASE("tiling: a CPU device without CPU tiling is tiled as a GPU is") {
        const DeviceLimits cpu = cpu_facts();
        DeviceLimits gpu = cpu;
        gpu.cpu_implementation = false;
        const KernelPolicy gpu_tiles = choose_kernel_policy(cpu, {.allow_cpu_tiling = false});
        for (uint32_t d : {8u, 64u, 128u, 256u}) {
            INFO("head dim ", d);
            CHECK(same_tiling(ShaderLibrary::choose_attention_tiling(cpu, gpu_tiles, d),
                              ShaderLibrary::choose_attention_tiling(gpu, choose_kernel_policy(gpu), d)));
            CHECK(same_tiling(ShaderLibrary::choose_decode_tiling(cpu, gpu_tiles, d),
                              ShaderLibrary::choose_decode_tiling(gpu, choose_kernel_policy(gpu), d)));
        }
        CHECK(ShaderLibrary::choose_attention_tiling(cpu, choose_kernel_policy(cpu), 64).lanes);
    }

    TEST_CASE("contexts: the portable context overrides the policy, never the device's facts") {
        vkmha::test::ValidationGuard guard;
        const Context& normal = vkmha::test::gpu_context();
        const Context& portable = vkmha::test::gpu_context_portable();
        const DeviceLimits& a = normal.device().limits();
        const DeviceLimits& b = portable.device().limits();
        CHECK(a.cpu_implementation == b.cpu_implementation);
        CHECK(a.subgroup_arithmetic == b.subgroup_arithmetic);
        CHECK(a.subgroup_size == b.subgroup_size);
        CHECK(normal.kernel_policy() == choose_kernel_policy(a));
        CHECK(portable.kernel_policy() == KernelPolicy{});
        CHECK(normal.shaders().linear_tiling().lanes == normal.kernel_policy().cpu_tiling);
        CHECK_FALSE(portable.shaders().linear_tiling().lanes);
        MESSAGE("device: cpu implementation ", a.cpu_implementation, ", subgroup arithmetic ", a.subgroup_arithmetic);
    }

    TEST_CASE("tile classes: compact tiles for 64-wide subgroups and 16 KiB devices, standard ones elsewhere") {
        DeviceLimits gpu;
        gpu.subgroup_arithmetic = true;
        gpu.max_workgroup_invocations = 1024;
        auto class_of = [](uint32_t subgroup, uint32_t shared) {
            DeviceLimits l;
            l.subgroup_size = subgroup;
            l.max_compute_shared_memory = shared;
            l.max_workgroup_invocations = 1024;
            return choose_kernel_policy(l).tile_class;
        };
        CHECK(class_of(64, 65536) == TileClass::compact);  // AMD RDNA/GCN
        CHECK(class_of(32, 49152) == TileClass::standard); // NVIDIA-like
        CHECK(class_of(16, 65536) == TileClass::standard); // Intel-like
        CHECK(class_of(16, 16384) == TileClass::compact);  // mobile
        DeviceLimits small;
        small.subgroup_size = 8;
        small.max_compute_shared_memory = 32768;
        CHECK(choose_kernel_policy(small, {.force_compact_tiles = true}).tile_class == TileClass::compact);

        gpu.subgroup_size = 64;
        gpu.max_compute_shared_memory = 65536;
        const KernelPolicy amd = choose_kernel_policy(gpu);
        const AttentionTiling prefill = ShaderLibrary::choose_attention_tiling(gpu, amd, 128);
        CHECK(prefill.dims == 8);
        CHECK(prefill.rows == 16);
        CHECK(prefill.keys == 64);
        CHECK(ShaderLibrary::choose_decode_tiling(gpu, amd, 128).dims == 8);
        // Above D = 128, 8 rows on every GPU (16 spilled registers on RDNA3).
        CHECK(ShaderLibrary::choose_attention_tiling(gpu, amd, 256).rows == 8);
        gpu.subgroup_size = 32;
        const KernelPolicy nvidia = choose_kernel_policy(gpu);
        CHECK(ShaderLibrary::choose_attention_tiling(gpu, nvidia, 128).dims == 32);
        CHECK(ShaderLibrary::choose_attention_tiling(gpu, nvidia, 256).rows == 8);
    }
}
