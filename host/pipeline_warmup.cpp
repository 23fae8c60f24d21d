// Pipeline warm-up: a descriptor set on one small buffer and a zero-workgroup dispatch per pipeline.
#include "pipeline_warmup.h"

#include <array>

namespace vkmha {

std::vector<VkPipeline> context_pipelines_for(const Context& ctx, Precision precision) {
    std::vector<Variant> variants = {Variant::f32};
    if (precision == Precision::fp16) variants.insert(variants.end(), {Variant::f16, Variant::f16_in});
    std::vector<VkPipeline> out;
    for (uint32_t k = 0; k < kKernelCount; ++k)
        for (Variant v : variants)
            if (VkPipeline p = ctx.shaders().pipeline(static_cast<Kernel>(k), v)) out.push_back(p);
    return out;
}

Result<PipelineWarmup> PipelineWarmup::create(const Context& ctx, const BufferView& buffer) {
    const Device& d = ctx.device();
    PipelineWarmup w;
    w.m_ctx = &ctx;
    auto sets = ctx.shaders().allocate_sets(1, "pipeline warm-up");
    if (!sets) return sets.take_error();
    w.m_pool = std::move(sets.value().pool);
    w.m_set = sets.value().sets[0];
    const VkDescriptorBufferInfo info{buffer.buffer, buffer.offset, buffer.size};
    std::array<VkWriteDescriptorSet, kMaxBindings> writes{};
    for (uint32_t b = 0; b < kMaxBindings; ++b) {
        writes[b].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
        writes[b].dstSet = w.m_set;
        writes[b].dstBinding = b;
        writes[b].descriptorCount = 1;
        writes[b].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[b].pBufferInfo = &info;
    }
    d.vk().vkUpdateDescriptorSets(d.handle(), kMaxBindings, writes.data(), 0, nullptr);
    return w;
}

void PipelineWarmup::record(VkCommandBuffer cmd, std::span<const VkPipeline> pipelines) const {
    const Device& d = m_ctx->device();
    const auto& vk = d.vk();
    const VkPipelineLayout layout = m_ctx->shaders().layout();
    const std::array<uint8_t, kMaxPushBytes> zeros{};
    VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    // The buffer may have just been written by a copy (the model's upload writes its dummy).
    VkMemoryBarrier entry = barrier;
    entry.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    vk.vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &entry, 0, nullptr, 0, nullptr);
    vk.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &m_set, 0, nullptr);
    vk.vkCmdPushConstants(cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, kMaxPushBytes, zeros.data());
    for (size_t i = 0; i < pipelines.size(); ++i) {
        if (i) // every binding counts as written, so each dispatch orders after the one before
            vk.vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0,
                                    1, &barrier, 0, nullptr, 0, nullptr);
        vk.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipelines[i]);
        vk.vkCmdDispatch(cmd, 0, 0, 0);
    }
}

} // namespace vkmha
