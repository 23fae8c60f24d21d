// KvCache: device-resident keys and values of many independent causal sequences (one per NPC, say), so each frame
// projects only its new tokens and attends over everything cached. The host tracks each sequence's length; the
// GPU data lives in two buffers [sequences, G, capacity, D] in the model's precision (GQA/MQA store G heads only).
//
// Positions are absolute: a sequence's tokens are 0, 1, 2, ... in the order they were appended. Each sequence stores
// `capacity` rows used as a ring: position p lives in row p % capacity, its ring position. Without a window a
// sequence holds at most `capacity` positions; with a window of W, a query at position t sees keys t - W < j <= t,
// and the rows of older positions are reused.
#pragma once

#include "model.h"

namespace vkmha {

struct KvCacheLimits {
    uint32_t sequences = 1; // independent sequences
    uint32_t capacity = 0;  // rows per sequence (ring positions 0 .. capacity - 1)
    uint32_t window = 0;    // 0: keep every position; W: sliding window of the last W positions (1 <= W <= capacity)
};

class KvCache {
  public:
    static Result<VkDeviceSize> memory_required(const Context&, const Model&, const KvCacheLimits&);
    static Result<std::unique_ptr<KvCache>> create(const Context&, const Model&, const KvCacheLimits&);

    const KvCacheLimits& limits() const { return m_limits; }
    const Model& model() const { return *m_model; }
    // Positions appended to a sequence so far (its next token's position).
    Result<uint32_t> length(uint32_t sequence) const;
    // Forgets a sequence (reset_all: every sequence, abandoning sliced prefills); the next token is position 0.
    Status reset(uint32_t sequence);
    void reset_all();
    // Rolls a sequence back so that its next token is position `length` (<= its length): the positions from there
    // on are forgotten. A windowed cache must still hold the positions the next token sees.
    Status truncate(uint32_t sequence, uint32_t length);

    // For the recorder. Checks that `count` new tokens fit sequence `sequence` (capacity, ring reuse, busy).
    Status check_append(uint32_t sequence, uint32_t count) const;
    // Advances a sequence's length by `count` (after check_append) and returns the first new position.
    uint32_t append(uint32_t sequence, uint32_t count);
    // A sequence's host-side state, saved before a step is recorded so that a step whose submission then fails (and
    // so never ran) can be undone: the lengths must not claim positions the GPU never wrote.
    struct SequenceState {
        uint32_t sequence, length, oldest;
    };
    SequenceState save(uint32_t sequence) const { return {sequence, m_length[sequence], m_oldest[sequence]}; }
    void restore(const SequenceState& s) {
        m_length[s.sequence] = s.length;
        m_oldest[s.sequence] = s.oldest;
    }
    // A sequence a sliced prefill is filling: appends and rollbacks are refused until it finishes or is abandoned.
    void set_busy(uint32_t sequence, bool busy) { m_busy[sequence] = busy; }
    // The ring position (row within its sequence's `capacity` rows) that holds absolute position `position`.
    uint32_t ring_position(uint32_t position) const { return position % m_limits.capacity; }
    const BufferView& keys() const { return m_arena[0]; }
    const BufferView& values() const { return m_arena[1]; }

    // The sequence exists and no sliced prefill is filling it.
    Status check_sequence(uint32_t sequence) const;

  private:
    KvCache() = default;

    const Context* m_ctx = nullptr;
    const Model* m_model = nullptr;
    KvCacheLimits m_limits;
    Arena m_arena;
    std::vector<uint32_t> m_length;
    std::vector<uint32_t> m_oldest; // the oldest position the ring still holds (0 without a window)
    std::vector<bool> m_busy;
};

} // namespace vkmha
