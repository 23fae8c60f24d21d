// The attention plan: a pure description (no Vulkan calls) of the dispatches one forward pass needs for a given
// config, shape and options on a device with given limits. The recorder turns it into commands.
#pragma once

#include "attention_config.h"
#include "result.h"
#include "shader_library.h"
#include "vulkan/device.h"

#include <array>
#include <cstdint>
#include <vector>

namespace vkmha {

// Every buffer a pass can read or write. The first group is bound by the caller each frame, the second belongs
// to the model, the third to the session's frame slot.
enum class Slot : uint32_t {
    query,
    key,
    value,
    key_padding_mask,
    attn_mask,
    output,
    weights,
    wq,
    wk,
    wv,
    bq,
    bk,
    bv,
    wo,
    bo,
    q,
    k,
    v,
    scores,
    concat,
    lse,
    partials,
    sink,  // a small per-slot buffer bound where a kernel's writable binding is unused
    dummy, // a small buffer bound where a kernel's read-only binding is unused; never written
    count
};
constexpr uint32_t kSlotCount = static_cast<uint32_t>(Slot::count);
const char* slot_name(Slot);

// Passes are grouped into stages for timing and debug labels.
enum class Stage : uint32_t {
    q_proj,
    k_proj,
    v_proj,
    scores,
    softmax,
    apply,
    average_weights,
    out_proj,
    attention,
    combine,
    count
};
constexpr uint32_t kStageCount = static_cast<uint32_t>(Stage::count);
const char* stage_name(Stage);

struct Pass {
    Kernel kernel = Kernel::linear;
    Variant variant = Variant::f32; // the kernel's SPIR-V variant: fp16 storage for fp16 models
    Stage stage = Stage::q_proj;
    std::array<Slot, kMaxBindings> bindings = all_dummy();
    uint32_t write_mask = 0;     // bit b set: binding b is declared writable (kernel_write_mask)
    bool barrier_before = false; // a write earlier in the pass list is read or overwritten here
    std::array<uint32_t, kMaxPushBytes / 4> push{};
    uint32_t push_bytes = 0;
    uint32_t groups[3] = {1, 1, 1};

    static std::array<Slot, kMaxBindings> all_dummy() {
        std::array<Slot, kMaxBindings> b;
        b.fill(Slot::dummy);
        return b;
    }
};

struct AttentionPlan {
    std::vector<Pass> passes;
    // Scratch sizes in elements (q/k/v/concat: of the model's precision; scores: floats), per frame slot.
    uint64_t q_elems = 0, k_elems = 0, v_elems = 0, concat_elems = 0, scores_elems = 0;
    uint32_t chunk_bh = 0;    // (batch, head) pairs per scores chunk
    bool fused = false;       // the fused kernel runs (else the unfused stages)
    uint32_t split_count = 1; // fused: key ranges per row
};

// Scratch an upper-bound shape needs (for allocation at session creation), in elements.
struct ScratchSizes {
    uint64_t q_elems = 0, k_elems = 0, v_elems = 0, concat_elems = 0, scores_elems = 0;
    uint64_t lse_elems = 0, partials_elems = 0;
    uint32_t activation_bytes = 4; // per element of q, k, v and concat (the model's precision); the rest are floats
};
// scores_budget_bytes caps the unfused path's per-chunk score buffer (0: the default, 64 MiB); the device's
// maxStorageBufferRange caps it too.
// With fused_only, no score buffer is allocated: need_weights and the unfused path are then refused.
Result<ScratchSizes> attention_scratch(const AttentionConfig&, Precision, const AttentionShape& max_shape,
                                       const DeviceLimits&, const AttentionTiling&, uint64_t scores_budget_bytes = 0,
                                       bool fused_only = false);

// The fewest key ranges the fused kernel must split Lk into on this device: more than 1 only where the driver
// stops long-running invocations (llvmpipe), for very long key ranges.
uint32_t min_key_splits(const DeviceLimits&, const AttentionTiling&, uint32_t head_dim, uint32_t lk);

// Where each caller-bound buffer's data starts inside its binding, in elements (floats; bytes for the masks): the
// recorder binds at an offset rounded down to the device's alignment and passes the remainder here.
struct ExternalOffsets {
    uint32_t query = 0, key = 0, value = 0, key_padding_mask = 0, attn_mask = 0, output = 0, weights = 0;
    bool operator==(const ExternalOffsets&) const = default;
};

struct PlanInputs {
    AttentionConfig config;
    Precision precision = Precision::fp32; // the model's: picks the kernels' storage variants
    AttentionShape shape;
    AttentionOptions options;
    bool has_in_bias = false;
    bool has_out_bias = false;
    ExternalOffsets offsets;
    uint64_t scores_capacity = 0;     // floats of scores scratch the session allocated (0: fused only)
    uint64_t partials_capacity = 0;   // floats of split-K partials scratch
    AttentionTiling tiling;           // the fused kernel's, from the shader library
    LinearTiling linear_tiling;       // the projections'
    uint64_t scores_budget_bytes = 0; // as given to attention_scratch
};

// Checks the shape against the device's limits (binding ranges, group counts) and lays out the passes.
Result<AttentionPlan> plan_attention(const PlanInputs&, const DeviceLimits&);

} // namespace vkmha
