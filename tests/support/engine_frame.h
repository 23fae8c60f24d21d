// The engine's side of a frame around a vkmha record, as the adopt-mode suites play it: begin a one-time command
// buffer, the exit barrier the contract leaves to the engine, end-submit-wait, the engine objects that must outlive
// the vkmha handles, and the checks on the engine device itself.
// Callers include this after `#undef VK_NO_PROTOTYPES` (see engine_device.h).
#pragma once

#include "support/engine_device.h"

#include <vector>

namespace vkmha::test {

// Resets and begins `cmd` for one submit.
void begin_command_buffer(VkCommandBuffer cmd);

// The engine's side of the exit contract: outputs were last written by compute shaders; the host reads them next.
void barrier_to_host(VkCommandBuffer cmd);

// Ends `cmd`, submits it signalling `fence` and waits for it.
void end_submit_wait(const EngineDevice& e, VkCommandBuffer cmd, VkFence fence);

// Engine objects around a vkmha context: declared before the vkmha handles so that they are destroyed after them.
struct EngineObjects {
    EngineDevice& engine;
    VkCommandPool pool = VK_NULL_HANDLE;
    std::vector<VkFence> fences;

    explicit EngineObjects(EngineDevice& e);
    EngineObjects(const EngineObjects&) = delete;
    EngineObjects& operator=(const EngineObjects&) = delete;
    VkCommandBuffer command_buffer();
    VkFence fence();
    ~EngineObjects();
};

// REQUIREs that the engine device was created, naming why not.
void require_engine(const EngineDevice& e);

// The engine's own messenger saw no validation message (call after engine.destroy() to include its reports).
void check_engine_quiet(const EngineDevice& e);

} // namespace vkmha::test
