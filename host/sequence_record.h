// The per-sequence record the fused attention kernels read in KV-cache mode (cache_mode 1, binding 9): one per
// sequence of a ragged cached step, one per prefill piece. Mirrors SequenceRecord in
// shaders/common/attention_common.glsl (std430: four 32-bit words, 16 bytes per record).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vkmha {

struct SequenceRecord {
    uint32_t q_offset; // the sequence's first query row among the packed Q/O rows
    uint32_t q_len;    // its query rows (new tokens)
    uint32_t k_len;    // its keys: cache positions [0, k_len), the causal end of its last query row
    uint32_t kv_seq;   // its cache sequence: the K/V and key padding rows it reads
};
static_assert(sizeof(SequenceRecord) == 16 && alignof(SequenceRecord) == 4);
static_assert(offsetof(SequenceRecord, q_offset) == 0 && offsetof(SequenceRecord, q_len) == 4 &&
              offsetof(SequenceRecord, k_len) == 8 && offsetof(SequenceRecord, kv_seq) == 12);
// Words per record, where the records share a buffer with other uint32_t arrays (the cached step's row maps).
constexpr uint32_t kSequenceRecordWords = sizeof(SequenceRecord) / sizeof(uint32_t);

} // namespace vkmha
