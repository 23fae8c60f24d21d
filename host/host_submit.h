// HostSubmitter: the host convenience path over a Session. It stages the caller's host arrays in host-visible
// buffers, records through the session's recorders (Session::record, Session::record_cached) into its own command
// buffer exactly as an engine would, submits to the context's queue signalling a timeline semaphore, and copies the
// outputs back once that value is reached. A session created with host_io owns one (Session::host_submitter); the
// C ABI's submit, submitCached, wait and readOutputs calls on that session land here.
#pragma once

#include "session.h"

#include <memory>
#include <span>
#include <vector>

namespace vkmha {

struct HostInputs {
    const float* query = nullptr;
    const float* key = nullptr;   // null: self-attention
    const float* value = nullptr; // null: the key
    const uint8_t* key_padding_mask = nullptr;
    const void* attn_mask = nullptr;       // bytes or floats per options.attn_mask
    const int32_t* position_ids = nullptr; // [B, Lq] RoPE positions, as RecordArgs::position_ids
    // query, key and value are the caller's own contiguous Q [B, H, Lq, D], K and V [B, G, Lk, D], and read_outputs
    // returns O [B, H, Lq, D] (RecordArgs::own_qkv); submit_cached: Q [T, H, D], K and V [T, G, D], O [T, H, D].
    bool own_qkv = false;
    const int32_t* key_position_ids = nullptr; // own_qkv: [B, Lk]
    std::span<const float> head_factors;       // the head mask (1.3), as RecordArgs::head_factors
};

class HostSubmitter {
  public:
    // A submitter needs a queue and timeline semaphores: unsupported when the device lacks either.
    static Status check_device(const Device&);
    // The staging every frame slot of a session with these limits holds, in bytes.
    static Result<VkDeviceSize> memory_required(const Context&, const Model&, const SessionLimits&);
    // A submitter over `session` (which must outlive it), sized by the session's limits (host_weights,
    // host_per_head_mask, max_shape, frames_in_flight).
    static Result<std::unique_ptr<HostSubmitter>> create(const Context&, Session&);
    // Waits for the submitter's submissions: they use its staging and the session's buffers and sets.
    ~HostSubmitter();
    HostSubmitter(const HostSubmitter&) = delete;
    HostSubmitter& operator=(const HostSubmitter&) = delete;

    // Upload, record, submit; returns the timeline value the submission signals. Blocks only when the frame slot it
    // needs is still in flight.
    Result<uint64_t> submit(const AttentionShape&, const AttentionOptions&, const HostInputs&);
    // The cached-step counterpart of submit: query [T, E] (key/value null: the query), key_padding_mask
    // [cache sequences, capacity] bytes or null. read_outputs then returns [T, E].
    Result<uint64_t> submit_cached(KvCache&, std::span<const SequenceStep>, const HostInputs&);
    Status wait(uint64_t value, uint64_t timeout_ns) const;
    // Copies a completed submission's outputs; not_ready while it runs.
    Status read_outputs(uint64_t value, float* output, size_t output_count, float* weights, size_t weights_count) const;

    VkDeviceSize bytes() const { return m_arena.bytes(); }

  private:
    // The staging buffers every frame slot holds, in their arena order: frame slot f's buffer b is arena entry
    // f * Staging::count + b.
    enum class Staging : size_t {
        query,
        key,
        value,
        key_padding_mask,
        attn_mask,
        position_ids, // the queries' positions, then (attention-only submits) the keys'
        output,
        weights,
        count
    };
    // What the submitter keeps per entry of the session's frame ring: submission N (its host frame N - 1) uses frame
    // slot (N - 1) % frames_in_flight, the same slot the session records it into.
    struct FrameSlot {
        VkCommandBuffer cmd = VK_NULL_HANDLE;
        uint64_t value = 0;   // timeline value of the last submission from this slot (0: none)
        AttentionShape shape; // cached steps: batch 1, lq = tokens
        AttentionOptions options;
        bool own_qkv = false; // read_outputs returns O [B, H, Lq, D]
    };
    HostSubmitter() = default;
    const BufferView& staging(uint32_t frame_slot, Staging) const;
    // Begins the next submission's command buffer once its frame slot's previous submission has finished.
    Result<uint32_t> begin();
    // Ends and submits the command buffer of `frame_slot` (unless `recorded` failed): the next timeline value.
    Result<uint64_t> end(uint32_t frame_slot, Status recorded);

    const Context* m_ctx = nullptr;
    Session* m_session = nullptr;
    Arena m_arena;
    Handle<VkCommandPool> m_cmd_pool;
    Handle<VkSemaphore> m_timeline;
    std::vector<FrameSlot> m_frame_slots;
    uint64_t m_submits = 0; // submissions so far: the last timeline value, and the next host frame index
};

} // namespace vkmha
