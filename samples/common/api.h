// api.h: how the sample programs that link libvkmha reach its C API: the proc table, with every failed call reported
// through the program's own fail function, and a context on a device of its own picked by a --device argument.
#pragma once

#include "vkmha/vkmha.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace vkmha::samples {

class Api {
  public:
    // Takes a one-line message and does not return: it ends the program or throws to where handles are released.
    using Fail = void (*)(const std::string& message);

    explicit Api(Fail fail) : m_fail(fail) {
        if (vkmhaGetProcTable(VKMHA_HEADER_VERSION, &m_t, sizeof m_t) != VKMHA_SUCCESS)
            m_fail("vkmhaGetProcTable failed");
    }

    const VkmhaProcTable* operator->() const { return &m_t; }

    // Fails with "what: <the library's last error>" unless `result` is VKMHA_SUCCESS.
    void check(VkmhaResult result, const std::string& what) const {
        if (result != VKMHA_SUCCESS) m_fail(what + ": " + m_t.getLastError());
    }

    // `device` as --device takes it: "" (vkmha's pick), an index, or a name substring. vkmha's warnings go to stderr
    // as "program: message"; `program` must outlive the context.
    VkmhaContext create_own_context(const std::string& device, const char* program) const {
        VkmhaOwnDeviceInfo own{};
        own.sType = VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO;
        own.deviceIndex = -1;
        if (!device.empty()) {
            if (device.find_first_not_of("0123456789") == std::string::npos) {
                errno = 0;
                const unsigned long index = std::strtoul(device.c_str(), nullptr, 10);
                if (errno || index > 1024) m_fail("--device '" + device + "' is not a device index");
                own.deviceIndex = static_cast<int32_t>(index);
            } else {
                own.pDeviceName = device.c_str();
            }
        }
        VkmhaContextCreateInfo ci{};
        ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
        ci.deviceMode = VKMHA_DEVICE_MODE_OWN;
        ci.pOwnDevice = &own;
        ci.pfnLogCallback = [](VkmhaLogLevel level, const char* message, void* user_data) {
            if (level >= VKMHA_LOG_LEVEL_WARNING)
                std::fprintf(stderr, "%s: %s\n", static_cast<const char*>(user_data), message);
        };
        ci.pLogUserData = const_cast<char*>(program); // the callback only reads it
        VkmhaContext context = nullptr;
        check(m_t.createContext(&ci, &context),
              "--device '" + (device.empty() ? std::string("default") : device) + "'");
        return context;
    }

  private:
    VkmhaProcTable m_t{};
    Fail m_fail;
};

} // namespace vkmha::samples
