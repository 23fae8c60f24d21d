// Session: scratch and frame slots for a model, and the recorder that turns an AttentionPlan into commands.
#include "session.h"

#include "checked_math.h"
#include "external_buffer_check.h"
#include "head_mask.h"
#include "host_submit.h"
#include "shape_bytes.h"

#include <algorithm>

namespace vkmha {
namespace {

// The scratch a frame slot binds (what an arena may hold instead), in ScratchBuffer order: Q/K/V/concat in the
// model's precision, rounded up to whole 4-byte words; the rest floats.
std::array<uint64_t, 7> scratch_piece_bytes(const ScratchSizes& s) {
    auto activation_bytes = [&](uint64_t elems) { return (elems * s.activation_bytes + 3) / 4 * 4; };
    return {activation_bytes(s.q_elems), activation_bytes(s.k_elems),      activation_bytes(s.v_elems),
            s.scores_elems * 4,          activation_bytes(s.concat_elems), s.lse_elems * 4,
            s.partials_elems * 4};
}

// Per frame slot, the buffers the session owns in ScratchBuffer order; with a scratch arena, only the records and
// the sink (the arena holds the rest).
std::vector<BufferRequest> session_requests(const SessionLimits& l, const ScratchSizes& s, uint32_t heads) {
    std::vector<BufferRequest> reqs;
    const MemoryKind scratch = l.host_visible_scratch ? MemoryKind::host_visible : MemoryKind::device_local;
    static const char* const names[] = {"q", "k", "v", "scores", "concat", "lse", "partials"};
    const auto pieces = scratch_piece_bytes(s);
    for (uint32_t f = 0; f < l.frames_in_flight; ++f) {
        const std::string n = " [frame slot " + std::to_string(f) + "]";
        if (!l.scratch_arena)
            for (size_t i = 0; i < pieces.size(); ++i)
                reqs.push_back({std::string("vkmha ") + names[i] + n, pieces[i], scratch});
        // KV-cache steps: one 4-word record per sequence, one K/V row and one position per token: at most 6 words
        // per token; then the head mask's factors, [B, H] at most. Written by the host at record time, so never shared.
        reqs.push_back({"vkmha records" + n,
                        24ull * l.max_shape.batch * l.max_shape.lq + 4ull * l.max_shape.batch * heads,
                        MemoryKind::host_visible});
        reqs.push_back({"vkmha sink" + n, 16, MemoryKind::device_local});
    }
    return reqs;
}

// Each piece takes at least 16 bytes (an unused role still binds a range inside the arena's buffer), rounded up to
// kScratchAlignment.
VkDeviceSize shared_piece_bytes(uint64_t bytes) { return align_scratch(std::max<uint64_t>(bytes, 16)); }

VkDeviceSize per_frame_bytes(const ScratchSizes& s) {
    VkDeviceSize total = 0;
    for (uint64_t bytes : scratch_piece_bytes(s)) total = saturating_add(total, shared_piece_bytes(bytes));
    return total;
}

// A session sharing an arena: the arena's frame ring is its own, and the arena holds its scratch.
Status check_arena(const Context& ctx, const SessionLimits& l, const ScratchSizes& s) {
    const ScratchArena* a = l.scratch_arena.get();
    if (!a) return {};
    if (&a->context() != &ctx)
        return make_error(ErrorCode::invalid_argument, "the scratch arena was created on another context");
    if (l.host_io)
        return make_error(ErrorCode::invalid_argument,
                          "a hostIo session cannot share a scratch arena (its submits run on their own timeline)");
    if (a->frames_in_flight() != l.frames_in_flight)
        return make_error(ErrorCode::invalid_argument, "framesInFlight " + std::to_string(l.frames_in_flight) +
                                                           " differs from the scratch arena's " +
                                                           std::to_string(a->frames_in_flight()));
    const VkDeviceSize need = per_frame_bytes(s);
    if (need > a->bytes_per_frame())
        return make_error(ErrorCode::budget_exceeded, "the session needs " + std::to_string(need) +
                                                          " bytes of scratch per frame, over the scratch "
                                                          "arena's bytesPerFrame of " +
                                                          std::to_string(a->bytes_per_frame()) +
                                                          " (getSessionScratchRequirements)");
    return {};
}

Status check_limits(const SessionLimits& l) {
    const AttentionShape& s = l.max_shape;
    if (s.batch == 0 || s.lq == 0 || s.lk == 0)
        return make_error(ErrorCode::invalid_argument, "session max shape has a zero (batch " +
                                                           std::to_string(s.batch) + ", lq " + std::to_string(s.lq) +
                                                           ", lk " + std::to_string(s.lk) + ")");
    if (l.frames_in_flight == 0 || l.frames_in_flight > 8)
        return make_error(ErrorCode::invalid_argument,
                          "framesInFlight " + std::to_string(l.frames_in_flight) + " is outside 1..8");
    return {};
}

// A host-I/O session stages its largest shape's every input and output; counts past 2^64 bytes are refused here
// (the arena and the staging copies would otherwise see wrapped sizes).
Status check_host_staging(const AttentionConfig& c, const SessionLimits& l) {
    if (!l.host_io || !shape_bytes_overflow(shape_bytes(c, l.max_shape, {}, true))) return {};
    return make_error(ErrorCode::unsupported, "host I/O staging for the session max shape (batch " +
                                                  std::to_string(l.max_shape.batch) + ", lq " +
                                                  std::to_string(l.max_shape.lq) + ", lk " +
                                                  std::to_string(l.max_shape.lk) + ") needs more than 2^64 bytes");
}

uint32_t max_pass_count(const AttentionConfig& c, const SessionLimits& l, const ScratchSizes& s) {
    // Four projections, QK-norm/RoPE on Q and K, the fused kernel with its combine; per score chunk at most four
    // passes more.
    if (s.scores_elems == 0) return 8;
    const uint64_t bh = uint64_t(l.max_shape.batch) * c.num_heads;
    const uint64_t per_chunk = s.scores_elems / (uint64_t(l.max_shape.lq) * l.max_shape.lk);
    const uint64_t chunks = (bh + per_chunk - 1) / per_chunk;
    return static_cast<uint32_t>(8 + 4 * chunks);
}

std::string shape_text(const AttentionShape& s) {
    return "batch " + std::to_string(s.batch) + ", lq " + std::to_string(s.lq) + ", lk " + std::to_string(s.lk);
}

// The session's scratch, and with host_io its host submitter's staging.
Result<VkDeviceSize> measure(const Context& ctx, const Model& m, const SessionLimits& l,
                             const std::vector<BufferRequest>& requests) {
    auto bytes = Arena::measure(ctx.device(), requests);
    if (!bytes || !l.host_io) return bytes;
    auto staging = HostSubmitter::memory_required(ctx, m, l);
    if (!staging) return staging.take_error();
    return bytes.value() + staging.value();
}

} // namespace

Session::Bound Session::bind_external(const ExternalBuffer& e, uint64_t needed_bytes, uint64_t elem_bytes) const {
    const VkDeviceSize align = m_ctx->device().limits().min_storage_buffer_offset_alignment;
    Bound b;
    VkDeviceSize aligned = e.offset / align * align;
    b.info.buffer = e.buffer;
    b.info.offset = aligned;
    b.info.range = (e.offset - aligned + needed_bytes + 3) / 4 * 4;
    b.remainder = static_cast<uint32_t>((e.offset - aligned) / elem_bytes);
    return b;
}

Result<uint32_t> Session::claim_frame_slot(uint64_t frame, uint64_t completed_frame, bool host_submit) const {
    if (frame == kNoFrame) return make_error(ErrorCode::invalid_argument, "frame index UINT64_MAX is reserved");
    if (!host_submit) {
        if (completed_frame != kNoFrame && completed_frame >= frame)
            return make_error(ErrorCode::invalid_argument,
                              "completedFrame " + std::to_string(completed_frame) + " >= frameIndex " +
                                  std::to_string(frame) +
                                  ": a frame cannot have completed before it is recorded (vkmha would reuse a "
                                  "frame slot the GPU may still read)");
        if (m_last_engine_frame != kNoFrame && frame < m_last_engine_frame)
            return make_error(ErrorCode::invalid_argument, "frameIndex " + std::to_string(frame) +
                                                               " is lower than this session's last recorded "
                                                               "frame " +
                                                               std::to_string(m_last_engine_frame) +
                                                               ": frame indices must not go back");
        if (frame == m_last_engine_frame)
            return make_error(ErrorCode::invalid_argument,
                              "frameIndex " + std::to_string(frame) +
                                  " was already recorded with this session: one record per session per frame — use "
                                  "a session per layer");
    }
    const uint32_t frame_slot = static_cast<uint32_t>(frame % m_limits.frames_in_flight);
    const FrameSlot& slot = m_frame_slots[frame_slot];
    if (slot.recorded_frame != kNoFrame && (completed_frame == kNoFrame || completed_frame < slot.recorded_frame))
        return make_error(
            ErrorCode::frame_in_flight,
            "frame " + std::to_string(frame) + " needs frame slot " + std::to_string(frame_slot) +
                ", still in flight with frame " + std::to_string(slot.recorded_frame) + " (completed frame: " +
                (completed_frame == kNoFrame ? std::string("none") : std::to_string(completed_frame)) + ")");
    if (m_limits.scratch_arena) VKMHA_TRY(m_limits.scratch_arena->check_claim(frame, completed_frame));
    return frame_slot;
}

void Session::bind_owned(Bindings& bound, uint32_t frame_slot) const {
    const std::pair<BufferRole, const BufferView*> weights[] = {
        {BufferRole::wq, &m_model->qkv_weights()}, {BufferRole::wk, &m_model->qkv_weights()},
        {BufferRole::wv, &m_model->qkv_weights()}, {BufferRole::bq, &m_model->qkv_biases()},
        {BufferRole::bk, &m_model->qkv_biases()},  {BufferRole::bv, &m_model->qkv_biases()},
        {BufferRole::wo, &m_model->out_weights()}, {BufferRole::bo, &m_model->out_bias()}};
    for (const auto& [role, view] : weights)
        bound[size_t(role)].info = {view->buffer, 0, std::max<VkDeviceSize>(view->size, 4)};
    bound[size_t(BufferRole::dummy)].info = {m_model->dummy().buffer, 0, 16};
    bound[size_t(BufferRole::model_table)].info = {m_model->table().buffer, 0, m_model->table().size};
    using SB = ScratchBuffer;
    const std::pair<BufferRole, ScratchBuffer> scratch[] = {{BufferRole::q, SB::q},
                                                            {BufferRole::k, SB::k},
                                                            {BufferRole::v, SB::v},
                                                            {BufferRole::scores, SB::scores},
                                                            {BufferRole::concat, SB::concat},
                                                            {BufferRole::lse, SB::lse},
                                                            {BufferRole::partials, SB::partials},
                                                            {BufferRole::records, SB::records},
                                                            {BufferRole::sink, SB::sink}};
    for (const auto& [role, which] : scratch) {
        if (bound[size_t(role)].info.buffer != VK_NULL_HANDLE) continue; // bound by the caller (a prefill job's)
        const BufferView& v = scratch_buffer(frame_slot, which);
        bound[size_t(role)].info = {v.buffer, v.offset, std::max<VkDeviceSize>(v.size, 4)};
    }
    // Buffer roles no plan of this record uses still need a valid buffer for the descriptor writes.
    for (Bound& b : bound)
        if (b.info.buffer == VK_NULL_HANDLE) b.info = bound[size_t(BufferRole::dummy)].info;
}

namespace {

// The scratch a session of these limits needs, as every plan of it will see the model and the device.
Result<ScratchSizes> session_scratch(const Context& ctx, const Model& m, const SessionLimits& l) {
    return attention_scratch(m.config(), m.precision(), l.max_shape, ctx.device().limits(), m.attention_tiling(),
                             l.scores_budget_bytes, l.fused_only);
}

} // namespace

Result<VkDeviceSize> Session::memory_required(const Context& ctx, const Model& m, const SessionLimits& l) {
    VKMHA_TRY(check_limits(l));
    VKMHA_TRY(check_host_staging(m.config(), l));
    auto scratch = session_scratch(ctx, m, l);
    if (!scratch) return scratch.take_error();
    VKMHA_TRY(check_arena(ctx, l, scratch.value()));
    return measure(ctx, m, l, session_requests(l, scratch.value(), m.config().num_heads));
}

Result<VkDeviceSize> Session::scratch_bytes_per_frame(const Context& ctx, const Model& m, const SessionLimits& l) {
    VKMHA_TRY(check_limits(l));
    auto scratch = session_scratch(ctx, m, l);
    if (!scratch) return scratch.take_error();
    return per_frame_bytes(scratch.value());
}

namespace {

// The model's facts every plan of the session reads.
PlanModel plan_model(const Model& m, const ShaderLibrary& shaders) {
    return PlanModel{.config = m.config(),
                     .weights = m.weight_offsets(),
                     .precision = m.precision(),
                     .has_in_bias = m.has_in_bias(),
                     .has_out_bias = m.has_out_bias(),
                     .tiling = m.attention_tiling(),
                     .has_decode_tiling = m.decode_pipeline() != VK_NULL_HANDLE,
                     .decode_tiling = m.decode_tiling(),
                     .linear_tiling = shaders.linear_tiling()};
}

} // namespace

Result<std::unique_ptr<Session>> Session::create(const Context& ctx, const Model& m, const SessionLimits& l) {
    VKMHA_TRY(check_limits(l));
    VKMHA_TRY(check_host_staging(m.config(), l));
    const Device& d = ctx.device();
    if (l.host_io) VKMHA_TRY(HostSubmitter::check_device(d));
    auto scratch = session_scratch(ctx, m, l);
    if (!scratch) return scratch.take_error();
    VKMHA_TRY(check_arena(ctx, l, scratch.value()));
    auto requests = session_requests(l, scratch.value(), m.config().num_heads);
    if (l.memory_budget) {
        auto need = measure(ctx, m, l, requests);
        if (!need) return need.take_error();
        if (need.value() > l.memory_budget)
            return make_error(ErrorCode::budget_exceeded, "session needs " + std::to_string(need.value()) +
                                                              " bytes of device memory, over the budget of " +
                                                              std::to_string(l.memory_budget));
    }
    std::unique_ptr<Session> s(new Session());
    s->m_ctx = &ctx;
    s->m_model = &m;
    s->m_plan_model = plan_model(m, ctx.shaders());
    s->m_limits = l;
    s->m_scratch = scratch.value();
    s->m_max_passes = max_pass_count(m.config(), l, s->m_scratch);
    auto arena = Arena::create(d, requests);
    if (!arena) return arena.take_error();
    s->m_arena = std::move(arena.value());
    s->place_scratch();

    auto sets = ctx.shaders().allocate_sets(s->m_max_passes * l.frames_in_flight, "session");
    if (!sets) return sets.take_error();
    s->m_pool = std::move(sets.value().pool);

    s->m_frame_slots.resize(l.frames_in_flight);
    for (uint32_t f = 0; f < l.frames_in_flight; ++f) {
        FrameSlot& slot = s->m_frame_slots[f];
        slot.pass_stages.reserve(s->m_max_passes);
        // One set per pass position; all kernels share one set layout, so any set serves any kernel.
        const auto first = sets.value().sets.begin() + ptrdiff_t(f) * s->m_max_passes;
        slot.sets.assign(first, first + s->m_max_passes);
        if (d.limits().timestamps && l.timestamps) {
            VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
            qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
            qi.queryCount = 2 * s->m_max_passes;
            VkQueryPool qp = VK_NULL_HANDLE;
            const VkResult r = d.vk().vkCreateQueryPool(d.handle(), &qi, d.allocator(), &qp);
            if (r != VK_SUCCESS) return d.vk_error("vkCreateQueryPool", r);
            slot.queries = Handle<VkQueryPool>(&d, qp);
        }
    }
    if (l.host_io) {
        auto host = HostSubmitter::create(ctx, *s);
        if (!host) return host.take_error();
        s->m_host_submitter = std::move(host.value());
    }
    return s;
}

// Defined here, where HostSubmitter is complete; the submitter (declared last) waits for its submissions first.
Session::~Session() = default;

VkDeviceSize Session::bytes() const { return m_arena.bytes() + (m_host_submitter ? m_host_submitter->bytes() : 0); }

const BufferView& Session::scratch(uint64_t frame, BufferRole role) const {
    const uint32_t frame_slot = static_cast<uint32_t>(frame % m_limits.frames_in_flight);
    switch (role) {
    case BufferRole::q: return scratch_buffer(frame_slot, ScratchBuffer::q);
    case BufferRole::k: return scratch_buffer(frame_slot, ScratchBuffer::k);
    case BufferRole::v: return scratch_buffer(frame_slot, ScratchBuffer::v);
    case BufferRole::scores: return scratch_buffer(frame_slot, ScratchBuffer::scores);
    case BufferRole::lse: return scratch_buffer(frame_slot, ScratchBuffer::lse);
    case BufferRole::partials: return scratch_buffer(frame_slot, ScratchBuffer::partials);
    default: return scratch_buffer(frame_slot, ScratchBuffer::concat);
    }
}

const BufferView& Session::scratch_buffer(uint32_t frame_slot, ScratchBuffer which) const {
    return m_scratch_views[frame_slot * size_t(ScratchBuffer::count) + size_t(which)];
}

void Session::place_scratch() {
    constexpr size_t count = size_t(ScratchBuffer::count);
    const ScratchArena* shared = m_limits.scratch_arena.get();
    m_scratch_views.clear();
    if (!shared) {
        for (size_t i = 0; i < m_arena.size(); ++i) m_scratch_views.push_back(m_arena[i]);
        return;
    }
    // The arena's frame buffer holds the pieces back to back; the own arena holds each slot's records and sink.
    const auto pieces = scratch_piece_bytes(m_scratch);
    for (uint32_t f = 0; f < m_limits.frames_in_flight; ++f) {
        const BufferView& frame = shared->frame_buffer(f);
        VkDeviceSize offset = 0;
        for (uint64_t bytes : pieces) {
            m_scratch_views.push_back({frame.buffer, offset, std::max<VkDeviceSize>(bytes, 16), nullptr});
            offset += shared_piece_bytes(bytes);
        }
        m_scratch_views.push_back(m_arena[2 * f]);     // records
        m_scratch_views.push_back(m_arena[2 * f + 1]); // sink
    }
    static_assert(size_t(ScratchBuffer::records) == 7 && count == 9, "the pieces, then records and sink");
}

void Session::release_frame_slot(uint64_t frame) {
    m_frame_slots[frame % m_limits.frames_in_flight].recorded_frame = kNoFrame;
}

Status Session::check(const RecordArgs& a) const {
    const AttentionShape& s = a.shape;
    const AttentionShape& mx = m_limits.max_shape;
    if (s.batch == 0 || s.lq == 0 || s.lk == 0)
        return make_error(ErrorCode::invalid_argument, "shape has a zero (" + shape_text(s) + ")");
    if (s.batch > mx.batch || s.lq > mx.lq || s.lk > mx.lk)
        return make_error(ErrorCode::out_of_range,
                          "shape (" + shape_text(s) + ") is over the session's budget (" + shape_text(mx) + ")");
    const AttentionOptions& o = a.options;
    if (o.key_padding == MaskKind::additive)
        return make_error(ErrorCode::invalid_argument, "key_padding_mask must be boolean (bytes)");
    if (o.attn_mask != MaskKind::none && o.attn_mask != MaskKind::boolean && o.attn_mask != MaskKind::additive)
        return make_error(ErrorCode::invalid_argument,
                          "attn_mask kind " + std::to_string(static_cast<uint32_t>(o.attn_mask)) + " is unknown");
    const AttentionConfig& c = m_model->config();
    if (c.attention_only && !a.own_qkv)
        return make_error(ErrorCode::invalid_argument, "the model is attention-only (no projection weights): record "
                                                       "the caller's own Q, K and V");
    ShapeBytes need = shape_bytes(c, s, o, false, a.own_qkv ? &a.qkv : nullptr);
    const bool self_key = a.key.buffer == VK_NULL_HANDLE;
    if (a.own_qkv) {
        VKMHA_TRY(check_own_qkv(a));
    } else if (self_key && (s.lk != s.lq || c.kdim != c.embed_dim || c.vdim != c.embed_dim))
        return make_error(ErrorCode::invalid_argument, "no key buffer bound (self-attention) but lk " +
                                                           std::to_string(s.lk) + " != lq " + std::to_string(s.lq) +
                                                           " or kdim/vdim differ from embed_dim");
    auto check = [](const char* name, const ExternalBuffer& e, uint64_t bytes, bool required) {
        return check_external_range(name, e, bytes, required, " for the shape");
    };
    VKMHA_TRY(check("query", a.query, need.query, true));
    VKMHA_TRY(check("key", a.key, need.key, false));
    VKMHA_TRY(check("value", a.value, need.value, false));
    if (a.value.buffer == VK_NULL_HANDLE && !self_key && c.vdim != c.kdim)
        return make_error(ErrorCode::invalid_argument, "no value buffer bound but vdim " + std::to_string(c.vdim) +
                                                           " != kdim " + std::to_string(c.kdim));
    VKMHA_TRY(check("output", a.output, need.output, true));
    VKMHA_TRY(check("key_padding_mask", a.key_padding_mask, need.kpm, o.key_padding != MaskKind::none));
    VKMHA_TRY(check("attn_mask", a.attn_mask, need.mask_elems * (o.attn_mask == MaskKind::additive ? 4 : 1),
                    o.attn_mask != MaskKind::none));
    VKMHA_TRY(check("weights", a.weights, need.weights, o.need_weights));
    VKMHA_TRY(check("position_ids", a.position_ids, need.positions, false));
    VKMHA_TRY(check("key_position_ids", a.key_position_ids, uint64_t(s.batch) * s.lk * 4, false));
    for (const ExternalBuffer* e :
         {&a.query, &a.key, &a.value, &a.output, &a.weights, &a.position_ids, &a.key_position_ids})
        if (e->buffer != VK_NULL_HANDLE && e->offset % 4 != 0)
            return make_error(ErrorCode::invalid_argument,
                              "float or int32 buffer offset " + std::to_string(e->offset) + " is not a multiple of 4");
    if (a.frame == kNoFrame) return make_error(ErrorCode::invalid_argument, "frame index UINT64_MAX is reserved");
    return check_head_factors(a.head_factors, c.num_heads, s.batch, "a record");
}

// Attention only: K and V are the caller's and required. Inputs may alias (an engine may broadcast a row); the
// output's rows must not overlap, or two invocations would race on one element.
Status Session::check_own_qkv(const RecordArgs& a) const {
    if (a.key.buffer == VK_NULL_HANDLE || a.value.buffer == VK_NULL_HANDLE)
        return make_error(ErrorCode::invalid_argument, "an attention-only record needs key and value buffers");
    const AttentionConfig& c = m_model->config();
    const TensorStrides& o = a.qkv.o;
    if (!rows_disjoint(o, a.shape.batch, c.num_heads, a.shape.lq, c.head_dim()))
        return make_error(ErrorCode::invalid_argument, "output strides (batch " + std::to_string(o.batch) + ", head " +
                                                           std::to_string(o.head) + ", row " + std::to_string(o.row) +
                                                           ") make rows of " + std::to_string(c.head_dim()) +
                                                           " floats overlap");
    return {};
}

Status Session::record(VkCommandBuffer cmd, const RecordArgs& a) {
    if (cmd == VK_NULL_HANDLE) return make_error(ErrorCode::invalid_argument, "command buffer is VK_NULL_HANDLE");
    VKMHA_TRY(check(a));
    auto claimed = claim_frame_slot(a.frame, a.completed_frame, a.host_submit);
    if (!claimed) return claimed.take_error();
    const uint32_t frame_slot = claimed.value();
    const Device& d = m_ctx->device();
    const AttentionConfig& c = m_model->config();
    ShapeBytes need = shape_bytes(c, a.shape, a.options, false, a.own_qkv ? &a.qkv : nullptr);

    const ExternalBuffer& key = a.key.buffer ? a.key : a.query;
    const ExternalBuffer& value = a.value.buffer ? a.value : key;
    Bindings bound{};
    bound[size_t(BufferRole::query)] = bind_external(a.query, need.query, 4);
    bound[size_t(BufferRole::key)] = bind_external(key, a.key.buffer ? need.key : need.query, 4);
    bound[size_t(BufferRole::value)] =
        bind_external(value, a.value.buffer ? need.value : (a.key.buffer ? need.key : need.query), 4);
    const bool key_positions = a.key_position_ids.buffer != VK_NULL_HANDLE;
    if (key_positions)
        bound[size_t(BufferRole::key_position_ids)] =
            bind_external(a.key_position_ids, uint64_t(a.shape.batch) * a.shape.lk * 4, 4);
    bound[size_t(BufferRole::output)] = bind_external(a.output, need.output, 4);
    if (a.options.key_padding != MaskKind::none)
        bound[size_t(BufferRole::key_padding_mask)] = bind_external(a.key_padding_mask, need.kpm, 1);
    if (a.options.attn_mask != MaskKind::none) {
        uint64_t eb = a.options.attn_mask == MaskKind::additive ? 4 : 1;
        bound[size_t(BufferRole::attn_mask)] = bind_external(a.attn_mask, need.mask_elems * eb, eb);
    }
    if (a.options.need_weights) bound[size_t(BufferRole::weights)] = bind_external(a.weights, need.weights, 4);
    const bool positions = a.position_ids.buffer != VK_NULL_HANDLE;
    if (positions) bound[size_t(BufferRole::position_ids)] = bind_external(a.position_ids, need.positions, 4);
    bind_owned(bound, frame_slot);

    PlanInputs pin;
    pin.model = m_plan_model;
    pin.self_attention = a.key.buffer == VK_NULL_HANDLE && a.value.buffer == VK_NULL_HANDLE;
    pin.shape = a.shape;
    pin.options = a.options;
    pin.offsets.query = bound[size_t(BufferRole::query)].remainder;
    pin.offsets.key = bound[size_t(BufferRole::key)].remainder;
    pin.offsets.value = bound[size_t(BufferRole::value)].remainder;
    pin.offsets.output = bound[size_t(BufferRole::output)].remainder;
    pin.offsets.key_padding_mask = bound[size_t(BufferRole::key_padding_mask)].remainder;
    pin.offsets.attn_mask = bound[size_t(BufferRole::attn_mask)].remainder;
    pin.offsets.weights = bound[size_t(BufferRole::weights)].remainder;
    pin.offsets.position_ids = bound[size_t(BufferRole::position_ids)].remainder;
    pin.offsets.key_position_ids = bound[size_t(BufferRole::key_position_ids)].remainder;
    pin.has_position_ids = positions;
    pin.own_qkv = a.own_qkv;
    pin.qkv = a.qkv;
    pin.qkv.has_key_position_ids = key_positions;
    if (a.own_qkv) pin.self_attention = false;
    pin.scores_capacity = m_scratch.scores_elems;
    pin.scores_budget_bytes = m_limits.scores_budget_bytes;
    pin.partials_capacity = m_scratch.partials_elems;
    if (!a.head_factors.empty()) {
        // The slot's records buffer is otherwise unused by plain records: the factors go at its word 0.
        write_head_factors(static_cast<float*>(scratch_buffer(frame_slot, ScratchBuffer::records).mapped),
                           a.head_factors, c.num_heads, a.shape.batch);
        pin.head_factors = 1;
    }
    if (!m_plan_valid ||
        !(pin.shape == m_plan_inputs.shape && pin.options == m_plan_inputs.options &&
          pin.offsets == m_plan_inputs.offsets && pin.has_position_ids == m_plan_inputs.has_position_ids &&
          pin.own_qkv == m_plan_inputs.own_qkv && pin.qkv == m_plan_inputs.qkv &&
          pin.head_factors == m_plan_inputs.head_factors)) {
        m_plan_valid = false;
        auto plan = plan_attention(pin, d.limits());
        if (!plan) return plan.take_error();
        if (plan->passes.size() > m_max_passes)
            return make_error(ErrorCode::internal, "plan has " + std::to_string(plan->passes.size()) +
                                                       " passes, over the session's " + std::to_string(m_max_passes));
        m_plan = std::move(plan.value());
        m_plan_inputs = pin;
        m_plan_valid = true;
    }

    const ExternalBuffer* reads[] = {&a.query,
                                     &a.key,
                                     &a.value,
                                     a.options.key_padding != MaskKind::none ? &a.key_padding_mask : nullptr,
                                     a.options.attn_mask != MaskKind::none ? &a.attn_mask : nullptr,
                                     positions ? &a.position_ids : nullptr,
                                     key_positions ? &a.key_position_ids : nullptr};
    const ExternalBuffer* writes[] = {&a.output, a.options.need_weights ? &a.weights : nullptr};
    record_plan(cmd, frame_slot, m_plan, bound, reads, writes, "vkmha attention");
    mark_recorded(frame_slot, a.frame, a.host_submit);
    return {};
}

void Session::mark_recorded(uint32_t frame_slot, uint64_t frame, bool host_submit) {
    m_frame_slots[frame_slot].recorded_frame = frame;
    if (!host_submit) m_last_engine_frame = frame;
    if (m_limits.scratch_arena) m_limits.scratch_arena->mark_recorded(frame);
}

void Session::record_plan(VkCommandBuffer cmd, uint32_t frame_slot, const AttentionPlan& p, const Bindings& bound,
                          std::span<const ExternalBuffer* const> reads, std::span<const ExternalBuffer* const> writes,
                          const char* label) {
    const Device& d = m_ctx->device();
    FrameSlot& slot = m_frame_slots[frame_slot];
    const auto& vk = d.vk();
    auto label_begin = [&](const char* text) {
        if (!d.debug_utils()) return;
        VkDebugUtilsLabelEXT info{VK_STRUCTURE_TYPE_DEBUG_UTILS_LABEL_EXT};
        info.pLabelName = text;
        d.vki().vkCmdBeginDebugUtilsLabelEXT(cmd, &info);
    };
    auto label_end = [&] {
        if (d.debug_utils()) d.vki().vkCmdEndDebugUtilsLabelEXT(cmd);
    };
    label_begin(label);

    // Entry: wait for the caller's last use of each bound buffer, and for any earlier vkmha work on this slot's
    // scratch and on KV caches recorded into the same queue.
    std::array<VkBufferMemoryBarrier, 10> entry{};
    uint32_t entry_count = 0;
    VkPipelineStageFlags src_stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
    auto add_entry = [&](const ExternalBuffer* e_ptr, bool written) {
        if (e_ptr == nullptr || entry_count == entry.size()) return;
        const ExternalBuffer& e = *e_ptr;
        if (e.buffer == VK_NULL_HANDLE || e.src_stage == 0) return;
        VkBufferMemoryBarrier b{VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER};
        b.srcAccessMask = e.src_access;
        b.dstAccessMask = written ? VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT : VK_ACCESS_SHADER_READ_BIT;
        b.srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
        b.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
        b.buffer = e.buffer;
        b.offset = e.offset;
        b.size = e.range;
        entry[entry_count++] = b;
        src_stages |= e.src_stage;
    };
    for (const ExternalBuffer* e : reads) add_entry(e, false);
    for (const ExternalBuffer* e : writes) add_entry(e, true);
    VkMemoryBarrier scratch_barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    scratch_barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT;
    scratch_barrier.dstAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT;
    vk.vkCmdPipelineBarrier(cmd, src_stages, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &scratch_barrier, entry_count,
                            entry.data(), 0, nullptr);

    const bool timed = static_cast<bool>(slot.queries);
    if (timed) vk.vkCmdResetQueryPool(cmd, slot.queries.get(), 0, 2 * m_max_passes);
    slot.pass_stages.clear();

    VkMemoryBarrier pass_barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    pass_barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    pass_barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    for (size_t i = 0; i < p.passes.size(); ++i) {
        const Pass& pass = p.passes[i];
        if (pass.barrier_before)
            vk.vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0,
                                    1, &pass_barrier, 0, nullptr, 0, nullptr);
        VkDescriptorSet set = slot.sets[i];
        const uint32_t n = kernel_binding_count(pass.kernel);
        VkWriteDescriptorSet set_writes[kMaxBindings]{};
        for (uint32_t b = 0; b < kMaxBindings; ++b) {
            // Every set has the kMaxBindings layout; bindings a kernel does not declare still get the dummy.
            const BufferRole s = b < n ? pass.bindings[b] : BufferRole::dummy;
            set_writes[b].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
            set_writes[b].dstSet = set;
            set_writes[b].dstBinding = b;
            set_writes[b].descriptorCount = 1;
            set_writes[b].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
            set_writes[b].pBufferInfo = &bound[size_t(s)].info;
        }
        vk.vkUpdateDescriptorSets(d.handle(), kMaxBindings, set_writes, 0, nullptr);
        label_begin(stage_name(pass.stage));
        if (timed)
            vk.vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, slot.queries.get(), uint32_t(2 * i));
        vk.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE,
                             pass.kernel == Kernel::attention
                                 ? (pass.decode_tiling ? m_model->decode_pipeline() : m_model->attention_pipeline())
                                 : m_ctx->shaders().pipeline(pass.kernel, pass.variant));
        vk.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, m_ctx->shaders().layout(), 0, 1, &set, 0,
                                   nullptr);
        vk.vkCmdPushConstants(cmd, m_ctx->shaders().layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, pass.push_bytes,
                              pass.push.data());
        vk.vkCmdDispatch(cmd, pass.groups[0], pass.groups[1], pass.groups[2]);
        if (timed)
            vk.vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, slot.queries.get(), uint32_t(2 * i + 1));
        label_end();
        slot.pass_stages.push_back(pass.stage);
    }
    label_end();
}

Result<std::vector<StageTiming>> Session::timings(uint64_t frame) const {
    const FrameSlot& slot = m_frame_slots[frame % m_limits.frames_in_flight];
    if (slot.recorded_frame != frame)
        return make_error(ErrorCode::out_of_range,
                          "frame " + std::to_string(frame) + " is not the last frame recorded in its slot");
    if (!m_limits.timestamps)
        return make_error(ErrorCode::unsupported, "the session has no GPU timestamps: it was created with "
                                                  "VKMHA_SESSION_CREATE_NO_TIMESTAMPS_BIT");
    if (!slot.queries) return make_error(ErrorCode::unsupported, "this device's queue has no timestamps");
    const Device& d = m_ctx->device();
    const uint32_t count = static_cast<uint32_t>(2 * slot.pass_stages.size());
    std::vector<uint64_t> values(2 * size_t(count));
    VkResult r =
        d.vk().vkGetQueryPoolResults(d.handle(), slot.queries.get(), 0, count, values.size() * 8, values.data(), 16,
                                     VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WITH_AVAILABILITY_BIT);
    if (r != VK_SUCCESS && r != VK_NOT_READY) return d.vk_error("vkGetQueryPoolResults", r);
    std::array<double, kStageCount> ms{};
    std::array<bool, kStageCount> seen{};
    for (size_t i = 0; i < slot.pass_stages.size(); ++i) {
        const uint64_t t0 = values[4 * i], a0 = values[4 * i + 1], t1 = values[4 * i + 2], a1 = values[4 * i + 3];
        if (!a0 || !a1)
            return make_error(ErrorCode::not_ready,
                              "timestamps of frame " + std::to_string(frame) + " are not available yet");
        const size_t st = static_cast<size_t>(slot.pass_stages[i]);
        ms[st] += t1 > t0 ? double(t1 - t0) * d.limits().timestamp_period_ns * 1e-6 : 0.0;
        seen[st] = true;
    }
    std::vector<StageTiming> out;
    for (uint32_t st = 0; st < kStageCount; ++st)
        if (seen[st]) out.push_back({static_cast<Stage>(st), ms[st]});
    return out;
}

} // namespace vkmha
