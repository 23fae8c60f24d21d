// vkmha-compare: compares the float tensors of two safetensors files (e.g. GPU vs CPU reference outputs) with the
// tolerance vkmha promises for fp32 (|d| <= 2e-4 + 2e-3*|ref|); exit 0 when every shared tensor is within it.
#include "io/safetensors.h"

#include <cmath>
#include <cstdio>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: vkmha-compare GOT.safetensors REFERENCE.safetensors\n");
        return 1;
    }
    auto got = vkmha::io::read_safetensors(argv[1]);
    auto ref = vkmha::io::read_safetensors(argv[2]);
    if (!got || !ref) {
        std::fprintf(stderr, "vkmha-compare: %s\n", (!got ? got.error() : ref.error()).message.c_str());
        return 1;
    }
    bool ok = true;
    for (const vkmha::io::Tensor& r : ref.value()) {
        const vkmha::io::Tensor* g = vkmha::io::find_tensor(got.value(), r.name);
        if (!g) {
            std::fprintf(stderr, "vkmha-compare: %s: tensor '%s' is missing\n", argv[1], r.name.c_str());
            ok = false;
            continue;
        }
        auto gv = vkmha::io::to_float(*g, argv[1]);
        auto rv = vkmha::io::to_float(r, argv[2]);
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
