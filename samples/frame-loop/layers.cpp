// frame-loop --layers: N models, N sessions on one scratch arena, recorded back to back into one command buffer.
#include "layers.h"

#include <algorithm>
#include <cstdio>

namespace frame_loop {

LayerStack::LayerStack(const Runtime& rt, std::mt19937& rng, uint32_t layers, const VkmhaSessionCreateInfo& si)
    : m_rt(rt), m_api(rt.api()) {
    m_weights.push_back(rt.weights);
    m_models.push_back(rt.model);
    for (uint32_t l = 1; l < layers; ++l) {
        m_weights.push_back(random_weights(rng));
        m_models.push_back(create_model(rt.plugin, rt.context, m_weights.back()));
    }
    // What each layer would take on its own, and the scratch one frame slot of it needs: the arena holds the
    // largest of those per frame in flight, for all layers.
    for (VkmhaModel model : m_models) {
        VkDeviceSize own = 0, scratch = 0;
        rt.check(m_api.getSessionMemoryRequirements(model, &si, &own), "getSessionMemoryRequirements");
        rt.check(m_api.getSessionScratchRequirements(model, &si, &scratch), "getSessionScratchRequirements");
        m_own_sum += own;
        m_scratch_sum += scratch;
        m_scratch_max = std::max(m_scratch_max, scratch);
    }
    VkmhaSessionCreateInfo shared_si = si;
    VkmhaSessionScratchArenaInfo shared{VKMHA_STRUCTURE_TYPE_SESSION_SCRATCH_ARENA_INFO, nullptr, nullptr};
    if (layers > 1) {
        VkmhaScratchArenaCreateInfo ai{};
        ai.sType = VKMHA_STRUCTURE_TYPE_SCRATCH_ARENA_CREATE_INFO;
        ai.bytesPerFrame = m_scratch_max;
        ai.framesInFlight = si.framesInFlight;
        rt.check(m_api.createScratchArena(rt.context, &ai, &m_arena), "createScratchArena");
        shared.arena = m_arena;
        shared_si.pNext = &shared;
    }
    for (VkmhaModel model : m_models) {
        VkDeviceSize bytes = 0;
        rt.check(m_api.getSessionMemoryRequirements(model, &shared_si, &bytes), "getSessionMemoryRequirements");
        m_shared_sum += bytes;
        VkmhaSession session = nullptr;
        rt.check(m_api.createSession(model, &shared_si, &session), "createSession");
        m_sessions.push_back(session);
    }
}

void LayerStack::print_memory() const {
    const auto mib = [](VkDeviceSize bytes) { return double(bytes) / (1 << 20); };
    const double frames = kFramesInFlight;
    if (!m_arena) {
        std::printf("frame-loop: session %.3f MiB (scratch %.3f MiB per frame slot)\n", mib(m_own_sum),
                    mib(m_scratch_sum));
        return;
    }
    std::printf("frame-loop: %u layers, scratch per frame slot: %.3f MiB without sharing (sum over layers), "
                "%.3f MiB shared (the largest layer)\n",
                size(), mib(m_scratch_sum), mib(m_scratch_max));
    std::printf("frame-loop: sessions' device memory for %u frames in flight: %.3f MiB without sharing, %.3f MiB with "
                "one scratch arena (%.3f MiB arena + %.3f MiB the sessions keep)\n",
                kFramesInFlight, mib(m_own_sum), mib(VkDeviceSize(frames * double(m_scratch_max)) + m_shared_sum),
                frames * mib(m_scratch_max), mib(m_shared_sum));
}

void LayerStack::record(VkCommandBuffer cmd, VkmhaRecordInfo ri, const VkmhaBufferBinding& query,
                        const VkmhaBufferBinding& output, const Activations& activations) const {
    const VkDeviceSize bytes = query.range;
    // Between layers the engine's barrier contract is vkmha's own exit state: written by a compute shader. The same
    // stage covers the earlier layer's read of a buffer the next layer overwrites.
    auto activation = [&](uint32_t index) {
        return VkmhaBufferBinding{activations.buffers[index % 2].buffer, 0, bytes, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                                  VK_ACCESS_SHADER_WRITE_BIT};
    };
    const uint32_t last = size() - 1;
    for (uint32_t l = 0; l <= last; ++l) {
        ri.query = l == 0 ? query : activation(l - 1);
        ri.output = l == last ? output : activation(l);
        m_rt.check(m_api.recordAttention(m_sessions[l], cmd, &ri), "recordAttention");
    }
}

std::vector<float> LayerStack::reference(const std::vector<float>& query, uint32_t batch, uint32_t length,
                                         bool causal) const {
    std::vector<float> x = query;
    for (const Weights& w : m_weights) x = reference_output(w, x, batch, length, causal);
    return x;
}

float LayerStack::gpu_ms(uint64_t frame) const {
    float total = 0;
    for (VkmhaSession session : m_sessions) {
        VkmhaStageTiming timings[16]; // more than the stages vkmha has today
        uint32_t count = 16;
        const VkmhaResult r = m_api.getStageTimings(session, frame, &count, timings);
        if (r == VKMHA_ERROR_UNSUPPORTED) return -1.0f;
        m_rt.check(r, "getStageTimings");
        for (uint32_t i = 0; i < count; ++i) total += timings[i].milliseconds;
    }
    return total;
}

void LayerStack::destroy() {
    for (VkmhaSession session : m_sessions) m_api.destroySession(session);
    m_sessions.clear();
    if (m_arena) m_api.destroyScratchArena(m_arena); // any order: the arena goes with its last session
    m_arena = nullptr;
    for (size_t l = 1; l < m_models.size(); ++l) m_api.destroyModel(m_models[l]);
    m_models.resize(std::min<size_t>(m_models.size(), 1));
}

} // namespace frame_loop
