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
    if (d.has_queue() && !d.compile_only()) {
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

Context::~Context() {
    if (m_pending_upload == VK_NULL_HANDLE) return;
    const Device& d = *m_device;
    VkFence fence = m_fence.get();
    (void)d.vk().vkWaitForFences(d.handle(), 1, &fence, VK_TRUE, UINT64_MAX);
    d.vk().vkFreeCommandBuffers(d.handle(), m_pool.get(), 1, &m_pending_upload);
}

Result<VkCommandBuffer> Context::begin_once() const {
    const Device& d = *m_device;
    if (d.compile_only())
        return make_error(ErrorCode::unsupported, "context on '" + d.info().name +
                                                      "' is compile-only: it builds pipelines for their statistics "
                                                      "and never submits work (uploading weights would)");
    if (!m_pool)
        return make_error(ErrorCode::invalid_argument,
                          "this context has no queue (adopted without one): uploading weights needs a queue");
    if (m_pending_upload != VK_NULL_HANDLE) {
        // An earlier upload's wait failed: the fence and its command buffer may still be in use.
        VkFence fence = m_fence.get();
        VkResult r = d.vk().vkWaitForFences(d.handle(), 1, &fence, VK_TRUE, UINT64_MAX);
        if (r != VK_SUCCESS) return d.vk_error("vkWaitForFences (an earlier one-time upload)", r);
        d.vk().vkFreeCommandBuffers(d.handle(), m_pool.get(), 1, &m_pending_upload);
        m_pending_upload = VK_NULL_HANDLE;
    }
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

// Each step names itself when it fails: "vkResetFences failed" tells an engine's log more than "upload failed".
Status Context::submit_and_wait(VkCommandBuffer cmd) const {
    const Device& d = *m_device;
    auto discard = [&](Error e) -> Status {
        d.vk().vkFreeCommandBuffers(d.handle(), m_pool.get(), 1, &cmd);
        return e;
    };
    VkResult r = d.vk().vkEndCommandBuffer(cmd);
    if (r != VK_SUCCESS) return discard(d.vk_error("vkEndCommandBuffer (one-time upload)", r));
    VkFence fence = m_fence.get();
    // Unchecked, a failed reset would leave the fence signalled and the wait below would return before the upload
    // ran: the model would read uninitialised weights.
    r = d.vk().vkResetFences(d.handle(), 1, &fence);
    if (r != VK_SUCCESS) return discard(d.vk_error("vkResetFences (one-time upload)", r));
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd;
    r = d.submit(1, &si, fence);
    if (r != VK_SUCCESS) return discard(d.vk_error("vkQueueSubmit (one-time upload)", r)); // nothing was queued
    return wait_upload(cmd);
}

// The upload was queued: its command buffer and the fence are in use until the fence signals.
Status Context::wait_upload(VkCommandBuffer cmd) const {
    const Device& d = *m_device;
    VkFence fence = m_fence.get();
    VkResult r = d.vk().vkWaitForFences(d.handle(), 1, &fence, VK_TRUE, UINT64_MAX);
    if (r == VK_SUCCESS) {
        d.vk().vkFreeCommandBuffers(d.handle(), m_pool.get(), 1, &cmd);
        return {};
    }
    Error error = d.vk_error("vkWaitForFences (one-time upload)", r);
    // The caller frees the staging and the model's buffers on this error, so the GPU must be done with them: wait
    // once more. Only when that fails too (a lost device returns at once) is the command buffer kept, and the fence
    // left alone, until a later wait succeeds.
    if (d.vk().vkWaitForFences(d.handle(), 1, &fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS)
        d.vk().vkFreeCommandBuffers(d.handle(), m_pool.get(), 1, &cmd);
    else
        m_pending_upload = cmd;
    return error;
}

} // namespace vkmha
