// ShaderLibrary: the embedded SPIR-V kernels turned into compute pipelines (through a pipeline cache an
// engine can persist). The C++ mirrors of the kernels' push-constant blocks are in push_constants.h.
#pragma once

#include "attention_config.h"
#include "kernel_policy.h"
#include "kernel_table.h"
#include "push_constants.h"
#include "spirv_reflect.h"
#include "vulkan/handle.h"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace vkmha {

// 10 storage buffers in one stage: every desktop and mobile Vulkan driver offers more (the spec's minimum is 4; the
// context checks maxPerStageDescriptorStorageBuffers).
constexpr uint32_t kMaxBindings = 10;
constexpr uint32_t kMaxPushBytes = 128; // Vulkan's guaranteed minimum of maxPushConstantsSize

// The fused kernels' SCORE_MODIFIERS for a model: the modifiers it compiles in.
inline uint32_t score_modifiers(const AttentionConfig& c) { return (c.softcap > 0.0f ? 1u : 0u) | (c.alibi ? 2u : 0u); }

const char* kernel_name(Kernel);
// The table row a context builds for (kernel, variant): its subgroup row where subgroup arithmetic is used, its lane
// row for lane tiles; nullptr where the table has none.
const KernelVariantRow* kernel_row(Kernel, Variant, bool lane_tiles, bool subgroup_arithmetic);
bool has_variant(Kernel, Variant);
// What a kernel declares at its boundary, reflected from its SPIR-V (every variant of a kernel declares the same;
// tests/test_shader_interface.cpp checks it). The highest binding + 1; the bindings it does not declare readonly
// (bit b = binding b), and those of them it does not declare writeonly either. Whatever is bound at a writable
// binding counts as written for synchronization, whether or not this dispatch writes it.
uint32_t kernel_binding_count(Kernel);
uint32_t kernel_write_mask(Kernel);
uint32_t kernel_read_write_mask(Kernel);
// The SPIR-V words of a variant (empty where the table has no such row) and its push-constant block as the SPIR-V
// lays it out (member names, byte offsets and sizes; push_constant_bytes: the block's size).
std::span<const uint32_t> kernel_spirv(Kernel, Variant, bool lane_tiles = false, bool subgroup_arithmetic = false);
std::vector<PushMember> push_constant_layout(Kernel, Variant, bool lane_tiles = false);
uint32_t push_constant_bytes(Kernel, Variant, bool lane_tiles = false);

// linear.comp's tiling (its specialization constants 0..4): a workgroup computes a (y*rows) x (x*cols) block.
struct LinearTiling {
    uint32_t x = 16, y = 16;     // invocations along N and M
    uint32_t k = 16;             // K elements staged per step
    uint32_t rows = 4, cols = 4; // register tile per invocation
    bool lanes = false;          // the lane-tiled kernel (linear_lanes.comp): y == 1, k unused
    uint32_t block_n() const { return x * cols; }
    uint32_t block_m() const { return y * rows; }
};

// The fused kernel's tiling (its specialization constants 0..4); see shaders/common/attention_common.glsl.
struct AttentionTiling {
    uint32_t workgroup = 64; // invocations
    uint32_t rows = 16;      // query rows (position x head of the group) per workgroup
    uint32_t keys = 64;      // BC: keys per K/V tile; split-K ranges are multiples of it
    uint32_t dims = 32;      // DC: head-dim columns staged per step (workgroup tiles only)
    uint32_t max_head_dim = 256;
    // The lane-tiled kernel (attention_lanes.comp, for CPU implementations): each invocation scores its own
    // keys against every row, no shared memory inside the key loop; needs max_head_dim == the head dim, % 4 == 0.
    bool lanes = false;
};

class ShaderLibrary {
  public:
    // initial_cache: bytes from a previous cache_data() (may be empty, stale or foreign: a header that does not match
    // this device is dropped with a warning; the driver validates the rest).
    // policy: which kernel family runs here (lane or workgroup tiles, subgroup arithmetic or not).
    static Result<ShaderLibrary> create(const Device&, const KernelPolicy& policy,
                                        const std::vector<uint8_t>& initial_cache);

    // Every kernel's pipeline but Kernel::attention's, which models build with attention_pipeline(). The fp16
    // variants exist only on devices with 16-bit storage (Device::storage16()); VK_NULL_HANDLE where none exists.
    VkPipeline pipeline(Kernel k, Variant v = Variant::f32) const {
        return m_pipelines[static_cast<size_t>(k) * kVariantCount + static_cast<size_t>(v)].get();
    }
    uint32_t pipeline_count() const { return m_pipeline_count; }
    // The fused kernel's tiling for a model's head dim on a device under a policy, and its pipeline for the model's
    // precision.
    static AttentionTiling choose_attention_tiling(const DeviceLimits&, const KernelPolicy&, uint32_t head_dim);
    // The same for decode-like work (a few query rows per key/value head): 4 rows per workgroup (1 with lane tiles),
    // so one query token does not pay for a full row tile of padding.
    static AttentionTiling choose_decode_tiling(const DeviceLimits&, const KernelPolicy&, uint32_t head_dim);
    // score_modifiers: attention.comp's SCORE_MODIFIERS (bit 0 soft-cap, bit 1 ALiBi), from score_modifiers().
    Result<Handle<VkPipeline>> attention_pipeline(const AttentionTiling&, Precision, uint32_t score_modifiers) const;
    const LinearTiling& linear_tiling() const { return m_linear_tiling; }
    const KernelPolicy& policy() const { return m_policy; }
    // Every kernel shares one layout (kMaxBindings storage buffers, kMaxPushBytes of push constants), so any
    // pre-allocated descriptor set serves any kernel.
    VkPipelineLayout layout() const { return m_layout.get(); }
    VkDescriptorSetLayout set_layout() const { return m_set_layout.get(); }
    // `count` descriptor sets of that layout in a pool of their own (the sets go with the pool); `owner` names the
    // caller in a failure's message, e.g. "vkCreateDescriptorPool (session)".
    struct DescriptorSets {
        Handle<VkDescriptorPool> pool;
        std::vector<VkDescriptorSet> sets;
    };
    Result<DescriptorSets> allocate_sets(uint32_t count, const char* owner) const;
    Result<std::vector<uint8_t>> cache_data() const;
    // Of the context's pipelines (pipeline_count), how many the driver found in the pipeline cache; -1 when the
    // device cannot tell (no VK_EXT_pipeline_creation_feedback). Models' fused-kernel pipelines are not counted.
    int32_t pipelines_from_cache() const { return m_from_cache; }

  private:
    // cache_hit (optional): 1 found in the pipeline cache, 0 compiled, -1 the driver cannot tell.
    Result<Handle<VkPipeline>> build_pipeline(Kernel, Variant, std::span<const uint32_t> spec_values,
                                              int32_t* cache_hit, bool lane_tiles = false) const;

    const Device* m_device = nullptr;
    KernelPolicy m_policy;
    Handle<VkPipelineCache> m_own_cache;
    VkPipelineCache m_cache_in_use = VK_NULL_HANDLE;
    int32_t m_from_cache = -1;
    uint32_t m_pipeline_count = 0;
    LinearTiling m_linear_tiling;
    Handle<VkDescriptorSetLayout> m_set_layout;
    Handle<VkPipelineLayout> m_layout;
    std::array<Handle<VkPipeline>, kKernelCount * kVariantCount> m_pipelines; // [kernel][variant]
};

} // namespace vkmha
