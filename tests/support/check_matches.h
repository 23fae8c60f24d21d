// Elementwise comparison of a C ABI result with the CPU reference, as doctest checks: every value within
// atol + rtol·|ref| (a NaN never passes), with the max abs error reported either way.
#pragma once

#include <string>
#include <vector>

namespace vkmha::test {

// Only the elementwise bound (compare.h's Tolerance also bounds the normalized MSE; these suites never did).
struct ElementwiseTolerance {
    double atol, rtol;
};
inline constexpr ElementwiseTolerance kFp32Tolerance{1e-4, 1e-3};
// VKMHA_PRECISION_FP16 models: weights and Q/K/V/concat rounded to fp16 (relative 2^-11 each); tests/test_attention.cpp
// derives this bound and measures 25% of it used at worst over its sweep.
inline constexpr ElementwiseTolerance kFp16Tolerance{1.5e-3, 1.5e-3};

// |got - ref| <= atol + rtol |ref| for each of ref.size() values of `got`; reports the max abs error.
void check_matches(const float* got, const std::vector<float>& ref, const std::string& what,
                   ElementwiseTolerance tol = kFp32Tolerance);

} // namespace vkmha::test
