// Session: per-frame state for running one model — scratch activations for a declared shape budget, a ring of
// frame slots (descriptor sets, timestamp queries, host I/O buffers) reused only once the caller says a frame
// has completed, and the recorder that writes a forward pass into a command buffer.
#pragma once

#include "attention_plan.h"
#include "kv_cache.h"
#include "model.h"
#include "prefill_job.h"

#include <array>
#include <span>

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
    bool host_submit = false;            // submit_host's own frame counter: the engine's frame checks do not apply
    AttentionShape shape;
    AttentionOptions options;
    ExternalBuffer query, key, value, key_padding_mask, attn_mask, output, weights; // key/value: null = query/key
    ExternalBuffer position_ids; // int32 [B, Lq] RoPE positions (self-attention: the keys' too); null: query i at
                                 // Lk - Lq + i, key j at j
    // Attention only (no projections): query, key and value are the caller's own Q [B, H, Lq, D], K and V
    // [B, G, Lk, D], output its O [B, H, Lq, D], each at qkv's strides (floats) from the buffer's offset; both K and V
    // are required. RoPE positions: position_ids for the queries (null: Lk - Lq + i), key_position_ids int32
    // [B, Lk] for the keys (null: j).
    bool own_qkv = false;
    OwnQkv qkv;
    ExternalBuffer key_position_ids;
};

// One sequence's share of a cached step: its new tokens, packed after the previous sequence's.
struct SequenceStep {
    uint32_t sequence = 0;   // index in the KV cache
    uint32_t new_tokens = 0; // >= 1
};

// A ragged batch over a KV cache: every listed sequence appends its new tokens' K/V and attends causally over its
// cached positions, all in one pass. query/key/value/output are [T, width] with T = sum of new_tokens (the session's
// token budget, max batch x max query length, bounds T); key/value null = the query (self-attention).
// key_padding_mask (optional): [cache sequences, capacity] bytes by slot, nonzero = never attend to that key.
struct CachedRecordArgs {
    uint64_t frame = 0;
    uint64_t completed_frame = kNoFrame;
    bool host_submit = false; // as RecordArgs::host_submit
    KvCache* cache = nullptr;
    std::span<const SequenceStep> steps;
    ExternalBuffer query, key, value, key_padding_mask, output;
    ExternalBuffer position_ids; // int32 [T] RoPE positions of the new tokens; null = their cache positions
    // The caller's own Q [T, H, D], K and V [T, G, D] and O [T, H, D] at qkv's head and row strides (batch unused):
    // its K/V rows are appended to the cache as they are (then rotated), no projections. key and value required.
    bool own_qkv = false;
    OwnQkv qkv;
};

// One frame's share of a sliced prefill. The buffers are the whole prompt's ([tokens, width]; key/value null = the
// query) and must hold the same data on every step of the job; output is written by the last steps.
// budget_ms > 0 sizes the piece from the job's measured costs (the first piece of each phase is small); max_rows /
// max_keys (0: none) cap it; with neither, one step does a whole phase.
struct PrefillRecordArgs {
    uint64_t frame = 0;
    uint64_t completed_frame = kNoFrame;
    PrefillJob* job = nullptr;
    double budget_ms = 0;
    uint32_t max_rows = 0;
    uint32_t max_keys = 0;
    ExternalBuffer query, key, value, output;
    ExternalBuffer position_ids; // int32 [tokens]: the prompt's RoPE positions, the same on every step; null = their
                                 // cache positions
};

struct HostInputs {
    const float* query = nullptr;
    const float* key = nullptr;   // null: self-attention
    const float* value = nullptr; // null: the key
    const uint8_t* key_padding_mask = nullptr;
    const void* attn_mask = nullptr;       // bytes or floats per options.attn_mask
    const int32_t* position_ids = nullptr; // [B, Lq] RoPE positions, as RecordArgs::position_ids
    // query, key and value are the caller's own contiguous Q [B, H, Lq, D], K and V [B, G, Lk, D], and read_outputs
    // returns O [B, H, Lq, D] (RecordArgs::own_qkv); submit_host_cached: Q [T, H, D], K and V [T, G, D], O [T, H, D].
    bool own_qkv = false;
    const int32_t* key_position_ids = nullptr; // own_qkv: [B, Lk]
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
    // The cached-step counterpart of submit_host: query [T, E] (key/value null: the query), key_padding_mask
    // [cache sequences, capacity] bytes or null. read_outputs then returns [T, E].
    Result<uint64_t> submit_host_cached(KvCache&, std::span<const SequenceStep>, const HostInputs&);

    // Records a cached step (see CachedRecordArgs). Advances the cache's lengths: record in submission order.
    Status record_cached(VkCommandBuffer cmd, const CachedRecordArgs&);

    // Records the job's next piece (nothing once it is done) and returns it. Reads the GPU time of the job's
    // completed earlier pieces first (timestamps), which sizes this one.
    Result<PrefillItem> record_prefill(VkCommandBuffer cmd, const PrefillRecordArgs&);

    // Copies a completed submission's outputs; not_ready while it runs.
    Status read_outputs(uint64_t value, float* output, size_t output_count, float* weights, size_t weights_count) const;

    // A frame slot's scratch buffer (q, k, v, scores, concat); mapped only with host_visible_scratch. q, k, v and
    // concat hold the model's precision (fp16 models: IEEE binary16), the rest floats.
    const BufferView& scratch(uint64_t frame, Slot slot) const;

    const Model& model() const { return *m_model; }
    const SessionLimits& limits() const { return m_limits; }
    VkDeviceSize bytes() const { return m_arena.bytes(); }

  private:
    // Per frame slot, arena buffers in this order.
    enum SlotBuffer : size_t {
        sb_q,
        sb_k,
        sb_v,
        sb_scores,
        sb_concat,
        sb_lse,
        sb_partials,
        sb_records,
        sb_sink,
        sb_in_query,
        sb_in_key,
        sb_in_value,
        sb_in_kpm,
        sb_in_mask,
        sb_in_positions,
        sb_out_output,
        sb_out_weights,
        sb_count
    };
    // Splits a caller offset into a binding offset the device accepts and an element remainder for the shader.
    struct Bound {
        VkDescriptorBufferInfo info{};
        uint32_t remainder = 0;
    };
    using Bindings = std::array<Bound, kSlotCount>;
    struct FrameSlot {
        std::vector<VkDescriptorSet> sets;
        Handle<VkQueryPool> queries;
        VkCommandBuffer host_cmd = VK_NULL_HANDLE;
        uint64_t recorded_frame = kNoFrame;
        std::vector<Stage> pass_stages; // stage of each timed pass of the recorded frame
        uint64_t host_value = 0;        // timeline value of the last submit_host in this slot
        AttentionShape host_shape;      // cached steps: batch 1, lq = tokens
        AttentionOptions host_options;
        bool host_own_qkv = false; // read_outputs returns O [B, H, Lq, D]
    };
    Session() = default;
    Status check_args(const RecordArgs&) const;
    Status check_own_qkv(const RecordArgs&) const;
    const BufferView& slot_buffer(uint32_t slot_index, size_t which) const;
    Bound bind_external(const ExternalBuffer&, uint64_t needed_bytes, uint64_t elem_bytes) const;
    // The frame slot a frame records into, once the caller's completed frame shows its last use finished. An engine's
    // frames (host_submit false) must also be sane: completed_frame < frame, frames never go back, and a session
    // records once per frame (its frame slot's descriptor sets and timestamps serve one record).
    Result<uint32_t> claim_slot(uint64_t frame, uint64_t completed_frame, bool host_submit = false) const;
    // After a record into `slot_index`: the slot's frame, and the session's last engine frame.
    void mark_recorded(uint32_t slot_index, uint64_t frame, bool host_submit);
    // Binds the model's weights, the slot's scratch, and the dummy wherever nothing else is bound.
    void bind_owned(Bindings&, uint32_t slot_index) const;
    // Binds a cached recorder's token buffers ([tokens, width]; unbound key/value = query) and the cache's K/V, and
    // returns the plan inputs the model, the cache and those bindings decide.
    CachePlanBase cache_plan_base(const KvCache&, Bindings&, const ExternalBuffer& query, const ExternalBuffer& key,
                                  const ExternalBuffer& value, const ExternalBuffer& output, uint64_t tokens,
                                  const OwnQkv* qkv = nullptr) const;
    // Entry barrier (the caller's last use of `reads`/`writes`, earlier vkmha work), then every pass, timed.
    void record_plan(VkCommandBuffer, uint32_t slot_index, const AttentionPlan&, const Bindings&,
                     std::span<const ExternalBuffer* const> reads, std::span<const ExternalBuffer* const> writes,
                     const char* label);
    // Begins a slot's host command buffer (its previous submission waited for).
    Result<uint32_t> begin_host_submit();
    Result<uint64_t> end_host_submit(uint32_t slot_index, Status recorded);

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
    AttentionPlan m_cached_plan; // rebuilt by every cached step and prefill piece, in place
    uint64_t m_host_submits = 0;
    uint64_t m_last_engine_frame = kNoFrame; // the last frame an engine recorded (kNoFrame: none yet)
};

} // namespace vkmha
