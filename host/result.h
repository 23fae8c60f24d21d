// Result<T>: a value or an error (code + one-line message naming the offending value). Nothing in host/
// throws across its public functions; the plugin turns an Error into a VkmhaResult and last-error text.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace vkmha {

enum class ErrorCode {
    invalid_argument, // a caller-given value is wrong (shape, name, dtype, flag)
    io,               // a file could not be read/written or is malformed
    unsupported,      // the device or build cannot do what was asked
    out_of_memory,    // a device/host allocation failed
    budget_exceeded,  // a caller-given memory budget would be exceeded
    out_of_range,     // a shape over a declared capacity
    frame_in_flight,  // a frame slot is still used by a frame the caller has not reported complete
    vulkan,           // a Vulkan call failed
    not_ready,        // results not available yet (poll again)
    timeout,          // a wait ran out of time
    device_lost,      // the device was lost: nothing on it works again (the context says so from then on)
    internal          // a bug in vkmha
};

struct Error {
    ErrorCode code = ErrorCode::internal;
    std::string message;
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

template <typename T> class [[nodiscard]] Result {
  public:
    Result(T value) : m_v(std::move(value)) {}
    Result(Error error) : m_v(std::move(error)) {}

    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    const T& value() const& { return std::get<0>(m_v); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const Error& error() const { return std::get<1>(m_v); }
    Error&& take_error() { return std::get<1>(std::move(m_v)); }

  private:
    std::variant<T, Error> m_v;
};

template <> class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : m_error(std::move(error)), m_ok(false) {}

    bool ok() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    const Error& error() const { return m_error; }
    Error&& take_error() { return std::move(m_error); }

  private:
    Error m_error;
    bool m_ok = true;
};

using Status = Result<void>;

// Propagates an error from an expression returning Result<...>/Status.
#define VKMHA_TRY(expr)                                                                                                \
    do {                                                                                                               \
        auto vkmha_try_result_ = (expr);                                                                               \
        if (!vkmha_try_result_.ok()) return vkmha_try_result_.take_error();                                            \
    } while (0)

} // namespace vkmha
