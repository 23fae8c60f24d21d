// What the libFuzzer targets (fuzz/) found, as regression tests in the normal suites: each case replays the call the
// crash input made, and the ASan+UBSan build of scripts/test.sh catches a return of the undefined behaviour.
#include "support/c_caller.h"
#include "support/host_model.h"
#include "support/plugin_api.h"

#include "vkmha/vkmha.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>

namespace {

using vkmha::test::api;

// C lets a caller store any 32 bits in an enum field; C++ reading it as the enum was undefined behaviour for values
// past the enumerators' range (UBSan: "load of value 3334915782, which is not a valid value for type
// 'VkmhaStructureType'", c_api_fuzzer, in the pNext walk and in each struct's own sType check).
constexpr uint32_t kForeignType = 0xC6C6C6C6u;

template <typename T> void store_type(T& s, uint32_t type) { std::memcpy(&s.sType, &type, sizeof type); }

// The same for any other enum field a caller writes.
template <typename E> void store_enum(E& field, uint32_t value) {
    static_assert(sizeof(E) == sizeof value);
    std::memcpy(&field, &value, sizeof value);
}

} // namespace

TEST_SUITE("fuzz_regressions") {

    TEST_CASE("sType: any 32 bits, on a struct or chained on one, is refused naming the value") {
        // A struct whose sType the C caller filled with a value no enumerator has, as the first thing checked.
        VkmhaContextCreateInfo ci{};
        store_type(ci, kForeignType);
        vkmha::test::ContextHandle context;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().createContext(&ci, context.out()), "pCreateInfo->sType",
                       "3334915782");
        // The same value on a chained struct: the walk names it and the struct it was chained to.
        struct {
            uint32_t sType;
            const void* pNext;
        } foreign{kForeignType, nullptr};
        VkmhaModelCreateInfo mi{};
        mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
        mi.pNext = &foreign;
        mi.numHeads = 1;
        VkDeviceSize bytes = 0;
        vkmha::test::LogCapture log;
        const VkmhaContextCreateInfo own = vkmha::test::own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&own, context.out()));
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().getModelMemoryRequirements(context.get(), &mi, &bytes),
                       "3334915782", "VkmhaModelCreateInfo");
        VkmhaContextProperties props{};
        store_type(props, kForeignType);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().getContextProperties(context.get(), &props), "3334915782");
    }

    TEST_CASE("enum fields: any 32 bits in a caller's enum field are refused naming the field and the value") {
        vkmha::test::LogCapture log;
        vkmha::test::ContextHandle context;
        VkmhaContextCreateInfo ci = vkmha::test::own_context_info(&log);
        store_enum(ci.deviceMode, kForeignType);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().createContext(&ci, context.out()), "deviceMode",
                       "3334915782");
        ci = vkmha::test::own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));

        const vkmha::test::HostModel host = vkmha::test::make_model({});
        std::vector<VkmhaTensor> views = vkmha::test::tensor_views(host.tensors);
        VkDeviceSize bytes = 0;
        {
            VkmhaModelCreateInfo mi = vkmha::test::model_info(host.config.num_heads, views);
            store_enum(mi.precision, kForeignType);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().getModelMemoryRequirements(context.get(), &mi, &bytes),
                           "precision", "3334915782");
        }
        {
            std::vector<VkmhaTensor> bad = views;
            store_enum(bad[0].dataType, kForeignType);
            VkmhaModelCreateInfo mi = vkmha::test::model_info(host.config.num_heads, bad);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().getModelMemoryRequirements(context.get(), &mi, &bytes),
                           "dataType", "3334915782");
        }
        for (int field = 0; field < 2; ++field) {
            CAPTURE(field);
            VkmhaModelAttentionInfo attention{};
            attention.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
            if (field == 0)
                store_enum(attention.ropeLayout, kForeignType);
            else
                store_enum(attention.ropeScaling, kForeignType);
            VkmhaModelCreateInfo mi = vkmha::test::model_info(host.config.num_heads, views);
            mi.pNext = &attention;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().getModelMemoryRequirements(context.get(), &mi, &bytes),
                           field == 0 ? "ropeLayout" : "ropeScaling", "3334915782");
        }

        vkmha::test::ModelHandle model;
        vkmha::test::create_model(context.get(), host, model);
        VkmhaSessionCreateInfo si{};
        si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
        si.maxBatch = 1;
        si.maxQueryLength = si.maxKeyLength = 4;
        si.hostIo = VK_TRUE;
        vkmha::test::SessionHandle session;
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
        const std::vector<float> query(4 * host.config.embed_dim, 0.5f);
        for (int field = 0; field < 2; ++field) {
            CAPTURE(field);
            VkmhaHostSubmitInfo hi{};
            hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
            hi.batch = 1;
            hi.queryLength = hi.keyLength = 4;
            hi.pQuery = query.data();
            store_enum(field == 0 ? hi.keyPaddingMaskType : hi.attnMaskType, kForeignType);
            uint64_t value = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().submit(session.get(), &hi, &value),
                           field == 0 ? "keyPaddingMaskType" : "attnMaskType", "3334915782");
        }
        // A function's enum argument too, passed from C as a C engine would.
        CHECK(std::string(vkmha_test_stage_name_of_bits(&api(), kForeignType)) == "unknown");
    }
}
