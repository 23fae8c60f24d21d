// Context: builds the pipelines and the one-time upload path for a device.
#include "context.h"

namespace vkmha {

Result<std::unique_ptr<Context>> Context::create(std::unique_ptr<Device> device, const std::vector<uint8_t>& cache,
                                                 const KernelPolicyOverrides& overrides) {
    std::unique_ptr<Context> ctx(new Context());
    ctx->m_device = std::move(device);
    const Device& d = *ctx->m_device;
    auto shaders = ShaderLibrary::create(d, choose_kernel_policy(d.limits(), overrides), cache);
    if (!shaders) return shaders.take_error();
    ctx->m_shaders = std::move(shaders.value());
    if (d.has_queue()) {
        VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
        pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT | VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
        pi.queueFamilyIndex = d.queue_family();
        VkCommandPool pool = VK_NULL_HANDLE;
        VkResult r = d.vk().vkCreateCommandPool(d.handle(), &pi, d.allocator(), &pool);
        if (r != VK_SUCCESS) return d.vk_error("vkCreateCommandPool", r);
        ctx->m_pool = Handle<VkCommandPool>(&d, pool);
        VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        VkFence fence = VK_NULL_HANDLE;
        r = d.vk().vkCreateFence(d.handle(), &fi, d.allocator(), &fence);
        if (r != VK_SUCCESS) return d.vk_error("vkCreateFence", r);
        ctx->m_fence = Handle<VkFence>(&d, fence);
    }
    return ctx;
}

Result<VkCommandBuffer> Context::begin_once() const {
    const Device& d = *m_device;
    if (!m_pool)
        return make_error(ErrorCode::invalid_argument,
                          "this context has no queue (adopted without one): uploading weights needs a queue");
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = m_pool.get();
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkResult r = d.vk().vkAllocateCommandBuffers(d.handle(), &ai, &cmd);
    if (r != VK_SUCCESS) return d.vk_error("vkAllocateCommandBuffers", r);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    r = d.vk().vkBeginCommandBuffer(cmd, &bi);
    if (r != VK_SUCCESS) {
        d.vk().vkFreeCommandBuffers(d.handle(), m_pool.get(), 1, &cmd);
        return d.vk_error("vkBeginCommandBuffer", r);
    }
    return cmd;
}

Status Context::submit_and_wait(VkCommandBuffer cmd) const {
    const Device& d = *m_device;
    VkResult r = d.vk().vkEndCommandBuffer(cmd);
    if (r == VK_SUCCESS) {
        VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
        si.commandBufferCount = 1;
        si.pCommandBuffers = &cmd;
        VkFence fence = m_fence.get();
        d.vk().vkResetFences(d.handle(), 1, &fence);
        r = d.submit(1, &si, fence);
        if (r == VK_SUCCESS) r = d.vk().vkWaitForFences(d.handle(), 1, &fence, VK_TRUE, UINT64_MAX);
    }
    d.vk().vkFreeCommandBuffers(d.handle(), m_pool.get(), 1, &cmd);
    if (r != VK_SUCCESS) return d.vk_error("one-time upload submit", r);
    return {};
}

} // namespace vkmha
