// runner.h: one configuration of the layer on the device, through vkmha's public API: its output on an input (with a
// head mask), its per-head attention probabilities, its decode-step GPU time over a KV cache, and the GPU time each
// run took (the sum of the stage timestamps).
#pragma once

#include "common/api.h"
#include "common/attention_inputs.h"
#include "io/safetensors.h"

#include "vkmha/vkmha.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vkmha::heads {

struct LayerSource {
    std::string path;                                 // a safetensors file, or
    const std::vector<io::Tensor>* tensors = nullptr; // these tensors
    uint32_t heads = 0, kv_heads = 0;
    const VkmhaModelAttentionInfo* attention = nullptr; // the model flags
};

class LayerRunner {
  public:
    // A model of `source` and a host-I/O session for inputs up to the given shape.
    LayerRunner(const samples::Api& api, VkmhaContext context, const LayerSource& source, uint32_t max_batch,
                uint32_t max_lq, uint32_t max_lk);
    ~LayerRunner();
    LayerRunner(const LayerRunner&) = delete;
    LayerRunner& operator=(const LayerRunner&) = delete;

    struct Output {
        std::vector<float> values; // [B, Lq, E]
        double gpu_ms = 0;         // every stage of the pass
    };
    Output run(const samples::InputTensors& in, bool causal, std::span<const float> head_mask) const;
    // [B, H, Lq, Lk], from a session of its own, in chunks of query rows whose weights fit max_binding_bytes (the
    // device's maxStorageBufferRange).
    std::vector<float> probabilities(const samples::InputTensors& in, bool causal, uint64_t max_binding_bytes) const;
    // GPU ms of one decode step (one new token) over `cached_keys` - 1 cached positions: the least of three.
    double decode_ms(uint32_t cached_keys, std::span<const float> head_mask) const;
    const VkmhaModelProperties& properties() const { return m_properties; }

  private:
    std::vector<float> probabilities_of(const samples::InputTensors& in, bool causal) const;
    VkmhaHostSubmitInfo submit_info(const samples::InputTensors& in, bool causal) const;
    double gpu_ms(VkmhaSession session, uint64_t timeline_value) const;

    const samples::Api& m_api;
    VkmhaContext m_context = nullptr;
    VkmhaModel m_model = nullptr;
    VkmhaSession m_session = nullptr;
    VkmhaModelProperties m_properties{};
};

} // namespace vkmha::heads
