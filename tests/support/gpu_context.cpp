// The tests' shared Vulkan context and validation-message accounting.
#include "support/gpu_context.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace vkmha::test {
namespace {
std::atomic<uint64_t> g_messages{0};
std::mutex g_mutex;
std::string g_last;
} // namespace

std::unique_ptr<Context> make_context(const KernelPolicyOverrides& overrides) {
    auto device = Device::create_own({}, [](LogLevel level, const std::string& message) {
        if (message.rfind("validation: ", 0) == 0) {
            g_messages.fetch_add(1);
            std::lock_guard<std::mutex> lock(g_mutex);
            g_last = message;
        }
        if (level >= LogLevel::warning) std::fprintf(stderr, "[vkmha] %s\n", message.c_str());
    });
    if (!device) {
        std::fprintf(stderr, "cannot create the test device: %s\n", device.error().message.c_str());
        std::abort(); // the test binary, not the library: nothing can run without a device
    }
    auto context = Context::create(std::move(device.value()), {}, overrides);
    if (!context) {
        std::fprintf(stderr, "cannot create the test context: %s\n", context.error().message.c_str());
        std::abort();
    }
    return std::move(context.value());
}

Context& gpu_context() {
    static std::unique_ptr<Context> ctx = make_context({});
    return *ctx;
}

Context& gpu_context_portable() {
    static std::unique_ptr<Context> ctx = [] {
        KernelPolicyOverrides overrides;
        overrides.allow_subgroup_arithmetic = false;
        overrides.allow_cpu_tiling = false;
        return make_context(overrides);
    }();
    return *ctx;
}

Context& gpu_context_compact() {
    static std::unique_ptr<Context> ctx = [] {
        KernelPolicyOverrides overrides;
        overrides.allow_cpu_tiling = false;
        overrides.force_compact_tiles = true;
        return make_context(overrides);
    }();
    return *ctx;
}

uint64_t validation_messages() { return g_messages.load(); }

std::string last_validation_message() {
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_last;
}

ValidationGuard::ValidationGuard() : m_before(validation_messages()) { (void)gpu_context(); }

ValidationGuard::~ValidationGuard() {
    const uint64_t after = validation_messages();
    CHECK_MESSAGE(after == m_before, "validation messages: ", after - m_before, "; last: ", last_validation_message());
}

} // namespace vkmha::test
