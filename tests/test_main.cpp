// The test runner: turns the Khronos validation layer (with synchronization validation) on for itself and every
// process it starts, and refuses to run without it, so "no validation message" means something.
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
    // Before any Vulkan call: the loader reads these when the first instance is created.
    setenv("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation", 1);
    setenv("VK_LAYER_ENABLES", "VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT", 1);
    setenv("XDG_RUNTIME_DIR", "/tmp", 0);
    uint32_t count = 0;
    vkEnumerateInstanceLayerProperties(&count, nullptr);
    std::vector<VkLayerProperties> props(count);
    vkEnumerateInstanceLayerProperties(&count, props.data());
    bool found = false;
    for (const VkLayerProperties& p : props)
        found = found || std::strcmp(p.layerName, "VK_LAYER_KHRONOS_validation") == 0;
    if (!found) {
        std::fprintf(stderr, "vkmha-tests: the Khronos validation layer is not installed (vulkan-validationlayers)\n");
        return 1;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
