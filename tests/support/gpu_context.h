// The tests' shared Vulkan context (own mode, default device) and the validation-message guard every GPU test
// uses: the Khronos validation layer is on for the whole run, and any message it reports fails the test.
#pragma once

#include "context.h"

#include <cstdint>

namespace vkmha::test {

Context& gpu_context();
// A second context on the same device that uses the subgroup-free kernels, so both variants stay tested.
Context& gpu_context_without_subgroup_ops();
uint64_t validation_messages();
std::string last_validation_message();

// Fails the enclosing test case if any validation message arrives during its lifetime.
class ValidationGuard {
  public:
    ValidationGuard();
    ~ValidationGuard();

  private:
    uint64_t m_before;
};

} // namespace vkmha::test
