// Session: the recorders over a KV cache — ragged cached steps and the pieces of a sliced prefill.
#include "session.h"

#include "external_buffer_check.h"
#include "head_mask.h"
#include "sequence_record.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace vkmha {
namespace {

// The shared range check, then the offset: a multiple of the buffer's element size.
Status check_buffer(const char* name, const ExternalBuffer& e, uint64_t bytes, bool required, uint64_t elem_bytes = 4) {
    VKMHA_TRY(check_external_range(name, e, bytes, required));
    if (e.buffer != VK_NULL_HANDLE && e.offset % elem_bytes != 0)
        return make_error(ErrorCode::invalid_argument, std::string(name) + " offset " + std::to_string(e.offset) +
                                                           " is not a multiple of " + std::to_string(elem_bytes));
    return {};
}

Status check_io(const AttentionConfig& c, const ExternalBuffer& query, const ExternalBuffer& key,
                const ExternalBuffer& value, const ExternalBuffer& output, uint64_t tokens) {
    VKMHA_TRY(check_buffer("query", query, tokens * c.embed_dim * 4, true));
    VKMHA_TRY(check_buffer("key", key, tokens * c.kdim * 4, false));
    VKMHA_TRY(check_buffer("value", value, tokens * c.vdim * 4, false));
    VKMHA_TRY(check_buffer("output", output, tokens * c.embed_dim * 4, true));
    if (key.buffer == VK_NULL_HANDLE && (c.kdim != c.embed_dim || c.vdim != c.embed_dim))
        return make_error(ErrorCode::invalid_argument, "no key buffer bound (self-attention) but kdim/vdim differ "
                                                       "from embed_dim");
    if (value.buffer == VK_NULL_HANDLE && key.buffer != VK_NULL_HANDLE && c.vdim != c.kdim)
        return make_error(ErrorCode::invalid_argument, "no value buffer bound but vdim " + std::to_string(c.vdim) +
                                                           " != kdim " + std::to_string(c.kdim));
    return {};
}

// Bytes each token buffer of a cached step needs.
struct TokenBytes {
    uint64_t query, key, value, output;
};
// The caller's own Q [T, H, D], K and V [T, G, D] and O [T, H, D] at their strides (batch unused).
TokenBytes own_token_bytes(const AttentionConfig& c, const OwnQkv& x, uint64_t tokens) {
    const auto T = static_cast<uint32_t>(tokens);
    const uint32_t D = c.head_dim(), H = c.num_heads, G = c.num_kv_heads;
    return {strided_extent(x.q, 1, H, T, D) * 4, strided_extent(x.k, 1, G, T, D) * 4,
            strided_extent(x.v, 1, G, T, D) * 4, strided_extent(x.o, 1, H, T, D) * 4};
}

Status check_own_io(const AttentionConfig& c, const OwnQkv& x, const ExternalBuffer& query, const ExternalBuffer& key,
                    const ExternalBuffer& value, const ExternalBuffer& output, uint64_t tokens) {
    const TokenBytes need = own_token_bytes(c, x, tokens);
    VKMHA_TRY(check_buffer("query", query, need.query, true));
    VKMHA_TRY(check_buffer("key", key, need.key, true));
    VKMHA_TRY(check_buffer("value", value, need.value, true));
    VKMHA_TRY(check_buffer("output", output, need.output, true));
    const uint32_t D = c.head_dim();
    for (const TensorStrides* st : {&x.q, &x.k, &x.v, &x.o})
        if (st->head < D || st->row < D)
            return make_error(ErrorCode::invalid_argument,
                              "own Q/K/V/O head stride " + std::to_string(st->head) + " and row stride " +
                                  std::to_string(st->row) + " must each be at least the head dim " + std::to_string(D));
    return {};
}

// Cached steps and prefill project K and V into the cache: an attention-only model has nothing to project with.
Status refuse_attention_only(const AttentionConfig& c) {
    if (!c.attention_only) return {};
    return make_error(ErrorCode::invalid_argument, "the model is attention-only (no projection weights): a cached "
                                                   "step needs the caller's own Q, K and V (own_qkv)");
}

} // namespace

CachePlanBase Session::cache_plan_base(const KvCache& cache, Bindings& bound, const ExternalBuffer& query,
                                       const ExternalBuffer& key, const ExternalBuffer& value,
                                       const ExternalBuffer& output, uint64_t tokens, const OwnQkv* qkv) const {
    const AttentionConfig& c = m_model->config();
    // Unbound key/value read the query (self-attention), unbound value the key.
    const ExternalBuffer& k = key.buffer ? key : query;
    const ExternalBuffer& v = value.buffer ? value : k;
    const uint64_t v_width = value.buffer ? c.vdim : key.buffer ? c.kdim : c.embed_dim;
    const TokenBytes need = qkv ? own_token_bytes(c, *qkv, tokens)
                                : TokenBytes{tokens * c.embed_dim * 4, tokens * (key.buffer ? c.kdim : c.embed_dim) * 4,
                                             tokens * v_width * 4, tokens * c.embed_dim * 4};
    bound[size_t(BufferRole::query)] = bind_external(query, need.query, 4);
    bound[size_t(BufferRole::key)] = bind_external(k, need.key, 4);
    bound[size_t(BufferRole::value)] = bind_external(v, need.value, 4);
    bound[size_t(BufferRole::output)] = bind_external(output, need.output, 4);
    bound[size_t(BufferRole::cache_k)].info = {cache.keys().buffer, 0, cache.keys().size};
    bound[size_t(BufferRole::cache_v)].info = {cache.values().buffer, 0, cache.values().size};

    CachePlanBase b;
    b.model = m_plan_model;
    b.self_attention = key.buffer == VK_NULL_HANDLE && value.buffer == VK_NULL_HANDLE;
    b.capacity = cache.limits().capacity;
    b.window = cache.limits().window;
    b.offsets.query = bound[size_t(BufferRole::query)].remainder;
    b.offsets.key = bound[size_t(BufferRole::key)].remainder;
    b.offsets.value = bound[size_t(BufferRole::value)].remainder;
    b.offsets.output = bound[size_t(BufferRole::output)].remainder;
    return b;
}

Status Session::record_cached(VkCommandBuffer cmd, const CachedRecordArgs& a) {
    if (cmd == VK_NULL_HANDLE) return make_error(ErrorCode::invalid_argument, "command buffer is VK_NULL_HANDLE");
    if (a.cache == nullptr) return make_error(ErrorCode::invalid_argument, "KV cache is NULL");
    KvCache& cache = *a.cache;
    if (&cache.model() != m_model)
        return make_error(ErrorCode::invalid_argument, "the KV cache was created for another model");
    if (a.steps.empty()) return make_error(ErrorCode::invalid_argument, "a cached step lists no sequences");
    const AttentionConfig& c = m_model->config();
    if (!a.own_qkv) VKMHA_TRY(refuse_attention_only(c));
    const KvCacheLimits& cl = cache.limits();
    const uint64_t max_tokens = uint64_t(m_limits.max_shape.batch) * m_limits.max_shape.lq;
    uint64_t T = 0;
    uint32_t max_new = 0, max_keys = 0;
    for (size_t i = 0; i < a.steps.size(); ++i) {
        const SequenceStep& st = a.steps[i];
        if (st.new_tokens == 0)
            return make_error(ErrorCode::invalid_argument,
                              "sequence " + std::to_string(st.sequence) + " is listed with 0 new tokens");
        for (size_t k = 0; k < i; ++k)
            if (a.steps[k].sequence == st.sequence)
                return make_error(ErrorCode::invalid_argument,
                                  "sequence " + std::to_string(st.sequence) + " is listed twice in one step");
        VKMHA_TRY(cache.check_append(st.sequence, st.new_tokens));
        T += st.new_tokens;
        max_new = std::max(max_new, st.new_tokens);
        const uint32_t k_len = cache.length(st.sequence).value() + st.new_tokens;
        uint32_t keys = std::min(k_len, cl.capacity);
        if (cl.window) keys = std::min(keys, cl.window + st.new_tokens - 1);
        max_keys = std::max(max_keys, keys);
    }
    if (T > max_tokens)
        return make_error(ErrorCode::out_of_range, "a cached step of " + std::to_string(T) +
                                                       " tokens is over the session's budget of " +
                                                       std::to_string(max_tokens) + " (max batch x max query length)");
    if (a.own_qkv)
        VKMHA_TRY(check_own_io(c, a.qkv, a.query, a.key, a.value, a.output, T));
    else
        VKMHA_TRY(check_io(c, a.query, a.key, a.value, a.output, T));
    const uint64_t kpm_bytes = uint64_t(cl.sequences) * cl.capacity;
    VKMHA_TRY(check_buffer("key_padding_mask", a.key_padding_mask, kpm_bytes, false, 1));

    VKMHA_TRY(check_buffer("position_ids", a.position_ids, T * 4, false));
    VKMHA_TRY(check_head_factors(a.head_factors, c.num_heads, 0, "a cached step"));
    auto claimed = claim_frame_slot(a.frame, a.completed_frame, a.host_submit);
    if (!claimed) return claimed.take_error();
    const uint32_t frame_slot = claimed.value();
    const uint32_t R = static_cast<uint32_t>(a.steps.size());

    Bindings bound{};
    const bool kpm = a.key_padding_mask.buffer != VK_NULL_HANDLE;
    if (kpm) bound[size_t(BufferRole::key_padding_mask)] = bind_external(a.key_padding_mask, kpm_bytes, 1);
    const bool positions = a.position_ids.buffer != VK_NULL_HANDLE;
    if (positions) bound[size_t(BufferRole::position_ids)] = bind_external(a.position_ids, T * 4, 4);
    CachedStepInputs in;
    in.base = cache_plan_base(cache, bound, a.query, a.key, a.value, a.output, T, a.own_qkv ? &a.qkv : nullptr);
    in.base.key_padding = kpm;
    in.own_qkv = a.own_qkv;
    in.qkv = a.qkv;
    in.base.offsets.key_padding_mask = bound[size_t(BufferRole::key_padding_mask)].remainder;
    in.base.offsets.position_ids = bound[size_t(BufferRole::position_ids)].remainder;
    in.has_position_ids = positions;
    bind_owned(bound, frame_slot);
    in.tokens = static_cast<uint32_t>(T);
    in.records = R;
    in.max_new_tokens = max_new;
    in.max_keys = max_keys;
    in.kv_map_offset = kSequenceRecordWords * R;
    in.positions_offset = kSequenceRecordWords * R + static_cast<uint32_t>(T);
    // The head mask's [H] factors after the positions (the records buffer holds 6 words per token, then [B, H]).
    const uint32_t factors_offset = in.positions_offset + static_cast<uint32_t>(T);
    if (!a.head_factors.empty()) in.base.head_factors = factors_offset + 1;
    in.partials_capacity = m_scratch.partials_elems;
    VKMHA_TRY(plan_cached_step(in, m_ctx->device().limits(), m_cached_plan));

    // Everything is checked: claim the positions and write the records and the K/V row map.
    auto* words = static_cast<uint32_t*>(scratch_buffer(frame_slot, ScratchBuffer::records).mapped);
    uint32_t q_offset = 0;
    for (uint32_t r = 0; r < R; ++r) {
        const SequenceStep& st = a.steps[r];
        const uint32_t first = cache.append(st.sequence, st.new_tokens);
        const SequenceRecord record{
            .q_offset = q_offset, .q_len = st.new_tokens, .k_len = first + st.new_tokens, .kv_seq = st.sequence};
        std::memcpy(words + kSequenceRecordWords * r, &record, sizeof record);
        for (uint32_t t = 0; t < st.new_tokens; ++t) {
            words[in.kv_map_offset + q_offset + t] = st.sequence * cl.capacity + cache.ring_position(first + t);
            words[in.positions_offset + q_offset + t] = first + t; // RoPE's default: the cache position
        }
        q_offset += st.new_tokens;
    }
    if (!a.head_factors.empty())
        write_head_factors(reinterpret_cast<float*>(words + factors_offset), a.head_factors, c.num_heads, 1);
    const ExternalBuffer* reads[] = {&a.query, &a.key, &a.value, kpm ? &a.key_padding_mask : nullptr,
                                     positions ? &a.position_ids : nullptr};
    const ExternalBuffer* writes[] = {&a.output};
    record_plan(cmd, frame_slot, m_cached_plan, bound, reads, writes, "vkmha cached attention");
    mark_recorded(frame_slot, a.frame, a.host_submit);
    return {};
}

Result<PrefillItem> Session::record_prefill(VkCommandBuffer cmd, const PrefillRecordArgs& a) {
    if (cmd == VK_NULL_HANDLE) return make_error(ErrorCode::invalid_argument, "command buffer is VK_NULL_HANDLE");
    if (a.job == nullptr) return make_error(ErrorCode::invalid_argument, "prefill job is NULL");
    PrefillJob& job = *a.job;
    KvCache& cache = job.cache();
    if (&cache.model() != m_model)
        return make_error(ErrorCode::invalid_argument, "the prefill job's KV cache was created for another model");
    if (a.budget_ms < 0 || a.budget_ms != a.budget_ms)
        return make_error(ErrorCode::invalid_argument,
                          "frame budget " + std::to_string(a.budget_ms) + " ms is negative");
    const AttentionConfig& c = m_model->config();
    VKMHA_TRY(refuse_attention_only(c));
    const uint32_t T = job.tokens();
    VKMHA_TRY(check_io(c, a.query, a.key, a.value, a.output, T));
    VKMHA_TRY(check_buffer("position_ids", a.position_ids, uint64_t(T) * 4, false));
    VKMHA_TRY(check_head_factors(a.head_factors, c.num_heads, 0, "a prefill piece"));
    auto claimed = claim_frame_slot(a.frame, a.completed_frame);
    if (!claimed) return claimed.take_error();
    VKMHA_TRY(job.use_head_factors(a.head_factors));
    const uint32_t frame_slot = claimed.value();

    // The measured GPU time of earlier pieces, while their frame slots still hold it.
    while (job.has_pending() && a.completed_frame != kNoFrame && job.oldest_pending().frame <= a.completed_frame) {
        const PrefillJob::Pending p = job.oldest_pending();
        auto t = timings(p.frame);
        // Timings that are not there (no timestamps, a reused slot) only leave the estimate unrefined; a failed
        // read (vkGetQueryPoolResults, a lost device) is the engine's to know. The piece stays pending for a retry.
        const bool missing =
            !t && (t.error().code == ErrorCode::not_ready || t.error().code == ErrorCode::unsupported ||
                   t.error().code == ErrorCode::out_of_range);
        if (!t && !missing) return t.take_error();
        job.pop_pending();
        if (!t) continue;
        double ms = 0;
        for (const StageTiming& st : t.value()) ms += st.ms;
        job.observe(p.phase, p.units, ms);
    }
    if (job.done()) return PrefillItem{};

    const AttentionTiling& tiling = m_model->attention_tiling();
    const PrefillItem item = job.next(a.budget_ms, a.max_rows, a.max_keys, tiling.keys,
                                      max_keys_per_dispatch(m_ctx->device().limits(), tiling, c.head_dim()));
    Bindings bound{};
    PrefillItemInputs in;
    in.base = cache_plan_base(cache, bound, a.query, a.key, a.value, a.output, T);
    in.tokens = T;
    in.first_position = job.first_position();
    const bool positions = a.position_ids.buffer != VK_NULL_HANDLE;
    if (positions) {
        bound[size_t(BufferRole::position_ids)] = bind_external(a.position_ids, uint64_t(T) * 4, 4);
        in.base.offsets.position_ids = bound[size_t(BufferRole::position_ids)].remainder;
        in.has_position_ids = true;
    }
    in.item = item;
    // The head mask's factors, as the piece's records binding sees them: the attend record's binding starts at the
    // record, the finishing combine's at the buffer's start.
    const uint32_t record_index = job.next_record_index();
    const VkDeviceSize factor_offset = job.head_factor_offset();
    const VkDeviceSize records_begin = item.phase == PrefillPhase::attend ? job.record_offset(record_index) : 0;
    if (job.has_head_factors()) in.base.head_factors = static_cast<uint32_t>((factor_offset - records_begin) / 4) + 1;
    VKMHA_TRY(plan_prefill_item(in, m_ctx->device().limits(), m_cached_plan));

    bound[size_t(BufferRole::q)].info = {job.q().buffer, 0, job.q().size};
    bound[size_t(BufferRole::partials)].info = {job.state().buffer, 0, job.state().size};
    bound[size_t(BufferRole::concat)].info = {job.concat().buffer, 0, job.concat().size};
    bound[size_t(BufferRole::records)].info = {job.records().buffer, 0, job.records().size};
    // The job's ring of attend records (not a frame slot): the entry this piece writes if it attends.
    if (item.phase == PrefillPhase::attend) {
        // This piece's record: its rows (q_offset, q_len), its causal end (k_len) and the cache sequence. The record
        // was last read by the piece kAttendRecords attend pieces ago, which must have completed.
        const uint64_t last = job.record_frame(record_index);
        if (last != UINT64_MAX && (a.completed_frame == kNoFrame || a.completed_frame < last))
            return make_error(ErrorCode::frame_in_flight, "the prefill job's attend record " +
                                                              std::to_string(record_index) +
                                                              " is still in use by frame " + std::to_string(last) +
                                                              "; pass a newer completed frame");
        const VkDeviceSize offset = job.record_offset(record_index);
        const SequenceRecord record{.q_offset = item.row_begin,
                                    .q_len = item.row_end - item.row_begin,
                                    .k_len = job.first_position() + item.row_end,
                                    .kv_seq = job.sequence()};
        std::memcpy(static_cast<uint8_t*>(job.records().mapped) + offset, &record, sizeof record);
        const VkDeviceSize range = job.has_head_factors() ? factor_offset + 4ull * c.num_heads - offset : sizeof record;
        bound[size_t(BufferRole::records)].info = {job.records().buffer, offset, range};
    }
    bind_owned(bound, frame_slot);
    const ExternalBuffer* reads[] = {&a.query, &a.key, &a.value, positions ? &a.position_ids : nullptr};
    const ExternalBuffer* writes[] = {&a.output};
    record_plan(cmd, frame_slot, m_cached_plan, bound, reads, writes, "vkmha prefill slice");
    mark_recorded(frame_slot, a.frame, false);
    if (item.phase == PrefillPhase::attend) job.use_record(record_index, a.frame);
    job.advance(item);
    job.push_pending({a.frame, item.phase, item.units});
    return item;
}

} // namespace vkmha
