// sweep.h: what vkmha-bench measures: the precisions and attention paths it knows, the configurations (everything
// but the swept length and the path) and the rows (one GPU measurement each) of the default, quick or custom sweep.
#pragma once

#include "vkmha/vkmha.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct Precision {
    const char* name;
    VkmhaPrecision precision;  // the model's storage precision (createModel)
    VkmhaDataType weight_type; // how the weight tensors are handed to createModel
    uint32_t weight_bytes;     // bytes per stored weight element (for GB/s)
};

inline constexpr Precision kPrecisions[] = {
    {"fp32", VKMHA_PRECISION_FP32, VKMHA_DATA_TYPE_F32, 4},
    {"fp16", VKMHA_PRECISION_FP16, VKMHA_DATA_TYPE_F16, 2},
};

struct Path {
    const char* name;
    VkmhaAttentionFlags flags;             // for submit
    VkmhaSessionCreateFlags session_flags; // fused paths need no Lq x Lk score scratch: memory as a user would see it
};

inline constexpr Path kPaths[] = {
    {"fused", 0, VKMHA_SESSION_CREATE_FUSED_ONLY_BIT},
    {"unfused", VKMHA_ATTENTION_UNFUSED_BIT, 0},
    // the fused kernel without split-K (matters for decode)
    {"fused-nosplit", VKMHA_ATTENTION_NO_SPLIT_K_BIT, VKMHA_SESSION_CREATE_FUSED_ONLY_BIT},
};

// Everything about a row except the swept sequence length and the path: one line (per path) in the plot.
struct Config {
    uint32_t batch = 1, heads = 8, kv_heads = 8, head_dim = 64;
    uint32_t query_length = 0; // 0: self-attention, Lq = Lk = L; else Lq fixed (decode), Lk = L, separate key/value
    bool causal = false;
    const Precision* precision = &kPrecisions[0];

    uint32_t embed_dim() const { return heads * head_dim; }
    bool decode() const { return query_length != 0; }
    std::string label() const; // "B1 H8 G2 D64 Lq1 causal fp32"
};

// One row's shape: "B1 H8 G8 D64 L512 fp32" (self-attention) or "B1 H8 G2 D64 Lq1 Lk4096 fp32" (decode).
std::string shape_text(const Config& config, uint32_t lq, uint32_t lk);

struct Row {
    size_t config = 0; // index into Sweep::configs
    uint32_t lq = 0, lk = 0;
    const Path* path = nullptr;
};

struct Sweep {
    std::vector<Config> configs;
    std::vector<Row> rows; // grouped by config, then length, then path
};

// One configuration swept over `lengths` on `paths` (default when empty: fused, unfused, plus fused-nosplit for
// decode configurations).
void add_config(Sweep& sweep, const Config& config, const std::vector<uint32_t>& lengths,
                const std::vector<const Path*>& paths);

const Path* find_path(const std::string& name);
const Precision* find_precision(const std::string& name);
std::string path_names(); // "fused, unfused, fused-nosplit"
std::string precision_names();

} // namespace bench
