// A small SPIR-V reflection: what a compute kernel declares at its boundary with the host (storage-buffer bindings
// and whether the GLSL says readonly/writeonly, the push-constant block, the default workgroup size), read from the
// module itself so that the GLSL stays the one source of truth. Only what vkmha's kernels use is understood.
#pragma once

#include "result.h"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vkmha {

// One member of a push-constant block, as the SPIR-V lays it out.
struct PushMember {
    std::string name;
    uint32_t offset = 0; // bytes from the block's start
    uint32_t size = 0;   // bytes
    bool operator==(const PushMember&) const = default;
};

struct ShaderInterface {
    uint32_t binding_count = 0; // the highest storage-buffer binding of set 0, plus one
    // Bit b: some variable at binding b lacks NonWritable (GLSL readonly), so whatever is bound there counts as written
    // for synchronization, whether or not a dispatch writes it.
    uint32_t write_mask = 0;
    // Of write_mask, the bindings some variable also reads (it lacks NonReadable, GLSL writeonly).
    uint32_t read_write_mask = 0;
    std::vector<PushMember> push_members; // in declaration order; empty without a push-constant block
    uint32_t push_bytes = 0;              // the block's size: its last member's end
    std::array<uint32_t, 3> local_size{}; // the default workgroup size (before specialization)
};

// Fails (ErrorCode::internal) on a module that is not SPIR-V or declares what this reflection does not understand
// (bindings outside set 0 or past 31, push-constant members other than 32-bit scalars and vectors).
Result<ShaderInterface> reflect_shader_interface(std::span<const uint32_t> spirv);

} // namespace vkmha
