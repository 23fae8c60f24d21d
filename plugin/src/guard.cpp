// Per-thread last-error text and the ErrorCode -> VkmhaResult mapping.
#include "guard.h"

namespace vkmha::plugin {
namespace {
thread_local std::string t_last_error;
}

void set_last_error(std::string message) { t_last_error = std::move(message); }
const char* last_error() { return t_last_error.c_str(); }

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
    }
    return VKMHA_ERROR_INTERNAL;
}

VkmhaResult fail(const Error& error) {
    set_last_error(error.message);
    return to_result(error.code);
}

VkmhaResult fail(ErrorCode code, std::string message) { return fail(Error{code, std::move(message)}); }

} // namespace vkmha::plugin
