// The C boundary itself: struct layouts frozen per the ABI rules (docs/DESIGN.md), sType and pNext refused by the
// struct's name, and the order in which a call checks its arguments.
#include "support/plugin_api.h"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <string>

using vkmha::test::api;
using vkmha::test::ContextHandle;
using vkmha::test::ModelHandle;
using vkmha::test::SessionHandle;

// A released struct's layout never changes (vkmha.h, "ABI rules"): these are 1.2's, on LP64 targets. A failure here
// means a field was added, removed, moved or resized; grow the struct through a chained extension struct instead.
#if UINTPTR_MAX == UINT64_MAX && !defined(_WIN32)
static_assert(sizeof(VkmhaDeviceRequirements) == 56);
static_assert(sizeof(VkmhaOwnDeviceInfo) == 32);
static_assert(sizeof(VkmhaAdoptDeviceInfo) == 128);
static_assert(sizeof(VkmhaContextCreateInfo) == 72);
static_assert(sizeof(VkmhaContextProperties) == 328);
static_assert(sizeof(VkmhaTensor) == 56);
static_assert(sizeof(VkmhaModelCreateInfo) == 64);
static_assert(sizeof(VkmhaModelProperties) == 48);
static_assert(sizeof(VkmhaSessionCreateInfo) == 56);
static_assert(sizeof(VkmhaBufferBinding) == 32);
static_assert(sizeof(VkmhaRecordInfo) == 280);
static_assert(sizeof(VkmhaHostSubmitInfo) == 80);
static_assert(sizeof(VkmhaKvCacheCreateInfo) == 32);
static_assert(sizeof(VkmhaSequenceStep) == 8);
static_assert(sizeof(VkmhaCachedRecordInfo) == 216);
static_assert(sizeof(VkmhaHostCachedSubmitInfo) == 72);
static_assert(sizeof(VkmhaPrefillJobCreateInfo) == 32);
static_assert(sizeof(VkmhaPrefillRecordInfo) == 184);
static_assert(sizeof(VkmhaPrefillStatus) == 28);
static_assert(sizeof(VkmhaModelAttentionInfo) == 88);
static_assert(sizeof(VkmhaPositionsInfo) == 96);
static_assert(sizeof(VkmhaTensorLayout) == 12);
static_assert(sizeof(VkmhaQkvRecordInfo) == 328);
static_assert(sizeof(VkmhaHostQkvSubmitInfo) == 80);
static_assert(sizeof(VkmhaCachedQkvRecordInfo) == 264);
static_assert(sizeof(VkmhaHostCachedQkvSubmitInfo) == 72);
static_assert(sizeof(VkmhaStageTiming) == 8);
// The table only grows at its end: the entries of 1.0, 1.1 and 1.2 keep their places.
static_assert(offsetof(VkmhaProcTable, readOutputs) == 144);
static_assert(offsetof(VkmhaProcTable, recordPrefill) == 248);
static_assert(offsetof(VkmhaProcTable, submitCachedQkv) == 280);
#endif

namespace {

// A struct no vkmha version defines, chained where it does not belong.
constexpr auto kForeignType = static_cast<VkmhaStructureType>(1000777);
struct Foreign {
    VkmhaStructureType sType = kForeignType;
    const void* pNext = nullptr;
};

// An attention-only model (no weights to read) and a session on one context: enough to reach every check.
struct Setup {
    ContextHandle context;
    ModelHandle model;
    SessionHandle session;
    Setup() {
        const VkmhaProcTable& t = api();
        const VkmhaContextCreateInfo ci = vkmha::test::own_context_info(nullptr);
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        VkmhaModelAttentionInfo attention{};
        attention.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
        attention.attentionOnly = VK_TRUE;
        attention.headDim = 8;
        VkmhaModelCreateInfo mi{};
        mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
        mi.pNext = &attention;
        mi.numHeads = 2;
        REQUIRE_VKMHA(t.createModel(context.get(), &mi, model.out()));
        const VkmhaSessionCreateInfo si = session_info();
        REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
    }
    static VkmhaSessionCreateInfo session_info() {
        VkmhaSessionCreateInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
        si.maxBatch = si.maxQueryLength = si.maxKeyLength = 4;
        si.hostIo = VK_TRUE;
        return si;
    }
};

} // namespace

TEST_SUITE("plugin_boundary") {
    TEST_CASE("pNext: every struct whose pNext must be NULL refuses a chained struct, naming itself") {
        const VkmhaProcTable& t = api();
        const Foreign foreign;
        const std::string number = std::to_string(static_cast<uint32_t>(kForeignType));
        Setup s;

        SUBCASE("VkmhaContextProperties, an output struct") {
            VkmhaContextProperties props{};
            props.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
            props.pNext = const_cast<Foreign*>(&foreign);
            props.subgroupSize = 12345;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getContextProperties(s.context.get(), &props),
                           "VkmhaContextProperties", number, "NULL");
            CHECK(props.subgroupSize == 12345); // refused before anything was written
            props.pNext = nullptr;
            REQUIRE_VKMHA(t.getContextProperties(s.context.get(), &props));
            CHECK(props.subgroupSize > 0);
        }
        SUBCASE("VkmhaOwnDeviceInfo and VkmhaAdoptDeviceInfo") {
            VkmhaOwnDeviceInfo own{};
            own.sType = VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO;
            own.pNext = &foreign;
            own.deviceIndex = -1;
            VkmhaContextCreateInfo ci = vkmha::test::own_context_info(nullptr);
            ci.pOwnDevice = &own;
            VkmhaContext none = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&ci, &none), "VkmhaOwnDeviceInfo", number);
            // Refused before any handle in it is looked at.
            VkmhaAdoptDeviceInfo adopt{};
            adopt.sType = VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO;
            adopt.pNext = &foreign;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            ci.pOwnDevice = nullptr;
            ci.pAdoptDevice = &adopt;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&ci, &none), "VkmhaAdoptDeviceInfo", number);
            CHECK(none == nullptr);
        }
        SUBCASE("create-infos: session, KV cache, prefill job") {
            VkmhaSessionCreateInfo si = Setup::session_info();
            si.pNext = &foreign;
            VkmhaSession no_session = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createSession(s.model.get(), &si, &no_session),
                           "VkmhaSessionCreateInfo", number);
            VkDeviceSize bytes = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getSessionMemoryRequirements(s.model.get(), &si, &bytes),
                           "VkmhaSessionCreateInfo", number);
            VkmhaKvCacheCreateInfo kci{};
            kci.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
            kci.sequences = kci.capacity = 1;
            vkmha::test::CacheHandle cache;
            REQUIRE_VKMHA(t.createKvCache(s.model.get(), &kci, cache.out()));
            kci.pNext = &foreign;
            VkmhaKvCache no_cache = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createKvCache(s.model.get(), &kci, &no_cache),
                           "VkmhaKvCacheCreateInfo", number);
            VkmhaPrefillJobCreateInfo pci{};
            pci.sType = VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO;
            pci.pNext = &foreign;
            pci.cache = cache.get();
            pci.tokenCount = 1;
            VkmhaPrefillJob no_job = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createPrefillJob(s.model.get(), &pci, &no_job),
                           "VkmhaPrefillJobCreateInfo", number);
            CHECK(no_session == nullptr);
            CHECK(no_cache == nullptr);
            CHECK(no_job == nullptr);
        }
    }

    TEST_CASE("sType: a wrong sType is refused, naming the parameter and the struct it must be") {
        const VkmhaProcTable& t = api();
        Setup s;
        const auto wrong = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
        const std::string got = std::to_string(static_cast<uint32_t>(wrong));

        VkmhaContextCreateInfo ci = vkmha::test::own_context_info(nullptr);
        ci.sType = wrong;
        VkmhaContext no_context = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&ci, &no_context), "pCreateInfo", got,
                       "VkmhaContextCreateInfo");
        VkmhaContextProperties props{};
        props.sType = wrong;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getContextProperties(s.context.get(), &props), "pProperties",
                       "VkmhaContextProperties");
        VkmhaModelCreateInfo mi{};
        mi.sType = wrong;
        VkmhaModel no_model = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(s.context.get(), &mi, &no_model), "pCreateInfo",
                       "VkmhaModelCreateInfo");
        VkmhaSessionCreateInfo si = Setup::session_info();
        si.sType = wrong;
        VkmhaSession no_session = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createSession(s.model.get(), &si, &no_session), "pCreateInfo",
                       "VkmhaSessionCreateInfo");
        VkmhaQkvRecordInfo ri{};
        ri.sType = wrong;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttentionQkv(s.session.get(), VK_NULL_HANDLE, &ri),
                       "pInfo", "VkmhaQkvRecordInfo");
        VkmhaHostQkvSubmitInfo hi{};
        hi.sType = wrong;
        uint64_t value = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitQkv(s.session.get(), &hi, &value), "pInfo",
                       "VkmhaHostQkvSubmitInfo");
        CHECK(no_context == nullptr);
        CHECK(no_model == nullptr);
        CHECK(no_session == nullptr);
    }

    TEST_CASE("argument order: a submit names pTimelineValue, then the session, then pInfo") {
        const VkmhaProcTable& t = api();
        Setup s;
        VkmhaHostQkvSubmitInfo hi{};
        hi.sType = VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO;
        uint64_t value = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitQkv(nullptr, nullptr, nullptr), "pTimelineValue");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitQkv(nullptr, &hi, &value), "session is NULL");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submitQkv(s.session.get(), nullptr, &value), "pInfo is NULL");
        VkmhaQkvRecordInfo ri{};
        ri.sType = VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttentionQkv(nullptr, VK_NULL_HANDLE, &ri),
                       "session is NULL");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttentionQkv(s.session.get(), VK_NULL_HANDLE, nullptr),
                       "pInfo is NULL");
    }

    TEST_CASE("enums: stage names follow VkmhaStage, and a value past the last is unknown") {
        const VkmhaProcTable& t = api();
        CHECK(std::string(t.stageName(VKMHA_STAGE_Q_PROJ)) == "q_proj");
        CHECK(std::string(t.stageName(VKMHA_STAGE_ATTENTION)) == "attention");
        CHECK(std::string(t.stageName(VKMHA_STAGE_COPY)) == "copy");
        CHECK(std::string(t.stageName(static_cast<VkmhaStage>(VKMHA_STAGE_COPY + 1))) == "unknown");
    }
}
