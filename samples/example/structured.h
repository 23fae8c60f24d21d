// structured.h: vkmha-make-example --structured, a layer and inputs with the structure real attention heads show, so
// that per-head studies (vkmha-heads) have something to find: token sequences with repeats and a first (BOS) token,
// embeddings that carry the token and its position, and heads built to attend to the previous token, to earlier copies
// of the same token (twice, nearly alike: a redundant pair) and to the first token, beside diffuse random heads.
#pragma once

#include "io/safetensors.h"

#include <cstdint>
#include <vector>

namespace vkmha::example {

constexpr uint32_t kStructuredEmbed = 128, kStructuredHeads = 8;

// PyTorch-named weights of the E 128, H 8 layer (seeded: the same seed gives the same layer).
std::vector<io::Tensor> structured_weights(uint32_t seed);

// query [batch, length, 128]: token sequences (seeded per batch item) embedded with their positions.
std::vector<float> structured_query(uint32_t batch, uint32_t length, uint32_t seed);

} // namespace vkmha::example
