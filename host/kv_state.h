// KV-cache state: one sequence's cached keys and values read back to host memory as a self-describing byte blob and
// written into a sequence again (save games), and a sequence copied into another on the GPU (branching dialogue).
//
// The blob (little-endian, as on every platform vkmha runs on): ten uint32 words, then K, then V.
//   0 magic kKvStateMagic   1 format version (1)   2 precision (0 fp32, 1 fp16)   3 KV heads G   4 head dim D
//   5 window (0: none)      6 capacity of the cache it came from   7 length (the next token's position)
//   8 first (the oldest position stored)   9 rows (= length - first)
// K and V: [G, rows, D] elements each in the precision's bytes, positions first .. length - 1 in order. The rows are
// every position the ring still holds, so a restored sequence can still be rolled back as far as the original.
#pragma once

#include "kv_cache.h"

#include <cstdint>
#include <span>

namespace vkmha {

constexpr uint32_t kKvStateMagic = 0x53564B56u; // the bytes "VKVS"
constexpr uint32_t kKvStateVersion = 1;
constexpr size_t kKvStateHeaderBytes = 40;

// The blob's size for a sequence as it is now.
Result<size_t> kv_state_size(const KvCache&, uint32_t sequence);

// Copies a sequence's rows into `out` (exactly kv_state_size bytes). Submits to the context's queue and waits; the
// steps that wrote the sequence must have been submitted before (on that queue) or have completed.
Status read_kv_state(const Context&, const KvCache&, uint32_t sequence, std::span<uint8_t> out);

// Replaces a sequence with a blob from read_kv_state. The blob must match the cache's precision, KV heads, head dim
// and window, and its rows must fit the capacity; on any error the cache is unchanged. Submits and waits, and GPU
// work that still reads the sequence must have completed.
Status write_kv_state(const Context&, KvCache&, uint32_t sequence, std::span<const uint8_t> in);

// Checks a copy of sequence `src_sequence` of `src` onto `dst_sequence` of `dst` (which may be the same cache).
Status check_kv_copy(const KvCache& src, uint32_t src_sequence, const KvCache& dst, uint32_t dst_sequence);

// Records that copy (vkCmdCopyBuffer, with the barriers from earlier compute or transfer work on both caches and to
// later compute or transfer work) and sets the destination's length as the source's: the destination then continues
// independently. Call check_kv_copy first.
void record_kv_copy(const Device&, VkCommandBuffer, const KvCache& src, uint32_t src_sequence, KvCache& dst,
                    uint32_t dst_sequence);

} // namespace vkmha
