// Tests of vkmha-run as a user meets it: PyTorch conformance on the Vulkan device and the CPU reference, no validation
// messages, and a one-line error naming the culprit for every kind of bad argument or file; and of what every tool
// shares: --help, --version and the refusal of an unknown flag.
#include "io/safetensors.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef VKMHA_FIXTURE_DIR
#define VKMHA_FIXTURE_DIR "tests/fixtures"
#endif
#ifndef VKMHA_RUN_PATH
#define VKMHA_RUN_PATH "bin/vkmha-run"
#endif

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace io = vkmha::io;

const fs::path fixture_dir = VKMHA_FIXTURE_DIR;
const std::string run_path = VKMHA_RUN_PATH;

// Sibling of vkmha-run in the build tree (both go to bin/).
std::string make_example_path() { return (fs::path(run_path).parent_path() / "vkmha-make-example").string(); }

// The tolerance against PyTorch (float64 ground truth) and between devices.
struct Tolerance {
    double abs, rel;
};
constexpr Tolerance fp32_tolerance{2e-4, 2e-3};
// --precision fp16: weights and Q/K/V/concat stored as fp16, each rounded once (relative error <= 2^-11 ~ 4.9e-4;
// arithmetic stays fp32). The error scales with the data: these fixtures (randn inputs, biases of rms ~0.5, outputs
// of rms ~1, |values| up to 4) are about 3x the magnitude of tests/test_attention.cpp's sweep, where 1.5e-3 + 1.5e-3
// |ref| is derived, so the bound here is about 3x that. Measured: max |err| 1.45e-3, at most 21% of this bound (a
// ~5x margin); a missing bias (rms ~0.5) or a wrong head is far outside it.
constexpr Tolerance fp16_tolerance{4e-3, 4e-3};

// A child process that hangs is a failure, not a stuck test run.
constexpr auto process_timeout = std::chrono::seconds(120);

// ---- Scratch directory and child processes

// temp/vkmha-cli-<pid>, created fresh and removed with everything in it at the end of the test (or subcase).
class TempDir {
  public:
    TempDir() : m_path(fs::temp_directory_path() / ("vkmha-cli-" + std::to_string(::getpid()))) {
        fs::remove_all(m_path);
        fs::create_directories(m_path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] std::string file(const std::string& name) const { return (m_path / name).string(); }

  private:
    fs::path m_path;
};

struct ProcessResult {
    bool exited = false; // normal exit (then exit_code is valid)
    int exit_code = -1;
    int signal = 0; // the terminating signal when !exited
    bool timed_out = false;
    std::string err; // everything it wrote to stderr
};

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string describe(const std::string& program, const std::vector<std::string>& args) {
    std::string out = program;
    for (const std::string& a : args) out += " '" + a + "'";
    return out;
}

// posix_spawn, no shell: the arguments reach the program exactly as given. stdin and stdout are /dev/null; stderr goes
// to a file that is read back. The environment (validation layer settings included) is inherited.
ProcessResult run_process(const std::string& program, const std::vector<std::string>& args,
                          const std::string& stderr_path) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    REQUIRE(posix_spawn_file_actions_init(&actions) == 0);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(spawned == 0, "cannot start ", describe(program, args), ": ", std::string(std::strerror(spawned)));

    ProcessResult result;
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + process_timeout;
    for (;;) {
        const pid_t waited = ::waitpid(pid, &status, WNOHANG);
        if (waited == pid) break;
        if (waited < 0 && errno != EINTR) FAIL("waitpid failed: ", std::strerror(errno));
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            result.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (WIFEXITED(status)) {
        result.exited = true;
        result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
    }
    result.err = read_text(stderr_path);
    return result;
}

ProcessResult run_cli(const TempDir& dir, const std::vector<std::string>& args) {
    return run_process(run_path, args, dir.file("stderr.txt"));
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

// vkmha-run prints validation-layer messages through its log callback as "vkmha-run: validation: ...".
void check_no_validation_messages(const std::string& err) {
    for (const std::string& line : lines_of(err))
        CHECK_MESSAGE(lower(line).find("validation") == std::string::npos, line);
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE_MESSAGE(out.good(), "cannot write ", path);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot read ", path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<io::Tensor> read_tensors(const std::string& path) {
    auto tensors = io::read_safetensors(path);
    REQUIRE_MESSAGE(tensors.ok(), tensors.error().message);
    return std::move(tensors.value());
}

void write_tensors(const std::string& path, const std::vector<io::Tensor>& tensors) {
    auto written = io::write_safetensors(path, tensors);
    REQUIRE_MESSAGE(written.ok(), written.error().message);
}

io::Tensor& tensor_named(std::vector<io::Tensor>& tensors, const std::string& name) {
    const auto it = std::find_if(tensors.begin(), tensors.end(), [&](const io::Tensor& t) { return t.name == name; });
    REQUIRE_MESSAGE(it != tensors.end(), "no tensor '", name, "'");
    return *it;
}

// ---- Comparison

std::string format_error(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", value);
    return text;
}

struct Comparison {
    double max_abs = 0;
    double used = 0; // max |got - ref| / (abs + rel * |ref|): the share of the tolerance used
    size_t bad = 0;
    std::string first_bad;
};

// |got - ref| <= abs + rel * |ref| for every element; NaN anywhere fails.
Comparison compare(const std::vector<float>& got, const std::vector<float>& ref, Tolerance tol) {
    Comparison c;
    for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
        const double g = got[i], r = ref[i], d = std::fabs(g - r);
        if (!(d <= tol.abs + tol.rel * std::fabs(r))) {
            if (c.bad++ == 0)
                c.first_bad =
                    "element " + std::to_string(i) + ": got " + std::to_string(g) + ", expected " + std::to_string(r);
        }
        if (!(d <= c.max_abs)) c.max_abs = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
        c.used = std::max(c.used, std::isnan(d) ? std::numeric_limits<double>::infinity()
                                                : d / (tol.abs + tol.rel * std::fabs(r)));
    }
    return c;
}

std::vector<float> floats_of(const io::Tensor& t, const std::string& file) {
    auto v = io::to_float(t, file);
    REQUIRE_MESSAGE(v.ok(), v.error().message);
    return std::move(v.value());
}

// Compares tensor `name` of two files (shape and values); returns the max abs error, reported by the caller.
double compare_tensor(const std::string& got_file, const std::string& ref_file, const std::string& name,
                      const std::string& label, Tolerance tol = fp32_tolerance) {
    std::vector<io::Tensor> got = read_tensors(got_file), ref = read_tensors(ref_file);
    const io::Tensor* g = io::find_tensor(got, name);
    const io::Tensor* r = io::find_tensor(ref, name);
    REQUIRE_MESSAGE(r != nullptr, ref_file, " has no '", name, "'");
    REQUIRE_MESSAGE(g != nullptr, got_file, " has no '", name, "'");
    CHECK_MESSAGE(g->shape == r->shape, label, " ", name, ": shape ", io::shape_to_string(g->shape), ", expected ",
                  io::shape_to_string(r->shape));
    if (g->shape != r->shape) return std::numeric_limits<double>::infinity();
    const Comparison c = compare(floats_of(*g, got_file), floats_of(*r, ref_file), tol);
    CHECK_MESSAGE(c.bad == 0, label, " ", name, ": ", c.bad, " elements out of tolerance; first: ", c.first_bad);
    MESSAGE(label, " ", name, ": max |err| ", format_error(c.max_abs), " (", format_error(c.used),
            " of the tolerance)");
    return c.max_abs;
}

// ---- Fixture cases (tests/fixtures/cases.txt)

struct FixtureCase {
    std::string name;
    std::string heads, kv_heads;
    std::vector<std::string> flags; // vkmha-run flags
    bool need_weights = false;
};

std::vector<FixtureCase> read_cases() {
    const std::string path = (fixture_dir / "cases.txt").string();
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot read ", path);
    std::vector<FixtureCase> cases;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        std::istringstream fields(line);
        FixtureCase c;
        fields >> c.name;
        for (std::string field; fields >> field;) {
            const size_t eq = field.find('=');
            REQUIRE_MESSAGE(eq != std::string::npos, path, ": field '", field, "' is not key=value");
            const std::string key = field.substr(0, eq), value = field.substr(eq + 1);
            if (key == "heads")
                c.heads = value;
            else if (key == "kv_heads")
                c.kv_heads = value;
            else if (key == "flags") {
                std::istringstream list(value);
                for (std::string flag; std::getline(list, flag, ',');) {
                    if (flag == "causal")
                        c.flags.push_back("--causal");
                    else if (flag == "need_weights")
                        c.flags.push_back("--need-weights"), c.need_weights = true;
                    else if (flag == "no_average")
                        c.flags.push_back("--no-average-weights");
                    else if (!flag.empty())
                        FAIL(path, ": unknown flag '", flag, "' in case ", c.name);
                }
            } else
                FAIL(path, ": unknown field '", key, "' in case ", c.name);
        }
        REQUIRE_MESSAGE(!c.heads.empty(), path, ": case ", c.name, " has no heads=");
        cases.push_back(std::move(c));
    }
    REQUIRE(!cases.empty());
    return cases;
}

std::string fixture(const std::string& case_name, const std::string& kind) {
    return (fixture_dir / (case_name + "." + kind + ".safetensors")).string();
}

// The default Vulkan device ("" = no --device) and the CPU reference.
const std::vector<std::string> all_devices = {"", "cpu"};
std::string device_label(const std::string& device) { return device.empty() ? "default device" : "--device " + device; }

std::vector<std::string> with_device(std::vector<std::string> args, const std::string& device) {
    if (!device.empty()) args.insert(args.end(), {"--device", device});
    return args;
}

// Runs vkmha-run and requires success without validation messages.
void run_ok(const TempDir& dir, const std::vector<std::string>& args) {
    const ProcessResult r = run_cli(dir, args);
    INFO("vkmha-run stderr:\n", r.err);
    REQUIRE_MESSAGE(!r.timed_out, describe(run_path, args), " did not finish");
    REQUIRE_MESSAGE(r.exited, describe(run_path, args), " died of signal ", r.signal);
    REQUIRE_MESSAGE(r.exit_code == 0, describe(run_path, args), " exited with ", r.exit_code);
    check_no_validation_messages(r.err);
}

// Bad input must end in exit code 1 with exactly one stderr line that contains every one of `needles`, and no output.
void expect_failure(const TempDir& dir, const std::vector<std::string>& args, const std::vector<std::string>& needles) {
    const std::string output = dir.file("out.safetensors");
    fs::remove(output);
    const ProcessResult r = run_cli(dir, args);
    INFO("command: ", describe(run_path, args));
    INFO("stderr:\n", r.err);
    REQUIRE_MESSAGE(!r.timed_out, "did not finish within the time limit");
    REQUIRE_MESSAGE(r.exited, "died of signal ", r.signal, " (", strsignal(r.signal), ")");
    CHECK(r.exit_code == 1);
    const std::vector<std::string> lines = lines_of(r.err);
    CHECK_MESSAGE(lines.size() == 1, "expected exactly one line on stderr, got ", lines.size());
    CHECK_MESSAGE((!r.err.empty() && r.err.back() == '\n'), "the message does not end with a newline");
    for (const std::string& needle : needles)
        CHECK_MESSAGE(r.err.find(needle) != std::string::npos, "the message does not name '", needle, "'");
    CHECK_MESSAGE(!fs::exists(output), "an output file was written despite the error");
}

// ---- Model-family fixtures (tests/fixtures/make_model_fixtures.py: an independent oracle of each family's
// attention). The flags spell out each file's __metadata__ as a user would type them; QK-norm (qwen3) and sinks
// (gpt-oss) come with the weights.

struct ModelCase {
    std::string name, heads, kv_heads;
    std::vector<std::string> flags;
    // --precision fp16 rounds Q and K to fp16 (relative 2^-11 each), which moves each logit by about |logit| * 2^-10:
    // a family with larger logits needs a proportionally larger bound than fp16_tolerance.
    double fp16_scale = 1.0;
};

const std::vector<ModelCase>& model_cases() {
    static const std::vector<ModelCase> cases = {
        {"model_llama3",
         "8",
         "2",
         {"--causal", "--rope", "neox", "--rope-theta", "500000", "--rope-scaling", "llama3:8,1,4,8192"}},
        {"model_qwen3", "4", "2", {"--causal", "--rope", "neox", "--rope-theta", "1000000", "--norm-eps", "1e-6"}},
        {"model_gemma2",
         "4",
         "2",
         {"--causal", "--rope", "neox", "--scale", "0.20412414523193154", "--softcap", "50", "--window", "4"},
         // Q/K weights of rms 0.63 (the others' 0.13 to 0.38): logits 10 to 25 times larger. Measured 1.7 of the
         // plain fp16 bound, 0.43 of this one; the other families use at most 0.61 of the plain bound.
         4.0},
        {"model_gpt_oss",
         "4",
         "2",
         {"--causal", "--rope", "neox", "--rope-theta", "150000", "--rope-scaling", "yarn:32,4096,32,1,notrunc",
          "--window", "5"}},
        {"model_bloom", "6", "6", {"--causal", "--alibi"}},
        {"model_gptj", "4", "4", {"--causal", "--rope", "gptj", "--rope-dims", "8"}},
        {"model_neox", "4", "4", {"--causal", "--rope", "neox", "--rope-dims", "4", "--rope-scaling", "linear:2"}},
    };
    return cases;
}

std::vector<std::string> model_args(const ModelCase& c, const std::string& output,
                                    const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--weights",  fixture(c.name, "weights"),
                                     "--input",    fixture(c.name, "input"),
                                     "--output",   output,
                                     "--heads",    c.heads,
                                     "--kv-heads", c.kv_heads};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

// Copies `from` to `to` with `change` applied to its tensors.
template <typename Change> void rewrite(const std::string& from, const std::string& to, Change change) {
    std::vector<io::Tensor> tensors = read_tensors(from);
    change(tensors);
    write_tensors(to, tensors);
}

io::Tensor int_tensor(std::string name, io::DType dtype, std::vector<uint64_t> shape, const std::vector<int64_t>& v) {
    io::Tensor t{std::move(name), dtype, std::move(shape), {}};
    const size_t size = dtype == io::DType::i64 ? 8 : 4;
    t.data.resize(v.size() * size);
    for (size_t i = 0; i < v.size(); ++i) {
        if (size == 8) {
            std::memcpy(t.data.data() + i * 8, &v[i], 8);
        } else {
            const int32_t narrow = static_cast<int32_t>(v[i]);
            std::memcpy(t.data.data() + i * 4, &narrow, 4);
        }
    }
    return t;
}

std::vector<int64_t> int_values(const io::Tensor& t) {
    REQUIRE(t.dtype == io::DType::i64);
    std::vector<int64_t> v(t.data.size() / 8);
    std::memcpy(v.data(), t.data.data(), v.size() * 8);
    return v;
}

// ---- --qkv (attention only): tests/fixtures/make_qkv_fixtures.py, scaled_dot_product_attention's own layout

// vkmha-run --qkv on fixture `name` ([B, H, Lq, D] q, [B, G, Lk, D] k and v) with `flags`.
std::vector<std::string> qkv_args(const std::string& name, const std::string& heads, const std::string& output,
                                  const std::vector<std::string>& flags = {}) {
    std::vector<std::string> args = {"--qkv", "--input", fixture(name, "input"), "--output", output, "--heads", heads};
    args.insert(args.end(), flags.begin(), flags.end());
    return args;
}

// Rows [from, L) of a float [B, heads, L, D] tensor.
io::Tensor last_rows(const io::Tensor& t, uint64_t from) {
    REQUIRE(t.dtype == io::DType::f32);
    REQUIRE(t.shape.size() == 4);
    const uint64_t B = t.shape[0], H = t.shape[1], L = t.shape[2], D = t.shape[3];
    io::Tensor out{t.name, t.dtype, {B, H, L - from, D}, {}};
    for (uint64_t bh = 0; bh < B * H; ++bh) {
        const uint8_t* begin = t.data.data() + (bh * L + from) * D * 4;
        out.data.insert(out.data.end(), begin, begin + (L - from) * D * 4);
    }
    return out;
}

} // namespace

TEST_SUITE("cli") {

    TEST_CASE("every tool: --help and --version exit 0 and an unknown flag is refused in one line naming it") {
        const TempDir dir;
        // vkmha-viz and vkmha-bench are built only with libpng; a tool absent from this build tree is skipped.
        for (const char* tool : {"vkmha-run", "vkmha-make-example", "vkmha-compare", "vkmha-bench", "vkmha-viz",
                                 "vkmha-heads", "frame-loop"}) {
            const std::string path = (fs::path(run_path).parent_path() / tool).string();
            CAPTURE(path);
            if (!fs::exists(path)) {
                MESSAGE(path, " is not built; skipped");
                continue;
            }
            for (const char* flag : {"--help", "--version"}) {
                const ProcessResult r = run_process(path, {flag}, dir.file("stderr.txt"));
                CHECK_MESSAGE((r.exited && r.exit_code == 0), describe(path, {flag}), " exited with ", r.exit_code);
                CHECK_MESSAGE(r.err.empty(), describe(path, {flag}), " wrote to stderr: ", r.err);
            }
            const ProcessResult r = run_process(path, {"--no-such-flag"}, dir.file("stderr.txt"));
            CHECK(r.exited);
            CHECK(r.exit_code == 1);
            CHECK_MESSAGE(lines_of(r.err).size() == 1, "expected one line on stderr, got: ", r.err);
            CHECK_MESSAGE(r.err.find("--no-such-flag") != std::string::npos, r.err);
            CHECK_MESSAGE(r.err.find(tool) == 0, "the message does not start with the tool's name: ", r.err);
        }
    }

    TEST_CASE("vkmha-run: matches PyTorch on every fixture case, on the default device and on --device cpu") {
        const TempDir dir;
        const std::string output = dir.file("out.safetensors");
        double worst[2][2] = {}; // [device][output, weights]
        for (const FixtureCase& c : read_cases()) {
            for (size_t d = 0; d < all_devices.size(); ++d) {
                const std::string& device = all_devices[d];
                const std::string label = c.name + " [" + device_label(device) + "]";
                CAPTURE(label);
                std::vector<std::string> args = {"--weights", fixture(c.name, "weights"),
                                                 "--input",   fixture(c.name, "input"),
                                                 "--output",  output,
                                                 "--heads",   c.heads};
                if (!c.kv_heads.empty()) args.insert(args.end(), {"--kv-heads", c.kv_heads});
                args.insert(args.end(), c.flags.begin(), c.flags.end());
                fs::remove(output);
                run_ok(dir, with_device(args, device));
                const std::string expected = fixture(c.name, "expected");
                worst[d][0] = std::max(worst[d][0], compare_tensor(output, expected, "attn_output", label));
                const std::vector<io::Tensor> ref = read_tensors(expected);
                const bool expects_weights = io::find_tensor(ref, "attn_output_weights") != nullptr;
                CHECK_MESSAGE(expects_weights == c.need_weights,
                              "cases.txt flags and the expected file disagree on weights");
                if (expects_weights)
                    worst[d][1] = std::max(worst[d][1], compare_tensor(output, expected, "attn_output_weights", label));
            }
        }
        for (size_t d = 0; d < all_devices.size(); ++d)
            MESSAGE("worst vs PyTorch on ", device_label(all_devices[d]), ": attn_output ", format_error(worst[d][0]),
                    ", attn_output_weights ", format_error(worst[d][1]));
    }

    TEST_CASE("vkmha-run: --precision fp16 matches PyTorch on every fixture case within the fp16 tolerance") {
        const TempDir dir;
        const std::string output = dir.file("out.safetensors");
        double worst[2] = {}; // output, weights
        for (const FixtureCase& c : read_cases()) {
            const std::string label = c.name + " [--precision fp16]";
            CAPTURE(label);
            std::vector<std::string> args = {"--weights",   fixture(c.name, "weights"),
                                             "--input",     fixture(c.name, "input"),
                                             "--output",    output,
                                             "--heads",     c.heads,
                                             "--precision", "fp16"};
            if (!c.kv_heads.empty()) args.insert(args.end(), {"--kv-heads", c.kv_heads});
            args.insert(args.end(), c.flags.begin(), c.flags.end());
            fs::remove(output);
            const ProcessResult r = run_cli(dir, args);
            if (r.exited && r.exit_code == 1 && r.err.find("storageBuffer16BitAccess") != std::string::npos) {
                MESSAGE("skipped: the default device has no 16-bit storage: ", r.err);
                return;
            }
            run_ok(dir, args);
            const std::string expected = fixture(c.name, "expected");
            worst[0] = std::max(worst[0], compare_tensor(output, expected, "attn_output", label, fp16_tolerance));
            if (c.need_weights)
                worst[1] =
                    std::max(worst[1], compare_tensor(output, expected, "attn_output_weights", label, fp16_tolerance));
        }
        MESSAGE("worst vs PyTorch with --precision fp16: attn_output ", format_error(worst[0]),
                ", attn_output_weights ", format_error(worst[1]));
    }

    TEST_CASE("vkmha-run: --device cpu and the default device agree on random examples") {
        const TempDir dir;
        struct Example {
            std::string name;
            std::vector<std::string> make_args, run_args;
        };
        const Example examples[] = {
            {"cross, key padding, odd lengths",
             {"--embed", "96", "--heads", "3", "--batch", "3", "--lq", "7", "--lk", "129", "--key-padding"},
             {"--heads", "3", "--need-weights"}},
            {"grouped-query (Llama names), causal decode",
             {"--embed", "64", "--heads", "8", "--kv-heads", "2", "--batch", "2", "--lq", "5", "--lk", "67", "--seed",
              "7"},
             {"--heads", "8", "--kv-heads", "2", "--causal", "--need-weights", "--no-average-weights"}},
        };
        for (const Example& example : examples) {
            CAPTURE(example.name);
            const std::string prefix = dir.file("example");
            std::vector<std::string> make_args = {"--prefix", prefix};
            make_args.insert(make_args.end(), example.make_args.begin(), example.make_args.end());
            const ProcessResult made = run_process(make_example_path(), make_args, dir.file("make-stderr.txt"));
            REQUIRE_MESSAGE((made.exited && made.exit_code == 0), "vkmha-make-example failed: ", made.err);

            std::string outputs[2];
            for (size_t d = 0; d < all_devices.size(); ++d) {
                outputs[d] = dir.file("out" + std::to_string(d) + ".safetensors");
                std::vector<std::string> args = {"--weights", prefix + ".weights.safetensors",
                                                 "--input",   prefix + ".input.safetensors",
                                                 "--output",  outputs[d]};
                args.insert(args.end(), example.run_args.begin(), example.run_args.end());
                run_ok(dir, with_device(args, all_devices[d]));
            }
            const std::string label = example.name + " [default device vs --device cpu]";
            compare_tensor(outputs[0], outputs[1], "attn_output", label);
            compare_tensor(outputs[0], outputs[1], "attn_output_weights", label);
        }
    }

    TEST_CASE("vkmha-run: rejects bad arguments with exit code 1 and one line naming the argument") {
        const TempDir dir;
        const std::string weights = fixture("self_basic", "weights"), input = fixture("self_basic", "input");
        const std::string output = dir.file("out.safetensors");
        const std::vector<std::string> good = {"--weights", weights, "--input", input,
                                               "--output",  output,  "--heads", "2"};
        // `good` without the flag at `index` and its value.
        auto without = [&](size_t index) {
            std::vector<std::string> args = good;
            const auto first = args.begin() + static_cast<std::ptrdiff_t>(index);
            args.erase(first, first + 2);
            return args;
        };
        auto plus = [&](std::vector<std::string> extra) {
            std::vector<std::string> args = good;
            args.insert(args.end(), extra.begin(), extra.end());
            return args;
        };
        auto with_heads = [&](const std::string& heads) {
            std::vector<std::string> args = good;
            args[7] = heads;
            return args;
        };

        SUBCASE("unknown flag") { expect_failure(dir, plus({"--bogus-flag"}), {"--bogus-flag"}); }
        SUBCASE("missing --weights") { expect_failure(dir, without(0), {"--weights"}); }
        SUBCASE("missing --input") { expect_failure(dir, without(2), {"--input"}); }
        SUBCASE("missing --output") { expect_failure(dir, without(4), {"--output"}); }
        SUBCASE("missing --heads") { expect_failure(dir, without(6), {"--heads"}); }
        SUBCASE("flag without its value") {
            expect_failure(dir, {"--weights", weights, "--input", input, "--output", output, "--heads"}, {"--heads"});
        }
        SUBCASE("--heads 0") { expect_failure(dir, with_heads("0"), {"--heads", "0"}); }
        SUBCASE("--heads abc") { expect_failure(dir, with_heads("abc"), {"--heads", "abc"}); }
        SUBCASE("--heads -2") { expect_failure(dir, with_heads("-2"), {"--heads", "-2"}); }
        SUBCASE("--kv-heads 0") { expect_failure(dir, plus({"--kv-heads", "0"}), {"--kv-heads", "0"}); }
        SUBCASE("--no-average-weights without --need-weights") {
            expect_failure(dir, plus({"--no-average-weights"}), {"--no-average-weights", "--need-weights"});
        }
        SUBCASE("embed_dim not divisible by --heads") {
            // cross_kdim_vdim_padding has E = 12.
            const std::string w = fixture("cross_kdim_vdim_padding", "weights");
            for (const std::string& device : all_devices) {
                CAPTURE(device_label(device));
                expect_failure(dir,
                               with_device({"--weights", w, "--input", fixture("cross_kdim_vdim_padding", "input"),
                                            "--output", output, "--heads", "5"},
                                           device),
                               {w, "12", "5"});
            }
        }
        SUBCASE("--heads not divisible by --kv-heads") {
            const std::string prefix = dir.file("gqa");
            const ProcessResult made = run_process(
                make_example_path(),
                {"--prefix", prefix, "--embed", "24", "--heads", "6", "--kv-heads", "2", "--batch", "1", "--lq", "3"},
                dir.file("make-stderr.txt"));
            REQUIRE_MESSAGE((made.exited && made.exit_code == 0), "vkmha-make-example failed: ", made.err);
            const std::string w = prefix + ".weights.safetensors";
            for (const std::string& device : all_devices) {
                CAPTURE(device_label(device));
                expect_failure(dir,
                               with_device({"--weights", w, "--input", prefix + ".input.safetensors", "--output",
                                            output, "--heads", "6", "--kv-heads", "4"},
                                           device),
                               {"6", "4"});
            }
        }
        SUBCASE("--precision fp8") { expect_failure(dir, plus({"--precision", "fp8"}), {"--precision", "fp8"}); }
        SUBCASE("--precision fp16 with --device cpu") {
            expect_failure(dir, plus({"--precision", "fp16", "--device", "cpu"}), {"--precision", "--device cpu"});
        }
        SUBCASE("--device 99 (index out of range)") { expect_failure(dir, plus({"--device", "99"}), {"99"}); }
        SUBCASE("--device no-such-gpu") { expect_failure(dir, plus({"--device", "no-such-gpu"}), {"no-such-gpu"}); }
    }

    TEST_CASE("vkmha-run: rejects malformed weights files with exit code 1 and one line naming the file") {
        const TempDir dir;
        const std::string valid = fixture("self_basic", "weights"), input = fixture("self_basic", "input");
        const std::string output = dir.file("out.safetensors");
        const std::string bad = dir.file("bad.weights.safetensors");
        auto args = [&](const std::string& weights, const std::string& device) {
            return with_device({"--weights", weights, "--input", input, "--output", output, "--heads", "2"}, device);
        };
        // The loaders differ by device (the plugin's for Vulkan, vkmha-run's own for the CPU), so both are checked.
        auto expect_failure_on_all_devices = [&](const std::vector<std::string>& needles) {
            for (const std::string& device : all_devices) {
                CAPTURE(device_label(device));
                expect_failure(dir, args(bad, device), needles);
            }
        };
        const std::vector<uint8_t> bytes = read_bytes(valid);
        REQUIRE(bytes.size() > 16);
        uint64_t header_length = 0;
        for (size_t i = 0; i < 8; ++i) header_length |= uint64_t{bytes[i]} << (8 * i);
        REQUIRE(8 + header_length < bytes.size());

        SUBCASE("non-existent file") {
            const std::string missing = dir.file("no-such.weights.safetensors");
            for (const std::string& device : all_devices) {
                CAPTURE(device_label(device));
                expect_failure(dir, args(missing, device), {missing});
            }
        }
        SUBCASE("empty file") {
            write_bytes(bad, {});
            expect_failure_on_all_devices({bad});
        }
        SUBCASE("truncated file") {
            const size_t data_start = static_cast<size_t>(8 + header_length);
            const size_t cuts[] = {3,
                                   8,
                                   8 + 1,
                                   8 + static_cast<size_t>(header_length) / 2,
                                   data_start - 1,
                                   data_start,
                                   data_start + 5,
                                   (data_start + bytes.size()) / 2,
                                   bytes.size() - 1};
            for (const size_t cut : cuts) {
                CAPTURE(cut);
                write_bytes(bad, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
                expect_failure_on_all_devices({bad});
            }
        }
        SUBCASE("header length past the end of the file") {
            for (const uint64_t claimed : {uint64_t{bytes.size()}, uint64_t{1} << 40}) {
                CAPTURE(claimed);
                std::vector<uint8_t> patched = bytes;
                for (size_t i = 0; i < 8; ++i) patched[i] = static_cast<uint8_t>(claimed >> (8 * i));
                write_bytes(bad, patched);
                expect_failure_on_all_devices({bad, std::to_string(claimed)});
            }
        }
        SUBCASE("header that is not JSON") {
            const std::string text = "this is not JSON at all!";
            std::vector<uint8_t> patched(8);
            for (size_t i = 0; i < 8; ++i) patched[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
            patched.insert(patched.end(), text.begin(), text.end());
            write_bytes(bad, patched);
            expect_failure_on_all_devices({bad, "JSON"});
        }
        SUBCASE("weights without out_proj.weight") {
            std::vector<io::Tensor> tensors = read_tensors(valid);
            std::erase_if(tensors, [](const io::Tensor& t) { return t.name == "out_proj.weight"; });
            write_tensors(bad, tensors);
            expect_failure_on_all_devices({bad, "out_proj.weight"});
        }
    }

    TEST_CASE("vkmha-run: rejects bad input tensors with exit code 1 and one line naming the tensor") {
        const TempDir dir;
        const std::string output = dir.file("out.safetensors");
        const std::string bad = dir.file("bad.input.safetensors");
        // Writes `tensors` as the input of fixture case `name` and expects both devices to reject it.
        auto expect_rejected = [&](const std::string& name, const std::string& heads,
                                   const std::vector<io::Tensor>& tensors, const std::vector<std::string>& needles) {
            write_tensors(bad, tensors);
            std::vector<std::string> all_needles = {bad};
            all_needles.insert(all_needles.end(), needles.begin(), needles.end());
            for (const std::string& device : all_devices) {
                CAPTURE(device_label(device));
                expect_failure(dir,
                               with_device({"--weights", fixture(name, "weights"), "--input", bad, "--output", output,
                                            "--heads", heads},
                                           device),
                               all_needles);
            }
        };
        // self_basic: query [1, 5, 8]. cross_kdim_vdim_padding: query [2, 4, 12], key [2, 6, 5], value [2, 6, 7],
        // key_padding_mask [2, 6]. bool_attn_mask: query [2, 4, 8], key/value [2, 6, 8], attn_mask [4, 6].
        std::vector<io::Tensor> self = read_tensors(fixture("self_basic", "input"));
        std::vector<io::Tensor> cross = read_tensors(fixture("cross_kdim_vdim_padding", "input"));
        std::vector<io::Tensor> masked = read_tensors(fixture("bool_attn_mask", "input"));
        REQUIRE(tensor_named(self, "query").shape == std::vector<uint64_t>{1, 5, 8});
        REQUIRE(tensor_named(cross, "key").shape == std::vector<uint64_t>{2, 6, 5});
        REQUIRE(tensor_named(cross, "key_padding_mask").shape == std::vector<uint64_t>{2, 6});
        REQUIRE(tensor_named(masked, "attn_mask").shape == std::vector<uint64_t>{4, 6});

        SUBCASE("query of dtype I32") {
            tensor_named(self, "query").dtype = io::DType::i32; // same element size, so the file stays consistent
            expect_rejected("self_basic", "2", self, {"query", "I32"});
        }
        SUBCASE("query of dtype BOOL") {
            io::Tensor& q = tensor_named(self, "query");
            q.dtype = io::DType::boolean;
            q.data.assign(5 * 8, 1);
            expect_rejected("self_basic", "2", self, {"query", "BOOL"});
        }
        SUBCASE("query whose last dimension is not embed_dim") {
            io::Tensor& q = tensor_named(self, "query");
            q.shape = {1, 5, 9};
            q.data.resize(5 * 9 * 4);
            expect_rejected("self_basic", "2", self, {"query", "[1, 5, 9]"});
        }
        SUBCASE("query of rank 2") {
            tensor_named(self, "query").shape = {5, 8};
            expect_rejected("self_basic", "2", self, {"query", "[5, 8]"});
        }
        SUBCASE("missing query") {
            tensor_named(self, "query").name = "queries";
            expect_rejected("self_basic", "2", self, {"'query'"});
        }
        SUBCASE("key without value") {
            // bool_attn_mask's key and value have one shape: value = key would run, and silently compute the wrong
            // attention.
            tensor_named(masked, "value").name = "values";
            expect_rejected("bool_attn_mask", "2", masked, {"'key' is given without 'value'"});
        }
        SUBCASE("value without key") {
            tensor_named(masked, "key").name = "keys";
            expect_rejected("bool_attn_mask", "2", masked, {"'value' is given without 'key'"});
        }
        SUBCASE("key with the wrong batch") {
            io::Tensor& k = tensor_named(cross, "key");
            k.shape = {3, 6, 5};
            k.data.resize(3 * 6 * 5 * 4);
            expect_rejected("cross_kdim_vdim_padding", "3", cross, {"key", "[3, 6, 5]"});
        }
        SUBCASE("key_padding_mask with the wrong shape") {
            io::Tensor& m = tensor_named(cross, "key_padding_mask");
            m.shape = {2, 7};
            m.data.resize(2 * 7);
            expect_rejected("cross_kdim_vdim_padding", "3", cross, {"key_padding_mask", "[2, 7]"});
        }
        SUBCASE("key_padding_mask of dtype F32") {
            io::Tensor& m = tensor_named(cross, "key_padding_mask");
            m.dtype = io::DType::f32;
            m.data.assign(2 * 6 * 4, 0);
            expect_rejected("cross_kdim_vdim_padding", "3", cross, {"key_padding_mask", "F32"});
        }
        SUBCASE("attn_mask with the wrong shape") {
            io::Tensor& m = tensor_named(masked, "attn_mask");
            m.shape = {4, 5};
            m.data.resize(4 * 5);
            expect_rejected("bool_attn_mask", "2", masked, {"attn_mask", "[4, 5]"});
        }
    }

    TEST_CASE("vkmha-run: --causal --incremental writes the one-shot --causal output (KV cache, token by token)") {
        const TempDir dir;
        const Tolerance tol{1e-4, 1e-3};
        const std::string one_shot = dir.file("one-shot.safetensors"),
                          incremental = dir.file("incremental.safetensors");
        auto both = [&](const std::vector<std::string>& args, const std::string& label) {
            std::vector<std::string> a = args;
            a.insert(a.end(), {"--output", one_shot, "--causal"});
            run_ok(dir, a);
            a = args;
            a.insert(a.end(), {"--output", incremental, "--causal", "--incremental"});
            const ProcessResult r = run_cli(dir, a);
            INFO("vkmha-run stderr:\n", r.err);
            REQUIRE_MESSAGE((r.exited && r.exit_code == 0), describe(run_path, a), " failed");
            check_no_validation_messages(r.err);
            CHECK_MESSAGE(r.err.find("incremental") != std::string::npos, "no word of the incremental run on stderr");
            compare_tensor(incremental, one_shot, "attn_output", label + " [--incremental vs one-shot]", tol);
        };
        SUBCASE("grouped-query fixture (4 heads, 2 KV heads, batch 2)") {
            both({"--weights", fixture("gqa_llama_causal", "weights"), "--input", fixture("gqa_llama_causal", "input"),
                  "--heads", "4", "--kv-heads", "2"},
                 "gqa_llama_causal");
            compare_tensor(incremental, fixture("gqa_llama_causal", "expected"), "attn_output",
                           "gqa_llama_causal [--incremental vs PyTorch]");
        }
        // No fixture has self-attention with a key padding mask: random examples, with the key and value the query
        // (no --lk) and as tensors of their own of the query's length (--lk 9).
        for (const bool separate_kv : {false, true}) {
            SUBCASE(separate_kv ? "key padding mask, separate key/value of the query's length, GQA, batch 3"
                                : "key padding mask, self-attention, GQA, batch 3") {
                const std::string prefix = dir.file("padded");
                std::vector<std::string> make = {"--prefix",     prefix, "--embed", "32", "--heads", "4",
                                                 "--kv-heads",   "2",    "--batch", "3",  "--lq",    "9",
                                                 "--key-padding"};
                if (separate_kv) make.insert(make.end(), {"--lk", "9"});
                const ProcessResult made = run_process(make_example_path(), make, dir.file("make-stderr.txt"));
                REQUIRE_MESSAGE((made.exited && made.exit_code == 0), "vkmha-make-example failed: ", made.err);
                const std::vector<io::Tensor> input = read_tensors(prefix + ".input.safetensors");
                REQUIRE(io::find_tensor(input, "key_padding_mask") != nullptr);
                REQUIRE((io::find_tensor(input, "key") != nullptr) == separate_kv);
                both({"--weights", prefix + ".weights.safetensors", "--input", prefix + ".input.safetensors", "--heads",
                      "4", "--kv-heads", "2"},
                     "padded example");
                // The mask is applied: the CPU reference with it agrees too.
                const std::string cpu = dir.file("cpu.safetensors");
                run_ok(dir, {"--weights", prefix + ".weights.safetensors", "--input", prefix + ".input.safetensors",
                             "--heads", "4", "--kv-heads", "2", "--causal", "--device", "cpu", "--output", cpu});
                compare_tensor(incremental, cpu, "attn_output", "padded example [--incremental vs --device cpu]", tol);
            }
        }
    }

    TEST_CASE("vkmha-run: a 16384-token causal layer runs on the cheap default session and its first rows match cpu") {
        // API 1.3 sessions have no Lq x Lk score scratch unless asked: before, this layer was refused with "create the
        // session fused-only" (a [16384, 16384] score chunk is over lavapipe's 128 MiB binding). Causal row i reads
        // only tokens 0..i, so the CPU reference on the first 129 tokens checks the first 129 rows of the long run.
        const TempDir dir;
        const std::string prefix = dir.file("long");
        const ProcessResult made = run_process(
            make_example_path(),
            {"--prefix", prefix, "--embed", "64", "--heads", "4", "--batch", "1", "--lq", "16384", "--seed", "5"},
            dir.file("make-stderr.txt"));
        REQUIRE_MESSAGE((made.exited && made.exit_code == 0), "vkmha-make-example failed: ", made.err);
        const std::string weights = prefix + ".weights.safetensors", gpu = dir.file("gpu.safetensors");
        run_ok(dir, {"--weights", weights, "--input", prefix + ".input.safetensors", "--heads", "4", "--causal",
                     "--output", gpu});

        constexpr uint64_t kRows = 129, kEmbed = 64;
        std::vector<io::Tensor> input = read_tensors(prefix + ".input.safetensors");
        io::Tensor& query = tensor_named(input, "query");
        REQUIRE(query.shape == std::vector<uint64_t>{1, 16384, kEmbed});
        query.shape = {1, kRows, kEmbed};
        query.data.resize(kRows * kEmbed * 4);
        const std::string short_input = dir.file("short.input.safetensors"), cpu = dir.file("cpu.safetensors");
        write_tensors(short_input, {query});
        run_ok(dir, {"--weights", weights, "--input", short_input, "--heads", "4", "--causal", "--device", "cpu",
                     "--output", cpu});

        std::vector<io::Tensor> long_out = read_tensors(gpu);
        io::Tensor& out = tensor_named(long_out, "attn_output");
        REQUIRE(out.shape == std::vector<uint64_t>{1, 16384, kEmbed});
        std::vector<float> got = floats_of(out, gpu);
        got.resize(kRows * kEmbed);
        std::vector<io::Tensor> short_out = read_tensors(cpu);
        const std::vector<float> ref = floats_of(tensor_named(short_out, "attn_output"), cpu);
        REQUIRE(ref.size() == got.size());
        const Comparison c = compare(got, ref, Tolerance{1e-4, 1e-3});
        CHECK_MESSAGE(c.bad == 0, c.bad, " of the first 129 rows' elements out of tolerance; first: ", c.first_bad);
        MESSAGE("L16384 causal, first 129 rows vs --device cpu: max |err| ", format_error(c.max_abs));
    }

    TEST_CASE("vkmha-run: --incremental refuses what a KV cache cannot do, naming the problem") {
        const TempDir dir;
        const std::string output = dir.file("out.safetensors");
        auto args = [&](const std::string& name, const std::string& heads, std::vector<std::string> extra) {
            std::vector<std::string> a = {
                "--weights", fixture(name, "weights"), "--input", fixture(name, "input"), "--output", output, "--heads",
                heads};
            a.insert(a.end(), extra.begin(), extra.end());
            return a;
        };
        SUBCASE("without --causal") {
            expect_failure(dir, args("self_basic", "2", {"--incremental"}), {"--incremental", "--causal"});
        }
        SUBCASE("with --need-weights") {
            expect_failure(dir, args("self_basic", "2", {"--causal", "--incremental", "--need-weights"}),
                           {"--incremental", "--need-weights"});
        }
        SUBCASE("with --device cpu") {
            expect_failure(dir, args("self_basic", "2", {"--causal", "--incremental", "--device", "cpu"}),
                           {"--incremental", "--device cpu"});
        }
        SUBCASE("cross-attention inputs (key of length 7 for a query of length 3)") {
            expect_failure(dir, args("mqa_decode_bias", "4", {"--kv-heads", "1", "--causal", "--incremental"}),
                           {"--incremental", "cross-attention", "7", "3"});
        }
        SUBCASE("an attn_mask in the input") {
            expect_failure(dir, args("causal_torch_mask_weights", "2", {"--causal", "--incremental"}),
                           {"--incremental", "attn_mask"});
        }
    }

    TEST_CASE("vkmha-run: model options match the model-family fixtures on the default device and on --device cpu") {
        const TempDir dir;
        const std::string output = dir.file("out.safetensors");
        double worst[2] = {};
        for (const ModelCase& c : model_cases()) {
            for (size_t d = 0; d < all_devices.size(); ++d) {
                const std::string label = c.name + " [" + device_label(all_devices[d]) + "]";
                CAPTURE(label);
                fs::remove(output);
                run_ok(dir, with_device(model_args(c, output), all_devices[d]));
                worst[d] =
                    std::max(worst[d], compare_tensor(output, fixture(c.name, "expected"), "attn_output", label));
            }
        }
        for (size_t d = 0; d < all_devices.size(); ++d)
            MESSAGE("worst vs the model-family oracle on ", device_label(all_devices[d]), ": ", format_error(worst[d]));
    }

    TEST_CASE("vkmha-run: model options with --precision fp16 match the model-family fixtures within the fp16 "
              "tolerance") {
        const TempDir dir;
        const std::string output = dir.file("out.safetensors");
        double worst = 0;
        for (const ModelCase& c : model_cases()) {
            const std::string label = c.name + " [--precision fp16]";
            CAPTURE(label);
            fs::remove(output);
            const std::vector<std::string> args = model_args(c, output, {"--precision", "fp16"});
            const ProcessResult r = run_cli(dir, args);
            if (r.exited && r.exit_code == 1 && r.err.find("storageBuffer16BitAccess") != std::string::npos) {
                MESSAGE("skipped: the default device has no 16-bit storage: ", r.err);
                return;
            }
            run_ok(dir, args);
            const Tolerance tol{fp16_tolerance.abs * c.fp16_scale, fp16_tolerance.rel * c.fp16_scale};
            worst = std::max(worst, compare_tensor(output, fixture(c.name, "expected"), "attn_output", label, tol));
        }
        MESSAGE("worst vs the model-family oracle with --precision fp16: ", format_error(worst));
    }

    TEST_CASE("vkmha-run: model options with --incremental match the model-family fixtures (positions per step)") {
        // Every family is causal self-attention, so each decodes token by token through the KV cache: RoPE rotates
        // each key before it enters the cache at its position_ids entry (or its cache position).
        const TempDir dir;
        const std::string output = dir.file("out.safetensors");
        for (const ModelCase& c : model_cases()) {
            const std::string label = c.name + " [--incremental]";
            CAPTURE(label);
            fs::remove(output);
            const ProcessResult r = run_cli(dir, model_args(c, output, {"--incremental"}));
            INFO("vkmha-run stderr:\n", r.err);
            REQUIRE_MESSAGE((r.exited && r.exit_code == 0), label, " failed");
            check_no_validation_messages(r.err);
            compare_tensor(output, fixture(c.name, "expected"), "attn_output", label);
        }
    }

    TEST_CASE("vkmha-run: --need-weights with model options: the default device's weights match --device cpu") {
        // Soft-cap and window (gemma2), sinks (gpt-oss: each row's probabilities sum to less than 1), ALiBi with
        // key padding (bloom).
        const TempDir dir;
        for (const ModelCase& c : model_cases()) {
            if (c.name != "model_gemma2" && c.name != "model_gpt_oss" && c.name != "model_bloom") continue;
            for (const bool average : {true, false}) {
                const std::string label = c.name + (average ? " [--need-weights]" : " [--no-average-weights]");
                CAPTURE(label);
                std::vector<std::string> extra = {"--need-weights"};
                if (!average) extra.push_back("--no-average-weights");
                std::string outputs[2];
                for (size_t d = 0; d < all_devices.size(); ++d) {
                    outputs[d] = dir.file("out" + std::to_string(d) + ".safetensors");
                    run_ok(dir, with_device(model_args(c, outputs[d], extra), all_devices[d]));
                }
                compare_tensor(outputs[0], fixture(c.name, "expected"), "attn_output", label + " [default device]");
                compare_tensor(outputs[0], outputs[1], "attn_output_weights", label + " [default device vs cpu]");
            }
        }
    }

    TEST_CASE("vkmha-run: position_ids as I32 give what I64 gives, without them positions are 0..L-1") {
        const TempDir dir;
        const ModelCase* gptj = nullptr;
        for (const ModelCase& c : model_cases())
            if (c.name == "model_gptj") gptj = &c;
        REQUIRE(gptj != nullptr);
        const std::string i32_input = dir.file("i32.input.safetensors");
        const std::string arange_input = dir.file("arange.input.safetensors");
        const std::string no_ids_input = dir.file("no-ids.input.safetensors");
        rewrite(fixture(gptj->name, "input"), i32_input, [](std::vector<io::Tensor>& tensors) {
            io::Tensor& ids = tensor_named(tensors, "position_ids");
            ids = int_tensor("position_ids", io::DType::i32, ids.shape, int_values(ids));
        });
        uint64_t batch = 0, length = 0;
        rewrite(fixture(gptj->name, "input"), arange_input, [&](std::vector<io::Tensor>& tensors) {
            io::Tensor& ids = tensor_named(tensors, "position_ids");
            batch = ids.shape[0], length = ids.shape[1];
            std::vector<int64_t> arange(batch * length);
            for (size_t i = 0; i < arange.size(); ++i) arange[i] = static_cast<int64_t>(i % length);
            ids = int_tensor("position_ids", io::DType::i64, ids.shape, arange);
        });
        rewrite(fixture(gptj->name, "input"), no_ids_input, [](std::vector<io::Tensor>& tensors) {
            std::erase_if(tensors, [](const io::Tensor& t) { return t.name == "position_ids"; });
        });
        for (const std::string& device : all_devices) {
            CAPTURE(device_label(device));
            auto run = [&](const std::string& input, const std::string& output) {
                std::vector<std::string> args = model_args(*gptj, output);
                args[3] = input;
                run_ok(dir, with_device(args, device));
            };
            const std::string i64 = dir.file("i64.safetensors"), i32 = dir.file("i32.safetensors"),
                              arange = dir.file("arange.safetensors"), no_ids = dir.file("no-ids.safetensors");
            run(fixture(gptj->name, "input"), i64);
            run(i32_input, i32);
            compare_tensor(i32, i64, "attn_output", "I32 vs I64 position_ids", {1e-6, 0});
            run(arange_input, arange);
            run(no_ids_input, no_ids);
            compare_tensor(no_ids, arange, "attn_output", "no position_ids vs 0..L-1", {1e-6, 0});
        }
    }

    TEST_CASE("vkmha-run: model-option flags refuse bad values with one line naming the flag and the value") {
        const TempDir dir;
        const std::vector<std::string> good = {
            "--weights", fixture("self_basic", "weights"), "--input", fixture("self_basic", "input"),
            "--output",  dir.file("out.safetensors"),      "--heads", "2"};
        auto plus = [&](std::vector<std::string> extra) {
            std::vector<std::string> args = good;
            args.insert(args.end(), extra.begin(), extra.end());
            return args;
        };
        struct Bad {
            std::vector<std::string> flags, needles;
        };
        const Bad bad[] = {
            {{"--rope", "foo"}, {"--rope", "foo"}},
            {{"--rope"}, {"--rope"}},
            {{"--rope", "neox", "--rope-scaling", "llama3:8,1"}, {"--rope-scaling", "llama3:8,1", "4"}},
            {{"--rope", "neox", "--rope-scaling", "llama3:8,4,1,8192"}, {"--rope-scaling", "HIGH"}},
            {{"--rope", "neox", "--rope-scaling", "yarn:4"}, {"--rope-scaling", "yarn:4"}},
            {{"--rope", "neox", "--rope-scaling", "yarn:4,64,32,1,truncate"}, {"--rope-scaling", "truncate"}},
            {{"--rope", "neox", "--rope-scaling", "linear:-2"}, {"--rope-scaling", "-2"}},
            {{"--rope", "neox", "--rope-scaling", "linear"}, {"--rope-scaling", "linear"}},
            {{"--rope", "neox", "--rope-scaling", "ntk:2"}, {"--rope-scaling", "ntk"}},
            {{"--rope", "neox", "--rope-scaling", "yarn:4,64.5"}, {"--rope-scaling", "64.5"}},
            {{"--rope-theta", "500000"}, {"--rope-theta", "--rope"}},
            {{"--rope-dims", "2"}, {"--rope-dims", "--rope"}},
            {{"--rope-scaling", "linear:2"}, {"--rope-scaling", "--rope"}},
            {{"--rope", "gptj", "--rope-theta", "0.5"}, {"--rope-theta", "0.5"}},
            {{"--rope", "gptj", "--rope-theta", "inf"}, {"--rope-theta", "inf"}},
            {{"--rope", "gptj", "--rope-dims", "3"}, {"--rope-dims", "3"}},
            {{"--rope", "gptj", "--rope-dims", "0"}, {"--rope-dims", "0"}},
            {{"--window", "-1"}, {"--window", "-1"}},
            {{"--window", "0"}, {"--window", "0"}},
            {{"--window", "x"}, {"--window", "x"}},
            {{"--scale", "-1"}, {"--scale", "-1"}},
            {{"--scale", "nan"}, {"--scale", "nan"}},
            {{"--softcap", "0"}, {"--softcap", "0"}},
            {{"--softcap", "1e400"}, {"--softcap", "1e400"}},
            {{"--norm-eps", "tiny"}, {"--norm-eps", "tiny"}},
            {{"--alibi", "yes"}, {"yes"}}, // --alibi takes no value
        };
        for (const Bad& b : bad) {
            CAPTURE(describe("", b.flags));
            expect_failure(dir, plus(b.flags), b.needles);
        }
        SUBCASE("--rope-dims over the head dim (self_basic: D 4), on both devices") {
            for (const std::string& device : all_devices) {
                CAPTURE(device_label(device));
                expect_failure(dir, with_device(plus({"--rope", "neox", "--rope-dims", "6"}), device),
                               {"--rope-dims", "6", "4"});
            }
        }
    }

    TEST_CASE("vkmha-run: refuses bad position_ids, QK-norm and sinks tensors, naming the tensor") {
        const TempDir dir;
        const std::string output = dir.file("out.safetensors");
        const std::string bad = dir.file("bad.safetensors");
        // self_basic: E 8, H 2 (D 4), query [1, 5, 8].
        auto expect_rejected = [&](const std::string& weights, const std::string& input,
                                   const std::vector<std::string>& needles) {
            for (const std::string& device : all_devices) {
                CAPTURE(device_label(device));
                expect_failure(dir,
                               with_device({"--weights", weights, "--input", input, "--output", output, "--heads", "2",
                                            "--rope", "neox"},
                                           device),
                               needles);
            }
        };
        const std::string weights = fixture("self_basic", "weights"), input = fixture("self_basic", "input");
        auto with_ids = [&](const io::Tensor& ids) {
            rewrite(input, bad, [&](std::vector<io::Tensor>& tensors) { tensors.push_back(ids); });
        };
        SUBCASE("position_ids of dtype F32") {
            with_ids(io::make_f32_tensor("position_ids", {1, 5}, {0, 1, 2, 3, 4}));
            expect_rejected(weights, bad, {bad, "position_ids", "F32"});
        }
        SUBCASE("position_ids of the wrong shape") {
            with_ids(int_tensor("position_ids", io::DType::i64, {1, 4}, {0, 1, 2, 3}));
            expect_rejected(weights, bad, {bad, "position_ids", "[1, 4]", "[1, 5]"});
        }
        SUBCASE("position_ids outside int32") {
            with_ids(int_tensor("position_ids", io::DType::i64, {1, 5}, {0, 1, int64_t{1} << 31, 3, 4}));
            expect_rejected(weights, bad, {bad, "position_ids", "2147483648"});
        }
        SUBCASE("q_norm.weight without k_norm.weight") {
            rewrite(weights, bad, [](std::vector<io::Tensor>& tensors) {
                tensors.push_back(io::make_f32_tensor("q_norm.weight", {4}, {1, 1, 1, 1}));
            });
            expect_rejected(bad, input, {bad, "q_norm.weight", "k_norm.weight"});
        }
        SUBCASE("sinks of the wrong shape") {
            rewrite(weights, bad, [](std::vector<io::Tensor>& tensors) {
                tensors.push_back(io::make_f32_tensor("sinks", {3}, {0, 0, 0}));
            });
            expect_rejected(bad, input, {bad, "sinks", "[2]", "[3]"});
        }
    }

    TEST_CASE("vkmha-run --qkv: matches scaled_dot_product_attention fixtures (plain with per-head weights, GQA causal "
              "RoPE) on the default device and on --device cpu, one-shot and --incremental") {
        const TempDir dir;
        const std::string output = dir.file("out.safetensors");
        std::string outputs[2];
        for (size_t d = 0; d < all_devices.size(); ++d) {
            const std::string label = "qkv_plain [" + device_label(all_devices[d]) + "]";
            CAPTURE(label);
            outputs[d] = dir.file("plain" + std::to_string(d) + ".safetensors");
            run_ok(dir, with_device(qkv_args("qkv_plain", "3", outputs[d], {"--need-weights", "--no-average-weights"}),
                                    all_devices[d]));
            compare_tensor(outputs[d], fixture("qkv_plain", "expected"), "attn_output", label);
            compare_tensor(outputs[d], fixture("qkv_plain", "expected"), "attn_output_weights", label);
        }
        compare_tensor(outputs[0], outputs[1], "attn_output", "qkv_plain [default device vs cpu]");
        const std::vector<std::string> gqa = {"--causal", "--rope", "neox"};
        for (size_t d = 0; d < all_devices.size(); ++d) {
            const std::string label = "qkv_gqa_rope [" + device_label(all_devices[d]) + "]";
            CAPTURE(label);
            outputs[d] = dir.file("gqa" + std::to_string(d) + ".safetensors");
            std::vector<std::string> flags = gqa;
            if (d == 1) flags.insert(flags.end(), {"--kv-heads", "2"}); // G from k's shape, or given
            run_ok(dir, with_device(qkv_args("qkv_gqa_rope", "4", outputs[d], flags), all_devices[d]));
            compare_tensor(outputs[d], fixture("qkv_gqa_rope", "expected"), "attn_output", label);
        }
        compare_tensor(outputs[0], outputs[1], "attn_output", "qkv_gqa_rope [default device vs cpu]");
        // Token by token through a KV cache (each token's q, k, v rows; keys rotated at their positions).
        std::vector<std::string> incremental = gqa;
        incremental.push_back("--incremental");
        const ProcessResult r = run_cli(dir, qkv_args("qkv_gqa_rope", "4", output, incremental));
        INFO("vkmha-run stderr:\n", r.err);
        REQUIRE_MESSAGE((r.exited && r.exit_code == 0), "--qkv --incremental failed");
        check_no_validation_messages(r.err);
        CHECK(r.err.find("incremental") != std::string::npos);
        compare_tensor(output, fixture("qkv_gqa_rope", "expected"), "attn_output", "qkv_gqa_rope [--incremental]");
    }

    TEST_CASE("vkmha-run --qkv: without position_ids and key_position_ids, query i is at Lk - Lq + i and key j at j") {
        // The GQA fixture's last 4 queries over its 9 keys: no ids vs ids spelled out (5..8 and 0..8).
        const TempDir dir;
        const std::string no_ids = dir.file("no-ids.input.safetensors"),
                          spelled = dir.file("spelled.input.safetensors");
        auto shorten = [](std::vector<io::Tensor>& tensors) {
            io::Tensor& q = tensor_named(tensors, "q");
            q = last_rows(q, 5);
            std::erase_if(tensors,
                          [](const io::Tensor& t) { return t.name == "position_ids" || t.name == "key_position_ids"; });
        };
        rewrite(fixture("qkv_gqa_rope", "input"), no_ids, shorten);
        rewrite(fixture("qkv_gqa_rope", "input"), spelled, [&](std::vector<io::Tensor>& tensors) {
            shorten(tensors);
            tensors.push_back(int_tensor("position_ids", io::DType::i64, {2, 4}, {5, 6, 7, 8, 5, 6, 7, 8}));
            std::vector<int64_t> keys;
            for (int64_t b = 0; b < 2; ++b)
                for (int64_t j = 0; j < 9; ++j) keys.push_back(j);
            tensors.push_back(int_tensor("key_position_ids", io::DType::i32, {2, 9}, keys));
        });
        for (const std::string& device : all_devices) {
            CAPTURE(device_label(device));
            const std::string a = dir.file("a.safetensors"), b = dir.file("b.safetensors");
            for (const auto& [input, out] : {std::pair{no_ids, a}, std::pair{spelled, b}}) {
                run_ok(dir, with_device({"--qkv", "--input", input, "--output", out, "--heads", "4", "--causal",
                                         "--rope", "neox"},
                                        device));
            }
            compare_tensor(a, b, "attn_output", "no ids vs Lk - Lq + i and j", {1e-6, 0});
            const std::vector<io::Tensor> got = read_tensors(a);
            CHECK(io::find_tensor(got, "attn_output")->shape == std::vector<uint64_t>{2, 4, 4, 16});
        }
    }

    TEST_CASE(
        "vkmha-run --qkv: --weights with QK-norm and sinks, model options, masks and weights agree on the default "
        "device and --device cpu") {
        const TempDir dir;
        const std::string weights = dir.file("norms.weights.safetensors"), input = dir.file("masked.input.safetensors");
        std::vector<float> q_norm(16), k_norm(16), sinks = {0.5f, -1.0f, 2.0f, 0.0f};
        for (size_t i = 0; i < 16; ++i) q_norm[i] = 0.5f + 0.1f * float(i), k_norm[i] = 1.5f - 0.05f * float(i);
        write_tensors(weights,
                      {io::make_f32_tensor("q_norm.weight", {16}, q_norm),
                       io::make_f32_tensor("k_norm.weight", {16}, k_norm), io::make_f32_tensor("sinks", {4}, sinks)});
        rewrite(fixture("qkv_gqa_rope", "input"), input, [](std::vector<io::Tensor>& tensors) {
            std::vector<uint8_t> kpm(2 * 9, 0);
            kpm[9 + 8] = kpm[9 + 7] = 1; // the last two keys of batch row 1
            tensors.push_back({"key_padding_mask", io::DType::boolean, {2, 9}, kpm});
            std::vector<float> mask(2 * 4 * 9 * 9);
            for (size_t i = 0; i < mask.size(); ++i) mask[i] = float(int(i % 7) - 3) * 0.25f;
            tensors.push_back(io::make_f32_tensor("attn_mask", {8, 9, 9}, mask)); // additive, per head
        });
        const std::vector<std::vector<std::string>> option_sets = {
            {"--weights", weights, "--causal", "--rope", "neox", "--rope-theta", "500", "--softcap", "3", "--window",
             "4", "--need-weights"},
            {"--weights", weights, "--alibi", "--scale", "0.3", "--norm-eps", "0.01", "--need-weights",
             "--no-average-weights"},
        };
        for (const auto& flags : option_sets) {
            const std::string label = describe("", flags);
            CAPTURE(label);
            std::string outputs[2];
            for (size_t d = 0; d < all_devices.size(); ++d) {
                outputs[d] = dir.file("out" + std::to_string(d) + ".safetensors");
                std::vector<std::string> args = {"--qkv", "--input", input, "--output", outputs[d], "--heads", "4"};
                args.insert(args.end(), flags.begin(), flags.end());
                run_ok(dir, with_device(args, all_devices[d]));
            }
            compare_tensor(outputs[0], outputs[1], "attn_output", label + " [default device vs cpu]");
            compare_tensor(outputs[0], outputs[1], "attn_output_weights", label + " [default device vs cpu]");
            // The weights file matters: without it the output moves.
            const std::string plain = dir.file("plain.safetensors");
            std::vector<std::string> args = {"--qkv", "--input", input, "--output", plain, "--heads", "4"};
            args.insert(args.end(), flags.begin() + 2, flags.end());
            run_ok(dir, args);
            std::vector<io::Tensor> without = read_tensors(plain), with = read_tensors(outputs[0]);
            const Comparison c = compare(floats_of(tensor_named(without, "attn_output"), plain),
                                         floats_of(tensor_named(with, "attn_output"), outputs[0]), fp32_tolerance);
            CHECK_MESSAGE(c.bad > 0, "sinks and QK-norm change nothing");
        }
    }

    TEST_CASE("vkmha-run --qkv: refuses what it cannot honour with one line naming the culprit") {
        const TempDir dir;
        const std::string output = dir.file("out.safetensors"), bad = dir.file("bad.safetensors");
        const std::string plain = fixture("qkv_plain", "input"), gqa = fixture("qkv_gqa_rope", "input");
        auto args = [&](const std::string& input, const std::string& heads, std::vector<std::string> extra) {
            std::vector<std::string> a = {"--qkv", "--input", input, "--output", output};
            if (!heads.empty()) a.insert(a.end(), {"--heads", heads});
            a.insert(a.end(), extra.begin(), extra.end());
            return a;
        };
        auto both = [&](const std::vector<std::string>& a, const std::vector<std::string>& needles) {
            for (const std::string& device : all_devices) {
                CAPTURE(device_label(device));
                expect_failure(dir, with_device(a, device), needles);
            }
        };
        SUBCASE("without --heads") { expect_failure(dir, args(plain, "", {}), {"--heads"}); }
        SUBCASE("--heads other than q's") { both(args(plain, "4", {}), {"'q'", "[2, 3, 5, 16]", "--heads 4"}); }
        SUBCASE("--kv-heads other than k's") { both(args(gqa, "4", {"--kv-heads", "4"}), {"'k'", "--kv-heads 4"}); }
        SUBCASE("an input without q (a projection input)") {
            both(args(fixture("self_basic", "input"), "2", {}), {"'q'", "query", "without --qkv"});
        }
        SUBCASE("a q/k/v input without --qkv") {
            expect_failure(
                dir,
                {"--weights", fixture("self_basic", "weights"), "--input", plain, "--output", output, "--heads", "2"},
                {"'query'", "--qkv"});
        }
        SUBCASE("k of rank 3") {
            rewrite(plain, bad, [](std::vector<io::Tensor>& tensors) {
                io::Tensor& k = tensor_named(tensors, "k");
                k.shape = {2, 3 * 7, 16};
            });
            both(args(bad, "3", {}), {"'k'", "rank 4"});
        }
        SUBCASE("v shorter than k") {
            rewrite(plain, bad, [](std::vector<io::Tensor>& tensors) {
                io::Tensor& v = tensor_named(tensors, "v");
                v = last_rows(v, 1);
            });
            both(args(bad, "3", {}), {"'v'", "[2, 3, 6, 16]", "[2, 3, 7, 16]"});
        }
        SUBCASE("key_position_ids of the wrong shape") {
            rewrite(gqa, bad, [](std::vector<io::Tensor>& tensors) {
                io::Tensor& ids = tensor_named(tensors, "key_position_ids");
                ids = int_tensor("key_position_ids", io::DType::i64, {2, 8}, std::vector<int64_t>(16, 0));
            });
            both(args(bad, "4", {"--rope", "neox"}), {"'key_position_ids'", "[2, 8]", "[2, 9]"});
        }
        SUBCASE("--weights with projections") {
            both(args(plain, "3", {"--weights", fixture("self_basic", "weights")}),
                 {fixture("self_basic", "weights"), "sinks", "q_norm.weight"});
        }
        SUBCASE("--weights with sinks of the wrong shape") {
            write_tensors(bad, {io::make_f32_tensor("sinks", {4}, {0, 0, 0, 0})});
            both(args(plain, "3", {"--weights", bad}), {"sinks", "[4]", "[3]"});
        }
        SUBCASE("--rope-dims over the head dim (D 16)") {
            both(args(gqa, "4", {"--rope", "neox", "--rope-dims", "18"}), {"--rope-dims", "18", "16"});
        }
        SUBCASE("--incremental with q and k of different lengths") {
            expect_failure(dir, args(plain, "3", {"--causal", "--incremental"}),
                           {"--incremental", "k of length 7", "q of length 5"});
        }
        SUBCASE("--incremental with a query and its key at different positions") {
            rewrite(gqa, bad, [](std::vector<io::Tensor>& tensors) {
                std::erase_if(tensors, [](const io::Tensor& t) { return t.name == "key_position_ids"; });
            });
            expect_failure(dir, args(bad, "4", {"--causal", "--rope", "neox", "--incremental"}),
                           {"--incremental", "position_ids[0, 0] = 3", "key_position_ids[0, 0] = 0"});
        }
        SUBCASE("--incremental without --causal") {
            expect_failure(dir, args(gqa, "4", {"--incremental"}), {"--incremental", "--causal"});
        }
    }

} // TEST_SUITE("cli")
