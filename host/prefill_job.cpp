// PrefillJob: buffers, the sequence reservation, and the slice-size choice from measured costs.
#include "prefill_job.h"

#include "checked_math.h"
#include "plan/plan_common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace vkmha {
namespace {

constexpr uint32_t kFirstRows = 32;  // the first item of a phase whose cost is not measured yet
constexpr double kBudgetShare = 0.9; // aim below the budget: costs vary between slices
constexpr uint64_t kNoFrameYet = UINT64_MAX;

// Row maps (2 words per token), then the attend records at 256-byte offsets.
VkDeviceSize records_base(uint32_t tokens) { return (8ull * tokens + 255) / 256 * 256; }

std::vector<BufferRequest> requests(const KvCache& cache, uint32_t tokens) {
    const AttentionConfig& c = cache.model().config();
    const uint64_t act = precision_bytes(cache.model().precision());
    const uint64_t rows = uint64_t(tokens) * c.num_heads;
    return {{"vkmha prefill q", (uint64_t(tokens) * c.q_width() * act + 3) / 4 * 4, MemoryKind::device_local},
            {"vkmha prefill state", rows * (c.head_dim() + 2) * 4, MemoryKind::device_local},
            {"vkmha prefill concat", (uint64_t(tokens) * c.q_width() * act + 3) / 4 * 4, MemoryKind::device_local},
            {"vkmha prefill records",
             records_base(tokens) + VkDeviceSize(PrefillJob::kAttendRecords) * PrefillJob::kRecordStride +
                 4ull * c.num_heads, // the head mask's factors
             MemoryKind::host_visible}};
}

// Every buffer a piece binds holds the whole prompt's rows, and the pieces index them with 32-bit element offsets
// (row * width): each must fit one binding, which also keeps those offsets under 2^32.
Status check_prompt_bindings(const DeviceLimits& limits, const AttentionConfig& c, Precision precision,
                             uint32_t tokens) {
    const uint64_t T = tokens;
    const auto fits = [&](const char* what, uint64_t elems, uint64_t elem_bytes) -> Status {
        if (plan_build::check_binding(limits, what, elems, elem_bytes).ok()) return {};
        return make_error(ErrorCode::unsupported, "a prefill of " + std::to_string(tokens) + " tokens needs " +
                                                      count_text(saturating_mul(elems, elem_bytes), "bytes") + " of " +
                                                      what + " in one binding, over this device's " +
                                                      std::to_string(limits.max_storage_buffer_range) +
                                                      " (maxStorageBufferRange); split the prompt");
    };
    VKMHA_TRY(fits("running state", T * c.num_heads * (c.head_dim() + 2), 4));
    VKMHA_TRY(fits("queries", T * c.q_width(), precision_bytes(precision)));
    VKMHA_TRY(fits("prompt rows", T * std::max({c.embed_dim, c.kdim, c.vdim}), 4));
    return {};
}

} // namespace

Result<VkDeviceSize> PrefillJob::memory_required(const Context& ctx, const KvCache& cache, uint32_t tokens) {
    if (tokens == 0) return make_error(ErrorCode::invalid_argument, "prefill of 0 tokens");
    VKMHA_TRY(check_prompt_bindings(ctx.device().limits(), cache.model().config(), cache.model().precision(), tokens));
    return Arena::measure(ctx.device(), requests(cache, tokens));
}

Result<std::unique_ptr<PrefillJob>> PrefillJob::create(const Context& ctx, KvCache& cache, const PrefillJobInfo& info) {
    if (info.tokens == 0) return make_error(ErrorCode::invalid_argument, "prefill of 0 tokens");
    const AttentionConfig& c = cache.model().config();
    if (c.attention_only)
        return make_error(ErrorCode::invalid_argument, "a prefill job projects the prompt, and the model is "
                                                       "attention-only (no projection weights)");
    VKMHA_TRY(cache.check_append(info.sequence, info.tokens));
    VKMHA_TRY(check_prompt_bindings(ctx.device().limits(), c, cache.model().precision(), info.tokens));
    auto arena = Arena::create(ctx.device(), requests(cache, info.tokens));
    if (!arena) return arena.take_error();
    std::unique_ptr<PrefillJob> job(new PrefillJob());
    job->m_cache = &cache;
    job->m_info = info;
    job->m_arena = std::move(arena.value());
    job->m_first_position = cache.append(info.sequence, info.tokens);
    cache.set_busy(info.sequence, true);
    const uint32_t W = cache.limits().window, C = cache.limits().capacity, T = info.tokens;
    const uint32_t k_len = job->m_first_position + T;
    job->m_key_first = k_len > C ? k_len - C : 0;
    if (W && job->m_first_position + 1 > W)
        job->m_key_first = std::max(job->m_key_first, job->m_first_position + 1 - W);

    // The Q row map (row r of the job's [H, T, D] Q) and the K/V row map (the cache rows of the prompt's positions);
    // the attend pieces' records are written as they are recorded.
    job->m_records_base = records_base(T);
    job->m_record_frames.fill(kNoFrameYet);
    auto* words = static_cast<uint32_t*>(job->records().mapped);
    for (uint32_t r = 0; r < T; ++r) {
        words[r] = r;
        words[T + r] = info.sequence * C + cache.ring_position(job->m_first_position + r);
    }
    job->m_flops_total = job->flops(PrefillPhase::project, T) +
                         job->flops(PrefillPhase::attend, job->pairs(0, T, job->m_key_first, k_len)) +
                         job->flops(PrefillPhase::finish, T) + job->flops(PrefillPhase::out_proj, T);
    return job;
}

PrefillJob::~PrefillJob() {
    if (m_cache == nullptr) return;
    m_cache->set_busy(m_info.sequence, false);
    if (!done()) (void)m_cache->truncate(m_info.sequence, m_first_position);
}

double PrefillJob::pairs(uint32_t row_begin, uint32_t row_end, uint32_t key_begin, uint32_t key_end) const {
    // Row r (position P + r) sees keys max(key_first, P + r - W + 1) ..= P + r.
    const uint32_t W = m_cache->limits().window;
    double total = 0;
    for (uint32_t r = row_begin; r < row_end; ++r) {
        const uint64_t pos = uint64_t(m_first_position) + r;
        uint64_t lo = std::max<uint64_t>(key_begin, W && pos + 1 > W ? pos + 1 - W : 0);
        uint64_t hi = std::min<uint64_t>(key_end, pos + 1);
        if (hi > lo) total += double(hi - lo);
    }
    return total * m_cache->model().config().num_heads;
}

double PrefillJob::flops(PrefillPhase phase, double units) const {
    const AttentionConfig& c = m_cache->model().config();
    const double E = c.embed_dim, QW = c.q_width(), D = c.head_dim();
    switch (phase) {
    case PrefillPhase::project: return 2 * units * (QW * E + double(c.kv_width()) * (c.kdim + c.vdim));
    case PrefillPhase::attend: return 4 * units * D;
    case PrefillPhase::finish: return units * QW;
    case PrefillPhase::out_proj: return 2 * units * E * QW;
    }
    return 0;
}

double PrefillJob::progress() const { return m_flops_total > 0 ? std::min(1.0, m_flops_done / m_flops_total) : 1.0; }

PrefillItem PrefillJob::next(double budget_ms, uint32_t max_rows, uint32_t max_keys, uint32_t key_tile,
                             uint32_t max_dispatch_keys) const {
    PrefillItem item;
    item.phase = static_cast<PrefillPhase>(m_phase);
    const double per_unit = m_ms_per_unit[m_phase];
    const uint32_t T = m_info.tokens;
    switch (item.phase) {
    case PrefillPhase::project:
    case PrefillPhase::out_proj: {
        uint32_t rows = T - m_next;
        if (budget_ms > 0)
            rows = per_unit > 0 ? static_cast<uint32_t>(
                                      std::clamp(std::floor(budget_ms * kBudgetShare / per_unit), 1.0, double(rows)))
                                : std::min(rows, kFirstRows);
        if (max_rows) rows = std::min(rows, max_rows);
        item.begin = m_next;
        item.end = m_next + rows;
        item.units = rows;
        break;
    }
    case PrefillPhase::attend: {
        const uint32_t P = m_first_position, k_len = P + T;
        // Keys: whole tiles (the last may be short), one at the least. Rows: from the first that sees the range
        // (causal: position >= its first key); a later range skips the rows that saw everything already.
        uint32_t limit = std::min(max_keys ? max_keys : UINT32_MAX, max_dispatch_keys);
        limit = std::max(limit / key_tile, 1u) * key_tile;
        const uint32_t a = m_next;
        // Every row block of a key range covers the same keys: the range is chosen by its first piece.
        const bool range_chosen = m_range_end != 0;
        uint32_t end = range_chosen ? m_range_end : k_len - a > limit ? a + limit : k_len;
        const uint32_t row_begin = std::max(m_next_row, a > P ? a - P : 0u);
        uint32_t row_end = max_rows ? std::min(T, row_begin + max_rows) : T;
        if (budget_ms > 0) {
            const double units = per_unit > 0 ? budget_ms * kBudgetShare / per_unit : 0;
            // The most tiles whose pairs over the rows fit the budget (pairs grow with the range: bisect); when one
            // tile over every row is already too much, fewer rows.
            uint32_t lo = 1, hi = (end - a + key_tile - 1) / key_tile;
            if (range_chosen) lo = hi;
            while (per_unit > 0 && lo < hi) {
                const uint32_t mid = (lo + hi + 1) / 2;
                if (pairs(row_begin, row_end, a, std::min(end, a + mid * key_tile)) <= units)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            end = std::min(end, a + lo * key_tile);
            if (per_unit <= 0) {
                row_end = std::min(row_end, row_begin + kFirstRows);
            } else {
                uint32_t rlo = 1, rhi = row_end - row_begin;
                while (rlo < rhi) {
                    const uint32_t mid = (rlo + rhi + 1) / 2;
                    if (pairs(row_begin, row_begin + mid, a, end) <= units)
                        rlo = mid;
                    else
                        rhi = mid - 1;
                }
                row_end = row_begin + rlo;
            }
        }
        item.begin = a;
        item.end = end;
        item.row_begin = row_begin;
        item.row_end = row_end;
        item.first_slice = a == m_key_first;
        item.units = pairs(row_begin, row_end, a, end);
        break;
    }
    case PrefillPhase::finish:
        item.begin = 0;
        item.end = T;
        item.units = T;
        break;
    }
    return item;
}

Status PrefillJob::use_head_factors(std::span<const float> factors) {
    if (m_head_mask_chosen) {
        if (std::equal(factors.begin(), factors.end(), m_head_factors.begin(), m_head_factors.end())) return {};
        return make_error(ErrorCode::invalid_argument, "the head mask differs from the one this prefill job's first "
                                                       "piece was recorded with: pass the same mask on every piece");
    }
    m_head_factors.assign(factors.begin(), factors.end());
    if (!factors.empty())
        std::memcpy(static_cast<uint8_t*>(records().mapped) + head_factor_offset(), factors.data(),
                    factors.size_bytes());
    m_head_mask_chosen = true;
    return {};
}

void PrefillJob::advance(const PrefillItem& item) {
    m_flops_done += flops(item.phase, item.units);
    const uint32_t T = m_info.tokens;
    if (item.phase == PrefillPhase::attend) {
        m_next_row = item.row_end;
        m_range_end = item.end;
        if (m_next_row < T) return; // more rows over this key range
        m_next_row = 0;
        m_range_end = 0;
    }
    m_next = item.end;
    const bool phase_done = item.phase == PrefillPhase::attend ? m_next >= m_first_position + T
                                                               : item.phase == PrefillPhase::finish || m_next >= T;
    if (!phase_done) return;
    ++m_phase;
    m_next = m_phase == static_cast<uint32_t>(PrefillPhase::attend) ? m_key_first : 0;
    if (m_phase == kDone) m_cache->set_busy(m_info.sequence, false);
}

void PrefillJob::pop_pending() {
    m_pending_first = (m_pending_first + 1) % kPendingCapacity;
    --m_pending_count;
}

void PrefillJob::push_pending(const Pending& p) {
    if (m_pending_count == kPendingCapacity) pop_pending();
    m_pending[(m_pending_first + m_pending_count) % kPendingCapacity] = p;
    ++m_pending_count;
}

void PrefillJob::observe(PrefillPhase phase, double units, double ms) {
    if (units <= 0 || ms <= 0) return;
    double& per_unit = m_ms_per_unit[static_cast<uint32_t>(phase)];
    const double measured = ms / units;
    // The latest slice weighs most: costs drift (clocks, other work in the frame), but one outlier is damped.
    per_unit = per_unit > 0 ? 0.5 * per_unit + 0.5 * measured : measured;
}

} // namespace vkmha
