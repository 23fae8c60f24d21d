// ShaderLibrary: builds one compute pipeline per embedded kernel.
#include "shader_library.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <string>

namespace vkmha {
namespace {

static_assert(sizeof(LinearParams) <= kMaxPushBytes && sizeof(ScoresParams) <= kMaxPushBytes &&
              sizeof(SoftmaxParams) <= kMaxPushBytes && sizeof(ApplyParams) <= kMaxPushBytes &&
              sizeof(AverageHeadsParams) <= kMaxPushBytes && sizeof(AttentionParams) <= kMaxPushBytes &&
              sizeof(CombineParams) <= kMaxPushBytes && sizeof(ProbsFromLseParams) <= kMaxPushBytes &&
              sizeof(RopeParams) <= kMaxPushBytes && sizeof(CopyParams) <= kMaxPushBytes);

// The row for (k, v) this device can run: the subgroup row where the device has subgroup arithmetic, else the plain
// one (the table's order does not matter).
const KernelVariantRow* find_variant(Kernel k, Variant v, bool subgroup_arithmetic, bool lane_tiles = false) {
    const KernelVariantRow* found = nullptr;
    for (const KernelVariantRow& row : kKernelVariantRows) {
        if (row.kernel != k || row.variant != v || row.lane_tiles != lane_tiles) continue;
        if (row.needs_subgroup_arithmetic && !subgroup_arithmetic) continue;
        if (!found || row.needs_subgroup_arithmetic) found = &row;
    }
    return found;
}

// A kernel's bindings as its SPIR-V declares them: the union over its variants (they agree; a test checks it).
struct KernelBindings {
    uint32_t count = 0;
    uint32_t write_mask = 0;
    uint32_t read_write_mask = 0;
    bool reflected = true; // false: some variant's SPIR-V could not be reflected (ShaderLibrary::create refuses)
};

const KernelBindings& kernel_bindings(Kernel k) {
    static const std::array<KernelBindings, kKernelCount> table = [] {
        std::array<KernelBindings, kKernelCount> t{};
        for (const KernelVariantRow& row : kKernelVariantRows) {
            KernelBindings& kb = t[static_cast<size_t>(row.kernel)];
            auto reflected = reflect_shader_interface(row.spirv());
            if (!reflected) {
                // Never with the embedded SPIR-V; should it happen, every binding counts as read and written.
                kb.reflected = false;
                kb.count = kMaxBindings;
                kb.write_mask = kb.read_write_mask = (1u << kMaxBindings) - 1u;
                continue;
            }
            kb.count = std::max(kb.count, reflected->binding_count);
            kb.write_mask |= reflected->write_mask;
            kb.read_write_mask |= reflected->read_write_mask;
        }
        return t;
    }();
    return table[static_cast<size_t>(k)];
}

// Why `data` cannot seed this device's pipeline cache, or empty when its VkPipelineCacheHeaderVersionOne matches.
// Drivers silently ignore a foreign header (the spec allows it), so checking here is the only way to warn.
std::string cache_header_mismatch(const Device& d, const std::vector<uint8_t>& data) {
    constexpr size_t kHeaderBytes = 16 + VK_UUID_SIZE; // headerSize, headerVersion, vendorID, deviceID, UUID
    if (data.size() < kHeaderBytes) return std::to_string(data.size()) + " bytes is shorter than a cache header";
    uint32_t fields[4] = {};
    std::memcpy(fields, data.data(), sizeof fields);
    VkPhysicalDeviceProperties props{};
    d.vki().vkGetPhysicalDeviceProperties(d.physical_device(), &props);
    if (fields[0] < kHeaderBytes || fields[0] > data.size())
        return "header size " + std::to_string(fields[0]) + " is invalid";
    if (fields[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE)
        return "header version " + std::to_string(fields[1]) + " is unknown";
    if (fields[2] != props.vendorID || fields[3] != props.deviceID)
        return "it is for vendor " + std::to_string(fields[2]) + " device " + std::to_string(fields[3]) +
               ", not vendor " + std::to_string(props.vendorID) + " device " + std::to_string(props.deviceID);
    if (std::memcmp(data.data() + 16, props.pipelineCacheUUID, VK_UUID_SIZE) != 0)
        return "its pipelineCacheUUID differs from the driver's";
    return {};
}

} // namespace

const char* kernel_name(Kernel k) { return kKernelNames[static_cast<size_t>(k)]; }
const KernelVariantRow* kernel_row(Kernel k, Variant v, bool lane_tiles, bool subgroup_arithmetic) {
    return find_variant(k, v, subgroup_arithmetic, lane_tiles);
}
bool has_variant(Kernel k, Variant v) { return find_variant(k, v, false) != nullptr; }
uint32_t kernel_binding_count(Kernel k) { return kernel_bindings(k).count; }
uint32_t kernel_write_mask(Kernel k) { return kernel_bindings(k).write_mask; }
uint32_t kernel_read_write_mask(Kernel k) { return kernel_bindings(k).read_write_mask; }

std::span<const uint32_t> kernel_spirv(Kernel k, Variant v, bool lane_tiles, bool subgroup_arithmetic) {
    const KernelVariantRow* row = find_variant(k, v, subgroup_arithmetic, lane_tiles);
    if (!row || row->needs_subgroup_arithmetic != subgroup_arithmetic) return {};
    return row->spirv();
}

std::vector<PushMember> push_constant_layout(Kernel k, Variant v, bool lane_tiles) {
    auto reflected = reflect_shader_interface(kernel_spirv(k, v, lane_tiles));
    return reflected ? std::move(reflected->push_members) : std::vector<PushMember>();
}

uint32_t push_constant_bytes(Kernel k, Variant v, bool lane_tiles) {
    auto reflected = reflect_shader_interface(kernel_spirv(k, v, lane_tiles));
    return reflected ? reflected->push_bytes : 0;
}

Result<ShaderLibrary> ShaderLibrary::create(const Device& d, const KernelPolicy& policy,
                                            const std::vector<uint8_t>& initial_cache) {
    ShaderLibrary lib;
    lib.m_device = &d;
    lib.m_policy = policy;
    const auto& vk = d.vk();
    if (d.external_pipeline_cache()) {
        lib.m_cache_in_use = d.external_pipeline_cache();
    } else {
        VkPipelineCacheCreateInfo ci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
        const std::string mismatch = initial_cache.empty() ? std::string() : cache_header_mismatch(d, initial_cache);
        if (mismatch.empty()) {
            ci.initialDataSize = initial_cache.size();
            ci.pInitialData = initial_cache.empty() ? nullptr : initial_cache.data();
        } else {
            d.log(LogLevel::warning, "pipeline cache data ignored (" + mismatch + "); starting with an empty cache");
        }
        VkPipelineCache cache = VK_NULL_HANDLE;
        VkResult r = vk.vkCreatePipelineCache(d.handle(), &ci, d.allocator(), &cache);
        if (r != VK_SUCCESS && ci.initialDataSize) {
            // Corrupt or foreign cache data: start empty rather than fail the engine's start-up.
            d.log(LogLevel::warning, "pipeline cache data rejected by the driver; starting with an empty cache");
            ci.initialDataSize = 0;
            ci.pInitialData = nullptr;
            r = vk.vkCreatePipelineCache(d.handle(), &ci, d.allocator(), &cache);
        }
        if (r != VK_SUCCESS) return d.vk_error("vkCreatePipelineCache", r);
        lib.m_own_cache = Handle<VkPipelineCache>(&d, cache);
        lib.m_cache_in_use = cache;
        d.set_name(VK_OBJECT_TYPE_PIPELINE_CACHE, reinterpret_cast<uint64_t>(cache), "vkmha pipeline cache");
    }

    VkPhysicalDeviceProperties props{};
    d.vki().vkGetPhysicalDeviceProperties(d.physical_device(), &props);
    if (props.limits.maxPerStageDescriptorStorageBuffers < kMaxBindings)
        return make_error(ErrorCode::unsupported, "device '" + d.info().name + "' offers " +
                                                      std::to_string(props.limits.maxPerStageDescriptorStorageBuffers) +
                                                      " storage buffers per shader stage; vkmha's kernels need " +
                                                      std::to_string(kMaxBindings));
    VkDescriptorSetLayoutBinding bindings[kMaxBindings]{};
    for (uint32_t b = 0; b < kMaxBindings; ++b) {
        bindings[b].binding = b;
        bindings[b].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        bindings[b].descriptorCount = 1;
        bindings[b].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    }
    VkDescriptorSetLayoutCreateInfo sli{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    sli.bindingCount = kMaxBindings;
    sli.pBindings = bindings;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    VkResult r = vk.vkCreateDescriptorSetLayout(d.handle(), &sli, d.allocator(), &set_layout);
    if (r != VK_SUCCESS) return d.vk_error("vkCreateDescriptorSetLayout", r);
    lib.m_set_layout = Handle<VkDescriptorSetLayout>(&d, set_layout);
    VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, kMaxPushBytes};
    VkPipelineLayoutCreateInfo pli{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    pli.setLayoutCount = 1;
    pli.pSetLayouts = &set_layout;
    pli.pushConstantRangeCount = 1;
    pli.pPushConstantRanges = &range;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    r = vk.vkCreatePipelineLayout(d.handle(), &pli, d.allocator(), &layout);
    if (r != VK_SUCCESS) return d.vk_error("vkCreatePipelineLayout", r);
    lib.m_layout = Handle<VkPipelineLayout>(&d, layout);

    // Per-device tiling: the defaults need 256 invocations and ~8 KiB of shared memory for the projections; Vulkan
    // guarantees only 128 invocations, so smaller devices get half-height workgroups.
    if (d.limits().max_workgroup_invocations < lib.m_linear_tiling.x * lib.m_linear_tiling.y) lib.m_linear_tiling.y = 8;
    if (policy.cpu_tiling) {
        // Lane tiles (linear_lanes.comp), for the reason attention's are (choose_attention_tiling): one SIMD
        // vector of invocations, an 8 x 8 register tile each (16 products per load).
        LinearTiling& lt = lib.m_linear_tiling;
        lt.lanes = true;
        lt.x = std::clamp<uint32_t>(d.limits().subgroup_size, 4, 16);
        lt.y = 1;
        lt.k = 4;
        lt.rows = 8;
        lt.cols = 8;
    }

    // Every variant of every kernel but the fused one, whose tiling is specialised per model (attention_pipeline); the
    // fp16 variants only where the device has 16-bit storage (their SPIR-V declares StorageBuffer16BitAccess).
    lib.m_from_cache = d.creation_feedback() ? 0 : -1;
    for (uint32_t k = 0; k < kKernelCount; ++k)
        if (!kernel_bindings(static_cast<Kernel>(k)).reflected)
            return make_error(ErrorCode::internal, std::string("the SPIR-V of kernel ") +
                                                       kernel_name(static_cast<Kernel>(k)) + " could not be reflected");
    for (const KernelVariantRow& v : kKernelVariantRows) {
        if (v.kernel == Kernel::attention || (v.variant != Variant::f32 && !d.storage16())) continue;
        if (v.lane_tiles != (v.kernel == Kernel::linear && lib.m_linear_tiling.lanes)) continue;
        const LinearTiling& lt = lib.m_linear_tiling;
        const uint32_t linear_tiling[5] = {lt.x, lt.y, lt.k, lt.rows, lt.cols};
        int32_t hit = 0;
        auto pipeline = lib.build_pipeline(v.kernel, v.variant,
                                           v.kernel == Kernel::linear ? std::span<const uint32_t>(linear_tiling)
                                                                      : std::span<const uint32_t>(),
                                           &hit, v.lane_tiles);
        if (!pipeline) return pipeline.take_error();
        lib.m_from_cache = hit < 0 || lib.m_from_cache < 0 ? -1 : lib.m_from_cache + hit;
        lib.m_pipelines[static_cast<size_t>(v.kernel) * kVariantCount + static_cast<size_t>(v.variant)] =
            std::move(pipeline.value());
        ++lib.m_pipeline_count;
    }
    return lib;
}

Result<Handle<VkPipeline>> ShaderLibrary::build_pipeline(Kernel kernel, Variant variant,
                                                         std::span<const uint32_t> spec_values, int32_t* cache_hit,
                                                         bool lane_tiles) const {
    const Device& d = *m_device;
    const auto& vk = d.vk();
    const KernelVariantRow* found = find_variant(kernel, variant, m_policy.subgroup_arithmetic, lane_tiles);
    if (!found)
        return make_error(ErrorCode::internal, std::string("kernel ") + kernel_name(kernel) + " has no variant " +
                                                   std::to_string(static_cast<uint32_t>(variant)));
    if (variant != Variant::f32 && !d.storage16())
        return make_error(ErrorCode::unsupported, std::string(found->name) +
                                                      " needs the storageBuffer16BitAccess feature, which this "
                                                      "device does not have enabled");
    const KernelVariantRow& k = *found;
    VkShaderModuleCreateInfo smi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    smi.codeSize = *k.words * sizeof(uint32_t);
    smi.pCode = k.code;
    VkShaderModule module = VK_NULL_HANDLE;
    VkResult r = vk.vkCreateShaderModule(d.handle(), &smi, d.allocator(), &module);
    if (r != VK_SUCCESS) return d.vk_error((std::string("vkCreateShaderModule(") + k.name + ")").c_str(), r);
    Handle<VkShaderModule> module_owner(&d, module);

    VkPipelineCreationFeedback feedback{};
    VkPipelineCreationFeedback stage_feedback{};
    VkPipelineCreationFeedbackCreateInfo feedback_info{VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO};
    feedback_info.pPipelineCreationFeedback = &feedback;
    feedback_info.pipelineStageCreationFeedbackCount = 1;
    feedback_info.pPipelineStageCreationFeedbacks = &stage_feedback;
    // Specialization constants 0..n-1, four bytes each, in order.
    VkSpecializationMapEntry entries[8];
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(spec_values.size(), 8));
    for (uint32_t e = 0; e < n; ++e) entries[e] = {e, e * 4u, 4u};
    VkSpecializationInfo spec{n, entries, n * 4u, spec_values.data()};
    VkComputePipelineCreateInfo cpi{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    if (d.creation_feedback()) cpi.pNext = &feedback_info;
    cpi.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    cpi.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    cpi.stage.module = module;
    cpi.stage.pName = "main";
    if (n) cpi.stage.pSpecializationInfo = &spec;
    cpi.layout = m_layout.get();
    // Compile-only contexts read the statistics of what they build (pipeline_statistics.h).
    if (d.pipeline_statistics()) cpi.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
    VkPipeline pipeline = VK_NULL_HANDLE;
    r = vk.vkCreateComputePipelines(d.handle(), m_cache_in_use, 1, &cpi, d.allocator(), &pipeline);
    if (r != VK_SUCCESS) return d.vk_error((std::string("vkCreateComputePipelines(") + k.name + ")").c_str(), r);
    if (cache_hit)
        *cache_hit = !d.creation_feedback() || !(feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT) ? -1
                     : feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT   ? 1
                                                                                                           : 0;
    const std::string label = std::string("vkmha ") + k.name;
    d.set_name(VK_OBJECT_TYPE_PIPELINE, reinterpret_cast<uint64_t>(pipeline), label.c_str());
    return Handle<VkPipeline>(&d, pipeline);
}

AttentionTiling ShaderLibrary::choose_attention_tiling(const DeviceLimits& limits, const KernelPolicy& policy,
                                                       uint32_t head_dim) {
    AttentionTiling t; // the defaults fit Vulkan's minimum limits (128 invocations, 16 KiB of shared memory)
    if (policy.cpu_tiling && head_dim % 4 == 0 && head_dim <= 128) {
        // Lane tiles: llvmpipe runs each load or store inside a loop as a loop over the SIMD lanes, so the kernel
        // that keeps Q, scores and accumulators in each invocation's registers and touches memory only for K and V
        // rows runs the fused core 3-5x faster than workgroup tiles there (shaders/README.md). One SIMD vector of
        // invocations (the subgroup), one key each per tile, 512 accumulator floats per invocation: more rows or keys
        // per tile measured no faster and multiply LLVM's compile time (seconds per pipeline), as do head dims
        // above 128, which take workgroup tiles.
        t.lanes = true;
        t.workgroup = std::clamp<uint32_t>(limits.subgroup_size, 4, 16);
        t.keys = t.workgroup;
        t.rows = std::clamp<uint32_t>(512 / head_dim, 1, 8);
        t.dims = 4;
        t.max_head_dim = head_dim;
        if (4u * (2 * t.workgroup + t.workgroup * head_dim) <= limits.max_compute_shared_memory) return t;
        t = AttentionTiling{}; // the merge buffer does not fit: workgroup tiles below
    }
    if (policy.cpu_tiling) {
        // CPU implementations run an invocation's loops serially and have no register file to spill: fewer, longer
        // invocations with more rows each measured 1.6x faster on lavapipe, and longer key tiles with narrower
        // head-dim steps (fewer barriers per key, which llvmpipe runs as coroutine switches) 1.2x more
        // (shaders/README.md).
        t.workgroup = 32;
        t.rows = 32;
        t.keys = 128;
        t.dims = 8;
    }
    if (!policy.cpu_tiling) {
        // RADV/ACO statistics (docs/PERFORMANCE.md, "GPU kernels on AMD's compiler"). Compact tiles: 8 head-dim
        // columns per step take shared memory from 14.5 to 7 KiB, which on RDNA lifts the prefill kernel from 6 to
        // 8-10 subgroups per SIMD and decode (4 rows, 3.5 KiB) from 8 to 16, with no more registers.
        if (policy.tile_class == TileClass::compact) t.dims = 8;
        // Each invocation accumulates ROWS x ceil(D / WG) floats: above D = 128, 16 rows took 132 VGPRs and spilled
        // 118 of them to scratch on RDNA3 (176 VGPRs, 4 subgroups per SIMD, on RDNA2); 8 rows spill nothing.
        if (head_dim > 128) t.rows = 8;
    }
    // Shared memory (attention.comp's header): halve the key tile until it fits the device.
    auto shared_bytes = [&] { return 4u * (t.dims * t.rows + t.dims * (t.keys + 1) + t.keys * t.rows + t.workgroup); };
    while (shared_bytes() > limits.max_compute_shared_memory && t.keys / 2 >= t.workgroup && t.keys % 2 == 0)
        t.keys /= 2;
    // Only as many accumulator columns as the model's head dim (larger ones cost work on every device), up to 256;
    // larger head dims take the unfused path.
    t.max_head_dim = std::min<uint32_t>(256, std::max<uint32_t>(t.dims, (head_dim + t.dims - 1) / t.dims * t.dims));
    return t;
}

AttentionTiling ShaderLibrary::choose_decode_tiling(const DeviceLimits& limits, const KernelPolicy& policy,
                                                    uint32_t head_dim) {
    AttentionTiling t = choose_attention_tiling(limits, policy, head_dim);
    // Workgroup tiles' smallest is one vec4 of rows (WG % 4 == 0 holds for every WG above); lane tiles take any count.
    t.rows = t.lanes ? 1 : 4;
    return t;
}

Result<Handle<VkPipeline>> ShaderLibrary::attention_pipeline(const AttentionTiling& t, Precision precision,
                                                             uint32_t score_modifiers) const {
    const uint32_t values[6] = {t.workgroup, t.rows, t.keys, t.dims, t.max_head_dim, score_modifiers};
    return build_pipeline(Kernel::attention, precision == Precision::fp16 ? Variant::f16 : Variant::f32, values,
                          nullptr, t.lanes);
}

Result<ShaderLibrary::DescriptorSets> ShaderLibrary::allocate_sets(uint32_t count, const char* owner) const {
    const Device& d = *m_device;
    DescriptorSets out;
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, count * kMaxBindings};
    VkDescriptorPoolCreateInfo pi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    pi.maxSets = count;
    pi.poolSizeCount = 1;
    pi.pPoolSizes = &size;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    VkResult r = d.vk().vkCreateDescriptorPool(d.handle(), &pi, d.allocator(), &pool);
    if (r != VK_SUCCESS) return d.vk_error(("vkCreateDescriptorPool (" + std::string(owner) + ")").c_str(), r);
    out.pool = Handle<VkDescriptorPool>(&d, pool);
    const std::vector<VkDescriptorSetLayout> layouts(count, m_set_layout.get());
    out.sets.resize(count);
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = pool;
    ai.descriptorSetCount = count;
    ai.pSetLayouts = layouts.data();
    r = d.vk().vkAllocateDescriptorSets(d.handle(), &ai, out.sets.data());
    if (r != VK_SUCCESS) return d.vk_error(("vkAllocateDescriptorSets (" + std::string(owner) + ")").c_str(), r);
    return out;
}

Result<std::vector<uint8_t>> ShaderLibrary::cache_data() const {
    const Device& d = *m_device;
    size_t size = 0;
    VkResult r = d.vk().vkGetPipelineCacheData(d.handle(), m_cache_in_use, &size, nullptr);
    if (r != VK_SUCCESS) return d.vk_error("vkGetPipelineCacheData", r);
    std::vector<uint8_t> data(size);
    r = d.vk().vkGetPipelineCacheData(d.handle(), m_cache_in_use, &size, data.data());
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return d.vk_error("vkGetPipelineCacheData", r);
    data.resize(size);
    return data;
}

} // namespace vkmha
