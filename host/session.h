// Session: per-frame state for running one model — scratch activations for a declared shape budget, a ring of
// frame slots (descriptor sets, timestamp queries) reused only once the caller says a frame has completed, and the
// recorders that write a forward pass, a cached step or a prefill piece into a command buffer. Recording is all a
// session does: the host convenience path (upload, submit, wait, read back) is a HostSubmitter (host_submit.h) that
// calls these recorders as an engine would; a session created with host_io owns one.
#pragma once

#include "attention_plan.h"
#include "external_buffer.h"
#include "kv_cache.h"
#include "model.h"
#include "prefill_job.h"
#include "scratch_arena.h"

#include <array>
#include <memory>
#include <span>

namespace vkmha {

class HostSubmitter;

struct SessionLimits {
    AttentionShape max_shape;          // every recorded shape must fit inside
    uint32_t frames_in_flight = 2;     // 1..8
    bool host_io = false;              // create a HostSubmitter (its staging buffers, queue submission, timeline)
    bool host_weights = false;         // host_io: also staging for need_weights results ([B, H, Lq, Lk] floats)
    bool host_per_head_mask = false;   // host_io: mask staging for [B*H, Lq, Lk] instead of [Lq, Lk]
    uint64_t memory_budget = 0;        // bytes; 0 = no limit
    uint64_t scores_budget_bytes = 0;  // caps the per-chunk score scratch (0: 64 MiB); smaller = more chunks
    bool fused_only = false;           // no score scratch: need_weights and the unfused path are refused
    bool host_visible_scratch = false; // tests only: lets scratch() be read back to check each stage
    // false: no timestamp query pool, and no query reset or timestamp write in any record (shipping builds); timings()
    // then refuses. On by default so that a caller who never asks keeps the behaviour of API 1.2.
    bool timestamps = true;
    // Take the scratch (Q/K/V, scores, concat, LSE, partials) from this arena instead of allocating it: the arena's
    // frames_in_flight must equal frames_in_flight, its bytes_per_frame must cover scratch_bytes_per_frame, and
    // host_io is refused. The session shares ownership, so the arena lives as long as its last session.
    std::shared_ptr<ScratchArena> scratch_arena;
};

struct RecordArgs {
    uint64_t frame = 0;
    uint64_t completed_frame = kNoFrame; // every frame <= this has finished on the GPU (kNoFrame: none yet)
    bool host_submit = false;            // a HostSubmitter's own frame counter: the engine's frame checks do not apply
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
    std::span<const float> head_factors; // the head mask (1.3): empty, [H] or [B, H] factors; read during the call
};

// One sequence's share of a cached step: its new tokens, packed after the previous sequence's.
struct SequenceStep {
    uint32_t sequence = 0;   // index in the KV cache
    uint32_t new_tokens = 0; // >= 1
};

// A ragged batch over a KV cache: every listed sequence appends its new tokens' K/V and attends causally over its
// cached positions, all in one pass. query/key/value/output are [T, width] with T = sum of new_tokens (the session's
// token budget, max batch x max query length, bounds T); key/value null = the query (self-attention).
// key_padding_mask (optional): [cache sequences, capacity] bytes by ring position (kv_cache.h), nonzero = never
// attend to that key.
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
    std::span<const float> head_factors; // the head mask (1.3): empty or [H] factors for every token
};

struct StageTiming {
    Stage stage;
    double ms;
};

class Session {
  public:
    static Result<VkDeviceSize> memory_required(const Context&, const Model&, const SessionLimits&);
    static Result<std::unique_ptr<Session>> create(const Context&, const Model&, const SessionLimits&);
    // The scratch one frame slot takes, each buffer rounded up to kScratchAlignment: what an arena must hold per
    // frame for this session (the limits' arena, if any, is not consulted).
    static Result<VkDeviceSize> scratch_bytes_per_frame(const Context&, const Model&, const SessionLimits&);
    ~Session();

    // Records one forward pass into `cmd` (outside a render pass). Allocates nothing, waits on nothing.
    Status record(VkCommandBuffer cmd, const RecordArgs&);
    // The checks record makes on its arguments, without recording (the host path checks before it stages).
    Status check(const RecordArgs&) const;
    // Per-stage GPU time of a recorded frame once it has completed; not_ready until the results are available.
    Result<std::vector<StageTiming>> timings(uint64_t frame) const;

    // Records a cached step (see CachedRecordArgs). Advances the cache's lengths: record in submission order.
    Status record_cached(VkCommandBuffer cmd, const CachedRecordArgs&);

    // Records the job's next piece (nothing once it is done) and returns it. Reads the GPU time of the job's
    // completed earlier pieces first (timestamps), which sizes this one.
    Result<PrefillItem> record_prefill(VkCommandBuffer cmd, const PrefillRecordArgs&);

    // For a HostSubmitter, before it records host frame `frame`: it has waited for that frame's slot, so whatever
    // the slot last recorded (and its timings) is forgotten.
    void release_frame_slot(uint64_t frame);

    // A frame slot's scratch buffer for a buffer role (q, k, v, scores, concat, lse, partials); mapped only with
    // host_visible_scratch. q, k, v and concat hold the model's precision (fp16 models: IEEE binary16), the rest
    // floats.
    const BufferView& scratch(uint64_t frame, BufferRole role) const;

    // The host-submit path: non-null exactly when the session was created with host_io.
    HostSubmitter* host_submitter() { return m_host_submitter.get(); }
    const HostSubmitter* host_submitter() const { return m_host_submitter.get(); }

    const Model& model() const { return *m_model; }
    const SessionLimits& limits() const { return m_limits; }
    VkDeviceSize bytes() const; // the session's own device memory, its host submitter's staging included (not an
                                // arena's)

  private:
    // The scratch buffers every frame slot holds, in their arena order: frame slot f's buffer b is arena entry
    // f * ScratchBuffer::count + b. (Which buffer, not which frame slot: frame slots are m_frame_slots.)
    enum class ScratchBuffer : size_t { q, k, v, scores, concat, lse, partials, records, sink, count };
    // Splits a caller offset into a binding offset the device accepts and an element remainder for the shader.
    struct Bound {
        VkDescriptorBufferInfo info{};
        uint32_t remainder = 0;
    };
    using Bindings = std::array<Bound, kBufferRoleCount>;
    // One entry of the frame ring: frame N records into frame slot N % frames_in_flight.
    struct FrameSlot {
        std::vector<VkDescriptorSet> sets;
        Handle<VkQueryPool> queries;
        uint64_t recorded_frame = kNoFrame;
        std::vector<Stage> pass_stages; // stage of each timed pass of the recorded frame
    };
    Session() = default;
    Status check_own_qkv(const RecordArgs&) const;
    const BufferView& scratch_buffer(uint32_t frame_slot, ScratchBuffer) const;
    // Fills m_scratch_views: from the own arena, or the shared arena's frame buffers plus the own records and sink.
    void place_scratch();
    Bound bind_external(const ExternalBuffer&, uint64_t needed_bytes, uint64_t elem_bytes) const;
    // The frame slot a frame records into, once the caller's completed frame shows its last use finished. An engine's
    // frames (host_submit false) must also be sane: completed_frame < frame, frames never go back, and a session
    // records once per frame (its frame slot's descriptor sets and timestamps serve one record).
    Result<uint32_t> claim_frame_slot(uint64_t frame, uint64_t completed_frame, bool host_submit = false) const;
    // After a record into `frame_slot`: the slot's frame, and the session's last engine frame.
    void mark_recorded(uint32_t frame_slot, uint64_t frame, bool host_submit);
    // Binds the model's weights, the frame slot's scratch, and the dummy wherever nothing else is bound.
    void bind_owned(Bindings&, uint32_t frame_slot) const;
    // Binds a cached recorder's token buffers ([tokens, width]; unbound key/value = query) and the cache's K/V, and
    // returns the plan inputs the model, the cache and those bindings decide.
    CachePlanBase cache_plan_base(const KvCache&, Bindings&, const ExternalBuffer& query, const ExternalBuffer& key,
                                  const ExternalBuffer& value, const ExternalBuffer& output, uint64_t tokens,
                                  const OwnQkv* qkv = nullptr) const;
    // Entry barrier (the caller's last use of `reads`/`writes`, earlier vkmha work), then every pass, timed.
    void record_plan(VkCommandBuffer, uint32_t frame_slot, const AttentionPlan&, const Bindings&,
                     std::span<const ExternalBuffer* const> reads, std::span<const ExternalBuffer* const> writes,
                     const char* label);

    const Context* m_ctx = nullptr;
    const Model* m_model = nullptr;
    PlanModel m_plan_model; // the model's facts, as every plan reads them
    SessionLimits m_limits;
    ScratchSizes m_scratch;
    uint32_t m_max_passes = 0;
    Arena m_arena;
    std::vector<BufferView> m_scratch_views; // frame slot f's buffer b is entry f * ScratchBuffer::count + b
    Handle<VkDescriptorPool> m_pool;
    std::vector<FrameSlot> m_frame_slots;
    // The last plan, reused while shape, options and binding offsets repeat: steady-state frames allocate nothing.
    AttentionPlan m_plan;
    PlanInputs m_plan_inputs;
    bool m_plan_valid = false;
    AttentionPlan m_cached_plan;             // rebuilt by every cached step and prefill piece, in place
    uint64_t m_last_engine_frame = kNoFrame; // the last frame an engine recorded (kNoFrame: none yet)
    // Last, so it goes first: its destructor waits for its submissions, which use this session's buffers and sets.
    std::unique_ptr<HostSubmitter> m_host_submitter;
};

} // namespace vkmha
