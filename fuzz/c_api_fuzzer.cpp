// libFuzzer target: the C ABI (plugin/include/vkmha/vkmha.h) driven by arbitrary bytes, as a careless or hostile
// caller would drive it: sequences of calls with wrong sTypes, unknown pNext structs, zero, huge and edge shapes,
// NULL pointers, out-of-range indices and flags, on one own-mode context (lavapipe) created once. Every call must
// return a result, never crash, hang or touch memory it was not given (ASan, UBSan). What vkmha trusts the caller
// for is kept honest here: host pointers hold what the header says, and Vulkan handles are real or VK_NULL_HANDLE
// (records get a NULL command buffer, which vkmha refuses). Objects are destroyed at the end of each input.
// sTypes take any 32 bits, as C allows; other enum fields stay within [0, 2^31), the C++ range of the header's enums
// (vkmha reads those as the enum type: a C caller passing 2^31 or more there is outside what the header defines).
#include "api_calls.h"
#include "fuzz_input.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

using vkmha::fuzz::FuzzInput;
using vkmha::fuzz::World;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    if (!World::instance().ready()) {
        std::fprintf(stderr, "c_api_fuzzer: no context: %s\n", World::instance().why().c_str());
        std::exit(1);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzInput in(data, size);
    World& world = World::instance();
    // At most 64 calls per input: enough for any sequence that matters, and short runs.
    for (uint32_t step = 0; step < 64 && !in.empty(); ++step) world.call(in);
    world.destroy_all();
    return 0;
}
