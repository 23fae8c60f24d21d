// Models for the plugin suites: random weights under each naming scheme, kept as the tensors handed to vkmha and as
// the fp32 values the CPU reference uses (rounded through the tensor's dtype, so F16/BF16 models compare exactly as
// well), and the C ABI calls that create a model from them and check what it reports.
#pragma once

#include "attention_config.h"
#include "io/safetensors.h"
#include "support/plugin_api.h"

#include "vkmha/vkmha.h"

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace vkmha::test {

enum class Naming { torch_packed, torch_separate, llama };

struct ModelSpec {
    uint32_t embed = 16;
    uint32_t heads = 4;
    uint32_t kv_heads = 0; // llama: G (0 = heads)
    uint32_t kdim = 0;     // torch_separate: key width (0 = embed)
    uint32_t vdim = 0;     // torch_separate: value width (0 = embed)
    Naming naming = Naming::torch_packed;
    bool bias = true;
    io::DType dtype = io::DType::f32;
    uint32_t seed = 1;
};

struct HostModel {
    AttentionConfig config;
    AttentionWeights weights;
    std::vector<io::Tensor> tensors;
};

HostModel make_model(const ModelSpec& s);

// fp32 tensors handed to the C ABI by name and shape, their data in vectors the caller keeps (and does not move):
// views() is what VkmhaModelCreateInfo::pTensors takes.
class Fp32Tensors {
  public:
    void add(std::string name, const std::vector<uint64_t>& shape, const std::vector<float>& data);
    const std::vector<VkmhaTensor>& views() const { return m_views; }

  private:
    std::deque<std::string> m_names; // a deque: adding a name leaves the earlier views' pName valid
    std::vector<VkmhaTensor> m_views;
};

// The VkmhaTensor views of `tensors` (which must outlive them).
std::vector<VkmhaTensor> tensor_views(const std::vector<io::Tensor>& tensors);

VkmhaModelCreateInfo model_info(uint32_t heads, const std::vector<VkmhaTensor>& views);

// createModel from `m`'s tensors into `out`; REQUIREs success.
void create_model(VkmhaContext context, const HostModel& m, ModelHandle& out);

// getModelProperties reports `m`'s shape and biases, some device memory and the default precision (fp32).
void check_model_properties(VkmhaModel model, const HostModel& m);

} // namespace vkmha::test
