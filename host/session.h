// Session: per-frame state for running one model — scratch activations for a declared shape budget, a ring of
// frame slots (descriptor sets, timestamp queries, host I/O buffers) reused only once the caller says a frame
// has completed, and the recorder that writes a forward pass into a command buffer.
#pragma once

#include "attention_plan.h"
#include "model.h"

#include <array>

namespace vkmha {

struct SessionLimits {
    AttentionShape max_shape;          // every recorded shape must fit inside
    uint32_t frames_in_flight = 2;     // 1..8
    bool host_io = false;              // allocate host-visible input/output buffers for submit_host/read_outputs
    bool host_weights = false;         // host_io: also staging for need_weights results ([B, H, Lq, Lk] floats)
    bool host_per_head_mask = false;   // host_io: mask staging for [B*H, Lq, Lk] instead of [Lq, Lk]
    uint64_t memory_budget = 0;        // bytes; 0 = no limit
    uint64_t scores_budget_bytes = 0;  // caps the per-chunk score scratch (0: 64 MiB); smaller = more chunks
    bool fused_only = false;           // no score scratch: need_weights and the unfused path are refused
    bool host_visible_scratch = false; // tests only: lets scratch() be read back to check each stage
};

// A caller-owned buffer bound for one record, and how the caller last used it (0 stage: no prior GPU use to wait
// on, e.g. written by the host before submission).
struct ExternalBuffer {
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceSize offset = 0;
    VkDeviceSize range = 0;
    VkPipelineStageFlags src_stage = 0;
    VkAccessFlags src_access = 0;
};

constexpr uint64_t kNoFrame = UINT64_MAX;

struct RecordArgs {
    uint64_t frame = 0;
    uint64_t completed_frame = kNoFrame; // every frame <= this has finished on the GPU (kNoFrame: none yet)
    AttentionShape shape;
    AttentionOptions options;
    ExternalBuffer query, key, value, key_padding_mask, attn_mask, output, weights; // key/value: null = query/key
};

struct HostInputs {
    const float* query = nullptr;
    const float* key = nullptr;   // null: self-attention
    const float* value = nullptr; // null: the key
    const uint8_t* key_padding_mask = nullptr;
    const void* attn_mask = nullptr; // bytes or floats per options.attn_mask
};

struct StageTiming {
    Stage stage;
    double ms;
};

class Session {
  public:
    static Result<VkDeviceSize> memory_required(const Context&, const Model&, const SessionLimits&);
    static Result<std::unique_ptr<Session>> create(const Context&, const Model&, const SessionLimits&);
    ~Session();

    // Records one forward pass into `cmd` (outside a render pass). Allocates nothing, waits on nothing.
    Status record(VkCommandBuffer cmd, const RecordArgs&);
    // Per-stage GPU time of a recorded frame once it has completed; not_ready until the results are available.
    Result<std::vector<StageTiming>> timings(uint64_t frame) const;

    // Host convenience path (needs host_io and a queue): upload, record, submit; returns the timeline value the
    // submission signals. Blocks only when the frame slot it needs is still in flight.
    Result<uint64_t> submit_host(const AttentionShape&, const AttentionOptions&, const HostInputs&);
    Status wait(uint64_t value, uint64_t timeout_ns) const;
    // Copies a completed submission's outputs; not_ready while it runs.
    Status read_outputs(uint64_t value, float* output, size_t output_count, float* weights, size_t weights_count) const;

    // A frame slot's scratch buffer (q, k, v, scores, concat); mapped only with host_visible_scratch. q, k, v and
    // concat hold the model's precision (fp16 models: IEEE binary16), the rest floats.
    const BufferView& scratch(uint64_t frame, Slot slot) const;

    const Model& model() const { return *m_model; }
    const SessionLimits& limits() const { return m_limits; }
    VkDeviceSize bytes() const { return m_arena.bytes(); }

  private:
    struct FrameSlot {
        std::vector<VkDescriptorSet> sets;
        Handle<VkQueryPool> queries;
        VkCommandBuffer host_cmd = VK_NULL_HANDLE;
        uint64_t recorded_frame = kNoFrame;
        std::vector<Stage> pass_stages; // stage of each timed pass of the recorded frame
        uint64_t host_value = 0;        // timeline value of the last submit_host in this slot
        AttentionShape host_shape;
        AttentionOptions host_options;
    };
    Session() = default;
    Status check_args(const RecordArgs&) const;
    const BufferView& slot_buffer(uint32_t slot_index, size_t which) const;

    const Context* m_ctx = nullptr;
    const Model* m_model = nullptr;
    SessionLimits m_limits;
    ScratchSizes m_scratch;
    uint32_t m_max_passes = 0;
    Arena m_arena;
    Handle<VkDescriptorPool> m_pool;
    Handle<VkCommandPool> m_cmd_pool;
    Handle<VkSemaphore> m_timeline;
    std::vector<FrameSlot> m_slots;
    // The last plan, reused while shape, options and binding offsets repeat: steady-state frames allocate nothing.
    AttentionPlan m_plan;
    PlanInputs m_plan_inputs;
    bool m_plan_valid = false;
    uint64_t m_host_submits = 0;
};

} // namespace vkmha
