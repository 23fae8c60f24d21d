// vkmha-bench: times vkmha's attention paths (fused, unfused, fused without split-K) over a sweep of shapes through
// the public C API, and reports GPU time per stage, GFLOP/s, GB/s and device memory as a table, JSON and a PNG
// plot; optionally against the CPU reference and OpenBLAS sgemm.
#include "cpu_bench.h"
#include "fail.h"
#include "gpu_bench.h"
#include "options.h"
#include "plot.h"
#include "report.h"
#include "sgemm.h"
#include "workload.h"

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace {

using namespace bench;

// Plot style per path, so paths read apart even where their lines coincide.
void path_style(const Path* path, Dash* dash, Marker* marker) {
    const auto index = static_cast<size_t>(path - kPaths);
    *dash = index == 0 ? Dash::solid : index == 1 ? Dash::dashed : Dash::dotted;
    *marker = index == 0 ? Marker::disc : index == 1 ? Marker::ring : Marker::square;
}

std::vector<PlotSeries> plot_series(const Report& report) {
    std::vector<PlotSeries> series;
    for (size_t c = 0; c < report.configs.size(); ++c)
        for (const Path& path : kPaths) {
            PlotSeries s;
            for (const RowResult& r : report.rows)
                if (r.row.config == c && r.row.path == &path) {
                    s.x.push_back(r.row.lk);
                    s.time_ms.push_back(r.gpu.total_ms);
                    s.gflops.push_back(r.core_gflops);
                }
            if (s.x.empty()) continue;
            s.label = report.configs[c].label() + " " + path.name;
            s.color = static_cast<int>(c);
            path_style(&path, &s.dash, &s.marker);
            series.push_back(std::move(s));
        }
    return series;
}

// Colour names the configuration, line style and marker the path: two short lists instead of one entry per line.
std::vector<LegendSection> legend(const Report& report) {
    LegendSection configs{"colour:", {}}, paths{"line:", {}};
    for (size_t c = 0; c < report.configs.size(); ++c)
        configs.entries.push_back({report.configs[c].label(), static_cast<int>(c), Dash::solid, Marker::disc});
    for (const Path& path : kPaths) {
        bool used = false;
        for (const RowResult& r : report.rows) used = used || r.row.path == &path;
        if (!used) continue;
        LegendEntry e{path.name, -1, Dash::solid, Marker::disc};
        path_style(&path, &e.dash, &e.marker);
        paths.entries.push_back(e);
    }
    return {configs, paths};
}

std::string x_axis_title(const std::vector<Config>& configs) {
    bool decode = false, prefill = false;
    for (const Config& c : configs) (c.decode() ? decode : prefill) = true;
    if (decode && prefill) return "sequence length L (decode: Lk)";
    return decode ? "key length Lk (Lq fixed)" : "sequence length L = Lq = Lk";
}

// The fused row the sgemm yardstick is held against: the largest length, prefill before decode, fastest core.
const RowResult* sgemm_row(const Report& report) {
    const RowResult* best = nullptr;
    auto rank = [&](const RowResult& r) {
        return std::make_tuple(!report.configs[r.row.config].decode(), r.row.lk, r.core_gflops);
    };
    for (const RowResult& r : report.rows)
        if (r.row.path == find_path("fused") && (!best || rank(r) > rank(*best))) best = &r;
    return best;
}

} // namespace

int main(int argc, char** argv) {
    const Options o = parse_options(argc, argv);
    GpuBench gpu(o.device);
    const Sweep sweep = make_sweep(o, gpu.properties().deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU);
    Report report;
    report.device = gpu.properties();
    report.repeat = o.repeat;
    report.configs = sweep.configs;
    std::printf("device: %s (Vulkan %u.%u, subgroup %u); GPU times: median of %u run%s after one warm-up\n",
                report.device.deviceName, VK_API_VERSION_MAJOR(report.device.deviceApiVersion),
                VK_API_VERSION_MINOR(report.device.deviceApiVersion), report.device.subgroupSize, o.repeat,
                o.repeat == 1 ? "" : "s");
    std::fflush(stdout);

    std::optional<SgemmComparison> sgemm;
    if (o.sgemm) { // first: fails early without OpenBLAS, and runs before the sweep has warmed anything up
        std::fprintf(stderr, "sgemm 2048^3 on 2 threads ... ");
        std::fflush(stderr);
        progress_line_open = true;
        sgemm.emplace();
        std::string error;
        if (!measure_sgemm(2048, 2, 5, &sgemm->sgemm, &error)) die(error);
        std::fprintf(stderr, "%.1f GFLOP/s\n", sgemm->sgemm.gflops);
        progress_line_open = false;
    }

    std::map<std::tuple<uint32_t, uint32_t, uint32_t>, LayerWeights> weights; // by (H, G, D)
    Inputs inputs;
    std::tuple<size_t, uint32_t, uint32_t> inputs_for{SIZE_MAX, 0, 0};
    std::optional<CpuMeasurement> cpu;
    const size_t total = sweep.rows.size();
    for (size_t i = 0; i < total; ++i) {
        const Row& row = sweep.rows[i];
        const Config& c = sweep.configs[row.config];
        std::fprintf(stderr, "[%zu/%zu] B=%u H=%u G=%u D=%u %s%s %s %s ... ", i + 1, total, c.batch, c.heads,
                     c.kv_heads, c.head_dim,
                     (c.decode() ? "Lq=" + std::to_string(row.lq) + " Lk=" + std::to_string(row.lk)
                                 : "L=" + std::to_string(row.lk))
                         .c_str(),
                     c.causal ? " causal" : "", c.precision->name, row.path->name);
        std::fflush(stderr);
        progress_line_open = true;
        auto key = std::make_tuple(c.heads, c.kv_heads, c.head_dim);
        auto found = weights.find(key);
        if (found == weights.end()) found = weights.emplace(key, make_weights(c)).first;
        const LayerWeights& layer = found->second;
        if (inputs_for != std::make_tuple(row.config, row.lq, row.lk)) {
            inputs = make_inputs(c, row.lq, row.lk);
            inputs_for = {row.config, row.lq, row.lk};
            cpu.reset();
            if (o.compare_cpu) cpu = run_cpu_reference(c, layer, row.lq, row.lk, inputs, o.repeat); // once per shape
        }
        RowResult r;
        r.row = row;
        r.gpu = gpu.run(c, layer, row.lq, row.lk, *row.path, inputs, o.repeat, o.compare_cpu);
        if (cpu) {
            r.cpu_ms = cpu->ms;
            r.cpu_runs = cpu->runs;
            if (r.gpu.total_ms > 0) r.gpu_vs_cpu = cpu->ms / r.gpu.total_ms;
            r.max_abs_error = max_abs_difference(r.gpu.output, cpu->output);
            r.gpu.output = {};
        }
        std::fprintf(stderr, "%.3f ms", r.gpu.total_ms);
        if (cpu) std::fprintf(stderr, " (CPU %.1f ms)", cpu->ms);
        std::fprintf(stderr, "\n");
        progress_line_open = false;
        report.rows.push_back(std::move(r));
    }
    derive_metrics(report);

    if (sgemm) {
        sgemm->fused = sgemm_row(report);
        if (sgemm->fused && sgemm->sgemm.gflops > 0) sgemm->ratio = sgemm->fused->core_gflops / sgemm->sgemm.gflops;
        report.sgemm = sgemm;
    }

    std::printf("\n");
    print_table(report, o.compare_cpu);
    if (report.sgemm) {
        std::printf("\n");
        print_sgemm(report);
    }
    std::fflush(stdout);

    std::string error = write_json(report, o.json_path, [&](VkmhaStage s) { return gpu.stage_name(s); });
    if (!error.empty()) die(error);
    std::fprintf(stderr, "vkmha-bench: wrote %s\n", o.json_path.c_str());
    const std::string title = std::string("vkmha-bench: ") + report.device.deviceName + ", median of " +
                              std::to_string(o.repeat) + (o.repeat == 1 ? " run" : " runs");
    error = write_plot(o.png_path, title, x_axis_title(report.configs), plot_series(report), legend(report));
    if (!error.empty()) die(error);
    std::fprintf(stderr, "vkmha-bench: wrote %s\n", o.png_path.c_str());
    return 0;
}
