// libFuzzer target: the safetensors reader (host/io/safetensors.cpp) on arbitrary bytes, as a weights file from the
// internet reaches it. A file it accepts must serialize back and parse to the same tensors, and the weight map must
// take or refuse it without crashing (docs/SECURITY.md). ASan and UBSan turn any out-of-bounds access into a crash.
#include "io/safetensors.h"
#include "io/weight_map.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace vkmha::io;
    auto tensors = parse_safetensors(data, size, "fuzz.safetensors");
    if (!tensors) return 0;
    // What the reader accepts, the writer writes back and the reader reads again the same (metadata aside).
    auto bytes = serialize_safetensors(tensors.value());
    if (bytes) {
        auto again = parse_safetensors(bytes->data(), bytes->size(), "round trip");
        if (!again || again->size() != tensors->size()) std::abort();
        // The writer orders tensors its own way: match them by name.
        for (const Tensor& b : tensors.value()) {
            const Tensor* a = find_tensor(again.value(), b.name);
            if (!a || a->dtype != b.dtype || a->shape != b.shape || a->data != b.data) std::abort();
        }
    }
    // The weight map reads names, ranks and shapes: any head count, either naming scheme.
    for (uint32_t heads : {1u, 3u, 4u}) (void)map_attention_weights(tensors.value(), heads, 0, "fuzz.safetensors");
    return 0;
}
