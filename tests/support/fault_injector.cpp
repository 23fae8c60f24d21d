// FaultInjector: wrapped Vulkan entry points, counted and failed on request; see fault_injector.h.
#undef VK_NO_PROTOTYPES // the real vkGetInstanceProcAddr is the loader's, as an engine's would be
#include "support/fault_injector.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace vkmha::test {

thread_local int FaultInjector::t_in_recording = 0;
thread_local const char* FaultInjector::t_current_call = nullptr;

namespace {

FaultInjector& injector() { return FaultInjector::instance(); }

// Names the call in progress (for host-allocation failures) and, for calls that return no VkResult, marks that a
// failure inside them cannot be reported.
struct CallScope {
    const char* previous;
    bool cannot_report;
    CallScope(const char* name, bool void_call) : previous(FaultInjector::t_current_call), cannot_report(void_call) {
        FaultInjector::t_current_call = name;
        if (cannot_report) ++FaultInjector::t_in_recording;
    }
    ~CallScope() {
        FaultInjector::t_current_call = previous;
        if (cannot_report) --FaultInjector::t_in_recording;
    }
};

// Command buffers die with their pool: the pool remembers how many are still allocated from it.
std::mutex g_pool_mutex;
std::unordered_map<uint64_t, int64_t> g_pool_buffers;
uint64_t key_of(VkCommandPool pool) { return reinterpret_cast<uint64_t>(pool); }

#define VKFI_FALLIBLE(name, PARAMS, ARGS)                                                                              \
    PFN_##name real_##name = nullptr;                                                                                  \
    VKAPI_ATTR VkResult VKAPI_CALL wrap_##name PARAMS {                                                                \
        if (VkResult injected = injector().before_call(#name); injected != VK_SUCCESS) return injected;                \
        CallScope scope(#name, false);                                                                                 \
        return real_##name ARGS;                                                                                       \
    }
#define VKFI_CREATE(name, type, PARAMS, ARGS, COUNT)                                                                   \
    PFN_##name real_##name = nullptr;                                                                                  \
    VKAPI_ATTR VkResult VKAPI_CALL wrap_##name PARAMS {                                                                \
        if (VkResult injected = injector().before_call(#name); injected != VK_SUCCESS) return injected;                \
        CallScope scope(#name, false);                                                                                 \
        const VkResult r = real_##name ARGS;                                                                           \
        if (r == VK_SUCCESS) injector().after_create(type, COUNT);                                                     \
        return r;                                                                                                      \
    }
#define VKFI_DESTROY(name, type, PARAMS, ARGS, HANDLE)                                                                 \
    PFN_##name real_##name = nullptr;                                                                                  \
    VKAPI_ATTR void VKAPI_CALL wrap_##name PARAMS {                                                                    \
        CallScope scope(#name, true);                                                                                  \
        if (HANDLE != VK_NULL_HANDLE) injector().after_create(type, -1);                                               \
        real_##name ARGS;                                                                                              \
    }
#define VKFI_VOID(name, PARAMS, ARGS)                                                                                  \
    PFN_##name real_##name = nullptr;                                                                                  \
    VKAPI_ATTR void VKAPI_CALL wrap_##name PARAMS {                                                                    \
        CallScope scope(#name, true);                                                                                  \
        injector().count_command(#name);                                                                               \
        real_##name ARGS;                                                                                              \
    }

using Alloc = const VkAllocationCallbacks*;

VKFI_CREATE(vkAllocateMemory, "VkDeviceMemory", (VkDevice d, const VkMemoryAllocateInfo* i, Alloc a, VkDeviceMemory* m),
            (d, i, a, m), 1)
VKFI_DESTROY(vkFreeMemory, "VkDeviceMemory", (VkDevice d, VkDeviceMemory m, Alloc a), (d, m, a), m)
VKFI_FALLIBLE(vkMapMemory, (VkDevice d, VkDeviceMemory m, VkDeviceSize o, VkDeviceSize s, VkMemoryMapFlags f, void** p),
              (d, m, o, s, f, p))
VKFI_FALLIBLE(vkFlushMappedMemoryRanges, (VkDevice d, uint32_t n, const VkMappedMemoryRange* r), (d, n, r))
VKFI_FALLIBLE(vkInvalidateMappedMemoryRanges, (VkDevice d, uint32_t n, const VkMappedMemoryRange* r), (d, n, r))
VKFI_CREATE(vkCreateBuffer, "VkBuffer", (VkDevice d, const VkBufferCreateInfo* i, Alloc a, VkBuffer* b), (d, i, a, b),
            1)
VKFI_DESTROY(vkDestroyBuffer, "VkBuffer", (VkDevice d, VkBuffer b, Alloc a), (d, b, a), b)
VKFI_FALLIBLE(vkBindBufferMemory, (VkDevice d, VkBuffer b, VkDeviceMemory m, VkDeviceSize o), (d, b, m, o))
VKFI_CREATE(vkCreateShaderModule, "VkShaderModule",
            (VkDevice d, const VkShaderModuleCreateInfo* i, Alloc a, VkShaderModule* m), (d, i, a, m), 1)
VKFI_DESTROY(vkDestroyShaderModule, "VkShaderModule", (VkDevice d, VkShaderModule m, Alloc a), (d, m, a), m)
VKFI_CREATE(vkCreatePipelineCache, "VkPipelineCache",
            (VkDevice d, const VkPipelineCacheCreateInfo* i, Alloc a, VkPipelineCache* c), (d, i, a, c), 1)
VKFI_DESTROY(vkDestroyPipelineCache, "VkPipelineCache", (VkDevice d, VkPipelineCache c, Alloc a), (d, c, a), c)
VKFI_FALLIBLE(vkGetPipelineCacheData, (VkDevice d, VkPipelineCache c, size_t* s, void* p), (d, c, s, p))
VKFI_CREATE(vkCreateComputePipelines, "VkPipeline",
            (VkDevice d, VkPipelineCache c, uint32_t n, const VkComputePipelineCreateInfo* i, Alloc a, VkPipeline* p),
            (d, c, n, i, a, p), n)
VKFI_DESTROY(vkDestroyPipeline, "VkPipeline", (VkDevice d, VkPipeline p, Alloc a), (d, p, a), p)
VKFI_CREATE(vkCreatePipelineLayout, "VkPipelineLayout",
            (VkDevice d, const VkPipelineLayoutCreateInfo* i, Alloc a, VkPipelineLayout* l), (d, i, a, l), 1)
VKFI_DESTROY(vkDestroyPipelineLayout, "VkPipelineLayout", (VkDevice d, VkPipelineLayout l, Alloc a), (d, l, a), l)
VKFI_CREATE(vkCreateDescriptorSetLayout, "VkDescriptorSetLayout",
            (VkDevice d, const VkDescriptorSetLayoutCreateInfo* i, Alloc a, VkDescriptorSetLayout* l), (d, i, a, l), 1)
VKFI_DESTROY(vkDestroyDescriptorSetLayout, "VkDescriptorSetLayout", (VkDevice d, VkDescriptorSetLayout l, Alloc a),
             (d, l, a), l)
VKFI_CREATE(vkCreateDescriptorPool, "VkDescriptorPool",
            (VkDevice d, const VkDescriptorPoolCreateInfo* i, Alloc a, VkDescriptorPool* p), (d, i, a, p), 1)
VKFI_DESTROY(vkDestroyDescriptorPool, "VkDescriptorPool", (VkDevice d, VkDescriptorPool p, Alloc a), (d, p, a), p)
VKFI_FALLIBLE(vkAllocateDescriptorSets, (VkDevice d, const VkDescriptorSetAllocateInfo* i, VkDescriptorSet* s),
              (d, i, s))
VKFI_CREATE(vkCreateCommandPool, "VkCommandPool",
            (VkDevice d, const VkCommandPoolCreateInfo* i, Alloc a, VkCommandPool* p), (d, i, a, p), 1)
VKFI_CREATE(vkCreateFence, "VkFence", (VkDevice d, const VkFenceCreateInfo* i, Alloc a, VkFence* f), (d, i, a, f), 1)
VKFI_DESTROY(vkDestroyFence, "VkFence", (VkDevice d, VkFence f, Alloc a), (d, f, a), f)
VKFI_CREATE(vkCreateSemaphore, "VkSemaphore", (VkDevice d, const VkSemaphoreCreateInfo* i, Alloc a, VkSemaphore* s),
            (d, i, a, s), 1)
VKFI_DESTROY(vkDestroySemaphore, "VkSemaphore", (VkDevice d, VkSemaphore s, Alloc a), (d, s, a), s)
VKFI_CREATE(vkCreateQueryPool, "VkQueryPool", (VkDevice d, const VkQueryPoolCreateInfo* i, Alloc a, VkQueryPool* q),
            (d, i, a, q), 1)
VKFI_DESTROY(vkDestroyQueryPool, "VkQueryPool", (VkDevice d, VkQueryPool q, Alloc a), (d, q, a), q)
VKFI_FALLIBLE(vkBeginCommandBuffer, (VkCommandBuffer c, const VkCommandBufferBeginInfo* i), (c, i))
VKFI_FALLIBLE(vkEndCommandBuffer, (VkCommandBuffer c), (c))
VKFI_FALLIBLE(vkResetCommandBuffer, (VkCommandBuffer c, VkCommandBufferResetFlags f), (c, f))
VKFI_FALLIBLE(vkWaitForFences, (VkDevice d, uint32_t n, const VkFence* f, VkBool32 all, uint64_t t), (d, n, f, all, t))
VKFI_FALLIBLE(vkResetFences, (VkDevice d, uint32_t n, const VkFence* f), (d, n, f))
VKFI_FALLIBLE(vkGetQueryPoolResults,
              (VkDevice d, VkQueryPool q, uint32_t first, uint32_t n, size_t s, void* p, VkDeviceSize st,
               VkQueryResultFlags f),
              (d, q, first, n, s, p, st, f))
VKFI_FALLIBLE(vkQueueSubmit, (VkQueue q, uint32_t n, const VkSubmitInfo* s, VkFence f), (q, n, s, f))
VKFI_FALLIBLE(vkDeviceWaitIdle, (VkDevice d), (d))
VKFI_FALLIBLE(vkWaitSemaphores, (VkDevice d, const VkSemaphoreWaitInfo* i, uint64_t t), (d, i, t))
VKFI_FALLIBLE(vkWaitSemaphoresKHR, (VkDevice d, const VkSemaphoreWaitInfo* i, uint64_t t), (d, i, t))
VKFI_FALLIBLE(vkGetSemaphoreCounterValue, (VkDevice d, VkSemaphore s, uint64_t* v), (d, s, v))
VKFI_FALLIBLE(vkGetSemaphoreCounterValueKHR, (VkDevice d, VkSemaphore s, uint64_t* v), (d, s, v))
VKFI_VOID(vkUpdateDescriptorSets,
          (VkDevice d, uint32_t w, const VkWriteDescriptorSet* pw, uint32_t c, const VkCopyDescriptorSet* pc),
          (d, w, pw, c, pc))
VKFI_VOID(vkGetBufferMemoryRequirements, (VkDevice d, VkBuffer b, VkMemoryRequirements* r), (d, b, r))
VKFI_VOID(vkUnmapMemory, (VkDevice d, VkDeviceMemory m), (d, m))
PFN_vkCmdBindPipeline real_vkCmdBindPipeline = nullptr;
VKAPI_ATTR void VKAPI_CALL wrap_vkCmdBindPipeline(VkCommandBuffer c, VkPipelineBindPoint b, VkPipeline p) {
    CallScope scope("vkCmdBindPipeline", true);
    injector().count_command("vkCmdBindPipeline");
    injector().pipeline_bound(p);
    real_vkCmdBindPipeline(c, b, p);
}
VKFI_VOID(vkCmdBindDescriptorSets,
          (VkCommandBuffer c, VkPipelineBindPoint b, VkPipelineLayout l, uint32_t f, uint32_t n,
           const VkDescriptorSet* s, uint32_t dn, const uint32_t* d),
          (c, b, l, f, n, s, dn, d))
VKFI_VOID(vkCmdPushConstants,
          (VkCommandBuffer c, VkPipelineLayout l, VkShaderStageFlags s, uint32_t o, uint32_t n, const void* p),
          (c, l, s, o, n, p))
VKFI_VOID(vkCmdDispatch, (VkCommandBuffer c, uint32_t x, uint32_t y, uint32_t z), (c, x, y, z))
VKFI_VOID(vkCmdPipelineBarrier,
          (VkCommandBuffer c, VkPipelineStageFlags s, VkPipelineStageFlags d, VkDependencyFlags f, uint32_t mn,
           const VkMemoryBarrier* m, uint32_t bn, const VkBufferMemoryBarrier* b, uint32_t in,
           const VkImageMemoryBarrier* i),
          (c, s, d, f, mn, m, bn, b, in, i))
VKFI_VOID(vkCmdCopyBuffer, (VkCommandBuffer c, VkBuffer s, VkBuffer d, uint32_t n, const VkBufferCopy* r),
          (c, s, d, n, r))
VKFI_VOID(vkCmdFillBuffer, (VkCommandBuffer c, VkBuffer b, VkDeviceSize o, VkDeviceSize s, uint32_t v), (c, b, o, s, v))
VKFI_VOID(vkCmdResetQueryPool, (VkCommandBuffer c, VkQueryPool q, uint32_t f, uint32_t n), (c, q, f, n))
VKFI_VOID(vkCmdWriteTimestamp, (VkCommandBuffer c, VkPipelineStageFlagBits s, VkQueryPool q, uint32_t i), (c, s, q, i))

// Command buffers: counted per pool, since destroying a pool frees those still allocated from it.
PFN_vkAllocateCommandBuffers real_vkAllocateCommandBuffers = nullptr;
VKAPI_ATTR VkResult VKAPI_CALL wrap_vkAllocateCommandBuffers(VkDevice d, const VkCommandBufferAllocateInfo* i,
                                                             VkCommandBuffer* c) {
    if (VkResult injected = injector().before_call("vkAllocateCommandBuffers"); injected != VK_SUCCESS) return injected;
    CallScope scope("vkAllocateCommandBuffers", false);
    const VkResult r = real_vkAllocateCommandBuffers(d, i, c);
    if (r == VK_SUCCESS) {
        std::lock_guard<std::mutex> lock(g_pool_mutex);
        g_pool_buffers[key_of(i->commandPool)] += i->commandBufferCount;
        injector().after_create("VkCommandBuffer", i->commandBufferCount);
    }
    return r;
}
PFN_vkFreeCommandBuffers real_vkFreeCommandBuffers = nullptr;
VKAPI_ATTR void VKAPI_CALL wrap_vkFreeCommandBuffers(VkDevice d, VkCommandPool p, uint32_t n,
                                                     const VkCommandBuffer* c) {
    CallScope scope("vkFreeCommandBuffers", true);
    const int64_t freed = std::count_if(c, c + n, [](VkCommandBuffer b) { return b != VK_NULL_HANDLE; });
    {
        std::lock_guard<std::mutex> lock(g_pool_mutex);
        g_pool_buffers[key_of(p)] -= freed;
    }
    injector().after_create("VkCommandBuffer", -freed);
    real_vkFreeCommandBuffers(d, p, n, c);
}
PFN_vkDestroyCommandPool real_vkDestroyCommandPool = nullptr;
VKAPI_ATTR void VKAPI_CALL wrap_vkDestroyCommandPool(VkDevice d, VkCommandPool p, Alloc a) {
    CallScope scope("vkDestroyCommandPool", true);
    if (p != VK_NULL_HANDLE) {
        int64_t left = 0;
        {
            std::lock_guard<std::mutex> lock(g_pool_mutex);
            left = g_pool_buffers[key_of(p)];
            g_pool_buffers.erase(key_of(p));
        }
        injector().after_create("VkCommandBuffer", -left);
        injector().after_create("VkCommandPool", -1);
    }
    real_vkDestroyCommandPool(d, p, a);
}

struct Wrapped {
    PFN_vkVoidFunction wrapper;
    PFN_vkVoidFunction* real;
};

const std::unordered_map<std::string, Wrapped>& wrapped() {
    static const std::unordered_map<std::string, Wrapped> table = [] {
        std::unordered_map<std::string, Wrapped> t;
#define VKFI_ENTRY(name)                                                                                               \
    t[#name] = {reinterpret_cast<PFN_vkVoidFunction>(&wrap_##name),                                                    \
                reinterpret_cast<PFN_vkVoidFunction*>(&real_##name)};
        VKFI_ENTRY(vkAllocateMemory)
        VKFI_ENTRY(vkFreeMemory)
        VKFI_ENTRY(vkMapMemory)
        VKFI_ENTRY(vkFlushMappedMemoryRanges)
        VKFI_ENTRY(vkInvalidateMappedMemoryRanges)
        VKFI_ENTRY(vkCreateBuffer)
        VKFI_ENTRY(vkDestroyBuffer)
        VKFI_ENTRY(vkBindBufferMemory)
        VKFI_ENTRY(vkCreateShaderModule)
        VKFI_ENTRY(vkDestroyShaderModule)
        VKFI_ENTRY(vkCreatePipelineCache)
        VKFI_ENTRY(vkDestroyPipelineCache)
        VKFI_ENTRY(vkGetPipelineCacheData)
        VKFI_ENTRY(vkCreateComputePipelines)
        VKFI_ENTRY(vkDestroyPipeline)
        VKFI_ENTRY(vkCreatePipelineLayout)
        VKFI_ENTRY(vkDestroyPipelineLayout)
        VKFI_ENTRY(vkCreateDescriptorSetLayout)
        VKFI_ENTRY(vkDestroyDescriptorSetLayout)
        VKFI_ENTRY(vkCreateDescriptorPool)
        VKFI_ENTRY(vkDestroyDescriptorPool)
        VKFI_ENTRY(vkAllocateDescriptorSets)
        VKFI_ENTRY(vkCreateCommandPool)
        VKFI_ENTRY(vkDestroyCommandPool)
        VKFI_ENTRY(vkAllocateCommandBuffers)
        VKFI_ENTRY(vkFreeCommandBuffers)
        VKFI_ENTRY(vkCreateFence)
        VKFI_ENTRY(vkDestroyFence)
        VKFI_ENTRY(vkCreateSemaphore)
        VKFI_ENTRY(vkDestroySemaphore)
        VKFI_ENTRY(vkCreateQueryPool)
        VKFI_ENTRY(vkDestroyQueryPool)
        VKFI_ENTRY(vkBeginCommandBuffer)
        VKFI_ENTRY(vkEndCommandBuffer)
        VKFI_ENTRY(vkResetCommandBuffer)
        VKFI_ENTRY(vkWaitForFences)
        VKFI_ENTRY(vkResetFences)
        VKFI_ENTRY(vkGetQueryPoolResults)
        VKFI_ENTRY(vkQueueSubmit)
        VKFI_ENTRY(vkDeviceWaitIdle)
        VKFI_ENTRY(vkWaitSemaphores)
        VKFI_ENTRY(vkWaitSemaphoresKHR)
        VKFI_ENTRY(vkGetSemaphoreCounterValue)
        VKFI_ENTRY(vkGetSemaphoreCounterValueKHR)
        VKFI_ENTRY(vkUpdateDescriptorSets)
        VKFI_ENTRY(vkGetBufferMemoryRequirements)
        VKFI_ENTRY(vkUnmapMemory)
        VKFI_ENTRY(vkCmdBindPipeline)
        VKFI_ENTRY(vkCmdBindDescriptorSets)
        VKFI_ENTRY(vkCmdPushConstants)
        VKFI_ENTRY(vkCmdDispatch)
        VKFI_ENTRY(vkCmdPipelineBarrier)
        VKFI_ENTRY(vkCmdCopyBuffer)
        VKFI_ENTRY(vkCmdFillBuffer)
        VKFI_ENTRY(vkCmdResetQueryPool)
        VKFI_ENTRY(vkCmdWriteTimestamp)
#undef VKFI_ENTRY
        return t;
    }();
    return table;
}

PFN_vkGetDeviceProcAddr g_real_get_device_proc_addr = nullptr;

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL wrap_vkGetDeviceProcAddr(VkDevice device, const char* name) {
    PFN_vkVoidFunction real = g_real_get_device_proc_addr(device, name);
    if (!real || !name) return real;
    auto it = wrapped().find(name);
    if (it == wrapped().end()) return real;
    *it->second.real = real; // one adopted device at a time: the latest lookup is the one in use
    return it->second.wrapper;
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL wrap_vkGetInstanceProcAddr(VkInstance instance, const char* name) {
    if (name && std::strcmp(name, "vkGetInstanceProcAddr") == 0)
        return reinterpret_cast<PFN_vkVoidFunction>(&wrap_vkGetInstanceProcAddr);
    PFN_vkVoidFunction real = vkGetInstanceProcAddr(instance, name);
    if (real && name && std::strcmp(name, "vkGetDeviceProcAddr") == 0) {
        g_real_get_device_proc_addr = reinterpret_cast<PFN_vkGetDeviceProcAddr>(real);
        return reinterpret_cast<PFN_vkVoidFunction>(&wrap_vkGetDeviceProcAddr);
    }
    return real;
}

struct AllocationHeader {
    void* base;
    size_t size;
};

VKAPI_ATTR void* VKAPI_CALL allocation(void* user, size_t size, size_t alignment, VkSystemAllocationScope) {
    return static_cast<FaultInjector*>(user)->allocate(size, alignment);
}
VKAPI_ATTR void VKAPI_CALL release(void* user, void* memory) { static_cast<FaultInjector*>(user)->release(memory); }
VKAPI_ATTR void* VKAPI_CALL reallocation(void* user, void* original, size_t size, size_t alignment,
                                         VkSystemAllocationScope scope) {
    if (!original) return allocation(user, size, alignment, scope);
    if (size == 0) {
        release(user, original);
        return nullptr;
    }
    void* fresh = allocation(user, size, alignment, scope);
    if (!fresh) return nullptr;
    std::memcpy(fresh, original, std::min(size, (static_cast<AllocationHeader*>(original) - 1)->size));
    release(user, original);
    return fresh;
}

} // namespace

FaultInjector& FaultInjector::instance() {
    static FaultInjector injector;
    return injector;
}

PFN_vkGetInstanceProcAddr FaultInjector::get_instance_proc_addr() { return &wrap_vkGetInstanceProcAddr; }

void FaultInjector::arm_call(uint64_t fail_at, VkResult result) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_calls = m_allocations = m_allocation_fail_at = 0;
    m_call_fail_at = fail_at;
    m_name_fail_at = 0;
    m_result = result;
    m_fired = m_skipped = false;
    m_failed_call.clear();
}

void FaultInjector::arm_named(const std::string& name, uint64_t occurrence, VkResult result) {
    arm_call(0, result);
    std::lock_guard<std::mutex> lock(m_mutex);
    m_fail_name = name;
    m_name_calls = 0;
    m_name_fail_at = occurrence;
}

void FaultInjector::arm_allocation(uint64_t fail_at) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_calls = m_allocations = m_call_fail_at = m_name_fail_at = 0;
    m_allocation_fail_at = fail_at;
    m_fired = m_skipped = false;
    m_failed_call.clear();
}

void FaultInjector::disarm() {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_call_fail_at = m_allocation_fail_at = m_name_fail_at = 0;
}

uint64_t FaultInjector::calls() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_calls;
}
uint64_t FaultInjector::allocations() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_allocations;
}
bool FaultInjector::fired() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_fired;
}
std::string FaultInjector::failed_call() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_failed_call;
}
bool FaultInjector::skipped_in_recording() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_skipped;
}

std::map<std::string, int64_t> FaultInjector::live_objects() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    std::map<std::string, int64_t> live;
    for (const auto& [type, count] : m_objects)
        if (count != 0) live[type] = count;
    return live;
}

int64_t FaultInjector::live_objects(const std::string& type) const {
    std::lock_guard<std::mutex> lock(m_mutex);
    const auto it = m_objects.find(type);
    return it == m_objects.end() ? 0 : it->second;
}

VkAllocationCallbacks FaultInjector::allocator() {
    VkAllocationCallbacks c{};
    c.pUserData = this;
    c.pfnAllocation = &allocation;
    c.pfnReallocation = &reallocation;
    c.pfnFree = &vkmha::test::release;
    return c;
}

int64_t FaultInjector::live_allocations() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_live_allocations;
}

VkResult FaultInjector::before_call(const char* name) {
    std::lock_guard<std::mutex> lock(m_mutex);
    ++m_calls;
    const bool named = m_name_fail_at != 0 && m_fail_name == name && ++m_name_calls == m_name_fail_at;
    if (!named && (m_call_fail_at == 0 || m_calls != m_call_fail_at)) return VK_SUCCESS;
    m_fired = true;
    m_failed_call = name;
    return m_result;
}

void FaultInjector::count_command(const char* name) {
    std::lock_guard<std::mutex> lock(m_mutex);
    ++m_commands[name];
}

void FaultInjector::pipeline_bound(VkPipeline pipeline) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_bound_pipelines.insert(reinterpret_cast<uint64_t>(pipeline));
}

void FaultInjector::reset_commands() {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_commands.clear();
    m_bound_pipelines.clear();
}

uint64_t FaultInjector::commands(const std::string& name) const {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto it = m_commands.find(name);
    return it == m_commands.end() ? 0 : it->second;
}

std::set<uint64_t> FaultInjector::bound_pipelines() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_bound_pipelines;
}

void FaultInjector::after_create(const char* type, int64_t count) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_objects[type] += count;
}

void* FaultInjector::allocate(size_t size, size_t alignment) {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        ++m_allocations;
        if (m_allocation_fail_at != 0 && m_allocations == m_allocation_fail_at) {
            if (t_in_recording > 0) {
                m_skipped = true;
                m_failed_call = t_current_call ? t_current_call : "?";
            } else {
                m_fired = true;
                m_failed_call = t_current_call ? t_current_call : "(no Vulkan call)";
                return nullptr;
            }
        }
        ++m_live_allocations;
    }
    size = std::max<size_t>(size, 1);
    alignment = std::max(alignment, alignof(AllocationHeader));
    void* base = std::malloc(size + alignment + sizeof(AllocationHeader));
    if (!base) return nullptr;
    uintptr_t p = reinterpret_cast<uintptr_t>(base) + sizeof(AllocationHeader);
    p = (p + alignment - 1) & ~(uintptr_t(alignment) - 1);
    AllocationHeader* h = reinterpret_cast<AllocationHeader*>(p) - 1;
    h->base = base;
    h->size = size;
    return reinterpret_cast<void*>(p);
}

void FaultInjector::release(void* memory) {
    if (!memory) return;
    std::free((static_cast<AllocationHeader*>(memory) - 1)->base);
    std::lock_guard<std::mutex> lock(m_mutex);
    --m_live_allocations;
}

} // namespace vkmha::test
