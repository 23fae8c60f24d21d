// options.h: vkmha-bench's command line and the sweep it selects.
#pragma once

#include "sweep.h"

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct Options {
    // The sweep as asked for; make_sweep turns it into rows once the device is known.
    bool quick = false;
    bool custom = false; // a shape flag was given: the cross product below replaces the built-in sweep
    bool causal = false;
    std::vector<uint32_t> sizes, batches, heads, kv_heads, head_dims;
    uint32_t query_length = 0; // --lq
    std::vector<const Path*> paths;
    std::vector<const Precision*> precisions;
    std::vector<ModelOptions> model_options; // --model-options; each multiplies the sweep (default: plain only)

    uint32_t repeat = 3; // timed runs per row (median), after one warm-up run
    std::string device;  // "" = vkmha's default pick
    std::string json_path, png_path;
    bool compare_cpu = false;
    bool sgemm = false;
    bool shader_stats = false; // --shader-stats: the pipelines' compiled-code statistics instead of timings
    bool json_given = false;   // --json was on the command line (--shader-stats writes JSON only then)
};

// Parses argv; prints usage and exits 0 for --help; dies with one line naming the bad flag or value.
Options parse_options(int argc, char** argv);

// The rows to run. The built-in sweeps are smaller on CPU devices (lavapipe), where the default run must stay well
// under two minutes on two cores, than on GPUs, where small shapes would measure only launch overhead.
Sweep make_sweep(const Options& options, bool cpu_device);

} // namespace bench
