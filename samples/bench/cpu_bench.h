// cpu_bench.h: times vkmha's CPU reference (double accumulation, one thread) on a row's shape and inputs.
#pragma once

#include "sweep.h"
#include "workload.h"

#include <vector>

namespace bench {

struct CpuMeasurement {
    double ms = 0;             // the one run, or the median of the timed runs
    uint32_t runs = 1;         // timed runs behind ms
    std::vector<float> output; // [B, Lq, E]
};

// The reference is slow on big shapes (minutes where a GPU takes milliseconds), so it runs once; when that run
// takes under kCpuRepeatBelowMs it counts as the warm-up and the median of `repeat` more runs is reported.
inline constexpr double kCpuRepeatBelowMs = 200;
CpuMeasurement run_cpu_reference(const Config& config, const LayerWeights& layer, uint32_t lq, uint32_t lk,
                                 const Inputs& inputs, uint32_t repeat);

// Largest |a - b| over two outputs of the same shape.
double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b);

} // namespace bench
