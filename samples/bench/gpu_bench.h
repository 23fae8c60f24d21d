// gpu_bench.h: runs rows on a Vulkan device through vkmha's public C API (own-device context, hostIo sessions) and
// collects the per-stage GPU times from getStageTimings.
#pragma once

#include "sweep.h"
#include "workload.h"

#include "common/api.h"
#include "vkmha/vkmha.h"

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct StageTime {
    VkmhaStage stage;
    double ms; // median over the timed runs
};

struct GpuMeasurement {
    std::vector<StageTime> stages; // in the order the library reports them
    double total_ms = 0;           // median over runs of the sum of all stages
    double core_ms = 0;            // median over runs of the sum of the core stages (metrics.h: is_core_stage)
    double wall_ms = 0;            // median host time from submit until wait returns (includes upload/readback)
    std::vector<double> run_total_ms, run_core_ms; // each timed run's sums, in the order they ran
    uint64_t model_bytes = 0;                      // getModelProperties().deviceMemoryBytes
    uint64_t session_bytes = 0; // getSessionMemoryRequirements without host I/O staging (fused-only for fused paths)
    uint64_t weight_bytes = 0;  // the weights as handed to createModel
    std::vector<float> output;  // the last run's output, when asked for
};

class GpuBench {
  public:
    // device: "" (vkmha's pick), an index, or a name substring. Dies with one line on failure.
    explicit GpuBench(const std::string& device);
    ~GpuBench();
    GpuBench(const GpuBench&) = delete;
    GpuBench& operator=(const GpuBench&) = delete;

    const VkmhaContextProperties& properties() const { return m_properties; }
    const char* stage_name(VkmhaStage stage) const { return m_api->stageName(stage); }

    // One warm-up run, then `repeat` timed runs in a session sized for exactly this row, destroyed afterwards.
    // The model is created on the first row of its (H, G, D, precision, model options) and kept for later rows.
    GpuMeasurement run(const Config& config, const LayerWeights& layer, uint32_t lq, uint32_t lk, const Path& path,
                       const Inputs& inputs, uint32_t repeat, bool keep_output);

    // Rows that differ only in their model options (same shape, path and inputs), timed round-robin: every session
    // warms up once, then each timed round submits every row once (alternately forwards and backwards), so load
    // from other processes falls on all of them alike and their ratios hold on a shared machine.
    struct RowJob {
        const Config* config;
        const LayerWeights* layer;
        uint32_t lq, lk;
        const Path* path;
    };
    std::vector<GpuMeasurement> run_interleaved(const std::vector<RowJob>& jobs, const Inputs& inputs, uint32_t repeat,
                                                bool keep_output);

  private:
    struct Pending;
    Pending begin(const Config& config, const LayerWeights& layer, uint32_t lq, uint32_t lk, const Path& path,
                  const Inputs& inputs);
    void submit_once(Pending& pending, bool timed);
    GpuMeasurement finish(Pending& pending, bool keep_output);

    struct CachedModel {
        uint32_t heads, kv_heads, head_dim;
        const Precision* precision;
        ModelOptions options;
        VkmhaModel model;
        uint64_t weight_bytes;
    };

    const CachedModel& model_for(const Config& config, const LayerWeights& layer);

    vkmha::samples::Api m_api;
    VkmhaContext m_context = nullptr;
    VkmhaContextProperties m_properties{};
    std::vector<CachedModel> m_models;
};

} // namespace bench
