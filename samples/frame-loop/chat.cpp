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

} // namespace

bool run_chat(const Runtime& rt, std::mt19937& rng, const ChatOptions& options) {
    const VkmhaProcTable& api = rt.api();
    const Engine& engine = rt.engine;
    if (options.frames > kMaxFrames) die("--chat runs at most " + std::to_string(kMaxFrames) + " --frames");
    const uint64_t max_frames = options.frames * kMaxFramesFactor;
    const uint32_t P = options.prefill;
    const uint32_t prompt_sequence = options.npcs + 1;
    const size_t row = kEmbedDim; // floats per token

    // One cache for every sequence: the dialogue, the NPCs and the prompt. Without a window each holds up to
    // `capacity` positions: enough for the longest run, or the prompt.
    VkmhaKvCacheCreateInfo ki{};
    ki.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
    ki.sequences = options.npcs + 2;
    ki.capacity = static_cast<uint32_t>(std::max<uint64_t>(P, max_frames));
    VkDeviceSize cache_bytes = 0;
    rt.check(api.getKvCacheMemoryRequirements(rt.model, &ki, &cache_bytes), "getKvCacheMemoryRequirements");
    VkmhaKvCache cache = nullptr;
    rt.check(api.createKvCache(rt.model, &ki, &cache), "createKvCache");
    std::printf("frame-loop: KV cache: %u sequences x %u positions, %llu bytes; %u NPCs speak every %u frames; "
                "prefill %u tokens into sequence %u, GPU budget %.1f ms per frame\n",
                ki.sequences, ki.capacity, (unsigned long long)cache_bytes, options.npcs, kNpcPeriod, P,
                prompt_sequence, double(options.budget_ms));

    // Two streams of work, two sessions: the chat step (up to 1 + npcs tokens over up to `capacity` keys) and the
    // prefill (the job keeps its own per-prompt state; FUSED_ONLY: no Lq x Lk score scratch).
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = 1;
    si.maxQueryLength = 1 + options.npcs;
    si.maxKeyLength = ki.capacity;
    si.framesInFlight = kFramesInFlight;
    const VkmhaSession chat_session = create_session(rt, si, "chat");
    si.maxQueryLength = std::min<uint32_t>(P, 64);
    si.maxKeyLength = P;
    si.flags = VKMHA_SESSION_CREATE_FUSED_ONLY_BIT;
    const VkmhaSession prefill_session = create_session(rt, si, "prefill");

    VkmhaPrefillJobCreateInfo ji{};
    ji.sType = VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO;
    ji.cache = cache;
    ji.sequence = prompt_sequence;
    ji.tokenCount = P;
    VkmhaPrefillJob job = nullptr;
    rt.check(api.createPrefillJob(rt.model, &ji, &job), "createPrefillJob");

    // The prompt is written by the host once, before the first submit, and only read after; its output is
    // complete once the job's last piece has finished on the GPU.
    const VkMemoryPropertyFlags host_memory =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    const VkDeviceSize prompt_bytes = VkDeviceSize(P) * row * sizeof(float);
    Buffer prompt = create_buffer(engine, prompt_bytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, host_memory, 0);
    Buffer prompt_output =
        create_buffer(engine, prompt_bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                      host_memory, VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    std::uniform_real_distribution<float> input_dist(-1.0f, 1.0f);
    std::vector<float> prompt_data(size_t(P) * row);
    for (float& x : prompt_data) x = input_dist(rng);
    std::memcpy(prompt.mapped, prompt_data.data(), prompt_bytes);

    const VkDeviceSize step_bytes = VkDeviceSize(1 + options.npcs) * row * sizeof(float);
    ChatSlot slots[kFramesInFlight];
    for (ChatSlot& s : slots) create_frame_resources(engine, step_bytes, s);

    std::vector<float> dialogue; // every dialogue token fed, for the reference
    uint64_t npc_tokens = 0;
    std::vector<double> frame_ms; // chat step + prefill piece, by frame
    bool timestamps = true;
    double last_chat_ms = 0; // the chat step's GPU time on the newest completed frame
    uint64_t prefill_first = UINT64_MAX, prefill_last = UINT64_MAX; // frames with prefill pieces
    uint64_t prefill_frames = 0;
    bool prefill_recorded = false; // every piece recorded (the output is complete once prefill_last completes)

    uint64_t completed_frame = VKMHA_NO_FRAME;
    uint64_t oldest_in_flight = 0;
    // A frame whose fence has signalled: collect both sessions' GPU time (before its slots are recorded again).
    auto retire = [&](uint64_t frame) {
        ChatSlot& s = slots[frame % kFramesInFlight];
        VK_CHECK(vkWaitForFences(engine.device, 1, &s.fence, VK_TRUE, UINT64_MAX));
        completed_frame = frame;
        const double chat = frame_gpu_ms(rt, chat_session, frame);
        const bool piece = s.prefill.phase != VKMHA_PREFILL_PHASE_NONE;
        const double prefill = piece ? frame_gpu_ms(rt, prefill_session, frame) : 0;
        if (chat < 0 || prefill < 0) timestamps = false;
        last_chat_ms = std::max(chat, 0.0);
        frame_ms.push_back(std::max(chat, 0.0) + std::max(prefill, 0.0));
        char what[96] = "";
        if (piece)
            std::snprintf(what, sizeof what, " + prefill %.3f ms (%s %u..%u, %3.0f%%)", prefill,
                          phase_name(s.prefill.phase), s.prefill.begin, s.prefill.end,
                          100.0 * double(s.prefill.progress));
        std::printf("frame %3llu: chat %.3f ms (%u tokens)%s = %.3f ms\n", (unsigned long long)frame, chat, s.tokens,
                    what, frame_ms.back());
    };

    uint64_t frame = 0;
    for (; frame < max_frames && (frame < options.frames || !prefill_recorded); ++frame) {
        // As in the default mode: retire what has finished, oldest first; block only for this frame's slot.
        while (oldest_in_flight < frame) {
            if (frame - oldest_in_flight < kFramesInFlight) {
                const VkResult status =
                    vkGetFenceStatus(engine.device, slots[oldest_in_flight % kFramesInFlight].fence);
                if (status == VK_NOT_READY) break;
                VK_CHECK(status);
            }
            retire(oldest_in_flight++);
        }
        ChatSlot& s = slots[frame % kFramesInFlight];
        VK_CHECK(vkResetFences(engine.device, 1, &s.fence));
        VK_CHECK(vkResetCommandPool(engine.device, s.pool, 0));

        // This frame's new tokens, packed in the order of the steps: the dialogue's is row 0.
        const std::vector<VkmhaSequenceStep> steps = speakers(frame, options.npcs);
        s.tokens = static_cast<uint32_t>(steps.size());
        const VkDeviceSize bytes = VkDeviceSize(s.tokens) * row * sizeof(float);
        auto* staged = static_cast<float*>(s.staging.mapped);
        for (size_t i = 0; i < s.tokens * row; ++i) staged[i] = input_dist(rng);
        dialogue.insert(dialogue.end(), staged, staged + row);
        npc_tokens += s.tokens - 1;

        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        VK_CHECK(vkBeginCommandBuffer(s.cmd, &bi));

        // (a) The engine's own work: upload the tokens; NaN into the outputs so a missed write shows.
        const VkBufferCopy region{0, 0, bytes};
        vkCmdCopyBuffer(s.cmd, s.staging.buffer, s.query.buffer, 1, &region);
        vkCmdFillBuffer(s.cmd, s.output.buffer, 0, bytes, 0x7FC00000u /* quiet NaN */);
        if (frame == 0) vkCmdFillBuffer(s.cmd, prompt_output.buffer, 0, prompt_bytes, 0x7FC00000u);

        // (b) The chat step: every speaker's token appended to its sequence and attended causally over it.
        VkmhaCachedRecordInfo ci{};
        ci.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
        ci.frameIndex = frame;
        ci.completedFrame = completed_frame;
        ci.cache = cache;
        ci.stepCount = s.tokens;
        ci.pSteps = steps.data();
        ci.query = {s.query.buffer, 0, bytes, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT};
        ci.output = {s.output.buffer, 0, bytes, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT};
        rt.check(api.recordCachedAttention(chat_session, s.cmd, &ci), "recordCachedAttention");

        // (c) The prefill's next piece, in what is left of the frame's budget.
        s.prefill = {};
        s.prefill.phase = VKMHA_PREFILL_PHASE_NONE;
        if (!prefill_recorded) {
            VkmhaPrefillRecordInfo pi{};
            pi.sType = VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO;
            pi.frameIndex = frame;
            pi.completedFrame = completed_frame;
            pi.job = job;
            pi.budgetMilliseconds = std::max(kMinPrefillBudgetMs, options.budget_ms - static_cast<float>(last_chat_ms));
            pi.query = {prompt.buffer, 0, prompt_bytes, 0, 0}; // written by the host before the first submit
            // Last written by the fill in frame 0, then by vkmha's own earlier pieces.
            pi.output = frame == 0
                            ? VkmhaBufferBinding{prompt_output.buffer, 0, prompt_bytes, VK_PIPELINE_STAGE_TRANSFER_BIT,
                                                 VK_ACCESS_TRANSFER_WRITE_BIT}
                            : VkmhaBufferBinding{prompt_output.buffer, 0, prompt_bytes,
                                                 VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT};
            rt.check(api.recordPrefill(prefill_session, s.cmd, &pi, &s.prefill), "recordPrefill");
            if (s.prefill.phase != VKMHA_PREFILL_PHASE_NONE) {
                if (prefill_first == UINT64_MAX) prefill_first = frame;
                prefill_last = frame;
                ++prefill_frames;
            }
            prefill_recorded = s.prefill.done == VK_TRUE;
        }

        // (d) vkmha's exit state is COMPUTE_SHADER / SHADER_WRITE; the host reads the outputs after the fence.
        VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        vkCmdPipelineBarrier(s.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                             nullptr, 0, nullptr);
        VK_CHECK(vkEndCommandBuffer(s.cmd));
        VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
        submit.commandBufferCount = 1;
        submit.pCommandBuffers = &s.cmd;
        VK_CHECK(vkQueueSubmit(engine.queue, 1, &submit, s.fence));
    }
    const uint64_t frames = frame;
    while (oldest_in_flight < frames) retire(oldest_in_flight++);

    // The summary.
    const auto longest = std::max_element(frame_ms.begin(), frame_ms.end());
    std::printf("frame-loop: chat: %llu frames, %zu dialogue + %llu NPC tokens = %llu chat tokens in ragged steps\n",
                (unsigned long long)frames, dialogue.size() / row, (unsigned long long)npc_tokens,
                (unsigned long long)(dialogue.size() / row + npc_tokens));
    if (timestamps)
        std::printf(
            "frame-loop: GPU ms per frame (chat step + prefill piece): min %.3f, median %.3f, max %.3f; longest "
            "frame %lld (%.3f ms); budget %.1f ms\n",
            *std::min_element(frame_ms.begin(), frame_ms.end()), median(frame_ms), *longest,
            (long long)(longest - frame_ms.begin()), *longest, double(options.budget_ms));
    else
        std::printf("frame-loop: no GPU timestamps on this queue: the prefill budget was not measured\n");
    if (prefill_recorded)
        std::printf("frame-loop: prefill of %u tokens took %llu frames (frames %llu..%llu)\n", P,
                    (unsigned long long)prefill_frames, (unsigned long long)prefill_first,
                    (unsigned long long)prefill_last);
    else
        std::fprintf(stderr, "frame-loop: the prefill of %u tokens did not finish in %llu frames\n", P,
                     (unsigned long long)frames);

    // The checks: the dialogue's newest output row (row 0 of the last frame) against the one-shot causal pass over
    // every dialogue token fed, and the prompt's whole output against the one-shot causal pass over the prompt.
    // The cache's lengths: every token appended once.
    bool ok = prefill_recorded;
    uint32_t dialogue_length = 0, prompt_length = 0;
    rt.check(api.getKvCacheLength(cache, kDialogue, &dialogue_length), "getKvCacheLength");
    rt.check(api.getKvCacheLength(cache, prompt_sequence, &prompt_length), "getKvCacheLength");
    if (dialogue_length != dialogue.size() / row || prompt_length != P) {
        std::fprintf(stderr, "frame-loop: KV cache lengths: dialogue %u (fed %zu), prompt %u (of %u)\n",
                     dialogue_length, dialogue.size() / row, prompt_length, P);
        ok = false;
    }
    const uint32_t D = static_cast<uint32_t>(dialogue.size() / row);
    const std::vector<float> dialogue_ref = reference_output(rt.weights, dialogue, 1, D, true);
    const auto* last_output = static_cast<const float*>(slots[(frames - 1) % kFramesInFlight].output.mapped);
    ok = matches("dialogue's last output row", last_output, dialogue_ref.data() + size_t(D - 1) * row, row) && ok;
    if (prefill_recorded) {
        const std::vector<float> prompt_ref = reference_output(rt.weights, prompt_data, 1, P, true);
        ok = matches("prefill output", static_cast<const float*>(prompt_output.mapped), prompt_ref.data(),
                     prompt_ref.size()) &&
             ok;
    }

    // Shutdown: nothing may be in flight; the job before its cache, the sessions and the cache before the model.
    VK_CHECK(vkDeviceWaitIdle(engine.device));
    api.destroyPrefillJob(job);
    api.destroySession(prefill_session);
    api.destroySession(chat_session);
    api.destroyKvCache(cache);
    destroy_buffer(engine, prompt);
    destroy_buffer(engine, prompt_output);
    for (ChatSlot& s : slots) destroy_frame_resources(engine, s);
    return ok;
}

} // namespace frame_loop
