// The engine's side of a frame; see engine_frame.h.
#undef VK_NO_PROTOTYPES // the engine's side calls the Vulkan loader directly; the library never does
#include "support/engine_frame.h"

#include <doctest/doctest.h>

#include <cstdint>

namespace vkmha::test {

void begin_command_buffer(VkCommandBuffer cmd) {
    REQUIRE(vkResetCommandBuffer(cmd, 0) == VK_SUCCESS);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    REQUIRE(vkBeginCommandBuffer(cmd, &bi) == VK_SUCCESS);
}

void barrier_to_host(VkCommandBuffer cmd) {
    VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    b.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &b, 0, nullptr, 0,
                         nullptr);
}

void end_submit_wait(const EngineDevice& e, VkCommandBuffer cmd, VkFence fence) {
    REQUIRE(vkEndCommandBuffer(cmd) == VK_SUCCESS);
    REQUIRE(vkResetFences(e.device(), 1, &fence) == VK_SUCCESS);
    REQUIRE(e.submit(cmd, fence) == VK_SUCCESS);
    REQUIRE(vkWaitForFences(e.device(), 1, &fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
}

EngineObjects::EngineObjects(EngineDevice& e) : engine(e) {
    pool = e.create_command_pool();
    REQUIRE(pool != VK_NULL_HANDLE);
}

VkCommandBuffer EngineObjects::command_buffer() {
    VkCommandBuffer cmd = engine.allocate_command_buffer(pool);
    REQUIRE(cmd != VK_NULL_HANDLE);
    return cmd;
}

VkFence EngineObjects::fence() {
    VkFence f = engine.create_fence();
    REQUIRE(f != VK_NULL_HANDLE);
    fences.push_back(f);
    return f;
}

EngineObjects::~EngineObjects() {
    if (!engine.ok()) return;
    vkDeviceWaitIdle(engine.device());
    for (VkFence f : fences) vkDestroyFence(engine.device(), f, nullptr);
    vkDestroyCommandPool(engine.device(), pool, nullptr);
}

void require_engine(const EngineDevice& e) { REQUIRE_MESSAGE(e.ok(), "engine device: ", e.error()); }

void check_engine_quiet(const EngineDevice& e) {
    CHECK_MESSAGE(e.validation_messages() == 0, "the engine's messenger saw ", e.validation_messages(),
                  " validation messages; last: ", e.last_validation_message());
}

} // namespace vkmha::test
