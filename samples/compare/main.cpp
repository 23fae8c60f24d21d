// vkmha-compare: compares the float tensors of two safetensors files (e.g. GPU vs CPU reference outputs) with the
// tolerance vkmha promises for fp32 (|d| <= 2e-4 + 2e-3*|ref|); exit 0 when every shared tensor is within it.
#include "common/cli.h"
#include "io/safetensors.h"

#include <cmath>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    std::string got_path, ref_path;
    CLI::App app{"Compares the float tensors of two safetensors files with vkmha's fp32 tolerance\n"
                 "(|d| <= 2e-4 + 2e-3*|ref|); exit 0 when every tensor of REFERENCE is in GOT and within it.",
                 "vkmha-compare"};
    vkmha::cli::configure(app);
    app.add_option("GOT", got_path, "the file to check (GOT.safetensors)")->required();
    app.add_option("REFERENCE", ref_path, "the reference (REFERENCE.safetensors)")->required();
    vkmha::cli::parse(app, argc, argv);
    auto got = vkmha::io::read_safetensors(got_path);
    auto ref = vkmha::io::read_safetensors(ref_path);
    if (!got || !ref) {
        std::fprintf(stderr, "vkmha-compare: %s\n", (!got ? got.error() : ref.error()).message.c_str());
        return 1;
    }
    bool ok = true;
    for (const vkmha::io::Tensor& r : ref.value()) {
        const vkmha::io::Tensor* g = vkmha::io::find_tensor(got.value(), r.name);
        if (!g) {
            std::fprintf(stderr, "vkmha-compare: %s: tensor '%s' is missing\n", got_path.c_str(), r.name.c_str());
            ok = false;
            continue;
        }
        auto gv = vkmha::io::to_float(*g, got_path);
        auto rv = vkmha::io::to_float(r, ref_path);
        if (!gv || !rv || gv->size() != rv->size() || g->shape != r.shape) {
            std::fprintf(stderr, "vkmha-compare: tensor '%s': shapes or dtypes differ\n", r.name.c_str());
            ok = false;
            continue;
        }
        double max_abs = 0;
        size_t bad = 0;
        for (size_t i = 0; i < rv->size(); ++i) {
            const double d = std::fabs(double((*gv)[i]) - (*rv)[i]);
            max_abs = std::fmax(max_abs, d);
            if (!(d <= 2e-4 + 2e-3 * std::fabs((*rv)[i]))) ++bad;
        }
        std::printf("%-22s %s  max|d| %.3g  %s\n", r.name.c_str(), vkmha::io::shape_to_string(r.shape).c_str(), max_abs,
                    bad ? "MISMATCH" : "ok");
        ok = ok && bad == 0;
    }
    return ok ? 0 : 1;
}
