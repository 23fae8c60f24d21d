// Overflow-checked size arithmetic. Shapes come from callers (and weights files) as 32-bit counts, so a product of
// three or four of them can wrap even in 64 bits; a wrapped size would pass every later check and let a kernel index
// past its buffer. Byte counts that are only compared against limits saturate (UINT64_MAX exceeds every limit, so
// the comparison refuses them); element counts the kernels take as 32-bit push constants are checked to fit.
#pragma once

#include "result.h"

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>

namespace vkmha {

inline constexpr uint64_t kSaturated = std::numeric_limits<uint64_t>::max();

// a * b, or nullopt where it does not fit in 64 bits.
constexpr std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
    if (a != 0 && b > kSaturated / a) return std::nullopt;
    return a * b;
}

// The product of all factors, or nullopt where any partial product overflows 64 bits (as safetensors' reference
// does, a zero factor after an overflow does not rescue it).
constexpr std::optional<uint64_t> checked_product(std::initializer_list<uint64_t> factors) {
    uint64_t product = 1;
    for (uint64_t f : factors) {
        auto next = checked_mul(product, f);
        if (!next) return std::nullopt;
        product = *next;
    }
    return product;
}

// Saturating forms for sizes that are only compared against limits.
constexpr uint64_t saturating_mul(uint64_t a, uint64_t b) { return checked_mul(a, b).value_or(kSaturated); }
constexpr uint64_t saturating_product(std::initializer_list<uint64_t> factors) {
    return checked_product(factors).value_or(kSaturated);
}
constexpr uint64_t saturating_add(uint64_t a, uint64_t b) { return a > kSaturated - b ? kSaturated : a + b; }

// "123 bytes" or, for a saturated count, "more than 2^64 bytes": a message never prints a wrapped value.
inline std::string count_text(uint64_t count, const char* unit) {
    return (count == kSaturated ? std::string("more than 2^64") : std::to_string(count)) + " " + unit;
}

// Element counts and offsets reach the kernels as uint32 push constants: refuses one that does not fit, naming it.
inline Status check_fits_u32(const std::string& what, uint64_t value) {
    if (value > std::numeric_limits<uint32_t>::max())
        return make_error(ErrorCode::unsupported, what + " is " + count_text(value, "elements") +
                                                      ", over the 2^32 - 1 that the kernels' 32-bit indices reach");
    return {};
}

} // namespace vkmha
