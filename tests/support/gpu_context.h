// The tests' shared Vulkan context (own mode, default device) and the validation-message guard every GPU test
// uses: the Khronos validation layer is on for the whole run, and any message it reports fails the test.
#pragma once

#include "context.h"

#include <cstdint>

namespace vkmha::test {

Context& gpu_context();
// A second context on the same device with the kernels any device can run as tiled for GPUs: the subgroup-free
// variants, and workgroup tiles on CPU implementations too (lavapipe's default is lane tiles), so every variant
// stays tested on one device.
Context& gpu_context_portable();
// GPU tiles of the compact class (kernel_policy.h: what AMD and mobile devices get) on the same device, with subgroup
// arithmetic where it has it.
Context& gpu_context_compact();
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
