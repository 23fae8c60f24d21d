// ExternalBuffer: a caller-owned buffer bound for one record, and the frame-index sentinel every recorder's
// arguments share (session.h, prefill_job.h).
#pragma once

#include "vulkan/dispatch.h"

#include <cstdint>

namespace vkmha {

// A caller-owned buffer bound for one record, and how the caller last used it (0 stage: no prior GPU use to wait
// on, e.g. written by the host before submission).
struct ExternalBuffer {
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceSize offset = 0;
    VkDeviceSize range = 0;
    VkPipelineStageFlags src_stage = 0;
    VkAccessFlags src_access = 0;
};

// "No frame": a completed_frame before any frame has completed, or a frame slot that holds no recorded frame.
constexpr uint64_t kNoFrame = UINT64_MAX;

} // namespace vkmha
