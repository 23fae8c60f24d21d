// Per-thread last-error text and the ErrorCode -> VkmhaResult mapping.
#include "guard.h"

#include <cstddef>
#include <cstring>
#include <string_view>

namespace vkmha::plugin {
namespace {
// A plain buffer, not a std::string: a thread_local with a destructor registers it with __cxa_thread_atexit, and
// glibc then keeps the library mapped after dlclose until that thread exits (an engine's main thread never does).
constexpr std::size_t k_last_error_capacity = 4096;
thread_local char t_last_error[k_last_error_capacity];
} // namespace

void set_last_error(std::string message) {
    constexpr std::string_view cut = " [...]";
    if (message.size() >= k_last_error_capacity)
        message.replace(k_last_error_capacity - 1 - cut.size(), std::string::npos, cut);
    std::memcpy(t_last_error, message.c_str(), message.size() + 1);
}
const char* last_error() { return t_last_error; }

VkmhaResult to_result(ErrorCode code) {
    switch (code) {
    case ErrorCode::invalid_argument: return VKMHA_ERROR_INVALID_ARGUMENT;
    case ErrorCode::io: return VKMHA_ERROR_IO;
    case ErrorCode::unsupported: return VKMHA_ERROR_UNSUPPORTED;
    case ErrorCode::out_of_memory: return VKMHA_ERROR_OUT_OF_MEMORY;
    case ErrorCode::budget_exceeded: return VKMHA_ERROR_BUDGET_EXCEEDED;
    case ErrorCode::out_of_range: return VKMHA_ERROR_OUT_OF_RANGE;
    case ErrorCode::frame_in_flight: return VKMHA_ERROR_FRAME_IN_FLIGHT;
    case ErrorCode::vulkan: return VKMHA_ERROR_VULKAN;
    case ErrorCode::not_ready: return VKMHA_NOT_READY;
    case ErrorCode::timeout: return VKMHA_TIMEOUT;
    case ErrorCode::internal: return VKMHA_ERROR_INTERNAL;
    case ErrorCode::device_lost: return VKMHA_ERROR_DEVICE_LOST;
    }
    return VKMHA_ERROR_INTERNAL;
}

VkmhaResult fail(const Error& error) {
    set_last_error(error.message);
    return to_result(error.code);
}

VkmhaResult fail(ErrorCode code, std::string message) { return fail(Error{code, std::move(message)}); }

} // namespace vkmha::plugin
