// The caller's own Q, K, V and O (1.2, attention only): VkmhaTensorLayout strides as the host takes them, and the
// bindings and host pointers those calls require.
#pragma once

#include "attention_config.h"
#include "attention_plan.h"
#include "result.h"
#include "vkmha/vkmha.h"

#include <cstdint>
#include <initializer_list>
#include <utility>

namespace vkmha::plugin {

// Strides [heads, L, D] packed, or an error when they do not fit the 32 bits the kernels take.
Result<TensorStrides> contiguous(uint32_t heads, uint32_t L, uint32_t D);

// The four layouts of a Qkv record (q, k, v, output of `owner`): Q and O of H heads over `lq` rows, K and V of G
// heads over `lk`; cached steps (no batch) pass lq = lk = 1 and their token count as `rows`.
Result<OwnQkv> own_qkv(const AttentionConfig& c, const char* owner, const VkmhaTensorLayout* layouts[4], uint64_t B,
                       uint32_t lq, uint32_t lk, bool cached, uint64_t rows);

// q, k, v and output: each required.
Status require_bound(const char* owner, std::initializer_list<std::pair<const char*, const VkmhaBufferBinding*>> all);

// pQ, pK, pV: each required.
Status require_pointers(const char* owner, std::initializer_list<std::pair<const char*, const float*>> all);

} // namespace vkmha::plugin
