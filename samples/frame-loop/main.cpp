// frame-loop: an engine-like program that loads libvkmha at run time, hands it the program's own Vulkan device
// and records multi-head attention into the program's own command buffers, several frames in flight.
//
// This is the file to copy from when wiring vkmha into an engine. The parts in order:
//   1. the engine's Vulkan instance and device, made the way an engine makes them (vkmha only adopts them);
//   2. loading libvkmha with dlopen and getting its function table (no link-time dependency);
//   3. context (adopt mode), model (weights from memory), session (framesInFlight = the engine's ring size);
//   4. the frame loop, one function per step: retire finished frames, begin the frame's slot (fence, pool,
//      command buffer), record (own work -> vkmha -> own barrier), submit;
//   5. checking the last frame against the CPU reference, and a clean shutdown.
// 1-3 live in engine.cpp (shared with --chat, chat.cpp: KV caches, ragged cached steps and a sliced prefill).
#include "chat.h"
#include "common/cli.h"
#include "engine.h"
#include "layers.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace frame_loop;

// The default mode's per-frame shape: self-attention, query length = key length.
constexpr uint32_t kBatch = 2;
constexpr uint32_t kLength = 40;

struct Options {
    bool chat = false;
    uint64_t frames = 0; // 0: the mode's default
    bool causal = false;
    uint32_t layers = 1; // the default mode's stack of layers, run one after another every frame
    ChatOptions chat_options;
};

Options parse(int argc, char** argv) {
    using namespace vkmha::cli;
    Options o;
    CLI::App app{"An engine-like program: its own Vulkan device, libvkmha loaded with dlopen, attention recorded into\n"
                 "its own command buffers with frames in flight. Default: a [2, 40, 64] self-attention every frame, 3\n"
                 "frames in flight, the last frame checked against the CPU reference.",
                 "frame-loop"};
    configure(app);
    app.footer(
        "--chat: a dialogue sequence gets one token per frame through a KV cache (NPC sequences one every few\n"
        "frames, in the same ragged step) while a long prompt is prefilled in the background in pieces that fit\n"
        "the frame's remaining GPU budget. --frames: at least N frames, more while the prefill runs (at most 8N).");
    app.add_option("--frames", o.frames, "frames (default 12; --chat: at least N, default 64)")
        ->transform(count(1000000));
    app.add_flag("--causal", o.causal, "causal mask (default mode only)");
    app.add_option("--layers", o.layers,
                   "default mode: N layers (models) in a row every frame, their sessions sharing one scratch arena")
        ->transform(count(256))
        ->capture_default_str();
    const char* chat = "--chat: a dialogue token per frame through a KV cache, beside a sliced prefill";
    app.add_flag("--chat", o.chat, "the chat mode (see below)")->group(chat);
    app.add_option("--prefill", o.chat_options.prefill, "prompt tokens to prefill")
        ->transform(count(65536))
        ->capture_default_str()
        ->group(chat);
    app.add_option("--budget-ms", o.chat_options.budget_ms,
                   "the frame's GPU budget for vkmha (the prefill gets the rest, >= 1 ms)")
        ->transform(CLI::Validator(
            [](std::string& text) {
                char* end = nullptr;
                const float ms = std::strtof(text.c_str(), &end);
                if (text.empty() || *end || !(ms > 0.0f) || ms > 1000.0f)
                    return "'" + text + "' is not a time in (0, 1000] ms";
                char exact[32]; // the float strtof made, in digits CLI11 reads back as exactly it
                std::snprintf(exact, sizeof exact, "%.9g", double(ms));
                text = exact;
                return std::string();
            },
            "MS in (0, 1000]"))
        ->capture_default_str()
        ->group(chat);
    app.add_option("--npcs", o.chat_options.npcs, "NPC sequences besides the dialogue")
        ->transform(whole_number(16))
        ->capture_default_str()
        ->group(chat);
    vkmha::cli::parse(app, argc, argv);
    if (o.chat && o.causal) die("--causal is for the default mode (cached steps are always causal)");
    if (o.chat && o.layers != 1) die("--layers is for the default mode");
    if (o.frames) o.chat_options.frames = o.frames;
    if (!o.frames) o.frames = 12;
    return o;
}

// ---------------------------------------------------------------------------------------------------------------
// 4. The frame ring: everything a frame touches that the GPU may still be using while later frames are recorded.

struct FrameSlot : FrameResources {
    std::vector<float> query_data; // host copy of this frame's query, for the final CPU check
    Activations activations;       // --layers: what the layers between the first and the last pass on
};

// The default mode: one [kBatch, kLength, E] self-attention recorded into every frame. Each frame goes through
// begin_frame, record_frame, submit_frame, and later retire_frame; run_default shows the order.
class DefaultMode {
  public:
    // One session per layer (each layer is its own model); with --layers N > 1, all on one scratch arena.
    DefaultMode(const Runtime& rt, const Options& options, std::mt19937& rng)
        : m_rt(rt), m_api(rt.api()), m_options(options), m_layers(rt, rng, options.layers, session_info()) {
        VkmhaModelProperties mp{};
        rt.check(m_api.getModelProperties(rt.model, &mp), "getModelProperties");
        std::printf("frame-loop: %u layer(s), each a model E=%u H=%u (%llu bytes), %u frames in flight; shape "
                    "[%u, %u, %u]%s, %llu frames\n",
                    m_layers.size(), mp.embedDim, mp.numHeads, (unsigned long long)mp.deviceMemoryBytes,
                    kFramesInFlight, kBatch, kLength, kEmbedDim, options.causal ? ", causal" : "",
                    (unsigned long long)options.frames);
        m_layers.print_memory();

        // The engine's per-frame resources.
        for (FrameSlot& s : m_slots) {
            create_frame_resources(rt.engine, kIoBytes, s);
            if (m_layers.size() > 1)
                for (Buffer& b : s.activations.buffers)
                    b = create_buffer(rt.engine, kIoBytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                                      VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        }
    }

    // Retire what has finished, oldest first, without blocking; block only on the frame that last used this
    // frame's slot.
    void retire_finished_frames(uint64_t frame) {
        retire_finished(m_rt.engine, m_ring, m_slots, frame, [&](uint64_t done) { print_timings(done); });
    }

    // This frame's slot is free: its previous frame has retired.
    FrameSlot& begin_frame(uint64_t frame) {
        FrameSlot& s = m_slots[frame % kFramesInFlight];
        frame_loop::begin_frame(m_rt.engine, s);
        return s;
    }

    void record_frame(uint64_t frame, FrameSlot& s, std::mt19937& rng) {
        write_inputs(s, rng);
        record_engine_work(s);
        record_attention(frame, s);
        record_barrier_to_host(s);
    }

    void submit_frame(FrameSlot& s) { frame_loop::submit_frame(m_rt.engine, s); }

    // Drain: wait for (and print) every frame still in flight.
    void retire_all_frames() {
        retire_all(m_rt.engine, m_ring, m_slots, m_options.frames, [&](uint64_t done) { print_timings(done); });
    }

    bool check_last_frame() const;

    // Shutdown: vkmha's objects first (they live on our device), then ours. The device must be idle: vkmha's
    // objects may only be destroyed once no submitted work uses them.
    void shutdown() {
        VK_CHECK(vkDeviceWaitIdle(m_rt.engine.device));
        m_layers.destroy();
        for (FrameSlot& s : m_slots) {
            destroy_frame_resources(m_rt.engine, s);
            for (Buffer& b : s.activations.buffers)
                if (b.buffer) destroy_buffer(m_rt.engine, b);
        }
    }

  private:
    static constexpr VkDeviceSize kIoBytes = VkDeviceSize(kBatch) * kLength * kEmbedDim * sizeof(float);

    // The session holds all per-frame GPU memory vkmha needs, sized for the largest shape we will record; after
    // this, recording allocates nothing.
    static VkmhaSessionCreateInfo session_info() {
        VkmhaSessionCreateInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
        si.maxBatch = kBatch;
        si.maxQueryLength = kLength;
        si.maxKeyLength = kLength;
        si.framesInFlight = kFramesInFlight;
        return si;
    }

    // New inputs for this frame. Safe to overwrite: the frame that last read this staging buffer has retired.
    // The memory is host-coherent and vkQueueSubmit makes host writes visible, so no flush or barrier is needed.
    void write_inputs(FrameSlot& s, std::mt19937& rng) {
        s.query_data.resize(size_t(kIoBytes / sizeof(float)));
        for (float& x : s.query_data) x = m_input_dist(rng);
        std::memcpy(s.staging.mapped, s.query_data.data(), kIoBytes);
    }

    // (a) The engine's own GPU work that produces vkmha's input: here a copy from staging; in a game it could
    // be a compute pass or a render target readback. We also fill the output with NaN so a missed write shows
    // up in the check. No barrier of our own follows: vkmha's entry barrier waits on what we declare below.
    static void record_engine_work(FrameSlot& s) {
        const VkBufferCopy region{0, 0, kIoBytes};
        vkCmdCopyBuffer(s.cmd, s.staging.buffer, s.query.buffer, 1, &region);
        vkCmdFillBuffer(s.cmd, s.output.buffer, 0, kIoBytes, 0x7FC00000u /* quiet NaN */);
    }

    // (b) vkmha. Each binding says how the engine last touched the buffer (here: written by a transfer), and
    // vkmha's single entry barrier goes from exactly that to its compute-shader reads/writes.
    void record_attention(uint64_t frame, FrameSlot& s) {
        VkmhaRecordInfo ri{};
        ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
        ri.frameIndex = frame;
        ri.completedFrame = m_ring.completed_frame;
        ri.batch = kBatch;
        ri.queryLength = kLength;
        ri.keyLength = kLength;
        ri.flags = m_options.causal ? VkmhaAttentionFlags(VKMHA_ATTENTION_CAUSAL_BIT) : 0;
        const VkmhaBufferBinding query = {s.query.buffer, 0, kIoBytes, VK_PIPELINE_STAGE_TRANSFER_BIT,
                                          VK_ACCESS_TRANSFER_WRITE_BIT};
        // key/value left unbound: self-attention reads the query buffer for both.
        const VkmhaBufferBinding output = {s.output.buffer, 0, kIoBytes, VK_PIPELINE_STAGE_TRANSFER_BIT,
                                           VK_ACCESS_TRANSFER_WRITE_BIT};
        // One layer: one recordAttention. More: every layer in turn into this command buffer, each reading the one
        // before; vkmha's entry barrier orders each after the last, which is what lets them share one arena.
        m_layers.record(s.cmd, ri, query, output, s.activations);
        // vkmha left its compute pipeline, descriptor sets and push constants bound: rebind ours if we recorded
        // more compute work here.
    }

    // (c) vkmha's exit state: outputs last written by COMPUTE_SHADER / SHADER_WRITE. We read the output on
    // the host after the fence, so make those writes available to the host.
    static void record_barrier_to_host(FrameSlot& s) {
        VkBufferMemoryBarrier to_host{VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER};
        to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        to_host.srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
        to_host.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
        to_host.buffer = s.output.buffer;
        to_host.offset = 0;
        to_host.size = kIoBytes;
        vkCmdPipelineBarrier(s.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 0, nullptr, 1,
                             &to_host, 0, nullptr);
    }

    // A frame whose fence has signalled: its outputs and vkmha's timestamps for it are now readable.
    void print_timings(uint64_t frame) const {
        if (m_layers.size() > 1) {
            const float ms = m_layers.gpu_ms(frame);
            if (ms < 0.0f)
                std::printf("frame %3llu: done (no GPU timestamps on this queue)\n", (unsigned long long)frame);
            else
                std::printf("frame %3llu: %u layers, total %.3f ms\n", (unsigned long long)frame, m_layers.size(),
                            double(ms));
            return;
        }
        VkmhaStageTiming timings[16]; // more than the stages vkmha has today
        uint32_t count = static_cast<uint32_t>(std::size(timings));
        // Must be asked before the slot is recorded again: vkmha keeps one frame's timestamps per slot.
        const VkmhaResult r = m_api.getStageTimings(m_layers.session(0), frame, &count, timings);
        if (r == VKMHA_ERROR_UNSUPPORTED) {
            std::printf("frame %3llu: done (no GPU timestamps on this queue)\n", (unsigned long long)frame);
            return;
        }
        m_rt.check(r, "getStageTimings");
        std::string line;
        float total = 0;
        for (uint32_t i = 0; i < count; ++i) {
            char part[64];
            std::snprintf(part, sizeof part, "  %s %.3f", m_api.stageName(timings[i].stage),
                          double(timings[i].milliseconds));
            line += part;
            total += timings[i].milliseconds;
        }
        std::printf("frame %3llu:%s  total %.3f ms\n", (unsigned long long)frame, line.c_str(), double(total));
    }

    const Runtime& m_rt;
    const VkmhaProcTable& m_api;
    const Options& m_options;
    LayerStack m_layers;
    FrameSlot m_slots[kFramesInFlight];
    FrameRing m_ring;
    std::uniform_real_distribution<float> m_input_dist{-1.0f, 1.0f};
};

// 5. Check the last frame against the CPU reference. Host-coherent memory, fence waited, HOST_READ barrier
// recorded: the mapped output is valid to read now.
bool DefaultMode::check_last_frame() const {
    const uint64_t last = m_options.frames - 1;
    const FrameSlot& ls = m_slots[last % kFramesInFlight];
    const std::vector<float> expected = m_layers.reference(ls.query_data, kBatch, kLength, m_options.causal);
    const auto* got = static_cast<const float*>(ls.output.mapped);
    double max_error = 0;
    size_t mismatches = 0, first_bad = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        const double error = std::fabs(double(got[i]) - double(expected[i]));
        const bool ok = error <= 1e-4 + 1e-3 * std::fabs(double(expected[i])); // false for NaN too
        if (!ok && mismatches++ == 0) first_bad = i;
        if (!(error <= max_error)) max_error = error; // NaN sticks
    }
    std::printf("frame-loop: frame %llu vs CPU reference (%s): max abs error %.3g over %zu values (tolerance 1e-4 + "
                "1e-3*|ref|)\n",
                (unsigned long long)last, m_layers.size() > 1 ? "the last layer's output" : "the output", max_error,
                expected.size());
    if (mismatches)
        std::fprintf(stderr, "frame-loop: %zu values out of tolerance; first at %zu: got %.7g, expected %.7g\n",
                     mismatches, first_bad, double(got[first_bad]), double(expected[first_bad]));
    return mismatches == 0;
}

// The frame loop an engine runs, one step per call. True when the last frame matches the CPU reference.
bool run_default(const Runtime& rt, std::mt19937& rng, const Options& options) {
    DefaultMode mode(rt, options, rng);
    for (uint64_t frame = 0; frame < options.frames; ++frame) {
        mode.retire_finished_frames(frame);
        FrameSlot& s = mode.begin_frame(frame);
        mode.record_frame(frame, s, rng);
        mode.submit_frame(s);
    }
    mode.retire_all_frames();
    const bool ok = mode.check_last_frame();
    mode.shutdown();
    return ok;
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
