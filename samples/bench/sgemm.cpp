// sgemm.cpp: times cblas_sgemm when vkmha-bench was built with OpenBLAS (VKMHA_BENCH_HAVE_OPENBLAS).
#include "sgemm.h"

#include "metrics.h"

#include <chrono>
#include <vector>

#if VKMHA_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace bench {

bool measure_sgemm(uint32_t n, int threads, uint32_t runs, SgemmMeasurement* out, std::string* error) {
#if VKMHA_BENCH_HAVE_OPENBLAS
    (void)error;
    openblas_set_num_threads(threads);
    const size_t count = size_t(n) * n;
    std::vector<float> a(count), b(count), c(count);
    for (size_t i = 0; i < count; ++i) { // any finite values: sgemm's speed does not depend on them
        a[i] = static_cast<float>(i % 97) * 0.01f;
        b[i] = static_cast<float>(i % 89) * 0.01f;
    }
    const int dim = static_cast<int>(n);
    std::vector<double> times;
    for (uint32_t run = 0; run <= runs; ++run) {
        const auto start = std::chrono::steady_clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0f, a.data(), dim, b.data(), dim, 0.0f,
                    c.data(), dim);
        const auto end = std::chrono::steady_clock::now();
        if (run > 0) times.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    out->n = n;
    out->threads = static_cast<uint32_t>(threads);
    out->runs = runs;
    out->ms = median(times);
    out->gflops = per_second(2.0 * n * double(n) * n, out->ms) * 1e-9;
    return true;
#else
    (void)n, (void)threads, (void)runs, (void)out;
    *error = "--sgemm: vkmha-bench was built without OpenBLAS (install libopenblas-dev: scripts/setup.sh does)";
    return false;
#endif
}

} // namespace bench
