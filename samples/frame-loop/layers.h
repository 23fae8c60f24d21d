// frame-loop --layers N: a stack of attention layers run one after another every frame, as a transformer's are. One
// model and one session per layer; with more than one layer every session takes its scratch from one scratch arena
// (VkmhaScratchArena), so N layers need the scratch of one instead of N times it.
#pragma once

#include "engine.h"

#include <random>
#include <vector>

namespace frame_loop {

// Two device-local activation buffers per frame slot: the layers between the first and the last read one and write
// the other, in turn.
struct Activations {
    Buffer buffers[2];
};

class LayerStack {
  public:
    // Layer 0 is rt.model; layers 1..N-1 get random weights of their own. `si` is every layer's session shape.
    LayerStack(const Runtime& rt, std::mt19937& rng, uint32_t layers, const VkmhaSessionCreateInfo& si);
    LayerStack(const LayerStack&) = delete;
    LayerStack& operator=(const LayerStack&) = delete;

    uint32_t size() const { return static_cast<uint32_t>(m_sessions.size()); }
    VkmhaSession session(uint32_t layer) const { return m_sessions[layer]; }
    // The device memory the sessions take, as printed: each session on its own vs all of them on the arena.
    void print_memory() const;

    // Records every layer into `cmd` for one frame: layer 0 reads `query`, the last writes `output`, each layer
    // reads what the one before wrote. `ri` carries the frame, the completed frame, the shape and the flags.
    void record(VkCommandBuffer cmd, VkmhaRecordInfo ri, const VkmhaBufferBinding& query,
                const VkmhaBufferBinding& output, const Activations& activations) const;

    // The CPU reference of the whole stack on `query` ([batch, length, E] self-attention).
    std::vector<float> reference(const std::vector<float>& query, uint32_t batch, uint32_t length, bool causal) const;

    // GPU milliseconds of a completed frame over every layer; negative when the queue has no timestamps.
    float gpu_ms(uint64_t frame) const;

    // The device must be idle: sessions, the arena's handle and the extra models go (rt.model stays rt's).
    void destroy();

  private:
    const Runtime& m_rt;
    const VkmhaProcTable& m_api;
    std::vector<Weights> m_weights;   // layer l's weights (layer 0: rt.weights)
    std::vector<VkmhaModel> m_models; // layer l's model (layer 0: rt.model, not ours to destroy)
    std::vector<VkmhaSession> m_sessions;
    VkmhaScratchArena m_arena = nullptr; // null with one layer: its session owns its scratch
    VkDeviceSize m_scratch_sum = 0, m_scratch_max = 0, m_own_sum = 0, m_shared_sum = 0;
};

} // namespace frame_loop
