// vkmha-bench: times vkmha's attention paths (fused, unfused, fused without split-K) over a sweep of shapes and
// model options (RoPE, QK-norm, soft-cap, ALiBi, sinks, window) through the public C API, and reports GPU time per
// stage, GFLOP/s, GB/s and device memory as a table, JSON and a PNG plot, each option row also as a ratio to the
// plain row of its shape; optionally against the CPU reference and OpenBLAS sgemm.
#include "cpu_bench.h"
#include "fail.h"
#include "gpu_bench.h"
#include "options.h"
#include "plot.h"
#include "report.h"
#include "sgemm.h"
#include "shader_stats.h"
#include "workload.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
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

// A configuration's label in the plot, " plain" added when other configurations carry model options.
std::string plot_label(const Report& report, const Config& config) {
    const bool options =
        std::any_of(report.configs.begin(), report.configs.end(), [](const Config& c) { return !c.options.plain(); });
    return config.label() + (options && config.options.plain() ? " plain" : "");
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
            s.label = plot_label(report, report.configs[c]) + " " + path.name;
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
        configs.entries.push_back(
            {plot_label(report, report.configs[c]), static_cast<int>(c), Dash::solid, Marker::disc});
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

// The fused row the sgemm yardstick is held against: plain before model options, the largest length, prefill before
// decode, fastest core.
const RowResult* sgemm_row(const Report& report) {
    const RowResult* best = nullptr;
    auto rank = [&](const RowResult& r) {
        const Config& c = report.configs[r.row.config];
        return std::make_tuple(c.options.plain(), !c.decode(), r.row.lk, r.core_gflops);
    };
    for (const RowResult& r : report.rows)
        if (r.row.path == find_path("fused") && (!best || rank(r) > rank(*best))) best = &r;
    return best;
}

} // namespace

int main(int argc, char** argv) {
    const Options o = parse_options(argc, argv);
    if (o.shader_stats) return run_shader_stats(o);
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

    std::map<std::tuple<uint32_t, uint32_t, uint32_t, std::string>, LayerWeights> weights; // by (H, G, D, options)
    auto layer_for = [&](const Config& c) -> const LayerWeights& {
        auto key = std::make_tuple(c.heads, c.kv_heads, c.head_dim, c.options.name());
        auto found = weights.find(key);
        if (found == weights.end()) found = weights.emplace(key, make_weights(c)).first;
        return found->second;
    };
    Inputs inputs;
    std::tuple<size_t, uint32_t, uint32_t> inputs_for{SIZE_MAX, 0, 0};
    std::map<std::tuple<size_t, uint32_t, uint32_t>, CpuMeasurement> cpu_runs; // by (config, Lq, Lk): once per shape
    const size_t total = sweep.rows.size();
    std::vector<std::optional<RowResult>> results(total);
    size_t started = 0;
    for (size_t i = 0; i < total; ++i) {
        if (results[i]) continue;
        // This row and the later ones that differ from it only in their model options run interleaved (gpu_bench.h),
        // so their ratios to the plain row hold on a loaded machine. Without options every group is one row.
        std::vector<size_t> group{i};
        const Row& row = sweep.rows[i];
        const Config& c = sweep.configs[row.config];
        for (size_t k = i + 1; k < total; ++k) {
            const Row& other = sweep.rows[k];
            if (!results[k] && other.path == row.path && other.lq == row.lq && other.lk == row.lk &&
                other.config != row.config && same_but_options(sweep.configs[other.config], c))
                group.push_back(k);
        }
        std::string options;
        for (size_t k : group) {
            const ModelOptions& m = sweep.configs[sweep.rows[k].config].options;
            options += (options.empty() ? "" : " | ") + m.name();
        }
        const std::string count = group.size() == 1
                                      ? std::to_string(started + 1)
                                      : std::to_string(started + 1) + "-" + std::to_string(started + group.size());
        std::fprintf(stderr, "[%s/%zu] B=%u H=%u G=%u D=%u %s%s %s%s %s%s ... ", count.c_str(), total, c.batch, c.heads,
                     c.kv_heads, c.head_dim,
                     (c.decode() ? "Lq=" + std::to_string(row.lq) + " Lk=" + std::to_string(row.lk)
                                 : "L=" + std::to_string(row.lk))
                         .c_str(),
                     c.causal ? " causal" : "", c.precision->name,
                     group.size() == 1 && c.options.plain() ? "" : (" " + options).c_str(), row.path->name,
                     group.size() == 1 ? "" : " (interleaved)");
        std::fflush(stderr);
        progress_line_open = true;
        started += group.size();
        if (inputs_for != std::make_tuple(row.config, row.lq, row.lk)) { // the same for every row of the group
            inputs = make_inputs(c, row.lq, row.lk);
            inputs_for = {row.config, row.lq, row.lk};
        }
        std::vector<GpuBench::RowJob> jobs;
        std::vector<const CpuMeasurement*> cpu;
        for (size_t k : group) {
            const Row& r = sweep.rows[k];
            const Config& rc = sweep.configs[r.config];
            const LayerWeights& layer = layer_for(rc);
            jobs.push_back({&rc, &layer, r.lq, r.lk, r.path});
            const CpuMeasurement* ref = nullptr;
            if (o.compare_cpu) {
                const auto key = std::make_tuple(r.config, r.lq, r.lk);
                auto found = cpu_runs.find(key);
                if (found == cpu_runs.end())
                    found = cpu_runs.emplace(key, run_cpu_reference(rc, layer, r.lq, r.lk, inputs, o.repeat)).first;
                ref = &found->second;
            }
            cpu.push_back(ref);
        }
        std::vector<GpuMeasurement> measured;
        if (group.size() == 1)
            measured.push_back(gpu.run(c, *jobs[0].layer, row.lq, row.lk, *row.path, inputs, o.repeat, o.compare_cpu));
        else
            measured = gpu.run_interleaved(jobs, inputs, o.repeat, o.compare_cpu);
        for (size_t g = 0; g < group.size(); ++g) {
            RowResult r;
            r.row = sweep.rows[group[g]];
            r.gpu = std::move(measured[g]);
            if (cpu[g]) {
                r.cpu_ms = cpu[g]->ms;
                r.cpu_runs = cpu[g]->runs;
                if (r.gpu.total_ms > 0) r.gpu_vs_cpu = cpu[g]->ms / r.gpu.total_ms;
                r.max_abs_error = max_abs_difference(r.gpu.output, cpu[g]->output);
                r.gpu.output = {};
            }
            std::fprintf(stderr, "%s%.3f", g ? " | " : "", r.gpu.total_ms);
            results[group[g]] = std::move(r);
        }
        std::fprintf(stderr, " ms");
        if (group.size() == 1 && cpu[0]) std::fprintf(stderr, " (CPU %.1f ms)", cpu[0]->ms);
        std::fprintf(stderr, "\n");
        progress_line_open = false;
        for (auto it = cpu_runs.begin(); it != cpu_runs.end();) { // forget references no later row needs
            bool needed = false;
            for (size_t k = i + 1; k < total && !needed; ++k) {
                const Row& r = sweep.rows[k];
                needed = !results[k] && std::make_tuple(r.config, r.lq, r.lk) == it->first;
            }
            it = needed ? std::next(it) : cpu_runs.erase(it);
        }
    }
    for (std::optional<RowResult>& r : results) report.rows.push_back(std::move(*r));
    derive_metrics(report);

    if (sgemm) {
        sgemm->fused = sgemm_row(report);
        if (sgemm->fused && sgemm->sgemm.gflops > 0) sgemm->ratio = sgemm->fused->core_gflops / sgemm->sgemm.gflops;
        report.sgemm = sgemm;
    }

    std::printf("\n");
    print_table(report, o.compare_cpu);
    if (std::any_of(report.configs.begin(), report.configs.end(), [](const Config& c) { return !c.options.plain(); })) {
        std::printf("\n");
        print_model_options(report);
    }
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
