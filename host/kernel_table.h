// The kernel table as C++: shaders/CMakeLists.txt's vkmha_kernel() rows, generated into the build tree
// (kernel_table_generated.{h,cpp}, by cmake/kernel_table.cmake). Nothing here lists kernels by hand.
#pragma once

#include "kernel_table_generated.h" // enum class Kernel, kernel_workgroup_size(), kKernelVariantRowCount

#include <cstddef>
#include <cstdint>
#include <span>

namespace vkmha {

constexpr uint32_t kKernelCount = static_cast<uint32_t>(Kernel::count);
// A kernel's SPIR-V variants (the table's variant column), by which of its bindings are stored as fp16.
// Arithmetic is fp32 in every variant.
enum class Variant : uint32_t {
    f32,    // every binding fp32; the only variant of softmax, average_heads and probs_from_lse
    f16,    // fp16 weights and Q/K/V/concat; linear and copy: fp32 X in, fp16 Y out (Q/K/V)
    f16_in, // linear and copy: fp16 X in (the concatenated heads), fp32 Y out (the output)
    count
};
constexpr uint32_t kVariantCount = static_cast<uint32_t>(Variant::count);

// One row of the table: a variant's embedded SPIR-V and the flags that choose it.
struct KernelVariantRow {
    Kernel kernel;
    Variant variant;
    const char* name; // <kernel>[_lanes][_subgroup][_<variant>]: the SPIR-V symbol and the pipeline's debug label
    const uint32_t* code;
    const size_t* words;
    bool needs_subgroup_arithmetic; // preferred over the kernel's row without it where the device has it
    bool lane_tiles;                // the lane-tiled kernel (AttentionTiling::lanes, LinearTiling::lanes)
    std::span<const uint32_t> spirv() const { return {code, *words}; }
};
extern const KernelVariantRow kKernelVariantRows[kKernelVariantRowCount];

} // namespace vkmha
