// The range check the recorders make on each buffer the engine binds (Session::check for record, and the cached
// steps and prefill pieces in session_cached.cpp). Internal to the host library.
#pragma once

#include "external_buffer.h"
#include "result.h"

#include <cstdint>
#include <string>

namespace vkmha {

// VK_NULL_HANDLE is refused when `required` and otherwise passes (the buffer is not used); a bound buffer needs an
// exact range (not VK_WHOLE_SIZE) of at least `bytes`. Messages start with `name`; `needed_for` (e.g. " for the
// shape") follows "is too small" in the message for a short range.
inline Status check_external_range(const char* name, const ExternalBuffer& e, uint64_t bytes, bool required,
                                   const char* needed_for = "") {
    if (e.buffer == VK_NULL_HANDLE) {
        if (required) return make_error(ErrorCode::invalid_argument, std::string(name) + " buffer is VK_NULL_HANDLE");
        return {};
    }
    if (e.range == VK_WHOLE_SIZE)
        return make_error(ErrorCode::invalid_argument,
                          std::string(name) + " range is VK_WHOLE_SIZE; give the exact range so it can be checked");
    if (e.range < bytes)
        return make_error(ErrorCode::invalid_argument, std::string(name) + " range " + std::to_string(e.range) +
                                                           " bytes is too small" + needed_for + " (needs " +
                                                           std::to_string(bytes) + ")");
    return {};
}

} // namespace vkmha
