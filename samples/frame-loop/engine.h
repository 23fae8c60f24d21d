// The engine side of frame-loop, shared by its modes: the program's own Vulkan instance and device (which vkmha
// adopts), buffers, loading libvkmha with dlopen, and the attention layer's weights and CPU reference.
#pragma once

#include "vkmha/vkmha.h"

#include "cpu_reference.h" // vkmha's CPU reference (double accumulation), for the final checks only

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace frame_loop {

// The attention layer. E and H as in torch.nn.MultiheadAttention(64, 8).
constexpr uint32_t kEmbedDim = 64;
constexpr uint32_t kHeads = 8;
// The engine's ring: up to this many frames recorded and submitted but not yet seen complete. vkmha's sessions
// get the same number, so their per-frame slot N % kFramesInFlight is free exactly when ours is.
constexpr uint32_t kFramesInFlight = 3;

// Validation messages seen by the debug messenger; any at all fails the run.
extern std::atomic<uint32_t> g_validation_messages;

// The one way this program fails: one line on stderr, exit code 1.
[[noreturn]] void die(const std::string& message);
// Every Vulkan call that returns a VkResult goes through here: a failure prints the call's name and exits.
void vk_check(VkResult result, const char* call);
#define VK_CHECK(call) ::frame_loop::vk_check((call), #call)
std::string version_text(uint32_t v);

// ---------------------------------------------------------------------------------------------------------------
// 1. The engine's Vulkan objects. Nothing here is vkmha-specific except that the device requirements vkmha
//    reported are honoured when choosing extensions and features.

struct Engine {
    uint32_t instance_version = 0; // apiVersion the instance was created with
    std::vector<const char*> instance_extensions;
    VkInstance instance = VK_NULL_HANDLE;
    VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger = nullptr;

    VkPhysicalDevice physical = VK_NULL_HANDLE;
    VkPhysicalDeviceProperties properties{};
    VkPhysicalDeviceMemoryProperties memory{};
    uint32_t api_version = 0; // what instance and device both support: the version vkmha is told
    uint32_t queue_family = 0;
    std::vector<const char*> device_extensions;
    bool timeline_semaphore = false;
    VkDevice device = VK_NULL_HANDLE;
    VkQueue queue = VK_NULL_HANDLE;
};

void create_instance(Engine& e);
void pick_physical_device(Engine& e);
void create_device(Engine& e, const VkmhaDeviceRequirements& req);

// A buffer with its own allocation (an engine would use its allocator, e.g. VMA; vkmha does not care).
struct Buffer {
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    VkDeviceSize size = 0;
    void* mapped = nullptr; // set for host-visible buffers
};

Buffer create_buffer(const Engine& e, VkDeviceSize size, VkBufferUsageFlags usage, VkMemoryPropertyFlags required,
                     VkMemoryPropertyFlags preferred);
void destroy_buffer(const Engine& e, Buffer& b);

// One slot of the engine's frame ring: what a frame touches that the GPU may still be using while later frames are
// recorded. Both modes keep kFramesInFlight of them (with their own per-frame extras).
struct FrameResources {
    VkCommandPool pool = VK_NULL_HANDLE; // one pool per slot: reset as a whole once the slot's frame is done
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE; // signalled when the slot's frame has finished on the GPU
    Buffer staging;                 // host-visible: the CPU writes this frame's query here
    Buffer query;                   // device-local: the engine's GPU work copies staging here; vkmha reads it
    Buffer output;                  // host-visible: vkmha writes the attention output, the CPU reads it back
};

// A command pool with one primary command buffer, an unsignalled fence, and staging, query and output buffers of
// `io_bytes` each.
void create_frame_resources(const Engine& e, VkDeviceSize io_bytes, FrameResources& s);
// The device must be idle (or at least done with the slot's frame).
void destroy_frame_resources(const Engine& e, FrameResources& s);

// The per-frame steps every mode shares, around its own record step:
//   begin_frame   the slot's previous frame has retired: reset its fence and pool, begin its command buffer;
//   (record)      the mode's own work and vkmha's, into s.cmd;
//   submit_frame  end the command buffer and submit it, signalling the slot's fence;
//   retire        once that fence has signalled, the frame's outputs and vkmha's timings for it are readable.
void begin_frame(const Engine& e, FrameResources& s);
void submit_frame(const Engine& e, FrameResources& s);

// Which frames have retired. Frames retire oldest first, so that "every frame <= completed_frame has finished"
// stays true however the fences happen to signal.
struct FrameRing {
    // The newest frame seen complete, with every older frame seen too. It is what vkmha's record calls want as
    // completedFrame: it tells vkmha which of its own per-frame slots (descriptor sets, timestamp queries, scratch)
    // it may overwrite. VKMHA_NO_FRAME until the first one.
    uint64_t completed_frame = VKMHA_NO_FRAME;
    uint64_t oldest_in_flight = 0; // the oldest submitted frame we have not yet seen complete
};

// Retires the oldest frame in flight: waits for its fence (at once if already signalled), then
// `read_results(frame)`, which must read vkmha's timings before the slot is recorded again.
template <typename BufferRole, typename ReadResults>
void retire_oldest(const Engine& e, FrameRing& ring, BufferRole (&slots)[kFramesInFlight], ReadResults&& read_results) {
    const uint64_t frame = ring.oldest_in_flight++;
    VK_CHECK(vkWaitForFences(e.device, 1, &slots[frame % kFramesInFlight].fence, VK_TRUE, UINT64_MAX));
    ring.completed_frame = frame;
    read_results(frame);
}

// Before recording `frame`: retires what has finished, oldest first, without blocking; blocks only on the frame
// that last used this frame's slot (frame - kFramesInFlight), never on a frame we have just submitted.
template <typename BufferRole, typename ReadResults>
void retire_finished(const Engine& e, FrameRing& ring, BufferRole (&slots)[kFramesInFlight], uint64_t frame,
                     ReadResults&& read_results) {
    while (ring.oldest_in_flight < frame) {
        const bool slot_needed = frame - ring.oldest_in_flight >= kFramesInFlight;
        if (!slot_needed) {
            const VkResult status = vkGetFenceStatus(e.device, slots[ring.oldest_in_flight % kFramesInFlight].fence);
            if (status == VK_NOT_READY) break;
            VK_CHECK(status);
        }
        retire_oldest(e, ring, slots, read_results);
    }
}

// After the last frame: waits for (and reads) every frame still in flight.
template <typename BufferRole, typename ReadResults>
void retire_all(const Engine& e, FrameRing& ring, BufferRole (&slots)[kFramesInFlight], uint64_t frames,
                ReadResults&& read_results) {
    while (ring.oldest_in_flight < frames) retire_oldest(e, ring, slots, read_results);
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Loading the plugin. The engine does not link libvkmha: it looks next to its executable (../lib, as in the
//    build tree and in an install), or where VKMHA_LIBRARY points.

struct Plugin {
    void* library = nullptr;
    VkmhaProcTable api{};

    // Every vkmha call returns a VkmhaResult; on failure getLastError() names the bad value.
    void check(VkmhaResult r, const char* what) const {
        if (r != VKMHA_SUCCESS) die(std::string(what) + " failed (" + std::to_string(r) + "): " + api.getLastError());
    }
};

Plugin load_plugin();

// ---------------------------------------------------------------------------------------------------------------
// 3. Weights: random, in memory, with PyTorch nn.MultiheadAttention state_dict names.

struct Weights {
    std::vector<float> in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias;
};

Weights random_weights(std::mt19937& rng);

// The CPU reference from the same weights (in_proj_weight rows are [Wq; Wk; Wv]): self-attention over `query`
// ([batch, length, E]), causal or not.
std::vector<float> reference_output(const Weights& m, const std::vector<float>& query, uint32_t batch, uint32_t length,
                                    bool causal);

// ---------------------------------------------------------------------------------------------------------------
// 4. Everything a mode needs before its frame loop: the plugin, the engine's device, vkmha's context adopting it
//    and a model with random weights. stop() tears it down in order (vkmha's objects first); the caller destroys
//    its own vkmha objects (sessions, caches) and waits for the device to be idle before.

struct Runtime {
    Plugin plugin;
    Engine engine;
    VkmhaContext context = nullptr;
    VkmhaModel model = nullptr;
    Weights weights;

    const VkmhaProcTable& api() const { return plugin.api; }
    void check(VkmhaResult r, const char* what) const { plugin.check(r, what); }
};

void start_runtime(Runtime& rt, std::mt19937& rng);
// A model (one attention layer) from `weights`, as start_runtime makes rt.model; --layers makes one per layer.
VkmhaModel create_model(const Plugin& plugin, VkmhaContext context, const Weights& weights);
void stop_runtime(Runtime& rt);

} // namespace frame_loop
