// Model: one attention layer's weights, uploaded once to device memory; immutable and shared by sessions.
#pragma once

#include "attention_config.h"
#include "attention_plan.h"
#include "context.h"
#include "vulkan/arena.h"

namespace vkmha {

class Model {
  public:
    // Precision::fp16 stores the weights as fp16 (converted here, round to nearest even) and runs the kernels' fp16
    // storage variants; it needs Device::storage16() (else ErrorCode::unsupported).
    static Result<VkDeviceSize> memory_required(const Context&, const AttentionConfig&, Precision = Precision::fp32);
    static Result<std::unique_ptr<Model>> create(const Context&, const AttentionConfig&, const AttentionWeights&,
                                                 Precision = Precision::fp32);

    const AttentionConfig& config() const { return m_config; }
    Precision precision() const { return m_precision; }
    bool has_in_bias() const { return m_in_bias; }
    bool has_out_bias() const { return m_out_bias; }
    // wq, wk and wv share one buffer, [Wq; Wk; Wv] (so a self-attention layer projects all three in one dispatch),
    // as do bq, bk and bv; weight_offsets() says where each part starts.
    const BufferView& qkv_weights() const { return m_arena[0]; }
    const BufferView& qkv_biases() const { return m_arena[1]; }
    const BufferView& out_weights() const { return m_arena[2]; }
    const BufferView& out_bias() const { return m_arena[3]; }
    const BufferView& dummy() const { return m_arena[4]; } // 16 bytes, never written
    // fp32 whatever the precision: sinks, RoPE frequencies and QK-norm weights, laid out as table_offsets(config()).
    const BufferView& table() const { return m_arena[5]; }
    const WeightOffsets& weight_offsets() const { return m_offsets; }
    VkDeviceSize bytes() const { return m_arena.bytes(); }
    // The fused kernel, specialised for this model's head dim and precision on this device.
    const AttentionTiling& attention_tiling() const { return m_tiling; }
    VkPipeline attention_pipeline() const { return m_attention.get(); }
    // The fused kernel with 4 rows per workgroup, for a few query rows per key/value head (decode).
    const AttentionTiling& decode_tiling() const { return m_decode_tiling; }
    VkPipeline decode_pipeline() const { return m_decode.get(); }

  private:
    AttentionConfig m_config;
    Precision m_precision = Precision::fp32;
    bool m_in_bias = false;
    bool m_out_bias = false;
    Arena m_arena;
    WeightOffsets m_offsets;
    AttentionTiling m_tiling, m_decode_tiling;
    Handle<VkPipeline> m_attention, m_decode;
};

// The fused kernel's two tilings a model of `config` builds pipelines for on a device (Model::create, and the
// shader statistics, which must report the very same pipelines). fused: false where the head dim takes the unfused
// path (no fused pipelines at all).
struct FusedTilings {
    bool fused = false;
    AttentionTiling prefill;
    AttentionTiling decode;
};
FusedTilings choose_fused_tilings(const DeviceLimits&, const KernelPolicy&, const AttentionConfig& config);

Status validate_config(const AttentionConfig&);
Status validate_weights(const AttentionConfig&, const AttentionWeights&);

} // namespace vkmha
