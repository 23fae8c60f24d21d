// HostSubmitter: staging, the recorders called as an engine calls them, queue submission and the timeline.
#include "host_submit.h"

#include "shape_bytes.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace vkmha {
namespace {

// Per frame slot, the staging buffers in HostSubmitter::Staging order.
std::vector<BufferRequest> staging_requests(const Model& m, const SessionLimits& l) {
    std::vector<BufferRequest> reqs;
    const ShapeBytes io = shape_bytes(m.config(), l.max_shape, {}, true);
    for (uint32_t f = 0; f < l.frames_in_flight; ++f) {
        const std::string n = " [frame slot " + std::to_string(f) + "]";
        reqs.push_back({"vkmha host query" + n, io.query, MemoryKind::host_visible});
        reqs.push_back({"vkmha host key" + n, io.key, MemoryKind::host_visible});
        reqs.push_back({"vkmha host value" + n, io.value, MemoryKind::host_visible});
        reqs.push_back({"vkmha host key_padding_mask" + n, (io.kpm + 3) / 4 * 4, MemoryKind::host_visible});
        // Worst-case masks and weights grow with B*H*Lq*Lk: staged only when the session was asked for them.
        const uint64_t mask_elems = l.host_per_head_mask ? io.mask_elems : uint64_t(l.max_shape.lq) * l.max_shape.lk;
        reqs.push_back({"vkmha host attn_mask" + n, mask_elems * 4, MemoryKind::host_visible});
        // The queries' positions, then (attention-only submits) the keys'.
        reqs.push_back({"vkmha host position_ids" + n, 4ull * l.max_shape.batch * (l.max_shape.lq + l.max_shape.lk),
                        MemoryKind::host_visible});
        reqs.push_back({"vkmha host output" + n, io.output, MemoryKind::host_visible});
        reqs.push_back({"vkmha host weights" + n, l.host_weights ? io.weights : 0, MemoryKind::host_visible});
    }
    return reqs;
}

} // namespace

Status HostSubmitter::check_device(const Device& d) {
    if (!d.has_queue() || !d.timeline_semaphores())
        return make_error(ErrorCode::unsupported,
                          "host I/O sessions need a queue and timeline semaphores, which this context lacks");
    return {};
}

Result<VkDeviceSize> HostSubmitter::memory_required(const Context& ctx, const Model& m, const SessionLimits& l) {
    return Arena::measure(ctx.device(), staging_requests(m, l));
}

Result<std::unique_ptr<HostSubmitter>> HostSubmitter::create(const Context& ctx, Session& session) {
    const Device& d = ctx.device();
    VKMHA_TRY(check_device(d));
    const SessionLimits& l = session.limits();
    auto arena = Arena::create(d, staging_requests(session.model(), l));
    if (!arena) return arena.take_error();
    std::unique_ptr<HostSubmitter> h(new HostSubmitter());
    h->m_ctx = &ctx;
    h->m_session = &session;
    h->m_arena = std::move(arena.value());

    VkCommandPoolCreateInfo ci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    ci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    ci.queueFamilyIndex = d.queue_family();
    VkCommandPool cmd_pool = VK_NULL_HANDLE;
    VkResult r = d.vk().vkCreateCommandPool(d.handle(), &ci, d.allocator(), &cmd_pool);
    if (r != VK_SUCCESS) return d.vk_error("vkCreateCommandPool", r);
    h->m_cmd_pool = Handle<VkCommandPool>(&d, cmd_pool);
    VkSemaphoreTypeCreateInfo ti{VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO};
    ti.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE;
    VkSemaphoreCreateInfo si{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
    si.pNext = &ti;
    VkSemaphore sem = VK_NULL_HANDLE;
    r = d.vk().vkCreateSemaphore(d.handle(), &si, d.allocator(), &sem);
    if (r != VK_SUCCESS) return d.vk_error("vkCreateSemaphore(timeline)", r);
    h->m_timeline = Handle<VkSemaphore>(&d, sem);
    d.set_name(VK_OBJECT_TYPE_SEMAPHORE, reinterpret_cast<uint64_t>(sem), "vkmha session timeline");

    h->m_frame_slots.resize(l.frames_in_flight);
    for (FrameSlot& slot : h->m_frame_slots) {
        VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
        cai.commandPool = cmd_pool;
        cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
        cai.commandBufferCount = 1;
        r = d.vk().vkAllocateCommandBuffers(d.handle(), &cai, &slot.cmd);
        if (r != VK_SUCCESS) return d.vk_error("vkAllocateCommandBuffers", r);
    }
    return h;
}

HostSubmitter::~HostSubmitter() {
    if (!m_timeline || !m_submits) return;
    // The staging and the session's buffers are freed next, so the GPU must be done with them: a failed wait is
    // tried once more (a lost device needs no wait), and a destructor cannot fail, so what remains is logged.
    Status done = wait(m_submits, UINT64_MAX);
    if (!done && done.error().code != ErrorCode::device_lost) done = wait(m_submits, UINT64_MAX);
    if (!done) m_ctx->device().log(LogLevel::error, "destroying a session: " + done.error().message);
}

const BufferView& HostSubmitter::staging(uint32_t frame_slot, Staging which) const {
    return m_arena[frame_slot * size_t(Staging::count) + size_t(which)];
}

Result<uint64_t> HostSubmitter::submit(const AttentionShape& shape, const AttentionOptions& options,
                                       const HostInputs& in) {
    const SessionLimits& limits = m_session->limits();
    if (!in.query) return make_error(ErrorCode::invalid_argument, "query pointer is NULL");
    if (options.need_weights && !limits.host_weights)
        return make_error(ErrorCode::invalid_argument, "NEED_WEIGHTS in a submit needs a session created with "
                                                       "VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT");
    if (options.attn_mask != MaskKind::none && options.attn_mask_per_head && !limits.host_per_head_mask)
        return make_error(ErrorCode::invalid_argument, "a per-head attn_mask in a submit needs a session created with "
                                                       "VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT");
    if (options.key_padding != MaskKind::none && !in.key_padding_mask)
        return make_error(ErrorCode::invalid_argument,
                          "key_padding_mask pointer is NULL but a key padding mask was requested");
    if (options.attn_mask != MaskKind::none && !in.attn_mask)
        return make_error(ErrorCode::invalid_argument, "attn_mask pointer is NULL but an attention mask was requested");
    const uint32_t frame_slot = static_cast<uint32_t>(m_submits % limits.frames_in_flight);
    FrameSlot& slot = m_frame_slots[frame_slot];
    if (slot.value) VKMHA_TRY(wait(slot.value, UINT64_MAX)); // the slot's previous run must finish
    const AttentionConfig& c = m_session->model().config();
    const uint32_t D = c.head_dim(), G = c.num_kv_heads;
    OwnQkv qkv{.q = {c.num_heads * shape.lq * D, shape.lq * D, D},
               .k = {G * shape.lk * D, shape.lk * D, D},
               .v = {G * shape.lk * D, shape.lk * D, D},
               .o = {c.num_heads * shape.lq * D, shape.lq * D, D}};
    ShapeBytes need = shape_bytes(c, shape, options, false, in.own_qkv ? &qkv : nullptr);
    auto host = [&](Staging which) -> const BufferView& { return staging(frame_slot, which); };
    auto ext = [&](Staging which, uint64_t bytes) {
        ExternalBuffer e;
        e.buffer = host(which).buffer;
        e.range = bytes;
        return e;
    };
    RecordArgs a;
    a.frame = m_submits;
    a.completed_frame = m_submits; // every earlier host frame in this slot was waited for above
    a.host_submit = true;
    a.shape = shape;
    a.options = options;
    a.head_factors = in.head_factors;
    a.query = ext(Staging::query, need.query);
    if (in.key) a.key = ext(Staging::key, need.key);
    if (in.value)
        a.value = ext(Staging::value, need.value);
    else if (in.key)
        a.value = a.key;
    if (options.key_padding != MaskKind::none) a.key_padding_mask = ext(Staging::key_padding_mask, need.kpm);
    const uint64_t mask_bytes = need.mask_elems * (options.attn_mask == MaskKind::additive ? 4 : 1);
    if (options.attn_mask != MaskKind::none) a.attn_mask = ext(Staging::attn_mask, mask_bytes);
    a.output = ext(Staging::output, need.output);
    if (options.need_weights) a.weights = ext(Staging::weights, need.weights);
    if (in.position_ids) a.position_ids = ext(Staging::position_ids, need.positions);
    if (in.own_qkv) {
        a.own_qkv = true;
        a.qkv = qkv;
        // The keys' positions follow the queries' in the same staging buffer.
        if (in.key_position_ids)
            a.key_position_ids = {host(Staging::position_ids).buffer, need.positions,
                                  uint64_t(shape.batch) * shape.lk * 4};
    }
    if (in.own_qkv && (!in.key || !in.value))
        return make_error(ErrorCode::invalid_argument, "an attention-only submit needs key and value pointers");
    if (in.key && in.value == nullptr && c.vdim != c.kdim)
        return make_error(ErrorCode::invalid_argument, "value pointer is NULL but vdim differs from kdim");
    if (!in.key && (shape.lk != shape.lq))
        return make_error(ErrorCode::invalid_argument, "key pointer is NULL (self-attention) but lk " +
                                                           std::to_string(shape.lk) + " != lq " +
                                                           std::to_string(shape.lq));
    // Checked before anything is staged: the shape's bytes fit the staging only once it is within the budget.
    VKMHA_TRY(m_session->check(a));
    std::memcpy(host(Staging::query).mapped, in.query, need.query);
    if (in.key) std::memcpy(host(Staging::key).mapped, in.key, need.key);
    if (in.value) std::memcpy(host(Staging::value).mapped, in.value, need.value);
    if (options.key_padding != MaskKind::none)
        std::memcpy(host(Staging::key_padding_mask).mapped, in.key_padding_mask, need.kpm);
    if (options.attn_mask != MaskKind::none) std::memcpy(host(Staging::attn_mask).mapped, in.attn_mask, mask_bytes);
    if (in.position_ids) std::memcpy(host(Staging::position_ids).mapped, in.position_ids, need.positions);
    if (a.key_position_ids.buffer)
        std::memcpy(static_cast<uint8_t*>(host(Staging::position_ids).mapped) + need.positions, in.key_position_ids,
                    a.key_position_ids.range);

    auto begun = begin();
    if (!begun) return begun.take_error();
    slot.shape = shape;
    slot.options = options;
    slot.own_qkv = in.own_qkv;
    return end(frame_slot, m_session->record(slot.cmd, a));
}

Result<uint64_t> HostSubmitter::submit_cached(KvCache& cache, std::span<const SequenceStep> steps,
                                              const HostInputs& in) {
    if (!in.query) return make_error(ErrorCode::invalid_argument, "query pointer is NULL");
    const AttentionConfig& c = m_session->model().config();
    uint64_t T = 0;
    for (const SequenceStep& st : steps) T += st.new_tokens;
    auto begun = begin();
    if (!begun) return begun.take_error();
    const uint32_t frame_slot = begun.value();
    auto host = [&](Staging which) -> const BufferView& { return staging(frame_slot, which); };
    auto stage = [&](const char* name, Staging which, const void* data, uint64_t bytes, ExternalBuffer& e) -> Status {
        if (data == nullptr) return {};
        if (bytes > host(which).size)
            return make_error(ErrorCode::out_of_range, std::string(name) + " needs " + std::to_string(bytes) +
                                                           " bytes of host staging; the session has " +
                                                           std::to_string(host(which).size));
        std::memcpy(host(which).mapped, data, bytes);
        e.buffer = host(which).buffer;
        e.range = bytes;
        return {};
    };
    CachedRecordArgs a;
    a.frame = m_submits;
    a.completed_frame = m_submits; // begin waited for this slot's previous run
    a.host_submit = true;
    a.cache = &cache;
    a.steps = steps;
    a.head_factors = in.head_factors;
    // Own Q/K/V: contiguous [T, H, D] and [T, G, D], as scaled_dot_product_attention's inputs per token.
    const uint32_t D = c.head_dim(), H = c.num_heads, G = c.num_kv_heads;
    const uint64_t q_width = in.own_qkv ? H * D : c.embed_dim;
    const uint64_t k_width = in.own_qkv ? G * D : c.kdim, v_width = in.own_qkv ? G * D : c.vdim;
    if (in.own_qkv) {
        a.own_qkv = true;
        a.qkv.q = a.qkv.o = {0, D, H * D};
        a.qkv.k = a.qkv.v = {0, D, G * D};
    }
    Status staged = stage("query", Staging::query, in.query, T * q_width * 4, a.query);
    if (staged) staged = stage("key", Staging::key, in.key, T * k_width * 4, a.key);
    if (staged) staged = stage("value", Staging::value, in.value, T * v_width * 4, a.value);
    if (staged)
        staged = stage("key_padding_mask", Staging::key_padding_mask, in.key_padding_mask,
                       uint64_t(cache.limits().sequences) * cache.limits().capacity, a.key_padding_mask);
    if (staged) staged = stage("position_ids", Staging::position_ids, in.position_ids, T * 4, a.position_ids);
    if (!in.value && in.key) a.value = a.key;
    const uint64_t out_bytes = T * q_width * 4;
    if (staged && out_bytes > host(Staging::output).size)
        staged = make_error(ErrorCode::out_of_range, "output needs " + std::to_string(out_bytes) +
                                                         " bytes of host staging; the session has " +
                                                         std::to_string(host(Staging::output).size));
    a.output = {host(Staging::output).buffer, 0, out_bytes};
    FrameSlot& slot = m_frame_slots[frame_slot];
    // Recording claims the steps' cache positions; a submission that then fails never writes them.
    std::vector<KvCache::SequenceState> before;
    for (const SequenceStep& st : steps)
        if (st.sequence < cache.limits().sequences) before.push_back(cache.save(st.sequence));
    Status recorded = staged ? m_session->record_cached(slot.cmd, a) : staged;
    slot.shape = {1, static_cast<uint32_t>(T), static_cast<uint32_t>(T)};
    slot.options = {};
    slot.own_qkv = in.own_qkv;
    Result<uint64_t> submitted = end(frame_slot, std::move(recorded));
    if (!submitted)
        for (const KvCache::SequenceState& s : before) cache.restore(s);
    return submitted;
}

Result<uint32_t> HostSubmitter::begin() {
    const uint32_t frame_slot = static_cast<uint32_t>(m_submits % m_session->limits().frames_in_flight);
    FrameSlot& slot = m_frame_slots[frame_slot];
    if (slot.value) VKMHA_TRY(wait(slot.value, UINT64_MAX)); // the slot's previous run must finish
    const Device& d = m_ctx->device();
    const auto& vk = d.vk();
    VkResult r = vk.vkResetCommandBuffer(slot.cmd, 0);
    if (r != VK_SUCCESS) return d.vk_error("vkResetCommandBuffer", r);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    r = vk.vkBeginCommandBuffer(slot.cmd, &bi);
    if (r != VK_SUCCESS) return d.vk_error("vkBeginCommandBuffer", r);
    m_session->release_frame_slot(m_submits); // this slot's previous host frame finished (waited above)
    return frame_slot;
}

Result<uint64_t> HostSubmitter::end(uint32_t frame_slot, Status recorded) {
    FrameSlot& slot = m_frame_slots[frame_slot];
    const Device& d = m_ctx->device();
    const auto& vk = d.vk();
    const uint64_t value = m_submits + 1;
    // Outputs are read by the host after the timeline wait.
    VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vk.vkCmdPipelineBarrier(slot.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host,
                            0, nullptr, 0, nullptr);
    VkResult r = vk.vkEndCommandBuffer(slot.cmd);
    if (!recorded) return recorded.take_error();
    if (r != VK_SUCCESS) return d.vk_error("vkEndCommandBuffer", r);

    VkTimelineSemaphoreSubmitInfo ts{VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO};
    ts.signalSemaphoreValueCount = 1;
    ts.pSignalSemaphoreValues = &value;
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.pNext = &ts;
    si.commandBufferCount = 1;
    si.pCommandBuffers = &slot.cmd;
    si.signalSemaphoreCount = 1;
    VkSemaphore sem = m_timeline.get();
    si.pSignalSemaphores = &sem;
    r = d.submit(1, &si, VK_NULL_HANDLE);
    if (r != VK_SUCCESS) return d.vk_error("vkQueueSubmit", r);
    slot.value = value;
    m_submits = value;
    return value;
}

Status HostSubmitter::wait(uint64_t value, uint64_t timeout_ns) const {
    if (value == 0 || value > m_submits)
        return make_error(ErrorCode::invalid_argument,
                          "timeline value " + std::to_string(value) +
                              " was never returned by submit (last: " + std::to_string(m_submits) + ")");
    const Device& d = m_ctx->device();
    VkSemaphore sem = m_timeline.get();
    VkSemaphoreWaitInfo wi{VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO};
    wi.semaphoreCount = 1;
    wi.pSemaphores = &sem;
    wi.pValues = &value;
    VkResult r = d.vk().vkWaitSemaphores(d.handle(), &wi, timeout_ns);
    if (r == VK_TIMEOUT)
        return make_error(ErrorCode::timeout, "timeline value " + std::to_string(value) + " not reached yet");
    if (r != VK_SUCCESS) return d.vk_error("vkWaitSemaphores", r);
    return {};
}

Status HostSubmitter::read_outputs(uint64_t value, float* output, size_t output_count, float* weights,
                                   size_t weights_count) const {
    Status done = wait(value, 0);
    if (!done) {
        if (done.error().code == ErrorCode::timeout)
            return make_error(ErrorCode::not_ready, "submission " + std::to_string(value) + " is still running");
        return done;
    }
    const uint32_t frame_slot = static_cast<uint32_t>((value - 1) % m_session->limits().frames_in_flight);
    const FrameSlot& slot = m_frame_slots[frame_slot];
    if (slot.value != value)
        return make_error(ErrorCode::out_of_range, "submission " + std::to_string(value) +
                                                       " was overwritten by submission " + std::to_string(slot.value) +
                                                       "; read outputs sooner");
    const AttentionConfig& c = m_session->model().config();
    const uint64_t head_rows = uint64_t(slot.shape.batch) * c.num_heads * slot.shape.lq;
    ShapeBytes need = shape_bytes(c, slot.shape, slot.options, false);
    if (slot.own_qkv) need.output = head_rows * c.head_dim() * 4;
    if (output) {
        if (output_count * 4 < need.output)
            return make_error(ErrorCode::invalid_argument, "output holds " + std::to_string(output_count) +
                                                               " floats, needs " + std::to_string(need.output / 4));
        std::memcpy(output, staging(frame_slot, Staging::output).mapped, need.output);
    }
    if (weights) {
        if (!slot.options.need_weights)
            return make_error(ErrorCode::invalid_argument,
                              "submission " + std::to_string(value) + " did not ask for weights");
        if (weights_count * 4 < need.weights)
            return make_error(ErrorCode::invalid_argument, "weights holds " + std::to_string(weights_count) +
                                                               " floats, needs " + std::to_string(need.weights / 4));
        std::memcpy(weights, staging(frame_slot, Staging::weights).mapped, need.weights);
    }
    return {};
}

} // namespace vkmha
