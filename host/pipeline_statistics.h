// Shader statistics: every pipeline a model of a given configuration runs on a device, built as a real run builds
// it (same tiling choices, same specialization constants), with what the driver reports about its compiled code
// (VK_KHR_pipeline_executable_properties: registers, spills, shared memory, scratch, occupancy, ...). Read on
// compile-only contexts, which may sit on devices that cannot execute (RADV's null hardware).
#pragma once

#include "attention_config.h"
#include "context.h"

#include <array>
#include <string>
#include <vector>

namespace vkmha {

// What a pipeline does in a forward pass: the fused kernel's two tilings, the split-K merge, the projections.
enum class PipelineRole : uint32_t { prefill = 0, decode = 1, combine = 2, projection = 3, other = 4 };
const char* pipeline_role_name(PipelineRole);

// One statistic under the driver's own name (e.g. RADV's "Spilled VGPRs"), in the driver's format.
struct PipelineStatistic {
    std::string name;
    VkPipelineExecutableStatisticFormatKHR format = VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR;
    VkPipelineExecutableStatisticValueKHR value{};
    double as_double() const; // any format as a number (booleans 0/1)
};

struct SpecializationValue {
    std::string name; // the GLSL name of the constant (constant_id order)
    uint32_t value = 0;
};

struct PipelineReport {
    std::string kernel;  // kernel_name()
    std::string variant; // the kernel table row's name: storage variant, lane tiles, subgroup arithmetic
    PipelineRole role = PipelineRole::other;
    std::array<uint32_t, 3> workgroup{1, 1, 1};
    std::vector<SpecializationValue> specialization;
    std::vector<PipelineStatistic> statistics;
    // The statistic named `name`, or nullptr.
    const PipelineStatistic* find(const std::string& name) const;
};

// Every pipeline a model of `config` stored at `precision` would run on ctx's device: the context's kernels in the
// model's storage variants and the model's fused-kernel pipelines (prefill and decode tilings). Needs a device with
// statistics enabled (Device::pipeline_statistics(), a compile-only context in own mode); else ErrorCode::unsupported
// naming the device and the extension.
Result<std::vector<PipelineReport>> pipeline_statistics(const Context& ctx, const AttentionConfig& config,
                                                        Precision precision);

} // namespace vkmha
