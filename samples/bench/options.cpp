// options.cpp: flag parsing and the built-in sweeps.
#include "options.h"

#include "fail.h"

#include "common/cli.h"

#include <filesystem>

namespace bench {
namespace {

const char* kUsage =
    "usage: vkmha-bench [options]\n"
    "Times vkmha's attention paths over a sweep of shapes; prints a table, writes JSON and a PNG plot.\n"
    "  --quick               a tiny sweep (CI smoke test)\n"
    "  --sizes L1,L2,...     sequence lengths to sweep (Lq = Lk = L; with --lq: Lk = L)\n"
    "  --batch B1,...        batch sizes                      (default 1)\n"
    "  --heads H1,...        query heads                      (default 8)\n"
    "  --kv-heads G1,...     key/value heads, each dividing H (default: H)\n"
    "  --head-dim D1,...     head dimensions, E = H*D         (default 64)\n"
    "  --lq N                decode: Lq fixed at N, Lk swept over --sizes\n"
    "  --causal              causal mask\n"
    "  --paths P1,...        fused, unfused, fused-nosplit    (default fused,unfused; +fused-nosplit for decode)\n"
    "  --precision P1,...    fp32, fp16 (fp16 storage, fp32 arithmetic) (default fp32)\n"
    "  --model-options M1,...  each plain or a '+'-joined set of: rope (NeoX, theta 10000, R = D), qk-norm\n"
    "                        (random q_norm/k_norm weights around 1), softcap (50), alibi, sinks (random), window\n"
    "                        (256); e.g. plain,rope+qk-norm (default plain). Rows with options are also reported\n"
    "                        as GPU time vs the plain row of the same shape and path\n"
    "  --repeat N            timed runs per row; the median is reported (default 3, after one warm-up)\n"
    "  --device N|NAME       Vulkan device by index or name substring\n"
    "  --compare-cpu         also time the CPU reference on each shape; report GPU/CPU speed and max |error|\n"
    "  --sgemm               also time OpenBLAS sgemm 2048^3 on 2 threads and compare the fused core with it\n"
    "  --json PATH           (default build/bench.json when ./build exists, else ./vkmha-bench.json)\n"
    "  --png PATH            (default build/bench.png when ./build exists, else ./vkmha-bench.png)\n"
    "Any of --sizes --batch --heads --kv-heads --head-dim --lq --causal replaces the built-in sweep with the\n"
    "cross product of their values (defaults in parentheses).\n";

uint32_t parse_count(const std::string& flag, const std::string& text, uint32_t max) {
    return vkmha::cli::parse_count("vkmha-bench", flag, text.c_str(), max);
}

std::vector<std::string> split(const std::string& flag, const std::string& text) {
    std::vector<std::string> items;
    size_t start = 0;
    while (true) {
        const size_t comma = text.find(',', start);
        items.push_back(text.substr(start, comma - start));
        if (items.back().empty()) die(flag + " '" + text + "' has an empty item");
        if (comma == std::string::npos) return items;
        start = comma + 1;
    }
}

std::vector<uint32_t> parse_counts(const std::string& flag, const std::string& text, uint32_t max) {
    std::vector<uint32_t> v;
    for (const std::string& item : split(flag, text)) v.push_back(parse_count(flag, item, max));
    return v;
}

// Fails now, not after a long sweep, when a file could not be created for want of its directory.
void check_output_directory(const char* flag, const std::string& path) {
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
        die(std::string(flag) + " '" + path + "': directory '" + dir.string() + "' does not exist");
}

std::string default_output(const char* in_build, const char* here) {
    std::error_code ec;
    return std::filesystem::is_directory("build", ec) ? in_build : here;
}

Config make_config(uint32_t b, uint32_t h, uint32_t g, uint32_t d, uint32_t lq, const Precision* precision,
                   const ModelOptions& options) {
    Config c;
    c.batch = b, c.heads = h, c.kv_heads = g, c.head_dim = d, c.query_length = lq, c.precision = precision;
    c.options = options;
    return c;
}

// Prefill (self-attention) for MHA, GQA and another head width, then decode (Lq = 1) against a long key range.
void builtin_sweep(Sweep& sweep, bool quick, bool cpu_device, const std::vector<const Path*>& paths, const Precision* p,
                   const ModelOptions& m) {
    if (quick) {
        add_config(sweep, make_config(1, 4, 4, 32, 0, p, m), {64, 128}, paths);
        add_config(sweep, make_config(1, 4, 2, 32, 1, p, m), {256}, paths);
    } else if (cpu_device) {
        add_config(sweep, make_config(1, 4, 4, 32, 0, p, m), {64, 128, 256, 512}, paths);
        add_config(sweep, make_config(1, 8, 2, 32, 0, p, m), {128, 256}, paths);
        add_config(sweep, make_config(2, 2, 2, 64, 0, p, m), {128, 256}, paths);
        add_config(sweep, make_config(1, 8, 2, 32, 1, p, m), {512, 2048}, paths);
    } else {
        add_config(sweep, make_config(1, 8, 8, 64, 0, p, m), {256, 512, 1024, 2048, 4096}, paths);
        add_config(sweep, make_config(1, 32, 8, 128, 0, p, m), {512, 1024, 2048}, paths);
        add_config(sweep, make_config(4, 16, 16, 64, 0, p, m), {512, 1024}, paths);
        add_config(sweep, make_config(1, 32, 8, 128, 1, p, m), {1024, 4096, 16384}, paths);
    }
}

} // namespace

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else if (a == "--quick")
            o.quick = true;
        else if (a == "--compare-cpu")
            o.compare_cpu = true;
        else if (a == "--sgemm")
            o.sgemm = true;
        else if (a == "--causal")
            o.causal = o.custom = true;
        else if (a == "--json")
            o.json_path = value();
        else if (a == "--png")
            o.png_path = value();
        else if (a == "--device")
            o.device = value();
        else if (a == "--repeat")
            o.repeat = parse_count(a, value(), 1000);
        else if (a == "--sizes")
            o.sizes = parse_counts(a, value(), 1u << 20), o.custom = true;
        else if (a == "--batch")
            o.batches = parse_counts(a, value(), 4096), o.custom = true;
        else if (a == "--heads")
            o.heads = parse_counts(a, value(), 1024), o.custom = true;
        else if (a == "--kv-heads")
            o.kv_heads = parse_counts(a, value(), 1024), o.custom = true;
        else if (a == "--head-dim")
            o.head_dims = parse_counts(a, value(), 4096), o.custom = true;
        else if (a == "--lq")
            o.query_length = parse_count(a, value(), 1u << 20), o.custom = true;
        else if (a == "--paths") {
            const std::string text = value();
            o.paths.clear();
            for (const std::string& name : split(a, text)) {
                const Path* p = find_path(name);
                if (!p) die("--paths '" + name + "' is not a path (" + path_names() + ")");
                o.paths.push_back(p);
            }
        } else if (a == "--model-options") {
            const std::string text = value();
            o.model_options.clear();
            for (const std::string& item : split(a, text)) {
                ModelOptions m;
                std::string error;
                if (!parse_model_options(item, &m, &error))
                    die("--model-options " + error + " (each item: plain, or a '+'-joined set of " +
                        model_option_names() + ")");
                o.model_options.push_back(m);
            }
        } else if (a == "--precision") {
            const std::string text = value();
            o.precisions.clear();
            for (const std::string& name : split(a, text)) {
                const Precision* p = find_precision(name);
                if (!p) die("--precision '" + name + "' is not a precision (available: " + precision_names() + ")");
                o.precisions.push_back(p);
            }
        } else
            die("unknown argument '" + a + "' (see --help)");
    }
    if (o.precisions.empty()) o.precisions.push_back(&kPrecisions[0]);
    if (o.model_options.empty()) o.model_options.push_back(ModelOptions{});
    if (o.json_path.empty()) o.json_path = default_output("build/bench.json", "vkmha-bench.json");
    if (o.png_path.empty()) o.png_path = default_output("build/bench.png", "vkmha-bench.png");
    check_output_directory("--json", o.json_path);
    check_output_directory("--png", o.png_path);
    return o;
}

Sweep make_sweep(const Options& o, bool cpu_device) {
    Sweep sweep;
    if (!o.custom) {
        for (const Precision* p : o.precisions)
            for (const ModelOptions& m : o.model_options) builtin_sweep(sweep, o.quick, cpu_device, o.paths, p, m);
        return sweep;
    }
    const auto pick = [](const std::vector<uint32_t>& given,
                         const std::vector<uint32_t>& fallback) -> std::vector<uint32_t> {
        return given.empty() ? fallback : given;
    };
    const std::vector<uint32_t> sizes = pick(o.sizes, o.quick          ? std::vector<uint32_t>{64, 128}
                                                      : o.query_length ? std::vector<uint32_t>{512, 1024, 2048}
                                                                       : std::vector<uint32_t>{128, 256, 512});
    for (const Precision* p : o.precisions)
        for (uint32_t b : pick(o.batches, {1}))
            for (uint32_t h : pick(o.heads, {o.quick ? 4u : 8u}))
                for (uint32_t g : pick(o.kv_heads, {h}))
                    for (uint32_t d : pick(o.head_dims, {o.quick ? 32u : 64u})) {
                        if (g > h || h % g != 0)
                            die("--kv-heads '" + std::to_string(g) + "' does not divide --heads '" + std::to_string(h) +
                                "'");
                        if (uint64_t(h) * d > 65536)
                            die("--heads '" + std::to_string(h) + "' x --head-dim '" + std::to_string(d) +
                                "' is an embedding width over 65536");
                        for (const ModelOptions& m : o.model_options) {
                            Config c = make_config(b, h, g, d, o.query_length, p, m);
                            c.causal = o.causal;
                            add_config(sweep, c, sizes, o.paths);
                        }
                    }
    return sweep;
}

} // namespace bench
