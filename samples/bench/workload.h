// workload.h: the random weights and inputs a row runs on, shared by the GPU run and the CPU reference so both
// compute the same thing. G == H uses PyTorch nn.MultiheadAttention names, G < H Hugging Face Llama names.
#pragma once

#include "sweep.h"

#include "attention_config.h"
#include "vkmha/vkmha.h"

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct LayerWeights {
    vkmha::AttentionConfig config;
    vkmha::AttentionWeights weights; // fp32 values; Llama layers have no biases
};

// Weights ~ U(-1/sqrt(E), 1/sqrt(E)), deterministic for a given config (the projections depend on H, G and D only).
// With the config's model options: config.{qk_norm, rope, softcap, alibi, window, sinks} set as sweep.h describes,
// q_norm and k_norm ~ 1 + U(-0.25, 0.25), sinks ~ U(-1, 1), so the CPU reference computes what the model does.
LayerWeights make_weights(const Config& config);

// The named tensors for createModel in the precision's weight type (q_norm.weight, k_norm.weight and sinks with
// those options); `tensors` point into `storage`.
struct ModelTensors {
    std::vector<std::string> names;
    std::vector<std::vector<uint8_t>> storage;
    std::vector<VkmhaTensor> tensors;
    uint64_t bytes = 0; // weight bytes as stored (for GB/s)
};
ModelTensors make_model_tensors(const LayerWeights& layer, const Precision& precision);

// Inputs ~ U(-1, 1). Self-attention rows have only a query; decode rows have separate key and value.
struct Inputs {
    std::vector<float> query, key, value;
};
Inputs make_inputs(const Config& config, uint32_t lq, uint32_t lk);

} // namespace bench
