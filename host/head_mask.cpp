// The head mask's checks and its expansion to [B, H] factors (see head_mask.h).
#include "head_mask.h"

#include <cmath>
#include <cstring>
#include <string>

namespace vkmha {

Status check_head_factors(std::span<const float> factors, uint32_t heads, uint32_t batch, const char* what) {
    if (factors.empty()) return {};
    const uint64_t per_batch = uint64_t(batch) * heads;
    if (factors.size() != heads && (batch == 0 || factors.size() != per_batch))
        return make_error(ErrorCode::invalid_argument,
                          std::string("head mask of ") + std::to_string(factors.size()) + " factors for " + what +
                              ": expected " + std::to_string(heads) + " (numHeads)" +
                              (batch ? " or " + std::to_string(per_batch) + " (batch x numHeads)" : std::string()));
    for (size_t i = 0; i < factors.size(); ++i)
        if (!std::isfinite(factors[i]))
            return make_error(ErrorCode::invalid_argument, "head mask factor " + std::to_string(i) + " is " +
                                                               std::to_string(factors[i]) + ", not finite");
    return {};
}

void write_head_factors(float* dst, std::span<const float> factors, uint32_t heads, uint32_t batch) {
    if (factors.size() == uint64_t(batch) * heads) {
        std::memcpy(dst, factors.data(), factors.size_bytes());
        return;
    }
    for (uint32_t b = 0; b < batch; ++b) std::memcpy(dst + uint64_t(b) * heads, factors.data(), factors.size_bytes());
}

} // namespace vkmha
