// report.h: what a benchmark run found, per row and overall, and its two renderings: the text table (stdout) and
// the JSON file.
#pragma once

#include "gpu_bench.h"
#include "sgemm.h"
#include "sweep.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bench {

struct RowResult {
    Row row;
    GpuMeasurement gpu;
    double core_flops = 0, total_flops = 0, bytes = 0;
    double core_gflops = 0, total_gflops = 0, gbps = 0;
    std::optional<double> speedup_vs_unfused;      // unfused GPU ms / this row's, same shape and run
    std::optional<double> core_speedup_vs_unfused; // the same for the attention core alone
    // With model options, this row's GPU ms over the plain row's (same shape and path, timed interleaved in this
    // run): the median over the timed rounds of each round's ratio, which holds where the load of other processes
    // comes and goes between rounds (a ratio of medians where the rounds do not pair up); min and max over rounds.
    std::optional<double> vs_plain, vs_plain_min, vs_plain_max;
    std::optional<double> core_vs_plain; // the same for the attention core alone
    std::optional<double> cpu_ms;        // CPU reference, same shape and inputs
    uint32_t cpu_runs = 0;               // timed CPU runs behind cpu_ms (cpu_bench.h)
    std::optional<double> gpu_vs_cpu;    // cpu_ms / GPU ms
    std::optional<double> max_abs_error; // GPU output vs CPU reference
    uint64_t peak_bytes() const { return gpu.model_bytes + gpu.session_bytes; }
};

struct SgemmComparison {
    SgemmMeasurement sgemm;
    const RowResult* fused = nullptr; // the fused row at the largest length (prefill preferred), if any
    double ratio = 0;                 // its core GFLOP/s / sgemm GFLOP/s
};

struct Report {
    VkmhaContextProperties device{};
    uint32_t repeat = 0;
    std::vector<Config> configs;
    std::vector<RowResult> rows;
    std::optional<SgemmComparison> sgemm;
};

// The plain row a row with model options is compared with (same configuration but its options, same lengths and
// path), or nullptr (a plain row, or none in the sweep).
const RowResult* plain_row(const Report& report, const RowResult& row);

// Fills the work, rates and same-run ratios of every row from its GPU measurement.
void derive_metrics(Report& report);

// The table; a "vs plain" column when some row has model options.
void print_table(const Report& report, bool with_cpu);
// Each row with model options as a ratio to the plain row of its shape and path in this run; prints nothing when no
// row has one.
void print_model_options(const Report& report);
void print_sgemm(const Report& report); // report.sgemm must be set

// Empty on success, else a one-line error naming the file.
std::string write_json(const Report& report, const std::string& path,
                       const std::function<const char*(VkmhaStage)>& stage_name);

} // namespace bench
