// PrefillJob: a long prompt digested into a KV cache across frames, each frame's share bounded by a GPU-time budget.
// The job projects the prompt's rows in chunks (Q into the job, K/V into the cache), then runs the attention in
// pieces of (key range, block of rows) — key ranges in order, each over every row that can see it — keeping each
// row's running max, sum and accumulator in device memory between pieces (so the merge is exact: the result equals
// the one-shot pass), normalizes, and projects the output in row chunks. Slice sizes come from the GPU timestamps of
// the job's earlier slices (Session::record_prefill).
//
// The prefill types, together: PrefillJobInfo (what to prefill), PrefillJob (the job's state), PrefillRecordArgs
// (one frame's record of it) and, from prefill_item.h, PrefillPhase and PrefillItem (one piece, which the planner
// takes too; the planner's own PrefillItemInputs stays in attention_plan.h).
#pragma once

#include "external_buffer.h"
#include "kv_cache.h"
#include "prefill_item.h"

#include <array>
#include <span>
#include <vector>

namespace vkmha {

class PrefillJob;

struct PrefillJobInfo {
    uint32_t sequence = 0; // in the cache; the prompt continues whatever the sequence already holds
    uint32_t tokens = 0;   // >= 1
};

// One frame's share of a sliced prefill (Session::record_prefill). The buffers are the whole prompt's
// ([tokens, width]; key/value null = the query) and must hold the same data on every step of the job; output is
// written by the last steps. budget_ms > 0 sizes the piece from the job's measured costs (the first piece of each
// phase is small); max_rows / max_keys (0: none) cap it; with neither, one step does a whole phase.
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
    std::span<const float> head_factors; // the head mask (1.3): empty or [H] factors, the same on every step
};

class PrefillJob {
  public:
    static Result<VkDeviceSize> memory_required(const Context&, const KvCache&, uint32_t tokens);
    // Reserves the prompt's positions in the cache; the sequence is busy (no steps, no rollback) until done.
    static Result<std::unique_ptr<PrefillJob>> create(const Context&, KvCache&, const PrefillJobInfo&);
    // An unfinished job gives its positions back: the sequence returns to where the job started.
    ~PrefillJob();
    PrefillJob(const PrefillJob&) = delete;
    PrefillJob& operator=(const PrefillJob&) = delete;

    bool done() const { return m_phase == kDone; }
    double progress() const; // 0..1, by estimated arithmetic
    uint32_t tokens() const { return m_info.tokens; }
    uint32_t sequence() const { return m_info.sequence; }
    uint32_t first_position() const { return m_first_position; }
    KvCache& cache() const { return *m_cache; }

    // For Session::record_prefill. The next item: as much as budget_ms allows by the costs measured so far (one
    // small item while unmeasured), capped by max_rows/max_keys (0: no cap) and max_dispatch_keys.
    PrefillItem next(double budget_ms, uint32_t max_rows, uint32_t max_keys, uint32_t key_tile,
                     uint32_t max_dispatch_keys) const;
    void advance(const PrefillItem&);
    void observe(PrefillPhase, double units, double ms);
    // Pieces recorded but not yet measured, oldest first (a fixed ring: recording allocates nothing).
    struct Pending {
        uint64_t frame = 0;
        PrefillPhase phase = PrefillPhase::project;
        double units = 0;
    };
    bool has_pending() const { return m_pending_count > 0; }
    const Pending& oldest_pending() const { return m_pending[m_pending_first]; }
    void pop_pending();
    void push_pending(const Pending&); // drops the oldest when full
    const BufferView& q() const { return m_arena[0]; }
    const BufferView& state() const { return m_arena[1]; }
    const BufferView& concat() const { return m_arena[2]; }
    const BufferView& records() const { return m_arena[3]; }
    // Attend records: each attend piece writes one 4-word record (its rows, causal end and sequence) that its
    // dispatch reads on the GPU, so the job keeps a ring of kAttendRecords of them, one per attend piece in flight.
    // A record index is a position in that ring (not a frame slot); the row maps come first in records().
    static constexpr uint32_t kAttendRecords = 8;
    static constexpr uint32_t kRecordStride = 256; // bytes: Vulkan's largest minStorageBufferOffsetAlignment
    VkDeviceSize record_offset(uint32_t record_index) const {
        return m_records_base + VkDeviceSize(record_index) * kRecordStride;
    }
    // The record the next attend piece writes (the frame of the piece that last wrote it must have completed).
    uint32_t next_record_index() const { return m_attend_pieces % kAttendRecords; }
    // The frame whose attend piece last wrote record `record_index` (UINT64_MAX: none yet).
    uint64_t record_frame(uint32_t record_index) const { return m_record_frames[record_index]; }
    void use_record(uint32_t record_index, uint64_t frame) {
        m_record_frames[record_index] = frame;
        ++m_attend_pieces;
    }
    // The head mask's [H] factors live after the attend records in records(), written by the job's first piece:
    // every piece of the job must pass the same mask (no mask included), or the pieces would disagree.
    VkDeviceSize head_factor_offset() const { return m_records_base + VkDeviceSize(kAttendRecords) * kRecordStride; }
    Status use_head_factors(std::span<const float> factors);
    bool has_head_factors() const { return !m_head_factors.empty(); }

  private:
    static constexpr uint32_t kDone = 4;
    PrefillJob() = default;
    // (row, key) pairs the attention allows among rows [row_begin, row_end) and keys [key_begin, key_end).
    double pairs(uint32_t row_begin, uint32_t row_end, uint32_t key_begin, uint32_t key_end) const;
    double flops(PrefillPhase, double units) const;

    KvCache* m_cache = nullptr;
    PrefillJobInfo m_info;
    Arena m_arena;
    uint32_t m_first_position = 0; // the prompt's first position
    uint32_t m_key_first = 0;      // the first key position any row sees
    uint32_t m_phase = 0;          // PrefillPhase, or kDone
    uint32_t m_next = 0;           // the next row or key position of the phase
    uint32_t m_next_row = 0;       // attend: the next row of the current key range
    uint32_t m_range_end = 0;      // attend: the current key range's end once its first piece chose it (else 0)
    VkDeviceSize m_records_base = 0;
    uint32_t m_attend_pieces = 0;
    std::array<uint64_t, kAttendRecords> m_record_frames{}; // by record index
    bool m_head_mask_chosen = false;                        // the first piece has fixed the job's head mask
    std::vector<float> m_head_factors;                      // empty: no head mask
    double m_ms_per_unit[4] = {};                           // GPU ms per unit measured so far, per phase (0: not yet)
    double m_flops_done = 0, m_flops_total = 0;
    static constexpr uint32_t kPendingCapacity = 8;
    std::array<Pending, kPendingCapacity> m_pending{};
    uint32_t m_pending_first = 0, m_pending_count = 0;
};

} // namespace vkmha
