// What the libFuzzer targets (fuzz/) found, as regression tests in the normal suites: each case replays the call the
// crash input made, and the ASan+UBSan build of scripts/test.sh catches a return of the undefined behaviour.
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
}
