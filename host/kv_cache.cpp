// KvCache: buffers and the host-side bookkeeping of each sequence's positions.
#include "kv_cache.h"

#include <algorithm>
#include <string>

namespace vkmha {
namespace {

Status check_limits(const AttentionConfig& c, const KvCacheLimits& l) {
    if (l.sequences == 0) return make_error(ErrorCode::invalid_argument, "KV cache sequences is 0");
    if (l.capacity == 0) return make_error(ErrorCode::invalid_argument, "KV cache capacity is 0");
    if (l.window > l.capacity)
        return make_error(ErrorCode::invalid_argument, "KV cache window " + std::to_string(l.window) +
                                                           " is larger than its capacity " +
                                                           std::to_string(l.capacity));
    if (uint64_t(l.sequences) * c.num_kv_heads * l.capacity * c.head_dim() > UINT32_MAX)
        return make_error(ErrorCode::invalid_argument,
                          "KV cache of " + std::to_string(l.sequences) + " sequences x " + std::to_string(l.capacity) +
                              " rows x " + std::to_string(c.kv_width()) + " values exceeds 2^32 elements");
    return {};
}

std::vector<BufferRequest> requests(const Model& m, const KvCacheLimits& l) {
    const AttentionConfig& c = m.config();
    const uint64_t elems = uint64_t(l.sequences) * c.num_kv_heads * l.capacity * c.head_dim();
    const uint64_t bytes = (elems * precision_bytes(m.precision()) + 3) / 4 * 4;
    return {{"vkmha kv cache keys", bytes, MemoryKind::device_local},
            {"vkmha kv cache values", bytes, MemoryKind::device_local}};
}

} // namespace

Result<VkDeviceSize> KvCache::memory_required(const Context& ctx, const Model& m, const KvCacheLimits& l) {
    VKMHA_TRY(check_limits(m.config(), l));
    return Arena::measure(ctx.device(), requests(m, l));
}

Result<std::unique_ptr<KvCache>> KvCache::create(const Context& ctx, const Model& m, const KvCacheLimits& l) {
    VKMHA_TRY(check_limits(m.config(), l));
    const auto reqs = requests(m, l);
    if (reqs[0].size > ctx.device().limits().max_storage_buffer_range)
        return make_error(ErrorCode::unsupported, "KV cache keys need " + std::to_string(reqs[0].size) +
                                                      " bytes in one binding; the device allows " +
                                                      std::to_string(ctx.device().limits().max_storage_buffer_range) +
                                                      " (maxStorageBufferRange)");
    auto arena = Arena::create(ctx.device(), reqs);
    if (!arena) return arena.take_error();
    std::unique_ptr<KvCache> cache(new KvCache());
    cache->m_ctx = &ctx;
    cache->m_model = &m;
    cache->m_limits = l;
    cache->m_arena = std::move(arena.value());
    cache->m_length.assign(l.sequences, 0);
    cache->m_oldest.assign(l.sequences, 0);
    cache->m_busy.assign(l.sequences, false);
    return cache;
}

Status KvCache::check_sequence(uint32_t sequence) const {
    if (sequence >= m_limits.sequences)
        return make_error(ErrorCode::out_of_range, "sequence " + std::to_string(sequence) +
                                                       " is outside the KV cache's 0.." +
                                                       std::to_string(m_limits.sequences - 1));
    if (m_busy[sequence])
        return make_error(ErrorCode::invalid_argument,
                          "sequence " + std::to_string(sequence) + " is being filled by a sliced prefill");
    return {};
}

Result<uint32_t> KvCache::length(uint32_t sequence) const {
    if (sequence >= m_limits.sequences)
        return make_error(ErrorCode::out_of_range, "sequence " + std::to_string(sequence) +
                                                       " is outside the KV cache's 0.." +
                                                       std::to_string(m_limits.sequences - 1));
    return m_length[sequence];
}

Status KvCache::reset(uint32_t sequence) {
    VKMHA_TRY(check_sequence(sequence));
    m_length[sequence] = 0;
    m_oldest[sequence] = 0;
    return {};
}

void KvCache::reset_all() {
    std::fill(m_length.begin(), m_length.end(), 0);
    std::fill(m_oldest.begin(), m_oldest.end(), 0);
    std::fill(m_busy.begin(), m_busy.end(), false);
}

Status KvCache::truncate(uint32_t sequence, uint32_t length) {
    VKMHA_TRY(check_sequence(sequence));
    if (length > m_length[sequence])
        return make_error(ErrorCode::out_of_range, "cannot roll sequence " + std::to_string(sequence) +
                                                       " forward to position " + std::to_string(length) +
                                                       "; it holds " + std::to_string(m_length[sequence]));
    // The next token (position `length`) sees positions from length - window + 1: the ring must still hold them.
    const uint32_t needed = m_limits.window && length >= m_limits.window ? length - m_limits.window + 1 : 0;
    if (m_limits.window && needed < m_oldest[sequence])
        return make_error(ErrorCode::out_of_range,
                          "cannot roll sequence " + std::to_string(sequence) + " back to position " +
                              std::to_string(length) + ": its window needs position " + std::to_string(needed) +
                              ", which the ring has overwritten (oldest kept: " + std::to_string(m_oldest[sequence]) +
                              ")");
    m_length[sequence] = length;
    return {};
}

Status KvCache::check_append(uint32_t sequence, uint32_t count) const {
    VKMHA_TRY(check_sequence(sequence));
    const uint64_t end = uint64_t(m_length[sequence]) + count;
    if (end > UINT32_MAX)
        return make_error(ErrorCode::out_of_range, "sequence " + std::to_string(sequence) + " position overflows");
    if (m_limits.window == 0) {
        if (end > m_limits.capacity)
            return make_error(ErrorCode::out_of_range,
                              "KV cache overflow: sequence " + std::to_string(sequence) + " holds " +
                                  std::to_string(m_length[sequence]) + " of " + std::to_string(m_limits.capacity) +
                                  " positions and cannot take " + std::to_string(count) + " more");
        return {};
    }
    // Writing the new tokens reuses the rows of positions up to end - 1 - capacity; the first new token still
    // needs every position from length - window + 1.
    if (count > m_limits.capacity - m_limits.window + 1)
        return make_error(ErrorCode::out_of_range,
                          std::to_string(count) + " new tokens for sequence " + std::to_string(sequence) +
                              " would overwrite keys their window still needs: a capacity of " +
                              std::to_string(m_limits.capacity) + " with window " + std::to_string(m_limits.window) +
                              " takes at most " + std::to_string(m_limits.capacity - m_limits.window + 1) +
                              " tokens per step");
    return {};
}

uint32_t KvCache::append(uint32_t sequence, uint32_t count) {
    const uint32_t first = m_length[sequence];
    m_length[sequence] = first + count;
    if (m_length[sequence] > m_limits.capacity)
        m_oldest[sequence] = std::max(m_oldest[sequence], m_length[sequence] - m_limits.capacity);
    return first;
}

} // namespace vkmha
