// The C boundary: per-thread last error, the log sink, and `guarded`, which runs a C++ body so that no exception
// or Error crosses into the caller — each becomes a VkmhaResult and a one-line message.
#pragma once

#include "result.h"
#include "vkmha/vkmha.h"

#include <new>
#include <string>

namespace vkmha::plugin {

void set_last_error(std::string message);
const char* last_error();
VkmhaResult to_result(ErrorCode code);

// Records `error` as the thread's last error and returns its code.
VkmhaResult fail(const Error& error);
VkmhaResult fail(ErrorCode code, std::string message);

template <typename F> VkmhaResult guarded(F&& body) noexcept {
    try {
        set_last_error({});
        return body();
    } catch (const std::bad_alloc&) {
        return fail(ErrorCode::out_of_memory, "out of host memory");
    } catch (const std::exception& e) {
        return fail(ErrorCode::internal, std::string("internal error: ") + e.what());
    } catch (...) {
        return fail(ErrorCode::internal, "internal error: unknown exception");
    }
}

} // namespace vkmha::plugin
