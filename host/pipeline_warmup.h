// Pipeline warm-up: one dispatch of every pipeline a model's sessions may bind, recorded into the upload createModel
// already submits and waits for, so that no frame pays for compiling one. vkCreateComputePipelines is not enough
// everywhere: llvmpipe (lavapipe) JIT-compiles a pipeline's machine code at its first dispatch, which made frame 0
// of a cold start take seconds (issue 12). The dispatches have no workgroups, so they read and write nothing.
#pragma once

#include "context.h"
#include "vulkan/arena.h"

#include <span>
#include <vector>

namespace vkmha {

// The pipelines a model of `precision` may bind that the context owns (every kernel of the variants that precision
// runs, fp32 included), in kernel order.
std::vector<VkPipeline> context_pipelines_for(const Context&, Precision);

class PipelineWarmup {
  public:
    // A descriptor set with every binding on `buffer` (any small buffer that outlives the warm-up's submission).
    static Result<PipelineWarmup> create(const Context&, const BufferView& buffer);
    // Records a zero-workgroup dispatch of each pipeline, with a compute barrier between them (every binding counts
    // as written). Leaves the command buffer's compute state bound to the last pipeline.
    void record(VkCommandBuffer, std::span<const VkPipeline>) const;

  private:
    const Context* m_ctx = nullptr;
    Handle<VkDescriptorPool> m_pool;
    VkDescriptorSet m_set = VK_NULL_HANDLE;
};

} // namespace vkmha
