// sgemm.h: the machine's dense fp32 matrix-multiply speed (OpenBLAS cblas_sgemm, 2 threads), the yardstick the
// fused attention core is held against.
#pragma once

#include <cstdint>
#include <string>

namespace bench {

struct SgemmMeasurement {
    uint32_t n = 0, threads = 0, runs = 0;
    double ms = 0;     // median of `runs` timed runs after one warm-up
    double gflops = 0; // 2·n³ / ms
};

// false (with *error set) when vkmha-bench was built without OpenBLAS.
bool measure_sgemm(uint32_t n, int threads, uint32_t runs, SgemmMeasurement* out, std::string* error);

} // namespace bench
