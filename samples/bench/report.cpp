// report.cpp: derived metrics, the text table and the JSON file.
#include "report.h"

#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

namespace bench {
namespace {

std::string fixed(double v, int decimals) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, v);
    return text;
}

// Three significant figures without exponent noise for the sizes a table shows.
std::string short_number(double v) {
    if (!std::isfinite(v)) return "-";
    const double a = std::fabs(v);
    return fixed(v, a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

std::string ratio_text(const std::optional<double>& r) { return r ? fixed(*r, 2) + "x" : "-"; }

using Json = nlohmann::ordered_json; // keys in the order written, as the file has always had them

// A measurement as JSON: six significant figures (what the timers resolve; longer only looks precise), null when
// there is none or it is not finite.
Json measured(double v) {
    if (!std::isfinite(v)) return nullptr;
    char text[40];
    std::snprintf(text, sizeof text, "%.6g", v);
    return std::strtod(text, nullptr);
}

Json measured(const std::optional<double>& v) { return v ? measured(*v) : Json(nullptr); }

bool has_model_options(const Report& report) {
    for (const Config& c : report.configs)
        if (!c.options.plain()) return true;
    return false;
}

// a[k] / b[k] for each timed round k; empty unless both rows ran the same number of rounds, all timed.
std::vector<double> paired_ratios(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> ratios;
    if (a.size() != b.size()) return ratios;
    for (size_t k = 0; k < a.size(); ++k) {
        if (!(b[k] > 0)) return {};
        ratios.push_back(a[k] / b[k]);
    }
    return ratios;
}

double stage_ms(const GpuMeasurement& m, VkmhaStage stage) {
    for (const StageTime& s : m.stages)
        if (s.stage == stage) return s.ms;
    return 0;
}

} // namespace

const RowResult* plain_row(const Report& report, const RowResult& r) {
    const Config& c = report.configs[r.row.config];
    if (c.options.plain()) return nullptr;
    for (const RowResult& p : report.rows) {
        const Config& pc = report.configs[p.row.config];
        if (pc.options.plain() && same_but_options(pc, c) && p.row.path == r.row.path && p.row.lq == r.row.lq &&
            p.row.lk == r.row.lk)
            return &p;
    }
    return nullptr;
}

void derive_metrics(Report& report) {
    for (RowResult& r : report.rows) {
        const Config& c = report.configs[r.row.config];
        r.core_flops = attention_core_flops(c, r.row.lq, r.row.lk);
        r.total_flops = r.core_flops + projection_flops(c, r.row.lq, r.row.lk);
        r.bytes = pass_bytes(c, r.row.lq, r.row.lk, r.gpu.weight_bytes);
        r.core_gflops = per_second(r.core_flops, r.gpu.core_ms) * 1e-9;
        r.total_gflops = per_second(r.total_flops, r.gpu.total_ms) * 1e-9;
        r.gbps = per_second(r.bytes, r.gpu.total_ms) * 1e-9;
    }
    for (RowResult& r : report.rows) {
        if (r.row.path == find_path("unfused")) continue;
        for (const RowResult& u : report.rows)
            if (u.row.path == find_path("unfused") && u.row.config == r.row.config && u.row.lk == r.row.lk &&
                u.row.lq == r.row.lq) {
                if (r.gpu.total_ms > 0) r.speedup_vs_unfused = u.gpu.total_ms / r.gpu.total_ms;
                if (r.gpu.core_ms > 0) r.core_speedup_vs_unfused = u.gpu.core_ms / r.gpu.core_ms;
            }
    }
    for (RowResult& r : report.rows)
        if (const RowResult* p = plain_row(report, r)) {
            const std::vector<double> totals = paired_ratios(r.gpu.run_total_ms, p->gpu.run_total_ms),
                                      cores = paired_ratios(r.gpu.run_core_ms, p->gpu.run_core_ms);
            if (!totals.empty()) {
                r.vs_plain = median(totals);
                r.vs_plain_min = *std::min_element(totals.begin(), totals.end());
                r.vs_plain_max = *std::max_element(totals.begin(), totals.end());
            } else if (p->gpu.total_ms > 0)
                r.vs_plain = r.gpu.total_ms / p->gpu.total_ms;
            if (!cores.empty())
                r.core_vs_plain = median(cores);
            else if (p->gpu.core_ms > 0)
                r.core_vs_plain = r.gpu.core_ms / p->gpu.core_ms;
        }
}

void print_table(const Report& report, bool with_cpu) {
    int shape_width = 24;
    for (const RowResult& r : report.rows)
        shape_width = std::max(shape_width, int(shape_text(report.configs[r.row.config], r.row.lq, r.row.lk).size()));
    std::printf("%-*s %-13s %9s %9s %9s %9s %8s %8s %8s", shape_width, "shape", "path", "GPU ms", "core ms",
                "core GF/s", "all GF/s", "GB/s", "mem MiB", "vs unf");
    const bool options = has_model_options(report);
    if (options) std::printf(" %8s", "vs plain");
    if (with_cpu) std::printf(" %10s %8s %9s", "CPU ms", "GPU/CPU", "max|err|");
    std::printf("\n");
    size_t previous = SIZE_MAX;
    for (const RowResult& r : report.rows) {
        const Config& c = report.configs[r.row.config];
        if (previous != SIZE_MAX && previous != r.row.config) std::printf("\n");
        previous = r.row.config;
        std::printf("%-*s %-13s %9s %9s %9s %9s %8s %8s %8s", shape_width, shape_text(c, r.row.lq, r.row.lk).c_str(),
                    r.row.path->name, fixed(r.gpu.total_ms, 3).c_str(), fixed(r.gpu.core_ms, 3).c_str(),
                    short_number(r.core_gflops).c_str(), short_number(r.total_gflops).c_str(),
                    short_number(r.gbps).c_str(), fixed(double(r.peak_bytes()) / (1 << 20), 1).c_str(),
                    ratio_text(r.speedup_vs_unfused).c_str());
        if (options) std::printf(" %8s", ratio_text(r.vs_plain).c_str());
        if (with_cpu) {
            char err[32] = "-";
            if (r.max_abs_error) std::snprintf(err, sizeof err, "%.2e", *r.max_abs_error);
            std::printf(" %10s %8s %9s", r.cpu_ms ? fixed(*r.cpu_ms, 1).c_str() : "-", ratio_text(r.gpu_vs_cpu).c_str(),
                        err);
        }
        std::printf("\n");
    }
}

void print_model_options(const Report& report) {
    if (!has_model_options(report)) return;
    std::printf("model options: GPU ms of the whole pass vs the plain row of the same shape and path, timed\n"
                "interleaved in this run (median of the per-round ratios, min-max over the rounds)\n");
    bool any = false;
    for (const RowResult& p : report.rows) {
        if (!report.configs[p.row.config].options.plain()) continue;
        bool header = false;
        for (const RowResult& r : report.rows) {
            if (plain_row(report, r) != &p) continue;
            if (!header) {
                std::printf("%s %s (plain %s ms):\n",
                            shape_text(report.configs[p.row.config], p.row.lq, p.row.lk).c_str(), p.row.path->name,
                            fixed(p.gpu.total_ms, 3).c_str());
                header = any = true;
            }
            const double rope = stage_ms(r.gpu, VKMHA_STAGE_ROPE);
            std::printf("  %s: %s plain (", report.configs[r.row.config].options.name().c_str(),
                        ratio_text(r.vs_plain).c_str());
            if (r.vs_plain_min && r.vs_plain_max)
                std::printf("%s-%s; ", fixed(*r.vs_plain_min, 2).c_str(), ratio_text(r.vs_plain_max).c_str());
            std::printf("core %s", ratio_text(r.core_vs_plain).c_str());
            if (rope > 0 && r.gpu.total_ms > 0)
                std::printf("; QK-norm/RoPE pass %s ms = %s%% of the row", fixed(rope, 3).c_str(),
                            short_number(100 * rope / r.gpu.total_ms).c_str());
            std::printf(")\n");
        }
    }
    if (!any) std::printf("(no plain row of the same shape and path: add plain to --model-options)\n");
}

void print_sgemm(const Report& report) {
    const SgemmComparison& s = *report.sgemm;
    std::printf("sgemm %u^3 (OpenBLAS, %u threads): %.1f GFLOP/s (%.1f ms, median of %u)\n", s.sgemm.n, s.sgemm.threads,
                s.sgemm.gflops, s.sgemm.ms, s.sgemm.runs);
    if (!s.fused) {
        std::printf("no fused row in this sweep to compare with sgemm\n");
        return;
    }
    const RowResult& f = *s.fused;
    std::printf("fused attention core at the largest L (%s): %.2f GFLOP/s = %.2f%% of sgemm (target >= 25%%)\n",
                shape_text(report.configs[f.row.config], f.row.lq, f.row.lk).c_str(), f.core_gflops, 100 * s.ratio);
}

namespace {

Json device_json(const VkmhaContextProperties& d) {
    const char* types[] = {"other", "integrated", "discrete", "virtual", "cpu"};
    const auto type = static_cast<size_t>(d.deviceType);
    return {
        {"name", d.deviceName},
        {"vendor_id", d.vendorId},
        {"device_type", type < std::size(types) ? types[type] : "unknown"},
        {"api_version", std::to_string(VK_API_VERSION_MAJOR(d.deviceApiVersion)) + "." +
                            std::to_string(VK_API_VERSION_MINOR(d.deviceApiVersion)) + "." +
                            std::to_string(VK_API_VERSION_PATCH(d.deviceApiVersion))},
        {"subgroup_size", d.subgroupSize},
        {"max_storage_buffer_range", uint64_t(d.maxStorageBufferRange)},
    };
}

Json row_json(const Report& report, const RowResult& r, const std::function<const char*(VkmhaStage)>& stage_name) {
    const Config& c = report.configs[r.row.config];
    Json stages = Json::object();
    for (const StageTime& s : r.gpu.stages) stages[stage_name(s.stage)] = measured(s.ms);
    Json runs = Json::array(); // each timed run, in the order they ran
    for (double ms : r.gpu.run_total_ms) runs.push_back(measured(ms));
    Json j = {
        {"shape", shape_text(c, r.row.lq, r.row.lk)},
        {"path", r.row.path->name},
        {"flags", uint32_t(r.row.path->flags)},
        {"precision", c.precision->name},
        {"batch", c.batch},
        {"heads", c.heads},
        {"kv_heads", c.kv_heads},
        {"head_dim", c.head_dim},
        {"embed_dim", c.embed_dim()},
        {"query_length", r.row.lq},
        {"key_length", r.row.lk},
        {"causal", c.causal},
        {"model_options", c.options.name()},
        {"stages_ms", std::move(stages)},
        {"gpu_ms", measured(r.gpu.total_ms)},
        {"gpu_ms_runs", std::move(runs)},
        {"attention_core_ms", measured(r.gpu.core_ms)},
        {"wall_ms", measured(r.gpu.wall_ms)},
        {"attention_core_flops", uint64_t(std::llround(r.core_flops))},
        {"total_flops", uint64_t(std::llround(r.total_flops))},
        {"bytes", uint64_t(std::llround(r.bytes))},
        {"attention_core_gflops", measured(r.core_gflops)},
        {"total_gflops", measured(r.total_gflops)},
        {"gbps", measured(r.gbps)},
        {"model_bytes", r.gpu.model_bytes},
        {"session_bytes", r.gpu.session_bytes},
        {"peak_device_bytes", r.peak_bytes()},
        {"peak_device_mib", measured(double(r.peak_bytes()) / (1 << 20))},
        {"speedup_vs_unfused", measured(r.speedup_vs_unfused)},
        {"core_speedup_vs_unfused", measured(r.core_speedup_vs_unfused)},
        {"vs_plain", measured(r.vs_plain)},
        {"vs_plain_min", measured(r.vs_plain_min)},
        {"vs_plain_max", measured(r.vs_plain_max)},
        {"core_vs_plain", measured(r.core_vs_plain)},
        {"cpu_ms", measured(r.cpu_ms)},
    };
    if (r.cpu_ms) j["cpu_runs"] = r.cpu_runs;
    j["gpu_vs_cpu"] = measured(r.gpu_vs_cpu);
    j["max_abs_error"] = measured(r.max_abs_error);
    return j;
}

Json sgemm_json(const Report& report, const SgemmComparison& s) {
    Json j = {
        {"n", s.sgemm.n},
        {"threads", s.sgemm.threads},
        {"ms", measured(s.sgemm.ms)},
        {"gflops", measured(s.sgemm.gflops)},
    };
    if (s.fused) {
        j["fused_shape"] = shape_text(report.configs[s.fused->row.config], s.fused->row.lq, s.fused->row.lk);
        j["fused_core_gflops"] = measured(s.fused->core_gflops);
        j["fused_core_vs_sgemm"] = measured(s.ratio);
    }
    j["target"] = measured(0.25);
    return j;
}

} // namespace

std::string write_json(const Report& report, const std::string& path,
                       const std::function<const char*(VkmhaStage)>& stage_name) {
    Json rows = Json::array();
    for (const RowResult& r : report.rows) rows.push_back(row_json(report, r, stage_name));
    Json j = {
        {"tool", "vkmha-bench"},
        {"device", device_json(report.device)},
        {"timing", "GPU timestamps per stage (getStageTimings); median of " + std::to_string(report.repeat) +
                       " timed runs after one warm-up; CPU reference: one run, or the median of as many after it "
                       "when it took under 0.2 s"},
        {"repeat", report.repeat},
        {"rows", std::move(rows)},
    };
    if (report.sgemm) j["sgemm"] = sgemm_json(report, *report.sgemm);
    std::ofstream file(path, std::ios::binary);
    // Invalid UTF-8 (a device name cut mid-character) is replaced rather than thrown on.
    file << j.dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
    file.close();
    if (!file) return path + ": cannot write the JSON file";
    return {};
}

} // namespace bench
