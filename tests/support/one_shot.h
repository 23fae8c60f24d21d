// A one-shot command buffer on a device, for tests of the record_* paths: begin, record, submit and wait.
#pragma once

#include "vulkan/device.h"

#include <doctest/doctest.h>

namespace vkmha::test {

class OneShot {
  public:
    explicit OneShot(const Device& d) : m_d(d) {
        const auto& vk = d.vk();
        VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
        pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
        pi.queueFamilyIndex = d.queue_family();
        REQUIRE(vk.vkCreateCommandPool(d.handle(), &pi, d.allocator(), &m_pool) == VK_SUCCESS);
        VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
        ai.commandPool = m_pool;
        ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
        ai.commandBufferCount = 1;
        REQUIRE(vk.vkAllocateCommandBuffers(d.handle(), &ai, &m_cmd) == VK_SUCCESS);
        VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        REQUIRE(vk.vkCreateFence(d.handle(), &fi, d.allocator(), &m_fence) == VK_SUCCESS);
    }
    ~OneShot() {
        const auto& vk = m_d.vk();
        if (m_fence) vk.vkDestroyFence(m_d.handle(), m_fence, m_d.allocator());
        if (m_pool) vk.vkDestroyCommandPool(m_d.handle(), m_pool, m_d.allocator());
    }
    OneShot(const OneShot&) = delete;
    OneShot& operator=(const OneShot&) = delete;

    VkCommandBuffer begin() {
        const auto& vk = m_d.vk();
        REQUIRE(vk.vkResetCommandBuffer(m_cmd, 0) == VK_SUCCESS);
        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        REQUIRE(vk.vkBeginCommandBuffer(m_cmd, &bi) == VK_SUCCESS);
        return m_cmd;
    }
    // Ends (with a barrier that makes shader writes visible to the host), submits, and waits.
    void submit_and_wait() {
        const auto& vk = m_d.vk();
        VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        vk.vkCmdPipelineBarrier(m_cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host,
                                0, nullptr, 0, nullptr);
        REQUIRE(vk.vkEndCommandBuffer(m_cmd) == VK_SUCCESS);
        VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
        si.commandBufferCount = 1;
        si.pCommandBuffers = &m_cmd;
        REQUIRE(m_d.submit(1, &si, m_fence) == VK_SUCCESS);
        REQUIRE(vk.vkWaitForFences(m_d.handle(), 1, &m_fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
        REQUIRE(vk.vkResetFences(m_d.handle(), 1, &m_fence) == VK_SUCCESS);
    }

  private:
    const Device& m_d;
    VkCommandPool m_pool = VK_NULL_HANDLE;
    VkCommandBuffer m_cmd = VK_NULL_HANDLE;
    VkFence m_fence = VK_NULL_HANDLE;
};

} // namespace vkmha::test
