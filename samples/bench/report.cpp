// report.cpp: derived metrics, the text table and the JSON file.
#include "report.h"

#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

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

// A minimal JSON writer: objects and arrays nest, commas and string escapes are handled here.
class Json {
  public:
    std::string str() const { return m_out.str(); }
    void begin_object(const char* key = nullptr) { open(key, '{'); }
    void end_object() { close('}'); }
    void begin_array(const char* key = nullptr) { open(key, '['); }
    void end_array() { close(']'); }
    void value(const char* key, const std::string& v) { prefix(key), m_out << quoted(v); }
    void value(const char* key, const char* v) { value(key, std::string(v)); }
    void value(const char* key, bool v) { prefix(key), m_out << (v ? "true" : "false"); }
    void value(const char* key, uint64_t v) { prefix(key), m_out << v; }
    void value(const char* key, uint32_t v) { value(key, uint64_t(v)); }
    void value(const char* key, double v) {
        prefix(key);
        if (!std::isfinite(v)) {
            m_out << "null";
            return;
        }
        char text[40];
        std::snprintf(text, sizeof text, "%.6g", v);
        m_out << text;
    }
    void value(const char* key, const std::optional<double>& v) {
        if (v)
            value(key, *v);
        else
            prefix(key), m_out << "null";
    }

  private:
    static std::string quoted(const std::string& s) {
        std::string q = "\"";
        for (const char c : s) {
            if (c == '"' || c == '\\')
                q += '\\', q += c;
            else if (static_cast<unsigned char>(c) < 0x20) {
                char esc[8];
                std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                q += esc;
            } else
                q += c;
        }
        return q + "\"";
    }
    void prefix(const char* key) {
        if (!m_first.empty()) {
            if (!m_first.back()) m_out << ',';
            m_first.back() = false;
            m_out << '\n' << std::string(2 * m_first.size(), ' ');
        }
        if (key) m_out << quoted(key) << ": ";
    }
    void open(const char* key, char bracket) {
        prefix(key);
        m_out << bracket;
        m_first.push_back(true);
    }
    void close(char bracket) {
        const bool empty = m_first.back();
        m_first.pop_back();
        if (!empty) m_out << '\n' << std::string(2 * m_first.size(), ' ');
        m_out << bracket;
    }

    std::ostringstream m_out;
    std::vector<bool> m_first; // per open container: no element written yet
};

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

std::string write_json(const Report& report, const std::string& path,
                       const std::function<const char*(VkmhaStage)>& stage_name) {
    Json j;
    j.begin_object();
    j.value("tool", "vkmha-bench");
    j.begin_object("device");
    j.value("name", report.device.deviceName);
    j.value("vendor_id", report.device.vendorId);
    const char* types[] = {"other", "integrated", "discrete", "virtual", "cpu"};
    const auto type = static_cast<size_t>(report.device.deviceType);
    j.value("device_type", type < std::size(types) ? types[type] : "unknown");
    j.value("api_version", std::to_string(VK_API_VERSION_MAJOR(report.device.deviceApiVersion)) + "." +
                               std::to_string(VK_API_VERSION_MINOR(report.device.deviceApiVersion)) + "." +
                               std::to_string(VK_API_VERSION_PATCH(report.device.deviceApiVersion)));
    j.value("subgroup_size", report.device.subgroupSize);
    j.value("max_storage_buffer_range", uint64_t(report.device.maxStorageBufferRange));
    j.end_object();
    j.value("timing", "GPU timestamps per stage (getStageTimings); median of " + std::to_string(report.repeat) +
                          " timed runs after one warm-up; CPU reference: one run, or the median of as many after it "
                          "when it took under 0.2 s");
    j.value("repeat", report.repeat);
    j.begin_array("rows");
    for (const RowResult& r : report.rows) {
        const Config& c = report.configs[r.row.config];
        j.begin_object();
        j.value("shape", shape_text(c, r.row.lq, r.row.lk));
        j.value("path", r.row.path->name);
        j.value("flags", uint32_t(r.row.path->flags));
        j.value("precision", c.precision->name);
        j.value("batch", c.batch);
        j.value("heads", c.heads);
        j.value("kv_heads", c.kv_heads);
        j.value("head_dim", c.head_dim);
        j.value("embed_dim", c.embed_dim());
        j.value("query_length", r.row.lq);
        j.value("key_length", r.row.lk);
        j.value("causal", c.causal);
        j.value("model_options", c.options.name());
        j.begin_object("stages_ms");
        for (const StageTime& s : r.gpu.stages) j.value(stage_name(s.stage), s.ms);
        j.end_object();
        j.value("gpu_ms", r.gpu.total_ms);
        j.begin_array("gpu_ms_runs"); // each timed run, in the order they ran
        for (double ms : r.gpu.run_total_ms) j.value(nullptr, ms);
        j.end_array();
        j.value("attention_core_ms", r.gpu.core_ms);
        j.value("wall_ms", r.gpu.wall_ms);
        j.value("attention_core_flops", uint64_t(std::llround(r.core_flops)));
        j.value("total_flops", uint64_t(std::llround(r.total_flops)));
        j.value("bytes", uint64_t(std::llround(r.bytes)));
        j.value("attention_core_gflops", r.core_gflops);
        j.value("total_gflops", r.total_gflops);
        j.value("gbps", r.gbps);
        j.value("model_bytes", r.gpu.model_bytes);
        j.value("session_bytes", r.gpu.session_bytes);
        j.value("peak_device_bytes", r.peak_bytes());
        j.value("peak_device_mib", double(r.peak_bytes()) / (1 << 20));
        j.value("speedup_vs_unfused", r.speedup_vs_unfused);
        j.value("core_speedup_vs_unfused", r.core_speedup_vs_unfused);
        j.value("vs_plain", r.vs_plain);
        j.value("vs_plain_min", r.vs_plain_min);
        j.value("vs_plain_max", r.vs_plain_max);
        j.value("core_vs_plain", r.core_vs_plain);
        j.value("cpu_ms", r.cpu_ms);
        if (r.cpu_ms) j.value("cpu_runs", r.cpu_runs);
        j.value("gpu_vs_cpu", r.gpu_vs_cpu);
        j.value("max_abs_error", r.max_abs_error);
        j.end_object();
    }
    j.end_array();
    if (report.sgemm) {
        const SgemmComparison& s = *report.sgemm;
        j.begin_object("sgemm");
        j.value("n", s.sgemm.n);
        j.value("threads", s.sgemm.threads);
        j.value("ms", s.sgemm.ms);
        j.value("gflops", s.sgemm.gflops);
        if (s.fused) {
            j.value("fused_shape", shape_text(report.configs[s.fused->row.config], s.fused->row.lq, s.fused->row.lk));
            j.value("fused_core_gflops", s.fused->core_gflops);
            j.value("fused_core_vs_sgemm", s.ratio);
        }
        j.value("target", 0.25);
        j.end_object();
    }
    j.end_object();
    std::ofstream file(path, std::ios::binary);
    file << j.str() << '\n';
    file.close();
    if (!file) return path + ": cannot write the JSON file";
    return {};
}

} // namespace bench
