// KV-cache state: save, restore and fork a sequence's rows (see kv_state.h for the blob's layout).
#include "kv_state.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace vkmha {
namespace {

enum Word : size_t { magic, version, precision, kv_heads, head_dim, window, capacity, length, first, rows, count };
static_assert(Word::count * 4 == kKvStateHeaderBytes);

// The positions a sequence holds, [first, length): all of them, or the ring's capacity with a window.
struct Held {
    uint32_t first = 0, length = 0;
    uint32_t rows() const { return length - first; }
};

Held held(const KvCache& cache, uint32_t sequence) {
    const KvCache::SequenceState s = cache.save(sequence);
    return {s.oldest, s.length};
}

uint64_t element_bytes(const KvCache& cache) { return precision_bytes(cache.model().precision()); }

uint64_t kv_block_bytes(const KvCache& cache, uint32_t rows) {
    const AttentionConfig& c = cache.model().config();
    return uint64_t(c.num_kv_heads) * rows * c.head_dim() * element_bytes(cache);
}

// Byte offset of ring row `slot` of KV head `g` of `sequence` in the cache's K (or V) buffer.
uint64_t row_offset(const KvCache& cache, uint32_t sequence, uint32_t g, uint32_t slot) {
    const AttentionConfig& c = cache.model().config();
    const uint64_t rows_before = (uint64_t(sequence) * c.num_kv_heads + g) * cache.limits().capacity + slot;
    return rows_before * c.head_dim() * element_bytes(cache);
}

// A contiguous piece of positions: p .. p + n - 1 sit in consecutive ring rows of both caches (a wrap of either ring
// starts a new piece).
struct Piece {
    uint32_t position, count;
};

std::vector<Piece> pieces(Held h, uint32_t capacity_a, uint32_t capacity_b) {
    std::vector<Piece> out;
    for (uint32_t p = h.first; p < h.length;) {
        const uint32_t n = std::min({h.length - p, capacity_a - p % capacity_a, capacity_b - p % capacity_b});
        out.push_back({p, n});
        p += n;
    }
    return out;
}

// Copy regions between a sequence's ring rows and a packed [G, rows, D] block (`to_block`: ring -> block).
std::vector<VkBufferCopy> block_regions(const KvCache& cache, uint32_t sequence, Held h, bool to_block) {
    const AttentionConfig& c = cache.model().config();
    const uint64_t row_bytes = uint64_t(c.head_dim()) * element_bytes(cache);
    const uint32_t cap = cache.limits().capacity;
    std::vector<VkBufferCopy> out;
    for (uint32_t g = 0; g < c.num_kv_heads; ++g)
        for (const Piece& piece : pieces(h, cap, cap)) {
            const uint64_t ring = row_offset(cache, sequence, g, piece.position % cap);
            const uint64_t block = (uint64_t(g) * h.rows() + (piece.position - h.first)) * row_bytes;
            out.push_back({to_block ? ring : block, to_block ? block : ring, piece.count * row_bytes});
        }
    return out;
}

// Every earlier compute or transfer access to the caches happens before the copies, which happen before every
// later one. Global, as the recorders' entry barrier: the copies touch a handful of rows in two buffers.
void barrier(const Device& d, VkCommandBuffer cmd, bool into_copy, VkPipelineStageFlags other_stage = 0,
             VkAccessFlags other_access = 0) {
    const VkPipelineStageFlags work = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    const VkPipelineStageFlags transfer = VK_PIPELINE_STAGE_TRANSFER_BIT;
    const VkAccessFlags writes = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkAccessFlags copies = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkAccessFlags all = VK_ACCESS_SHADER_READ_BIT | writes | copies;
    VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    b.srcAccessMask = into_copy ? writes | other_access : VkAccessFlags(VK_ACCESS_TRANSFER_WRITE_BIT);
    b.dstAccessMask = into_copy ? copies : all | other_access;
    d.vk().vkCmdPipelineBarrier(cmd, into_copy ? work | other_stage : transfer,
                                into_copy ? transfer : work | other_stage, 0, 1, &b, 0, nullptr, 0, nullptr);
}

std::string word_name(size_t w) {
    static const char* const names[] = {"magic",  "format version", "precision", "KV heads", "head dim",
                                        "window", "capacity",       "length",    "first",    "rows"};
    return names[w];
}

// The header this cache would write for `h`.
std::array<uint32_t, Word::count> header_of(const KvCache& cache, Held h) {
    const AttentionConfig& c = cache.model().config();
    return {kKvStateMagic,
            kKvStateVersion,
            static_cast<uint32_t>(cache.model().precision()),
            c.num_kv_heads,
            c.head_dim(),
            cache.limits().window,
            cache.limits().capacity,
            h.length,
            h.first,
            h.rows()};
}

// A blob's header, checked against the cache it is to be written into; its rows must fit that cache's ring.
Result<Held> check_header(const KvCache& cache, std::span<const uint8_t> in) {
    if (in.size() < kKvStateHeaderBytes)
        return make_error(ErrorCode::invalid_argument, "KV state of " + std::to_string(in.size()) +
                                                           " bytes is shorter than its " +
                                                           std::to_string(kKvStateHeaderBytes) + "-byte header");
    std::array<uint32_t, Word::count> got{};
    std::memcpy(got.data(), in.data(), kKvStateHeaderBytes);
    if (got[magic] != kKvStateMagic)
        return make_error(ErrorCode::invalid_argument, "KV state magic " + std::to_string(got[magic]) +
                                                           " is not vkmha's (the data is not a KV state)");
    if (got[version] != kKvStateVersion)
        return make_error(ErrorCode::invalid_argument, "KV state format version " + std::to_string(got[version]) +
                                                           " is not supported (this library writes " +
                                                           std::to_string(kKvStateVersion) + ")");
    const auto want = header_of(cache, {});
    for (size_t w : {size_t(precision), size_t(kv_heads), size_t(head_dim), size_t(window)})
        if (got[w] != want[w])
            return make_error(ErrorCode::invalid_argument, "KV state " + word_name(w) + " " + std::to_string(got[w]) +
                                                               " does not match the cache's " +
                                                               std::to_string(want[w]) +
                                                               (w == precision ? " (0 fp32, 1 fp16)" : ""));
    const Held h{got[first], got[length]};
    if (h.first > h.length || got[rows] != h.length - h.first)
        return make_error(ErrorCode::invalid_argument, "KV state positions " + std::to_string(h.first) + ".." +
                                                           std::to_string(h.length) + " disagree with its " +
                                                           std::to_string(got[rows]) + " rows");
    const uint32_t cap = cache.limits().capacity;
    if (h.rows() > cap || (cache.limits().window == 0 && h.length > cap))
        return make_error(ErrorCode::out_of_range, "KV state holds positions " + std::to_string(h.first) + ".." +
                                                       std::to_string(h.length) + ", more than the cache's capacity " +
                                                       std::to_string(cap));
    const uint32_t w = cache.limits().window;
    if (w && h.length >= w && h.first > h.length - w + 1)
        return make_error(ErrorCode::invalid_argument, "KV state starts at position " + std::to_string(h.first) +
                                                           ", after the first one its window " + std::to_string(w) +
                                                           " needs (" + std::to_string(h.length - w + 1) + ")");
    if (cache.limits().window == 0 && h.first != 0)
        return make_error(ErrorCode::invalid_argument,
                          "KV state without a window starts at position " + std::to_string(h.first) + ", not 0");
    const uint64_t expected = kKvStateHeaderBytes + 2 * kv_block_bytes(cache, h.rows());
    if (in.size() != expected)
        return make_error(ErrorCode::invalid_argument, "KV state is " + std::to_string(in.size()) +
                                                           " bytes; its header describes " + std::to_string(expected));
    return h;
}

Result<Arena> staging(const Context& ctx, uint64_t bytes) {
    return Arena::create(ctx.device(), {BufferRequest{"vkmha kv state staging", std::max<uint64_t>(bytes, 4),
                                                      MemoryKind::host_visible}});
}

} // namespace

Result<size_t> kv_state_size(const KvCache& cache, uint32_t sequence) {
    VKMHA_TRY(cache.check_sequence(sequence));
    return size_t(kKvStateHeaderBytes + 2 * kv_block_bytes(cache, held(cache, sequence).rows()));
}

Status read_kv_state(const Context& ctx, const KvCache& cache, uint32_t sequence, std::span<uint8_t> out) {
    auto size = kv_state_size(cache, sequence);
    if (!size) return size.take_error();
    if (out.size() != size.value())
        return make_error(ErrorCode::invalid_argument, "KV state buffer of " + std::to_string(out.size()) +
                                                           " bytes; sequence " + std::to_string(sequence) + " needs " +
                                                           std::to_string(size.value()));
    const Held h = held(cache, sequence);
    const auto header = header_of(cache, h);
    std::memcpy(out.data(), header.data(), kKvStateHeaderBytes);
    if (h.rows() == 0) return {};
    const uint64_t block = kv_block_bytes(cache, h.rows());
    auto stage = staging(ctx, 2 * block);
    if (!stage) return stage.take_error();
    const BufferView& host = (*stage)[0];
    const Device& d = ctx.device();
    VKMHA_TRY(ctx.run_once([&](VkCommandBuffer cmd) {
        barrier(d, cmd, true);
        std::vector<VkBufferCopy> regions = block_regions(cache, sequence, h, true);
        d.vk().vkCmdCopyBuffer(cmd, cache.keys().buffer, host.buffer, uint32_t(regions.size()), regions.data());
        for (VkBufferCopy& r : regions) r.dstOffset += block;
        d.vk().vkCmdCopyBuffer(cmd, cache.values().buffer, host.buffer, uint32_t(regions.size()), regions.data());
        barrier(d, cmd, false, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    }));
    std::memcpy(out.data() + kKvStateHeaderBytes, host.mapped, 2 * block);
    return {};
}

Status write_kv_state(const Context& ctx, KvCache& cache, uint32_t sequence, std::span<const uint8_t> in) {
    VKMHA_TRY(cache.check_sequence(sequence));
    auto h = check_header(cache, in);
    if (!h) return h.take_error();
    if (h->rows()) {
        const uint64_t block = kv_block_bytes(cache, h->rows());
        auto stage = staging(ctx, 2 * block);
        if (!stage) return stage.take_error();
        const BufferView& host = (*stage)[0];
        std::memcpy(host.mapped, in.data() + kKvStateHeaderBytes, 2 * block);
        const Device& d = ctx.device();
        VKMHA_TRY(ctx.run_once([&](VkCommandBuffer cmd) {
            // The host wrote the staging before the submission, which makes those writes visible.
            barrier(d, cmd, true);
            std::vector<VkBufferCopy> regions = block_regions(cache, sequence, h.value(), false);
            d.vk().vkCmdCopyBuffer(cmd, host.buffer, cache.keys().buffer, uint32_t(regions.size()), regions.data());
            for (VkBufferCopy& r : regions) r.srcOffset += block;
            d.vk().vkCmdCopyBuffer(cmd, host.buffer, cache.values().buffer, uint32_t(regions.size()), regions.data());
            barrier(d, cmd, false);
        }));
    }
    cache.restore({sequence, h->length, h->first});
    return {};
}

Status check_kv_copy(const KvCache& src, uint32_t src_sequence, const KvCache& dst, uint32_t dst_sequence) {
    VKMHA_TRY(src.check_sequence(src_sequence));
    VKMHA_TRY(dst.check_sequence(dst_sequence));
    if (&src == &dst && src_sequence == dst_sequence)
        return make_error(ErrorCode::invalid_argument,
                          "KV copy of sequence " + std::to_string(src_sequence) + " onto itself");
    const auto a = header_of(src, {}), b = header_of(dst, {});
    for (size_t w : {size_t(precision), size_t(kv_heads), size_t(head_dim), size_t(window)})
        if (a[w] != b[w])
            return make_error(ErrorCode::invalid_argument, "KV copy between caches of different " + word_name(w) +
                                                               " (" + std::to_string(a[w]) + " and " +
                                                               std::to_string(b[w]) + ")");
    const Held h = held(src, src_sequence);
    const uint32_t cap = dst.limits().capacity;
    if (h.rows() > cap || (dst.limits().window == 0 && h.length > cap))
        return make_error(ErrorCode::out_of_range, "sequence " + std::to_string(src_sequence) + " holds positions " +
                                                       std::to_string(h.first) + ".." + std::to_string(h.length) +
                                                       ", more than the destination's capacity " + std::to_string(cap));
    return {};
}

void record_kv_copy(const Device& d, VkCommandBuffer cmd, const KvCache& src, uint32_t src_sequence, KvCache& dst,
                    uint32_t dst_sequence) {
    const Held h = held(src, src_sequence);
    if (h.rows()) {
        const AttentionConfig& c = src.model().config();
        const uint64_t row_bytes = uint64_t(c.head_dim()) * element_bytes(src);
        const uint32_t cs = src.limits().capacity, cd = dst.limits().capacity;
        std::vector<VkBufferCopy> regions;
        for (uint32_t g = 0; g < c.num_kv_heads; ++g)
            for (const Piece& piece : pieces(h, cs, cd))
                regions.push_back({row_offset(src, src_sequence, g, piece.position % cs),
                                   row_offset(dst, dst_sequence, g, piece.position % cd), piece.count * row_bytes});
        barrier(d, cmd, true);
        d.vk().vkCmdCopyBuffer(cmd, src.keys().buffer, dst.keys().buffer, uint32_t(regions.size()), regions.data());
        d.vk().vkCmdCopyBuffer(cmd, src.values().buffer, dst.values().buffer, uint32_t(regions.size()), regions.data());
        barrier(d, cmd, false);
    }
    dst.restore({dst_sequence, h.length, h.first});
}

} // namespace vkmha
