// IEEE binary16 and bfloat16 <-> binary32 conversion (round to nearest even), bit-exact on every host.
#pragma once

#include <bit>
#include <cstdint>

namespace vkmha::io {

// Integer-only so the result does not depend on the FPU's rounding mode or flush-to-zero setting.
inline float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) // inf, or NaN with its payload kept so that a round trip is exact
        return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
    if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0) return std::bit_cast<float>(sign);
    // A half subnormal is a float normal: shift the leading one up to the implicit bit.
    uint32_t float_exponent = 113; // exponent of 2^-14, the smallest half normal
    while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --float_exponent;
    }
    return std::bit_cast<float>(sign | (float_exponent << 23) | ((mantissa & 0x3ffu) << 13));
}

inline uint16_t float_to_half(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u) {
        if (magnitude == 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u);
        // Keep the top of the payload; a payload only in the dropped bits must still read as NaN.
        uint32_t payload = (magnitude >> 13) & 0x3ffu;
        if (payload == 0) payload = 0x200u;
        return static_cast<uint16_t>(sign | 0x7c00u | payload);
    }
    if (magnitude >= 0x477ff000u) // 65520 and up round to infinity (65520 is the tie, and 65504 is odd)
        return static_cast<uint16_t>(sign | 0x7c00u);
    if (magnitude >= 0x38800000u) { // normal half: rebias, round on the 13 dropped bits
        const uint32_t lsb = (magnitude >> 13) & 1u;
        const uint32_t rounded = magnitude + 0xfffu + lsb; // a carry into the exponent is the right answer
        return static_cast<uint16_t>(sign | ((rounded - (112u << 23)) >> 13));
    }
    if (magnitude <= 0x33000000u) // at most 2^-25, the tie with zero, which is even
        return sign;
    // Subnormal half: count units of 2^-24; the result may round up to 0x400, the smallest normal.
    const uint32_t exponent = magnitude >> 23; // 102..112 here
    const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exponent; // 14..24
    uint32_t units = significand >> shift;
    const uint32_t remainder = significand & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1u);
    if (remainder > halfway || (remainder == halfway && (units & 1u))) ++units;
    return static_cast<uint16_t>(sign | units);
}

inline float bf16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

inline uint16_t float_to_bf16(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: rounding could carry it into infinity
        return static_cast<uint16_t>((bits >> 16) | 0x40u);
    const uint32_t lsb = (bits >> 16) & 1u;
    return static_cast<uint16_t>((bits + 0x7fffu + lsb) >> 16);
}

} // namespace vkmha::io
