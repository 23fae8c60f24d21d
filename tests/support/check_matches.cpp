// Elementwise comparison with the CPU reference as doctest checks; see check_matches.h.
#include "support/check_matches.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace vkmha::test {

void check_matches(const float* got, const std::vector<float>& ref, const std::string& what, ElementwiseTolerance tol) {
    double max_abs = 0;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double diff = std::fabs(double(got[i]) - double(ref[i]));
        const bool ok = diff <= tol.atol + tol.rtol * std::fabs(double(ref[i]));
        if (!ok && bad++ == 0) first = i;
        if (!std::isnan(diff)) max_abs = std::max(max_abs, diff);
    }
    if (bad) {
        CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", ref.size(), " values off; first at ", first, ": got ",
                      got[first], ", expected ", ref[first], "; max abs error ", max_abs);
    } else {
        CHECK(bad == 0);
        MESSAGE(what, ": ", ref.size(), " values match, max abs error ", max_abs);
    }
}

} // namespace vkmha::test
