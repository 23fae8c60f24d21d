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
    {"unfused", VKMHA_ATTENTION_UNFUSED_BIT, VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT},
    // the fused kernel without split-K (matters for decode)
    {"fused-nosplit", VKMHA_ATTENTION_NO_SPLIT_K_BIT, VKMHA_SESSION_CREATE_FUSED_ONLY_BIT},
};

// The model options of vkmha 1.2 (VkmhaModelAttentionInfo and the q_norm/k_norm/sinks weights) a configuration
// turns on, each at one fixed setting: rope = NeoX, theta 10000, R = D; qk-norm = random weights around 1;
// softcap = 50; alibi; sinks = random per-head logits; window = 256. All off: "plain", the 1.1 model.
struct ModelOptions {
    bool rope = false, qk_norm = false, softcap = false, alibi = false, sinks = false, window = false;

    bool plain() const { return !(rope || qk_norm || softcap || alibi || sinks || window); }
    std::string name() const; // "plain", or the options joined by '+' in the order above: "rope+qk-norm+sinks"
    bool operator==(const ModelOptions&) const = default;
};

inline constexpr float kSoftcap = 50.0f;
inline constexpr uint32_t kWindow = 256;
inline constexpr float kRopeTheta = 10000.0f;

// Parses one --model-options item ("plain", or names joined by '+'); false with *error naming the bad part.
bool parse_model_options(const std::string& item, ModelOptions* options, std::string* error);
std::string model_option_names(); // "rope, qk-norm, softcap, alibi, sinks, window"

// Everything about a row except the swept sequence length and the path: one line (per path) in the plot.
struct Config {
    uint32_t batch = 1, heads = 8, kv_heads = 8, head_dim = 64;
    uint32_t query_length = 0; // 0: self-attention, Lq = Lk = L; else Lq fixed (decode), Lk = L, separate key/value
    bool causal = false;
    const Precision* precision = &kPrecisions[0];
    ModelOptions options; // plain by default

    uint32_t embed_dim() const { return heads * head_dim; }
    bool decode() const { return query_length != 0; }
    std::string label() const; // "B1 H8 G2 D64 Lq1 causal fp32", then " rope+qk-norm" unless plain
};

// True when two configurations differ at most in their model options (the rows a "vs plain" ratio pairs up).
bool same_but_options(const Config& a, const Config& b);

// One row's shape: "B1 H8 G8 D64 L512 fp32" (self-attention) or "B1 H8 G2 D64 Lq1 Lk4096 fp32" (decode), then
// " rope+qk-norm" unless the options are plain.
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
