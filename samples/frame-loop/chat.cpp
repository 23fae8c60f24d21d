// frame-loop --chat (see chat.h). Per frame, into one command buffer:
//   (a) the engine copies this frame's new token embeddings [T, E] from staging to a device buffer;
//   (b) the chat session records one cached step for the ragged batch: the dialogue (sequence 0) with one token,
//       plus the NPCs whose turn it is (sequences 1..npcs), each appending to its own sequence of the KV cache;
//   (c) the prefill session records the next piece of a long prompt (sequence npcs + 1), sized to the GPU budget
//       the chat step left (its GPU time measured on an earlier frame);
//   (d) one barrier makes vkmha's outputs visible to the host.
// Sessions are per stream of work: each records one thing per frame, with the engine's frame index, so their
// ring slots are free exactly when the engine's are.
#include "chat.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace frame_loop {
namespace {

constexpr uint32_t kDialogue = 0;           // the dialogue's sequence in the KV cache
constexpr uint32_t kNpcPeriod = 4;          // NPC i speaks on the frames where (frame + i) % kNpcPeriod == 0
constexpr float kMinPrefillBudgetMs = 1.0f; // the prefill always makes progress, even when the chat step ran long
constexpr uint64_t kMaxFramesFactor = 8;    // run on while the prefill is unfinished, up to this many x --frames
constexpr uint64_t kMaxFrames = 8192;       // --frames: the dialogue's cache capacity grows with it

// Who speaks in a frame: the dialogue always (listed first, so its output is row 0), the NPCs in turn.
std::vector<VkmhaSequenceStep> speakers(uint64_t frame, uint32_t npcs) {
    std::vector<VkmhaSequenceStep> steps{{kDialogue, 1}};
    for (uint32_t i = 1; i <= npcs; ++i)
        if ((frame + i) % kNpcPeriod == 0) steps.push_back({i, 1});
    return steps;
}

// What a frame in flight owns, and what it recorded.
struct ChatSlot : FrameResources {
    uint32_t tokens = 0;          // this frame's new tokens T: staging, query and output hold [T, E]
    VkmhaPrefillStatus prefill{}; // phase VKMHA_PREFILL_PHASE_NONE: no prefill piece in this frame
};

// Sums a recorded frame's stage timings (its fence has signalled). -1: no timestamps on this queue.
double frame_gpu_ms(const Runtime& rt, VkmhaSession session, uint64_t frame) {
    VkmhaStageTiming timings[16];
    uint32_t count = static_cast<uint32_t>(std::size(timings));
    const VkmhaResult r = rt.api().getStageTimings(session, frame, &count, timings);
    if (r == VKMHA_ERROR_UNSUPPORTED) return -1;
    rt.check(r, "getStageTimings");
    double ms = 0;
    for (uint32_t i = 0; i < count; ++i) ms += timings[i].milliseconds;
    return ms;
}

const char* phase_name(VkmhaPrefillPhase phase) {
    switch (phase) {
    case VKMHA_PREFILL_PHASE_PROJECT: return "project";
    case VKMHA_PREFILL_PHASE_ATTEND: return "attend";
    case VKMHA_PREFILL_PHASE_FINISH: return "finish";
    case VKMHA_PREFILL_PHASE_OUT_PROJ: return "out_proj";
    default: return "none";
    }
}

// Compares `count` floats with the sample's tolerance (1e-4 + 1e-3 * |ref|); prints one line; true when all pass.
bool matches(const char* what, const float* got, const float* expected, size_t count) {
    double max_error = 0;
    size_t mismatches = 0, first_bad = 0;
    for (size_t i = 0; i < count; ++i) {
        const double error = std::fabs(double(got[i]) - double(expected[i]));
        const bool ok = error <= 1e-4 + 1e-3 * std::fabs(double(expected[i])); // false for NaN too
        if (!ok && mismatches++ == 0) first_bad = i;
        if (!(error <= max_error)) max_error = error; // NaN sticks
    }
    std::printf("frame-loop: %s vs CPU reference: max abs error %.3g over %zu values (tolerance 1e-4 + 1e-3*|ref|)\n",
                what, max_error, count);
    if (mismatches)
        std::fprintf(stderr, "frame-loop: %s: %zu values out of tolerance; first at %zu: got %.7g, expected %.7g\n",
                     what, mismatches, first_bad, double(got[first_bad]), double(expected[first_bad]));
    return mismatches == 0;
}

VkmhaSession create_session(const Runtime& rt, const VkmhaSessionCreateInfo& si, const char* name) {
    VkDeviceSize bytes = 0;
    rt.check(rt.api().getSessionMemoryRequirements(rt.model, &si, &bytes), "getSessionMemoryRequirements");
    VkmhaSession session = nullptr;
    rt.check(rt.api().createSession(rt.model, &si, &session), "createSession");
    std::printf("frame-loop: %s session: %llu bytes (max %u x %u tokens, %u keys)\n", name, (unsigned long long)bytes,
                si.maxBatch, si.maxQueryLength, si.maxKeyLength);
    return session;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The chat mode's state: the KV cache, one session per stream of work, the prefill job and its prompt, the
// engine's ring of frame slots, and what the summary and checks need. Each frame goes through begin_frame,
// record_frame, submit_frame and later retire; run_chat shows the order.
class ChatMode {
  public:
    ChatMode(const Runtime& rt, std::mt19937& rng, const ChatOptions& options)
        : m_rt(rt), m_api(rt.api()), m_options(options), m_max_frames(options.frames * kMaxFramesFactor),
          m_prompt_sequence(options.npcs + 1) {
        create_cache();
        create_sessions();
        create_prefill(rng);
        const VkDeviceSize step_bytes = VkDeviceSize(1 + options.npcs) * kRow * sizeof(float);
        for (ChatSlot& s : m_slots) create_frame_resources(rt.engine, step_bytes, s);
    }

    // At least --frames frames, more while the prefill is unfinished (at most kMaxFramesFactor x).
    bool wants_frame(uint64_t frame) const {
        return frame < m_max_frames && (frame < m_options.frames || !m_prefill_recorded);
    }

    // As in the default mode: retire what has finished, oldest first; block only for this frame's slot.
    void retire_finished_frames(uint64_t frame) {
        retire_finished(m_rt.engine, m_ring, m_slots, frame, [&](uint64_t done) { collect_gpu_time(done); });
    }

    ChatSlot& begin_frame(uint64_t frame) {
        ChatSlot& s = m_slots[frame % kFramesInFlight];
        frame_loop::begin_frame(m_rt.engine, s);
        return s;
    }

    void record_frame(uint64_t frame, ChatSlot& s, std::mt19937& rng) {
        // This frame's new tokens, packed in the order of the steps: the dialogue's is row 0.
        const std::vector<VkmhaSequenceStep> steps = speakers(frame, m_options.npcs);
        write_tokens(s, static_cast<uint32_t>(steps.size()), rng);
        record_upload(frame, s);
        record_chat_step(frame, s, steps);
        record_prefill_piece(frame, s);
        record_barrier_to_host(s);
    }

    void submit_frame(ChatSlot& s) { frame_loop::submit_frame(m_rt.engine, s); }

    void retire_all_frames(uint64_t frames) {
        retire_all(m_rt.engine, m_ring, m_slots, frames, [&](uint64_t done) { collect_gpu_time(done); });
    }

    void print_summary(uint64_t frames) const;
    bool check(uint64_t frames) const;
    void shutdown();

  private:
    static constexpr size_t kRow = kEmbedDim; // floats per token

    void create_cache();
    void create_sessions();
    void create_prefill(std::mt19937& rng);
    void write_tokens(ChatSlot& s, uint32_t tokens, std::mt19937& rng);
    void record_upload(uint64_t frame, ChatSlot& s) const;
    void record_chat_step(uint64_t frame, ChatSlot& s, const std::vector<VkmhaSequenceStep>& steps) const;
    void record_prefill_piece(uint64_t frame, ChatSlot& s);
    static void record_barrier_to_host(ChatSlot& s);
    void collect_gpu_time(uint64_t frame);

    const Runtime& m_rt;
    const VkmhaProcTable& m_api;
    const ChatOptions& m_options;
    const uint64_t m_max_frames;
    const uint32_t m_prompt_sequence;

    VkmhaKvCache m_cache = nullptr;
    VkmhaSession m_chat_session = nullptr;
    VkmhaSession m_prefill_session = nullptr;
    VkmhaPrefillJob m_job = nullptr;
    Buffer m_prompt, m_prompt_output;
    VkDeviceSize m_prompt_bytes = 0;
    std::vector<float> m_prompt_data;
    std::uniform_real_distribution<float> m_input_dist{-1.0f, 1.0f};
    ChatSlot m_slots[kFramesInFlight];
    FrameRing m_ring;

    std::vector<float> m_dialogue; // every dialogue token fed, for the reference
    uint64_t m_npc_tokens = 0;
    std::vector<double> m_frame_ms; // chat step + prefill piece, by frame
    bool m_timestamps = true;
    double m_last_chat_ms = 0; // the chat step's GPU time on the newest completed frame
    uint64_t m_prefill_first = UINT64_MAX, m_prefill_last = UINT64_MAX; // frames with prefill pieces
    uint64_t m_prefill_frames = 0;
    bool m_prefill_recorded = false; // every piece recorded (the output is complete once prefill_last completes)
};

// One cache for every sequence: the dialogue, the NPCs and the prompt. Without a window each holds up to
// `capacity` positions: enough for the longest run, or the prompt.
void ChatMode::create_cache() {
    const uint32_t P = m_options.prefill;
    VkmhaKvCacheCreateInfo ki{};
    ki.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
    ki.sequences = m_options.npcs + 2;
    ki.capacity = static_cast<uint32_t>(std::max<uint64_t>(P, m_max_frames));
    VkDeviceSize cache_bytes = 0;
    m_rt.check(m_api.getKvCacheMemoryRequirements(m_rt.model, &ki, &cache_bytes), "getKvCacheMemoryRequirements");
    m_rt.check(m_api.createKvCache(m_rt.model, &ki, &m_cache), "createKvCache");
    std::printf("frame-loop: KV cache: %u sequences x %u positions, %llu bytes; %u NPCs speak every %u frames; "
                "prefill %u tokens into sequence %u, GPU budget %.1f ms per frame\n",
                ki.sequences, ki.capacity, (unsigned long long)cache_bytes, m_options.npcs, kNpcPeriod, P,
                m_prompt_sequence, double(m_options.budget_ms));
}

// Two streams of work, two sessions: the chat step (up to 1 + npcs tokens; its keys live in the KV cache) and the
// prefill (the job keeps its own per-prompt state; FUSED_ONLY: no Lq x Lk score scratch).
void ChatMode::create_sessions() {
    const uint32_t P = m_options.prefill;
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = 1;
    si.maxQueryLength = 1 + m_options.npcs;
    // Cached steps read K and V from the cache and never use the session's K/V scratch, which maxKeyLength sizes:
    // 1 keeps the session small (docs/ENGINE_INTEGRATION.md, section (f)).
    si.maxKeyLength = 1;
    si.framesInFlight = kFramesInFlight;
    m_chat_session = create_session(m_rt, si, "chat");
    si.maxQueryLength = std::min<uint32_t>(P, 64);
    si.maxKeyLength = P;
    si.flags = VKMHA_SESSION_CREATE_FUSED_ONLY_BIT;
    m_prefill_session = create_session(m_rt, si, "prefill");
}

// The job, and its prompt: written by the host once, before the first submit, and only read after; its output is
// complete once the job's last piece has finished on the GPU.
void ChatMode::create_prefill(std::mt19937& rng) {
    const uint32_t P = m_options.prefill;
    VkmhaPrefillJobCreateInfo ji{};
    ji.sType = VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO;
    ji.cache = m_cache;
    ji.sequence = m_prompt_sequence;
    ji.tokenCount = P;
    m_rt.check(m_api.createPrefillJob(m_rt.model, &ji, &m_job), "createPrefillJob");

    const Engine& engine = m_rt.engine;
    const VkMemoryPropertyFlags host_memory =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    m_prompt_bytes = VkDeviceSize(P) * kRow * sizeof(float);
    m_prompt = create_buffer(engine, m_prompt_bytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, host_memory, 0);
    m_prompt_output =
        create_buffer(engine, m_prompt_bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                      host_memory, VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    m_prompt_data.resize(size_t(P) * kRow);
    for (float& x : m_prompt_data) x = m_input_dist(rng);
    std::memcpy(m_prompt.mapped, m_prompt_data.data(), m_prompt_bytes);
}

// The slot's staging buffer is free (its frame retired) and host-coherent: write the tokens, keep the dialogue's.
void ChatMode::write_tokens(ChatSlot& s, uint32_t tokens, std::mt19937& rng) {
    s.tokens = tokens;
    auto* staged = static_cast<float*>(s.staging.mapped);
    for (size_t i = 0; i < s.tokens * kRow; ++i) staged[i] = m_input_dist(rng);
    m_dialogue.insert(m_dialogue.end(), staged, staged + kRow);
    m_npc_tokens += s.tokens - 1;
}

// (a) The engine's own work: upload the tokens; NaN into the outputs so a missed write shows.
void ChatMode::record_upload(uint64_t frame, ChatSlot& s) const {
    const VkDeviceSize bytes = VkDeviceSize(s.tokens) * kRow * sizeof(float);
    const VkBufferCopy region{0, 0, bytes};
    vkCmdCopyBuffer(s.cmd, s.staging.buffer, s.query.buffer, 1, &region);
    vkCmdFillBuffer(s.cmd, s.output.buffer, 0, bytes, 0x7FC00000u /* quiet NaN */);
    if (frame == 0) vkCmdFillBuffer(s.cmd, m_prompt_output.buffer, 0, m_prompt_bytes, 0x7FC00000u);
}

// (b) The chat step: every speaker's token appended to its sequence and attended causally over it.
void ChatMode::record_chat_step(uint64_t frame, ChatSlot& s, const std::vector<VkmhaSequenceStep>& steps) const {
    const VkDeviceSize bytes = VkDeviceSize(s.tokens) * kRow * sizeof(float);
    VkmhaCachedRecordInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
    ci.frameIndex = frame;
    ci.completedFrame = m_ring.completed_frame;
    ci.cache = m_cache;
    ci.stepCount = s.tokens;
    ci.pSteps = steps.data();
    ci.query = {s.query.buffer, 0, bytes, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT};
    ci.output = {s.output.buffer, 0, bytes, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT};
    m_rt.check(m_api.recordCachedAttention(m_chat_session, s.cmd, &ci), "recordCachedAttention");
}

// (c) The prefill's next piece, in what is left of the frame's budget.
void ChatMode::record_prefill_piece(uint64_t frame, ChatSlot& s) {
    s.prefill = {};
    s.prefill.phase = VKMHA_PREFILL_PHASE_NONE;
    if (m_prefill_recorded) return;
    VkmhaPrefillRecordInfo pi{};
    pi.sType = VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO;
    pi.frameIndex = frame;
    pi.completedFrame = m_ring.completed_frame;
    pi.job = m_job;
    pi.budgetMilliseconds = std::max(kMinPrefillBudgetMs, m_options.budget_ms - static_cast<float>(m_last_chat_ms));
    pi.query = {m_prompt.buffer, 0, m_prompt_bytes, 0, 0}; // written by the host before the first submit
    // Last written by the fill in frame 0, then by vkmha's own earlier pieces.
    pi.output = frame == 0 ? VkmhaBufferBinding{m_prompt_output.buffer, 0, m_prompt_bytes,
                                                VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT}
                           : VkmhaBufferBinding{m_prompt_output.buffer, 0, m_prompt_bytes,
                                                VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT};
    m_rt.check(m_api.recordPrefill(m_prefill_session, s.cmd, &pi, &s.prefill), "recordPrefill");
    if (s.prefill.phase != VKMHA_PREFILL_PHASE_NONE) {
        if (m_prefill_first == UINT64_MAX) m_prefill_first = frame;
        m_prefill_last = frame;
        ++m_prefill_frames;
    }
    m_prefill_recorded = s.prefill.done == VK_TRUE;
}

// (d) vkmha's exit state is COMPUTE_SHADER / SHADER_WRITE; the host reads the outputs after the fence.
void ChatMode::record_barrier_to_host(ChatSlot& s) {
    VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(s.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                         nullptr, 0, nullptr);
}

// A frame whose fence has signalled: collect both sessions' GPU time (before its slots are recorded again).
void ChatMode::collect_gpu_time(uint64_t frame) {
    const ChatSlot& s = m_slots[frame % kFramesInFlight];
    const double chat = frame_gpu_ms(m_rt, m_chat_session, frame);
    const bool piece = s.prefill.phase != VKMHA_PREFILL_PHASE_NONE;
    const double prefill = piece ? frame_gpu_ms(m_rt, m_prefill_session, frame) : 0;
    if (chat < 0 || prefill < 0) m_timestamps = false;
    m_last_chat_ms = std::max(chat, 0.0);
    m_frame_ms.push_back(std::max(chat, 0.0) + std::max(prefill, 0.0));
    char what[96] = "";
    if (piece)
        std::snprintf(what, sizeof what, " + prefill %.3f ms (%s %u..%u, %3.0f%%)", prefill,
                      phase_name(s.prefill.phase), s.prefill.begin, s.prefill.end, 100.0 * double(s.prefill.progress));
    std::printf("frame %3llu: chat %.3f ms (%u tokens)%s = %.3f ms\n", (unsigned long long)frame, chat, s.tokens, what,
                m_frame_ms.back());
}

void ChatMode::print_summary(uint64_t frames) const {
    const uint32_t P = m_options.prefill;
    const auto longest = std::max_element(m_frame_ms.begin(), m_frame_ms.end());
    std::printf("frame-loop: chat: %llu frames, %zu dialogue + %llu NPC tokens = %llu chat tokens in ragged steps\n",
                (unsigned long long)frames, m_dialogue.size() / kRow, (unsigned long long)m_npc_tokens,
                (unsigned long long)(m_dialogue.size() / kRow + m_npc_tokens));
    if (m_timestamps)
        std::printf(
            "frame-loop: GPU ms per frame (chat step + prefill piece): min %.3f, median %.3f, max %.3f; longest "
            "frame %lld (%.3f ms); budget %.1f ms\n",
            *std::min_element(m_frame_ms.begin(), m_frame_ms.end()), median(m_frame_ms), *longest,
            (long long)(longest - m_frame_ms.begin()), *longest, double(m_options.budget_ms));
    else
        std::printf("frame-loop: no GPU timestamps on this queue: the prefill budget was not measured\n");
    if (m_prefill_recorded)
        std::printf("frame-loop: prefill of %u tokens took %llu frames (frames %llu..%llu)\n", P,
                    (unsigned long long)m_prefill_frames, (unsigned long long)m_prefill_first,
                    (unsigned long long)m_prefill_last);
    else
        std::fprintf(stderr, "frame-loop: the prefill of %u tokens did not finish in %llu frames\n", P,
                     (unsigned long long)frames);
}

// The checks: the dialogue's newest output row (row 0 of the last frame) against the one-shot causal pass over
// every dialogue token fed, and the prompt's whole output against the one-shot causal pass over the prompt.
// The cache's lengths: every token appended once.
bool ChatMode::check(uint64_t frames) const {
    const uint32_t P = m_options.prefill;
    bool ok = m_prefill_recorded;
    uint32_t dialogue_length = 0, prompt_length = 0;
    m_rt.check(m_api.getKvCacheLength(m_cache, kDialogue, &dialogue_length), "getKvCacheLength");
    m_rt.check(m_api.getKvCacheLength(m_cache, m_prompt_sequence, &prompt_length), "getKvCacheLength");
    if (dialogue_length != m_dialogue.size() / kRow || prompt_length != P) {
        std::fprintf(stderr, "frame-loop: KV cache lengths: dialogue %u (fed %zu), prompt %u (of %u)\n",
                     dialogue_length, m_dialogue.size() / kRow, prompt_length, P);
        ok = false;
    }
    const uint32_t D = static_cast<uint32_t>(m_dialogue.size() / kRow);
    const std::vector<float> dialogue_ref = reference_output(m_rt.weights, m_dialogue, 1, D, true);
    const auto* last_output = static_cast<const float*>(m_slots[(frames - 1) % kFramesInFlight].output.mapped);
    ok = matches("dialogue's last output row", last_output, dialogue_ref.data() + size_t(D - 1) * kRow, kRow) && ok;
    if (m_prefill_recorded) {
        const std::vector<float> prompt_ref = reference_output(m_rt.weights, m_prompt_data, 1, P, true);
        ok = matches("prefill output", static_cast<const float*>(m_prompt_output.mapped), prompt_ref.data(),
                     prompt_ref.size()) &&
             ok;
    }
    return ok;
}

// Shutdown: nothing may be in flight; the job before its cache, the sessions and the cache before the model.
void ChatMode::shutdown() {
    const Engine& engine = m_rt.engine;
    VK_CHECK(vkDeviceWaitIdle(engine.device));
    m_api.destroyPrefillJob(m_job);
    m_api.destroySession(m_prefill_session);
    m_api.destroySession(m_chat_session);
    m_api.destroyKvCache(m_cache);
    destroy_buffer(engine, m_prompt);
    destroy_buffer(engine, m_prompt_output);
    for (ChatSlot& s : m_slots) destroy_frame_resources(engine, s);
}

} // namespace

// The frame loop an engine runs, one step per call: retire, begin, record, submit.
bool run_chat(const Runtime& rt, std::mt19937& rng, const ChatOptions& options) {
    if (options.frames > kMaxFrames) die("--chat runs at most " + std::to_string(kMaxFrames) + " --frames");
    ChatMode chat(rt, rng, options);
    uint64_t frame = 0;
    for (; chat.wants_frame(frame); ++frame) {
        chat.retire_finished_frames(frame);
        ChatSlot& s = chat.begin_frame(frame);
        chat.record_frame(frame, s, rng);
        chat.submit_frame(s);
    }
    const uint64_t frames = frame;
    chat.retire_all_frames(frames);
    chat.print_summary(frames);
    const bool ok = chat.check(frames);
    chat.shutdown();
    return ok;
}

} // namespace frame_loop
