// options.cpp: flag parsing and the built-in sweeps.
#include "options.h"

#include "fail.h"

#include "common/cli.h"

#include <filesystem>
#include <functional>

namespace bench {
namespace {

// Each list flag's items, or why `text` is refused (naming the item; CLI11 adds the flag). Empty items are refused
// rather than skipped, so "--sizes 64,,128" is a typo caught, not a row lost.
std::string split(const std::string& text, std::vector<std::string>* items) {
    size_t start = 0;
    while (true) {
        const size_t comma = text.find(',', start);
        items->push_back(text.substr(start, comma - start));
        if (items->back().empty()) return "'" + text + "' has an empty item";
        if (comma == std::string::npos) return {};
        start = comma + 1;
    }
}

// A comma-separated list: `parse_item` turns one item into a T or says why it cannot.
template <typename T> using ItemParser = std::function<std::string(const std::string&, T*)>;

template <typename T>
std::string parse_list(const std::string& text, const ItemParser<T>& parse_item, std::vector<T>* out) {
    std::vector<std::string> items;
    if (std::string error = split(text, &items); !error.empty()) return error;
    out->clear();
    for (const std::string& item : items) {
        T value{};
        if (std::string error = parse_item(item, &value); !error.empty()) return error;
        out->push_back(value);
    }
    return {};
}

// A list flag whose value replaces `target`; CLI11 validates it with the same parser first, so the callback that
// fills `target` cannot fail.
template <typename T>
CLI::Option* add_list(CLI::App& app, const std::string& flag, std::vector<T>& target, ItemParser<T> parse_item,
                      const std::string& help) {
    return app
        .add_option_function<std::string>(
            flag, [&target, parse_item](const std::string& text) { parse_list(text, parse_item, &target); }, help)
        ->check(CLI::Validator(
            [parse_item](std::string& text) {
                std::vector<T> scratch;
                return parse_list(text, parse_item, &scratch);
            },
            ""))
        ->type_name("A,B,...");
}

ItemParser<uint32_t> counts_up_to(unsigned long max) {
    return [max](const std::string& item, uint32_t* out) {
        return vkmha::cli::to_count(item, max, out) ? std::string()
                                                    : "'" + item + "' is not a count in 1.." + std::to_string(max);
    };
}

std::string parse_path(const std::string& name, const Path** out) {
    *out = find_path(name);
    return *out ? std::string() : "'" + name + "' is not a path (" + path_names() + ")";
}

std::string parse_precision(const std::string& name, const Precision** out) {
    *out = find_precision(name);
    return *out ? std::string() : "'" + name + "' is not a precision (available: " + precision_names() + ")";
}

std::string parse_model_option_item(const std::string& item, ModelOptions* out) {
    std::string error;
    if (parse_model_options(item, out, &error)) return {};
    return error + " (each item: plain, or a '+'-joined set of " + model_option_names() + ")";
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
    using vkmha::cli::count;
    Options o;
    CLI::App app{"Times vkmha's attention paths over a sweep of shapes; prints a table, writes JSON and a PNG plot.",
                 "vkmha-bench"};
    vkmha::cli::configure(app);
    app.add_flag("--quick", o.quick, "a tiny sweep (CI smoke test)");
    const char* shape = "Shape (any of these replaces the built-in sweep with the cross product of their values)";
    const std::vector<const CLI::Option*> shape_flags = {
        add_list<uint32_t>(app, "--sizes", o.sizes, counts_up_to(1u << 20),
                           "sequence lengths to sweep (Lq = Lk = L; with --lq: Lk = L)")
            ->group(shape),
        add_list<uint32_t>(app, "--batch", o.batches, counts_up_to(4096), "batch sizes (default 1)")->group(shape),
        add_list<uint32_t>(app, "--heads", o.heads, counts_up_to(1024), "query heads (default 8)")->group(shape),
        add_list<uint32_t>(app, "--kv-heads", o.kv_heads, counts_up_to(1024),
                           "key/value heads, each dividing H (default: H)")
            ->group(shape),
        add_list<uint32_t>(app, "--head-dim", o.head_dims, counts_up_to(4096), "head dimensions, E = H*D (default 64)")
            ->group(shape),
        app.add_option("--lq", o.query_length, "decode: Lq fixed at N, Lk swept over --sizes")
            ->transform(count(1u << 20))
            ->group(shape),
        app.add_flag("--causal", o.causal, "causal mask")->group(shape),
    };
    add_list<const Path*>(app, "--paths", o.paths, parse_path,
                          "fused, unfused, fused-nosplit (default fused,unfused; +fused-nosplit for decode)");
    add_list<const Precision*>(app, "--precision", o.precisions, parse_precision,
                               "fp32, fp16 (fp16 storage, fp32 arithmetic) (default fp32)");
    add_list<ModelOptions>(app, "--model-options", o.model_options, parse_model_option_item,
                           "each plain or a '+'-joined set of rope, qk-norm, softcap, alibi, sinks, window "
                           "(default plain; see below)");
    app.add_option("--repeat", o.repeat, "timed runs per row; the median is reported (after one warm-up)")
        ->transform(count(1000))
        ->capture_default_str();
    app.add_option("--device", o.device, "Vulkan device by index or name substring")->type_name("N|NAME");
    app.add_flag("--compare-cpu", o.compare_cpu,
                 "also time the CPU reference on each shape; report GPU/CPU speed and max |error|");
    app.add_flag("--sgemm", o.sgemm, "also time OpenBLAS sgemm 2048^3 on 2 threads and compare the fused core");
    const CLI::Option* json =
        app.add_option("--json", o.json_path,
                       "(default build/bench.json when ./build exists, else ./vkmha-bench.json; with "
                       "--shader-stats: only when given)")
            ->type_name("PATH");
    app.add_flag("--shader-stats", o.shader_stats,
                 "time nothing: print the compiled-code statistics (registers, spills, shared memory, occupancy, "
                 "...) of every pipeline vkmha builds for --heads/--kv-heads/--head-dim/--precision on --device; "
                 "works on RADV null devices (RADV_FORCE_FAMILY=gfx1100 ... --device gfx1100)");
    app.add_option("--png", o.png_path, "(default build/bench.png when ./build exists, else ./vkmha-bench.png)")
        ->type_name("PATH");
    app.footer(
        "--model-options: rope (NeoX, theta 10000, R = D), qk-norm (random q_norm/k_norm weights around 1),\n"
        "softcap (50), alibi, sinks (random), window (256); e.g. plain,rope+qk-norm. Rows with options are also\n"
        "reported as GPU time vs the plain row of the same shape and path.");
    vkmha::cli::parse(app, argc, argv);
    o.json_given = json->count() > 0;
    for (const CLI::Option* flag : shape_flags) o.custom = o.custom || flag->count() > 0;
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
