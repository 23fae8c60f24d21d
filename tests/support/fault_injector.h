// Fault injection for the adopt-mode C ABI: a vkGetInstanceProcAddr that hands vkmha wrapped entry points, so a
// test can count every fallible Vulkan call vkmha makes, fail the Nth one with a chosen VkResult, fail the Nth
// host allocation made through the VkAllocationCallbacks an engine passes, and count creates and destroys per
// object type so that a leak shows. One injector per process (a PFN has no user data); tests use it one at a time.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

namespace vkmha::test {

class FaultInjector {
  public:
    static FaultInjector& instance();

    // The wrapping vkGetInstanceProcAddr to put in VkmhaAdoptDeviceInfo::pfnGetInstanceProcAddr.
    static PFN_vkGetInstanceProcAddr get_instance_proc_addr();

    // Counts from zero again; the `fail_at`-th fallible call (1-based; 0: none) returns `result` without reaching
    // the driver.
    void arm_call(uint64_t fail_at, VkResult result);
    // Counts from zero again; the `occurrence`-th call (1-based) of the function `name` returns `result`.
    void arm_named(const std::string& name, uint64_t occurrence, VkResult result);
    // Counts from zero again; the `fail_at`-th host allocation through allocator() (1-based; 0: none) returns NULL,
    // unless it happens inside a vkCmd* call (see skipped_in_recording()).
    void arm_allocation(uint64_t fail_at);
    void disarm();

    uint64_t calls() const;       // fallible calls since the last arm
    uint64_t allocations() const; // host allocations since the last arm
    bool fired() const;           // the armed failure happened
    // The Vulkan call that failed (a call whose host allocation failed, for allocation sweeps; the call the skipped
    // allocation was in, when skipped_in_recording()); empty if none.
    std::string failed_call() const;
    // Allocation sweeps: the armed allocation fell inside a vkCmd* call and was not failed. Such a call cannot report
    // a failure (Vulkan defers it to vkEndCommandBuffer), and lavapipe segfaults or drops the command there, so a
    // failure there tests the driver, not vkmha.
    bool skipped_in_recording() const;

    // Objects created minus destroyed, per type (only types with a nonzero balance).
    std::map<std::string, int64_t> live_objects() const;
    // The same for one type (e.g. "VkQueryPool"): 0 when none is live.
    int64_t live_objects(const std::string& type) const;
    VkAllocationCallbacks allocator();
    int64_t live_allocations() const;

    // Commands recorded (vkCmd* calls, by name) and the pipelines vkCmdBindPipeline bound, since reset_commands():
    // what a record does, e.g. whether it writes timestamps or which pipelines it dispatches.
    void reset_commands();
    uint64_t commands(const std::string& name) const;
    std::set<uint64_t> bound_pipelines() const; // VkPipeline handles as integers

    // Wrapper plumbing (public for the wrappers in fault_injector.cpp).
    void count_command(const char* name);
    void pipeline_bound(VkPipeline);
    VkResult before_call(const char* name);
    void after_create(const char* type, int64_t count);
    void* allocate(size_t size, size_t alignment);
    void release(void* memory);
    static thread_local int t_in_recording;
    static thread_local const char* t_current_call;

  private:
    FaultInjector() = default;
    mutable std::mutex m_mutex;
    uint64_t m_calls = 0, m_call_fail_at = 0;
    std::string m_fail_name;
    uint64_t m_name_calls = 0, m_name_fail_at = 0;
    VkResult m_result = VK_SUCCESS;
    uint64_t m_allocations = 0, m_allocation_fail_at = 0;
    bool m_fired = false, m_skipped = false;
    std::string m_failed_call;
    std::map<std::string, int64_t> m_objects;
    int64_t m_live_allocations = 0;
    std::map<std::string, uint64_t> m_commands;
    std::set<uint64_t> m_bound_pipelines;
};

} // namespace vkmha::test
