// The test runner: refuses to run without the Khronos validation layer, so "no validation message" means something.
#undef VK_NO_PROTOTYPES // this file calls the loader directly; the library never does
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <vulkan/vulkan.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    const char* layers = std::getenv("VK_INSTANCE_LAYERS");
    if (!layers || !std::strstr(layers, "VK_LAYER_KHRONOS_validation")) {
        std::fprintf(stderr, "vkmha-tests: set VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation (ctest does this)\n");
        return 1;
    }
    uint32_t count = 0;
    vkEnumerateInstanceLayerProperties(&count, nullptr);
    std::vector<VkLayerProperties> props(count);
    vkEnumerateInstanceLayerProperties(&count, props.data());
    bool found = false;
    for (const VkLayerProperties& p : props) found = found || std::strcmp(p.layerName, "VK_LAYER_KHRONOS_validation") == 0;
    if (!found) {
        std::fprintf(stderr, "vkmha-tests: the Khronos validation layer is not installed (vulkan-validationlayers)\n");
        return 1;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
