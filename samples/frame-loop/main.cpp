// frame-loop: an engine-like program that loads libvkmha at run time, hands it the program's own Vulkan device
// and records multi-head attention into the program's own command buffers, several frames in flight.
//
// This is the file to copy from when wiring vkmha into an engine. The parts in order:
//   1. the engine's Vulkan instance and device, made the way an engine makes them (vkmha only adopts them);
//   2. loading libvkmha with dlopen and getting its function table (no link-time dependency);
//   3. context (adopt mode), model (weights from memory), session (framesInFlight = the engine's ring size);
//   4. the frame loop: per-slot command buffer, fence and buffers; record own work -> vkmha -> own barrier;
//   5. checking the last frame against the CPU reference, and a clean shutdown.
// 1-3 live in engine.cpp (shared with --chat, chat.cpp: KV caches, ragged cached steps and a sliced prefill).
#include "chat.h"
#include "engine.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

using namespace frame_loop;

// The default mode's per-frame shape: self-attention, query length = key length.
constexpr uint32_t kBatch = 2;
constexpr uint32_t kLength = 40;

const char* const kUsage =
    "usage: frame-loop [--frames N] [--causal]\n"
    "       frame-loop --chat [--frames N] [--prefill N] [--budget-ms MS] [--npcs N]\n"
    "  default  a [2, 40, 64] self-attention every frame, 3 frames in flight (--frames default 12)\n"
    "  --chat   a dialogue sequence gets one token per frame through a KV cache (NPC sequences one every few\n"
    "           frames, in the same ragged step) while a long prompt is prefilled in the background in pieces\n"
    "           that fit the frame's remaining GPU budget\n"
    "    --frames N      at least N frames (default 64), more while the prefill runs (at most 8N)\n"
    "    --prefill N     prompt tokens to prefill (default 1024)\n"
    "    --budget-ms MS  the frame's GPU budget for vkmha (default 16.6); the prefill gets what the chat step\n"
    "                    left, at least 1 ms\n"
    "    --npcs N        NPC sequences besides the dialogue (default 3, at most 16)\n";

struct Options {
    bool chat = false;
    uint64_t frames = 0; // 0: the mode's default
    bool causal = false;
    ChatOptions chat_options;
};

uint64_t parse_count(const char* flag, const char* text, uint64_t max) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(text, &end, 10);
    if (!*text || *end || errno || n == 0 || n > max || text[0] == '-')
        die(std::string(flag) + " '" + text + "' is not a count in 1.." + std::to_string(max));
    return n;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--frames" && has_value) {
            o.frames = parse_count("--frames", argv[++i], 1000000);
        } else if (a == "--causal") {
            o.causal = true;
        } else if (a == "--chat") {
            o.chat = true;
        } else if (a == "--prefill" && has_value) {
            o.chat_options.prefill = static_cast<uint32_t>(parse_count("--prefill", argv[++i], 65536));
        } else if (a == "--npcs" && has_value) {
            const std::string text = argv[++i];
            o.chat_options.npcs = text == "0" ? 0 : static_cast<uint32_t>(parse_count("--npcs", text.c_str(), 16));
        } else if (a == "--budget-ms" && has_value) {
            const char* text = argv[++i];
            char* end = nullptr;
            const float ms = std::strtof(text, &end);
            if (!*text || *end || !(ms > 0.0f) || ms > 1000.0f)
                die(std::string("--budget-ms '") + text + "' is not a time in (0, 1000] ms");
            o.chat_options.budget_ms = ms;
        } else if (a == "--help" || a == "-h") {
            std::printf("%s", kUsage);
            std::exit(0);
        } else {
            std::fprintf(stderr, "%s", kUsage);
            die("unknown argument '" + a + "'");
        }
    }
    if (o.chat && o.causal) die("--causal is for the default mode (cached steps are always causal)");
    if (o.frames) o.chat_options.frames = o.frames;
    if (!o.frames) o.frames = 12;
    return o;
}

// ---------------------------------------------------------------------------------------------------------------
// 4. The frame ring: everything a frame touches that the GPU may still be using while later frames are recorded.

struct FrameSlot : FrameResources {
    std::vector<float> query_data; // host copy of this frame's query, for the final CPU check
};

// The default mode: one [kBatch, kLength, E] self-attention recorded into every frame. True when the last frame
// matches the CPU reference.
bool run_default(const Runtime& rt, std::mt19937& rng, const Options& options) {
    const Plugin& plugin = rt.plugin;
    const VkmhaProcTable& api = rt.api();
    const Engine& engine = rt.engine;
    VkmhaModel model = rt.model;

    // The session holds all per-frame GPU memory vkmha needs, sized for the largest shape we will record; after
    // this, recording allocates nothing.
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = kBatch;
    si.maxQueryLength = kLength;
    si.maxKeyLength = kLength;
    si.framesInFlight = kFramesInFlight;
    VkDeviceSize session_bytes = 0;
    plugin.check(api.getSessionMemoryRequirements(model, &si, &session_bytes), "getSessionMemoryRequirements");
    VkmhaSession session = nullptr;
    plugin.check(api.createSession(model, &si, &session), "createSession");
    VkmhaModelProperties mp{};
    plugin.check(api.getModelProperties(model, &mp), "getModelProperties");
    std::printf("frame-loop: model E=%u H=%u (%llu bytes), session %llu bytes for %u frames in flight; shape "
                "[%u, %u, %u]%s, %llu frames\n",
                mp.embedDim, mp.numHeads, (unsigned long long)mp.deviceMemoryBytes, (unsigned long long)session_bytes,
                kFramesInFlight, kBatch, kLength, kEmbedDim, options.causal ? ", causal" : "",
                (unsigned long long)options.frames);

    // The engine's per-frame resources.
    const VkDeviceSize io_bytes = VkDeviceSize(kBatch) * kLength * kEmbedDim * sizeof(float);
    FrameSlot slots[kFramesInFlight];
    for (FrameSlot& s : slots) create_frame_resources(engine, io_bytes, s);

    // completed_frame: the newest frame whose fence we have seen signalled, with every older frame seen too.
    // It is what vkmha's recordAttention wants as completedFrame: it tells vkmha which of its own per-frame slots
    // (descriptor sets, timestamp queries, scratch) it may overwrite. VKMHA_NO_FRAME until the first one.
    uint64_t completed_frame = VKMHA_NO_FRAME;
    uint64_t oldest_in_flight = 0; // the oldest submitted frame we have not yet seen complete

    // A frame whose fence has signalled: its outputs and vkmha's timestamps for it are now readable.
    auto retire = [&](uint64_t frame) {
        FrameSlot& s = slots[frame % kFramesInFlight];
        VK_CHECK(vkWaitForFences(engine.device, 1, &s.fence, VK_TRUE, UINT64_MAX)); // at once if already signalled
        completed_frame = frame;
        VkmhaStageTiming timings[16]; // more than the stages vkmha has today
        uint32_t count = static_cast<uint32_t>(std::size(timings));
        // Must be asked before the slot is recorded again: vkmha keeps one frame's timestamps per slot.
        const VkmhaResult r = api.getStageTimings(session, frame, &count, timings);
        if (r == VKMHA_ERROR_UNSUPPORTED) {
            std::printf("frame %3llu: done (no GPU timestamps on this queue)\n", (unsigned long long)frame);
            return;
        }
        plugin.check(r, "getStageTimings");
        std::string line;
        float total = 0;
        for (uint32_t i = 0; i < count; ++i) {
            char part[64];
            std::snprintf(part, sizeof part, "  %s %.3f", api.stageName(timings[i].stage),
                          double(timings[i].milliseconds));
            line += part;
            total += timings[i].milliseconds;
        }
        std::printf("frame %3llu:%s  total %.3f ms\n", (unsigned long long)frame, line.c_str(), double(total));
    };

    std::uniform_real_distribution<float> input_dist(-1.0f, 1.0f);
    for (uint64_t frame = 0; frame < options.frames; ++frame) {
        // Retire what has finished, oldest first, without blocking; block only on the frame that last used this
        // frame's slot (frame - kFramesInFlight), never on a frame we have just submitted. Oldest first, so that
        // "every frame <= completed_frame has finished" stays true however the fences happen to signal.
        while (oldest_in_flight < frame) {
            const bool slot_needed = frame - oldest_in_flight >= kFramesInFlight;
            if (!slot_needed) {
                const VkResult status =
                    vkGetFenceStatus(engine.device, slots[oldest_in_flight % kFramesInFlight].fence);
                if (status == VK_NOT_READY) break;
                VK_CHECK(status);
            }
            retire(oldest_in_flight++);
        }
        FrameSlot& s = slots[frame % kFramesInFlight];
        VK_CHECK(vkResetFences(engine.device, 1, &s.fence));
        VK_CHECK(vkResetCommandPool(engine.device, s.pool, 0));

        // New inputs for this frame. Safe to overwrite: the frame that last read this staging buffer has retired.
        // The memory is host-coherent and vkQueueSubmit makes host writes visible, so no flush or barrier is needed.
        s.query_data.resize(size_t(io_bytes / sizeof(float)));
        for (float& x : s.query_data) x = input_dist(rng);
        std::memcpy(s.staging.mapped, s.query_data.data(), io_bytes);

        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        VK_CHECK(vkBeginCommandBuffer(s.cmd, &bi));

        // (a) The engine's own GPU work that produces vkmha's input: here a copy from staging; in a game it could
        // be a compute pass or a render target readback. We also fill the output with NaN so a missed write shows
        // up in the check. No barrier of our own follows: vkmha's entry barrier waits on what we declare below.
        const VkBufferCopy region{0, 0, io_bytes};
        vkCmdCopyBuffer(s.cmd, s.staging.buffer, s.query.buffer, 1, &region);
        vkCmdFillBuffer(s.cmd, s.output.buffer, 0, io_bytes, 0x7FC00000u /* quiet NaN */);

        // (b) vkmha. Each binding says how the engine last touched the buffer (here: written by a transfer), and
        // vkmha's single entry barrier goes from exactly that to its compute-shader reads/writes.
        VkmhaRecordInfo ri{};
        ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
        ri.frameIndex = frame;
        ri.completedFrame = completed_frame;
        ri.batch = kBatch;
        ri.queryLength = kLength;
        ri.keyLength = kLength;
        ri.flags = options.causal ? VkmhaAttentionFlags(VKMHA_ATTENTION_CAUSAL_BIT) : 0;
        ri.query = {s.query.buffer, 0, io_bytes, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT};
        // key/value left unbound: self-attention reads the query buffer for both.
        ri.output = {s.output.buffer, 0, io_bytes, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT};
        plugin.check(api.recordAttention(session, s.cmd, &ri), "recordAttention");
        // vkmha left its compute pipeline, descriptor sets and push constants bound: rebind ours if we recorded
        // more compute work here.

        // (c) vkmha's exit state: outputs last written by COMPUTE_SHADER / SHADER_WRITE. We read the output on
        // the host after the fence, so make those writes available to the host.
        VkBufferMemoryBarrier to_host{VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER};
        to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        to_host.srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
        to_host.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
        to_host.buffer = s.output.buffer;
        to_host.offset = 0;
        to_host.size = io_bytes;
        vkCmdPipelineBarrier(s.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 0, nullptr, 1,
                             &to_host, 0, nullptr);
        VK_CHECK(vkEndCommandBuffer(s.cmd));

        VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
        submit.commandBufferCount = 1;
        submit.pCommandBuffers = &s.cmd;
        VK_CHECK(vkQueueSubmit(engine.queue, 1, &submit, s.fence));
    }
    // Drain: wait for (and print) every frame still in flight.
    while (oldest_in_flight < options.frames) retire(oldest_in_flight++);

    // 5. Check the last frame against the CPU reference. Host-coherent memory, fence waited, HOST_READ barrier
    // recorded: the mapped output is valid to read now.
    const uint64_t last = options.frames - 1;
    const FrameSlot& ls = slots[last % kFramesInFlight];
    const std::vector<float> expected = reference_output(rt.weights, ls.query_data, kBatch, kLength, options.causal);
    const auto* got = static_cast<const float*>(ls.output.mapped);
    double max_error = 0;
    size_t mismatches = 0, first_bad = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        const double error = std::fabs(double(got[i]) - double(expected[i]));
        const bool ok = error <= 1e-4 + 1e-3 * std::fabs(double(expected[i])); // false for NaN too
        if (!ok && mismatches++ == 0) first_bad = i;
        if (!(error <= max_error)) max_error = error; // NaN sticks
    }
    std::printf("frame-loop: frame %llu vs CPU reference: max abs error %.3g over %zu values (tolerance 1e-4 + "
                "1e-3*|ref|)\n",
                (unsigned long long)last, max_error, expected.size());
    if (mismatches)
        std::fprintf(stderr, "frame-loop: %zu values out of tolerance; first at %zu: got %.7g, expected %.7g\n",
                     mismatches, first_bad, double(got[first_bad]), double(expected[first_bad]));

    // Shutdown: vkmha's objects first (they live on our device), then ours. The device must be idle: vkmha's
    // objects may only be destroyed once no submitted work uses them.
    VK_CHECK(vkDeviceWaitIdle(engine.device));
    api.destroySession(session);
    for (FrameSlot& s : slots) destroy_frame_resources(engine, s);
    return mismatches == 0;
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    std::mt19937 rng(1234);
    Runtime rt;
    start_runtime(rt, rng);
    const bool ok = options.chat ? run_chat(rt, rng, options.chat_options) : run_default(rt, rng, options);
    stop_runtime(rt);

    const uint32_t messages = g_validation_messages.load();
    if (messages) std::fprintf(stderr, "frame-loop: FAILED: %u validation message(s)\n", messages);
    if (!ok) std::fprintf(stderr, "frame-loop: FAILED: output does not match the CPU reference\n");
    if (messages || !ok) return 1;
    std::printf("frame-loop: OK (0 validation messages)\n");
    return 0;
}
