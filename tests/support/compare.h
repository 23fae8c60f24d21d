// Comparison of a GPU result with the CPU reference by a stated metric: every element within
// atol + rtol*|ref| (NaN never passes), plus the max abs error and normalized MSE for the report.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace vkmha::test {

struct Tolerance {
    double atol = 1e-4;
    double rtol = 1e-3;
    double nmse = 1e-8; // sum((got-ref)^2) / sum(ref^2), when sum(ref^2) > 0
};

struct Comparison {
    bool ok = true;
    double max_abs = 0;
    double nmse = 0;
    size_t worst = 0; // index of the first element out of tolerance (or of the max error)
    double used = 0;  // max over elements of |got-ref| / (atol + rtol*|ref|): the share of the tolerance used
    double got_at_worst = 0, ref_at_worst = 0;
    std::string describe(const std::string& what) const;
};

Comparison compare(const float* got, const float* ref, size_t n, const Tolerance& tol);
inline Comparison compare(const std::vector<float>& got, const std::vector<float>& ref, const Tolerance& tol) {
    if (got.size() != ref.size()) {
        Comparison c;
        c.ok = false;
        c.worst = got.size();
        return c;
    }
    return compare(got.data(), ref.data(), got.size(), tol);
}

} // namespace vkmha::test
