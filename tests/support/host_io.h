// Own mode through host I/O, as a tool without its own Vulkan code uses vkmha: submit, wait and readOutputs checked
// against the CPU reference, and a fresh context, model and host-I/O session to run them on.
#pragma once

#include "support/check_matches.h"
#include "support/host_model.h"
#include "support/plugin_api.h"
#include "support/run_inputs.h"

#include "vkmha/vkmha.h"

#include <string>

namespace vkmha::test {

// submit, wait, readOutputs, compared with the CPU reference.
void run_and_check(VkmhaSession session, const HostModel& m, const RunInputs& in, const std::string& what,
                   ElementwiseTolerance tol = kFp32Tolerance);

// A model in a fresh own-mode context with a host-I/O session, checked once against the reference.
struct OwnSetup {
    LogCapture log;
    ContextHandle context;
    HostModel host;
    ModelHandle model;
    SessionHandle session;

    OwnSetup(const ModelSpec& spec, const VkmhaSessionCreateInfo& si);
    // One successful run: proves the handles still work after whatever came before.
    void check_still_works(const std::string& what);
};

} // namespace vkmha::test
