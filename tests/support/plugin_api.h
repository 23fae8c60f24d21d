// Scaffolding shared by the C ABI suites (tests/test_plugin_*.cpp): libvkmha.so loaded with dlopen the
// way an engine that does not link it loads a plugin, checks of a call's result and getLastError, vkmha handles
// destroyed through the table, and a log callback that keeps what a context said.
// The test target does not link libvkmha: everything goes through the table that api() returns.
#pragma once

#include "vkmha/vkmha.h"

#include <cstddef>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace vkmha::test {

class EngineDevice;

// The library as dlopen found it; never dlclosed, since the table's function pointers are used until the process
// exits. `error` says why there is no table.
struct Library {
    void* handle = nullptr;
    PFN_vkmhaGetProcTable get_proc_table = nullptr;
    VkmhaProcTable table{};
    std::string error;
};

const Library& library();

// The table at VKMHA_HEADER_VERSION; REQUIREs that the library loaded.
const VkmhaProcTable& api();

// The calling thread's last error, as a string (doctest prints a const char* as a pointer).
std::string last_error();

std::string result_name(VkmhaResult r);

// Checks a failed call: its result, and that getLastError (read right after it) names each of `names`.
void check_failure(VkmhaResult got, VkmhaResult want, const std::string& message, const std::vector<std::string>& names,
                   const char* call, const char* file, int line);

#define EXPECT_FAILURE(want, call, ...)                                                                                \
    do {                                                                                                               \
        const VkmhaResult result_ = (call);                                                                            \
        const std::string message_ = ::vkmha::test::api().getLastError();                                              \
        ::vkmha::test::check_failure(result_, want, message_, {__VA_ARGS__}, #call, __FILE__, __LINE__);               \
    } while (0)

#define REQUIRE_VKMHA(call)                                                                                            \
    do {                                                                                                               \
        const VkmhaResult result_ = (call);                                                                            \
        REQUIRE_MESSAGE(result_ == VKMHA_SUCCESS, #call " returned ", ::vkmha::test::result_name(result_), ": ",       \
                        ::vkmha::test::last_error());                                                                  \
    } while (0)

// A vkmha handle destroyed through the table. Declare them in creation order (context, model, cache, session, ...)
// so that they are destroyed backwards, in the order the header asks for.
template <typename T> class Owned {
  public:
    using Destroy = void(VKMHA_CALL*)(T);
    explicit Owned(Destroy destroy) : m_destroy(destroy) {}
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() { reset(); }
    void reset() {
        if (m_handle) m_destroy(m_handle);
        m_handle = nullptr;
    }
    T* out() {
        reset();
        return &m_handle;
    }
    T get() const { return m_handle; }

  private:
    Destroy m_destroy;
    T m_handle = nullptr;
};

struct ContextHandle : Owned<VkmhaContext> {
    ContextHandle() : Owned(api().destroyContext) {}
};
struct ModelHandle : Owned<VkmhaModel> {
    ModelHandle() : Owned(api().destroyModel) {}
};
struct SessionHandle : Owned<VkmhaSession> {
    SessionHandle() : Owned(api().destroySession) {}
};
struct CacheHandle : Owned<VkmhaKvCache> {
    CacheHandle() : Owned(api().destroyKvCache) {}
};
struct JobHandle : Owned<VkmhaPrefillJob> {
    JobHandle() : Owned(api().destroyPrefillJob) {}
};
struct ArenaHandle : Owned<VkmhaScratchArena> {
    ArenaHandle() : Owned(api().destroyScratchArena) {}
};

// Everything a context's log callback said.
class LogCapture {
  public:
    static void VKMHA_CALL callback(VkmhaLogLevel level, const char* message, void* user);
    // Whether an entry at `min_level` or above contains `text`.
    bool contains(VkmhaLogLevel min_level, std::string_view text) const;
    size_t count(VkmhaLogLevel min_level) const;
    // Every entry, one a line, for a failure message.
    std::string text() const;

  private:
    struct Entry {
        VkmhaLogLevel level;
        std::string text;
    };
    mutable std::mutex m_mutex;
    std::vector<Entry> m_entries;
};

// Own mode on the best device; `log` (if not null) receives the context's log.
VkmhaContextCreateInfo own_context_info(LogCapture* log);

VkmhaContextProperties context_properties(VkmhaContext context);

// Own mode: the validation layer (on for every test run) must have said nothing about vkmha's device.
void check_no_validation_messages(VkmhaContext context, const LogCapture& log);

// Adopt mode on the engine's device: its instance, device and queue, timeline semaphores on, and `cache` (may be
// VK_NULL_HANDLE) as the pipeline cache.
VkmhaAdoptDeviceInfo adopt_info(const EngineDevice& e, VkPipelineCache cache);
// A context adopting the engine's device with the defaults adopt_info gives.
void adopt_context(const EngineDevice& engine, ContextHandle& context);

// `n` values drawn uniformly from [-scale, scale].
std::vector<float> random_floats(std::mt19937& rng, size_t n, float scale);

} // namespace vkmha::test
