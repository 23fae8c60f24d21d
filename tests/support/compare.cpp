// Tolerance checks for GPU-vs-reference comparisons.
#include "support/compare.h"

#include <algorithm>
#include <cstdio>

namespace vkmha::test {

Comparison compare(const float* got, const float* ref, size_t n, const Tolerance& tol) {
    Comparison c;
    double err2 = 0, ref2 = 0;
    bool marked = false;
    for (size_t i = 0; i < n; ++i) {
        const double g = got[i], r = ref[i];
        const double d = std::fabs(g - r);
        const bool within = d <= tol.atol + tol.rtol * std::fabs(r); // false for NaN
        if (!within && !marked) {
            c.ok = false;
            marked = true;
            c.worst = i, c.got_at_worst = g, c.ref_at_worst = r;
        }
        if (std::isnan(d)) continue;
        c.used = std::max(c.used, d / (tol.atol + tol.rtol * std::fabs(r)));
        if (d > c.max_abs) {
            c.max_abs = d;
            if (!marked) c.worst = i, c.got_at_worst = g, c.ref_at_worst = r;
        }
        err2 += d * d;
        ref2 += r * r;
    }
    c.nmse = ref2 > 0 ? err2 / ref2 : err2;
    if (c.nmse > tol.nmse) c.ok = false;
    return c;
}

std::string Comparison::describe(const std::string& what) const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s: max|d| %.3g, nmse %.3g, at [%zu] got %.7g ref %.7g", what.c_str(), max_abs,
                  nmse, worst, got_at_worst, ref_at_worst);
    return buf;
}

} // namespace vkmha::test
