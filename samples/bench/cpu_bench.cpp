// cpu_bench.cpp: the CPU reference run behind --compare-cpu.
#include "cpu_bench.h"

#include "fail.h"
#include "metrics.h"

#include "cpu_reference.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace bench {

CpuMeasurement run_cpu_reference(const Config& c, const LayerWeights& layer, uint32_t lq, uint32_t lk,
                                 const Inputs& inputs, uint32_t repeat) {
    vkmha::AttentionOptions options;
    options.causal = c.causal;
    vkmha::AttentionInputs in;
    in.query = inputs.query.data();
    in.key = inputs.key.empty() ? nullptr : inputs.key.data();
    in.value = inputs.value.empty() ? nullptr : inputs.value.data();
    CpuMeasurement m;
    std::vector<double> times;
    for (uint32_t run = 0; run <= repeat; ++run) {
        const auto start = std::chrono::steady_clock::now();
        auto r = vkmha::reference_attention(layer.config, layer.weights, {c.batch, lq, lk}, options, in);
        const auto end = std::chrono::steady_clock::now();
        if (!r) die("CPU reference " + shape_text(c, lq, lk) + ": " + r.error().message);
        times.push_back(std::chrono::duration<double, std::milli>(end - start).count());
        if (run == 0) {
            m.output = std::move(r->output);
            if (times[0] >= kCpuRepeatBelowMs) break;
            times.clear();
        }
    }
    m.ms = median(times);
    m.runs = static_cast<uint32_t>(times.size());
    return m;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return INFINITY;
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(double(a[i]) - double(b[i]));
        if (!(d <= worst)) worst = d; // NaN propagates as the worst
    }
    return worst;
}

} // namespace bench
