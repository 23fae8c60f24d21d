// Soak (issue 16, item 6): the whole object graph — context, model, session, KV cache, prefill job — created, used
// once and destroyed over and over through the C ABI, in adopt mode through the fault injector's wrapping
// vkGetInstanceProcAddr (disarmed: it only counts). After every round the Vulkan objects vkmha created and its host
// allocations through the engine's VkAllocationCallbacks must be back to zero, and over the run the process's
// resident memory must stay flat. VKMHA_SOAK_ROUNDS sets the rounds (default 12, a few seconds; the long form,
// 1000, and its figures are in docs/SECURITY.md, "Soak").
#undef VK_NO_PROTOTYPES // the engine side calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

#include "vkmha/vkmha.h"

#include "cpu_reference.h"
#include "support/engine_device.h"
#include "support/fault_injector.h"
#include "support/host_model.h"
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using vkmha::test::api;
using vkmha::test::CacheHandle;
using vkmha::test::ContextHandle;
using vkmha::test::EngineDevice;
using vkmha::test::FaultInjector;
using vkmha::test::JobHandle;
using vkmha::test::ModelHandle;
using vkmha::test::SessionHandle;

constexpr uint32_t kEmbed = 24, kHeads = 3, kKvHeads = 1, kCapacity = 8, kPrefillTokens = 5;
// Resident growth allowed between the end of the warm-up and the last round: malloc's and the driver's noise, plus
// what the Khronos validation layer (always on in these suites) keeps per destroyed handle on the engine's device,
// measured at about 22 KiB per round (without the layer the heap in use stays within 11 KiB over 60 rounds; see
// docs/SECURITY.md, "Soak"). A round that leaked its context would cost megabytes: a model, a session's scratch.
constexpr int64_t kBaseGrowthBytes = 4 << 20;
// ASan's quarantine and TSan's shadow hold freed memory on purpose: resident memory means nothing there (the object
// and allocation counts still do).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif
constexpr int64_t kLayerBytesPerRound = 48 << 10;

const vkmha::test::HostModel& layer() {
    static const vkmha::test::HostModel m = vkmha::test::make_model(
        {.embed = kEmbed, .heads = kHeads, .kv_heads = kKvHeads, .naming = vkmha::test::Naming::llama, .seed = 61});
    return m;
}

uint32_t rounds() {
    const char* env = std::getenv("VKMHA_SOAK_ROUNDS");
    const long n = env ? std::strtol(env, nullptr, 10) : 12;
    return n > 0 ? static_cast<uint32_t>(n) : 12;
}

// Resident set size from /proc/self/statm (its second field, in pages).
int64_t resident_bytes() {
    long pages = 0, resident = 0;
    FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return -1;
    const int n = std::fscanf(f, "%ld %ld", &pages, &resident);
    std::fclose(f);
    return n == 2 ? int64_t(resident) * sysconf(_SC_PAGESIZE) : -1;
}

std::string live_text(const std::map<std::string, int64_t>& live) {
    std::string s;
    for (const auto& [type, n] : live) s += type + " " + std::to_string(n) + "; ";
    return s;
}

// One round: every object made, a cached step submitted and checked, a prefill job left unfinished, all destroyed.
void one_round(EngineDevice& engine, const VkAllocationCallbacks& allocator, const std::vector<uint8_t>& cache_data,
               const std::vector<float>& token, const std::vector<float>& expected, std::vector<uint8_t>* cache_out) {
    ContextHandle context;
    ModelHandle model;
    CacheHandle cache;
    SessionHandle session;
    JobHandle job;
    VkmhaAdoptDeviceInfo a = vkmha::test::adopt_info(engine, VK_NULL_HANDLE);
    a.pfnGetInstanceProcAddr = FaultInjector::get_instance_proc_addr();
    a.pAllocator = &allocator;
    VkmhaContextCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
    ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
    ci.pAdoptDevice = &a;
    ci.pPipelineCacheData = cache_data.empty() ? nullptr : cache_data.data();
    ci.pipelineCacheDataSize = cache_data.size();
    REQUIRE_VKMHA(api().createContext(&ci, context.out()));
    vkmha::test::create_model(context.get(), layer(), model);
    VkmhaKvCacheCreateInfo ki{};
    ki.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
    ki.sequences = 2;
    ki.capacity = kCapacity;
    REQUIRE_VKMHA(api().createKvCache(model.get(), &ki, cache.out()));
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = 1;
    si.maxQueryLength = si.maxKeyLength = kCapacity;
    si.hostIo = VK_TRUE;
    REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
    VkmhaPrefillJobCreateInfo pi{};
    pi.sType = VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO;
    pi.cache = cache.get();
    pi.sequence = 1;
    pi.tokenCount = kPrefillTokens;
    REQUIRE_VKMHA(api().createPrefillJob(model.get(), &pi, job.out()));

    const VkmhaSequenceStep step{0, 1};
    VkmhaHostCachedSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO;
    hi.cache = cache.get();
    hi.stepCount = 1;
    hi.pSteps = &step;
    hi.pQuery = token.data();
    uint64_t value = 0;
    REQUIRE_VKMHA(api().submitCached(session.get(), &hi, &value));
    REQUIRE_VKMHA(api().wait(session.get(), value, UINT64_MAX));
    std::vector<float> out(kEmbed, std::nanf(""));
    REQUIRE_VKMHA(api().readOutputs(session.get(), value, out.data(), out.size(), nullptr, 0));
    for (size_t i = 0; i < out.size(); ++i)
        REQUIRE_MESSAGE(std::fabs(out[i] - expected[i]) <= 1e-4 + 1e-3 * std::fabs(expected[i]), "element ", i, ": ",
                        out[i], " vs reference ", expected[i]);
    if (cache_out) {
        size_t size = 0;
        REQUIRE_VKMHA(api().getPipelineCacheData(context.get(), &size, nullptr));
        cache_out->resize(size);
        REQUIRE_VKMHA(api().getPipelineCacheData(context.get(), &size, cache_out->data()));
    }
}

} // namespace

TEST_SUITE("soak") {

    TEST_CASE("create and destroy: context, model, session, cache and prefill job leave no object and no memory") {
        EngineDevice engine;
        REQUIRE_MESSAGE(engine.ok(), "engine device: ", engine.error());
        FaultInjector& fi = FaultInjector::instance();
        fi.disarm();
        const VkAllocationCallbacks allocator = fi.allocator();
        std::mt19937 rng(616);
        const std::vector<float> token = vkmha::test::random_floats(rng, kEmbed, 1.0f);
        vkmha::AttentionOptions o;
        o.causal = true;
        vkmha::AttentionInputs in;
        in.query = in.key = in.value = token.data();
        auto ref = vkmha::reference_attention(layer().config, layer().weights, {1, 1, 1}, o, in);
        REQUIRE(ref.ok());
        const std::vector<float> expected = ref.value().output;

        // The first round fills a pipeline cache, so that every later context compiles nothing (as an engine that
        // keeps the cache between runs).
        std::vector<uint8_t> cache_data;
        one_round(engine, allocator, {}, token, expected, &cache_data);
        const uint32_t n = rounds(), warm_up = std::max(3u, n / 10);
        int64_t rss_after_warm_up = 0;
        for (uint32_t r = 0; r < n; ++r) {
            one_round(engine, allocator, cache_data, token, expected, nullptr);
            const auto live = fi.live_objects();
            REQUIRE_MESSAGE(live.empty(), "round ", r, ": Vulkan objects left: ", live_text(live));
            REQUIRE_MESSAGE(fi.live_allocations() == 0, "round ", r, ": ", fi.live_allocations(),
                            " host allocations left");
            if (r + 1 == warm_up) rss_after_warm_up = resident_bytes();
        }
        const int64_t rss_end = resident_bytes();
        REQUIRE(rss_after_warm_up > 0);
        MESSAGE("soak: ", n, " rounds; resident ", rss_after_warm_up / 1024, " KiB after ", warm_up, " rounds, ",
                rss_end / 1024, " KiB at the end (", (rss_end - rss_after_warm_up) / 1024, " KiB growth)");
        const int64_t allowed = kBaseGrowthBytes + kLayerBytesPerRound * int64_t(n - warm_up);
        CHECK_MESSAGE((kSanitized || rss_end - rss_after_warm_up <= allowed), "resident memory grew by ",
                      (rss_end - rss_after_warm_up) / 1024, " KiB over ", n - warm_up, " rounds");
        engine.destroy();
        CHECK_MESSAGE(engine.validation_messages() == 0, "validation: ", engine.last_validation_message());
    }
}
