// Context: one device plus everything built once for it (the kernel policy, pipelines, an upload path). Models and
// sessions hang off a context and must be destroyed before it.
#pragma once

#include "shader_library.h"
#include "vulkan/device.h"

#include <atomic>
#include <memory>
#include <mutex>

namespace vkmha {

class Context {
  public:
    // overrides: narrow the kernel policy chosen for the device (tests run every kernel family on one device).
    static Result<std::unique_ptr<Context>> create(std::unique_ptr<Device> device, const std::vector<uint8_t>& cache,
                                                   const KernelPolicyOverrides& overrides = {});

    const Device& device() const { return *m_device; }
    const ShaderLibrary& shaders() const { return m_shaders; }
    // What vkmha runs on this device; device().limits() says what the device is.
    const KernelPolicy& kernel_policy() const { return m_shaders.policy(); }
    // Builds pipelines only (Device::compile_only): everything that would submit work is refused by name.
    bool compile_only() const { return m_device->compile_only(); }
    // Runs `record` in a one-time command buffer on the context's queue and waits: used only at model creation.
    // Calls from several threads take turns (one pool, one fence).
    template <typename F> Status run_once(F&& record) const;
    // Whether the context's pipelines for a precision have been dispatched once (pipeline_warmup.h): the first model
    // of each precision warms them, later ones only their own.
    bool pipelines_warmed(Precision p) const { return m_warmed_precisions.load() & (1u << static_cast<uint32_t>(p)); }
    void mark_pipelines_warmed(Precision p) const { m_warmed_precisions.fetch_or(1u << static_cast<uint32_t>(p)); }
    // Waits for an upload whose wait failed, so that the pool and fence are not destroyed in use.
    ~Context();

  private:
    Context() = default;
    Status submit_and_wait(VkCommandBuffer) const;
    Status wait_upload(VkCommandBuffer) const;
    Result<VkCommandBuffer> begin_once() const;
    std::unique_ptr<Device> m_device;
    ShaderLibrary m_shaders;
    Handle<VkCommandPool> m_pool;
    Handle<VkFence> m_fence;
    mutable std::mutex m_upload_mutex;
    // An upload whose fence wait failed twice: its command buffer and the fence stay untouched until a wait succeeds.
    mutable VkCommandBuffer m_pending_upload = VK_NULL_HANDLE;
    mutable std::atomic<uint32_t> m_warmed_precisions{0}; // bit p: Precision p's pipelines were warmed
};

template <typename F> Status Context::run_once(F&& record) const {
    std::lock_guard<std::mutex> lock(m_upload_mutex);
    auto cmd = begin_once();
    if (!cmd) return cmd.take_error();
    record(cmd.value());
    return submit_and_wait(cmd.value());
}

} // namespace vkmha
