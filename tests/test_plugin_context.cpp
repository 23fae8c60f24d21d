// The C ABI's entry: libvkmha.so loaded with dlopen, the version negotiation of vkmhaGetProcTable, what an engine
// must enable before it creates its device, what an own-mode context says about itself, and pipeline-cache data
// carried from one context to the next.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

// The public header by path: the test target does not link libvkmha (nor take its include directory), on purpose.
#include "vkmha/vkmha.h"

#include "support/call_infos.h"
#include "support/engine_device.h"
#include "support/engine_frame.h"
#include "support/host_io.h"
#include "support/host_model.h"
#include "support/plugin_api.h"
#include "support/run_inputs.h"

#include <doctest/doctest.h>

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using vkmha::test::api;
using vkmha::test::check_engine_quiet;
using vkmha::test::check_no_validation_messages;
using vkmha::test::context_properties;
using vkmha::test::ContextHandle;
using vkmha::test::create_model;
using vkmha::test::EngineDevice;
using vkmha::test::HostModel;
using vkmha::test::library;
using vkmha::test::Library;
using vkmha::test::LogCapture;
using vkmha::test::make_inputs;
using vkmha::test::make_model;
using vkmha::test::ModelHandle;
using vkmha::test::ModelSpec;
using vkmha::test::own_context_info;
using vkmha::test::require_engine;
using vkmha::test::run_and_check;
using vkmha::test::session_info;
using vkmha::test::SessionHandle;

} // namespace

TEST_SUITE("plugin") {

    TEST_CASE("vkmhaGetProcTable: negotiates the version and fills only tableSize bytes") {
        // A program that does not link libvkmha finds the entry point only through dlopen.
        CHECK(dlsym(RTLD_DEFAULT, "vkmhaGetProcTable") == nullptr);
        const Library& lib = library();
        REQUIRE_MESSAGE(lib.error.empty(), lib.error);
        const PFN_vkmhaGetProcTable get = lib.get_proc_table;
        const VkmhaProcTable& t = api();

        SUBCASE("the header version fills every entry") {
            VkmhaProcTable full{};
            REQUIRE(get(VKMHA_HEADER_VERSION, &full, sizeof full) == VKMHA_SUCCESS);
            CHECK(VKMHA_API_VERSION_MAJOR(full.apiVersion) == 1);
            CHECK(VKMHA_API_VERSION_MINOR(full.apiVersion) >= VKMHA_API_VERSION_MINOR(VKMHA_HEADER_VERSION));
            const void* entries[] = {reinterpret_cast<const void*>(full.getLastError),
                                     reinterpret_cast<const void*>(full.getDeviceRequirements),
                                     reinterpret_cast<const void*>(full.enumerateDevices),
                                     reinterpret_cast<const void*>(full.createContext),
                                     reinterpret_cast<const void*>(full.destroyContext),
                                     reinterpret_cast<const void*>(full.getContextProperties),
                                     reinterpret_cast<const void*>(full.getPipelineCacheData),
                                     reinterpret_cast<const void*>(full.createModel),
                                     reinterpret_cast<const void*>(full.destroyModel),
                                     reinterpret_cast<const void*>(full.getModelMemoryRequirements),
                                     reinterpret_cast<const void*>(full.getModelProperties),
                                     reinterpret_cast<const void*>(full.getSessionMemoryRequirements),
                                     reinterpret_cast<const void*>(full.createSession),
                                     reinterpret_cast<const void*>(full.destroySession),
                                     reinterpret_cast<const void*>(full.recordAttention),
                                     reinterpret_cast<const void*>(full.getStageTimings),
                                     reinterpret_cast<const void*>(full.submit),
                                     reinterpret_cast<const void*>(full.wait),
                                     reinterpret_cast<const void*>(full.readOutputs),
                                     reinterpret_cast<const void*>(full.stageName)};
            for (size_t i = 0; i < std::size(entries); ++i)
                CHECK_MESSAGE(entries[i] != nullptr, "entry ", i, " is NULL");
            // A different patch level of the same version is accepted.
            VkmhaProcTable patched{};
            CHECK(get(VKMHA_MAKE_API_VERSION(1, 0, 7), &patched, sizeof patched) == VKMHA_SUCCESS);
            CHECK((patched.createContext != nullptr));
        }

        SUBCASE("a newer minor, another major or an older major is refused, naming the version") {
            struct Case {
                uint32_t version;
                const char* text;
            };
            for (const Case c :
                 {Case{VKMHA_MAKE_API_VERSION(2, 0, 0), "2.0"}, Case{VKMHA_MAKE_API_VERSION(1, 99, 0), "1.99"},
                  Case{VKMHA_MAKE_API_VERSION(0, 9, 0), "0.9"}}) {
                CAPTURE(std::string(c.text));
                VkmhaProcTable untouched;
                std::memset(&untouched, 0xAB, sizeof untouched);
                const VkmhaResult r = get(c.version, &untouched, sizeof untouched);
                const std::string message = t.getLastError();
                CHECK(r == VKMHA_ERROR_VERSION_NOT_SUPPORTED);
                CHECK_MESSAGE(message.find(c.text) != std::string::npos, message);
                bool all_ab = true;
                for (size_t i = 0; i < sizeof untouched; ++i)
                    all_ab = all_ab && reinterpret_cast<const uint8_t*>(&untouched)[i] == 0xAB;
                CHECK_MESSAGE(all_ab, "a refused negotiation wrote into the table");
            }
        }

        SUBCASE("a NULL table or a table too small for anything is refused") {
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, get(VKMHA_HEADER_VERSION, nullptr, sizeof(VkmhaProcTable)),
                           "pTable");
            VkmhaProcTable tiny{};
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, get(VKMHA_HEADER_VERSION, &tiny, sizeof(uint32_t)),
                           "tableSize", "4");
        }

        SUBCASE("an older caller's shorter table is filled only up to tableSize") {
            VkmhaProcTable partial;
            std::memset(&partial, 0xCD, sizeof partial);
            const size_t size = offsetof(VkmhaProcTable, createContext);
            REQUIRE(get(VKMHA_HEADER_VERSION, &partial, size) == VKMHA_SUCCESS);
            CHECK((partial.getLastError == t.getLastError));
            CHECK((partial.getDeviceRequirements != nullptr));
            CHECK((partial.enumerateDevices != nullptr));
            const auto* bytes = reinterpret_cast<const uint8_t*>(&partial);
            bool rest_untouched = true;
            for (size_t i = size; i < sizeof partial; ++i) rest_untouched = rest_untouched && bytes[i] == 0xCD;
            CHECK_MESSAGE(rest_untouched, "bytes past tableSize were written");
        }

        SUBCASE("a newer caller's longer table gets what the library knows, the rest untouched") {
            std::array<uint8_t, sizeof(VkmhaProcTable) + 64> bigger;
            bigger.fill(0xEE);
            REQUIRE(get(VKMHA_HEADER_VERSION, reinterpret_cast<VkmhaProcTable*>(bigger.data()), bigger.size()) ==
                    VKMHA_SUCCESS);
            bool tail_untouched = true;
            for (size_t i = sizeof(VkmhaProcTable); i < bigger.size(); ++i)
                tail_untouched = tail_untouched && bigger[i] == 0xEE;
            CHECK_MESSAGE(tail_untouched, "the library wrote past the table it knows");
            VkmhaProcTable known{};
            std::memcpy(&known, bigger.data(), sizeof known);
            CHECK((known.stageName == t.stageName));
        }

        SUBCASE("getLastError is per thread") {
            VkmhaDeviceRequirements* none = nullptr;
            REQUIRE(t.getDeviceRequirements(none) == VKMHA_ERROR_INVALID_ARGUMENT);
            const std::string here = t.getLastError();
            std::string there = "(not run)";
            std::thread other([&] { there = t.getLastError(); });
            other.join();
            CHECK(!here.empty());
            CHECK(there.empty());
            CHECK(std::string(t.getLastError()) == here);
        }
    }

    TEST_CASE("getDeviceRequirements: names what an engine must enable") {
        const VkmhaProcTable& t = api();
        VkmhaDeviceRequirements req{};
        REQUIRE_VKMHA(t.getDeviceRequirements(&req));
        CHECK(req.minApiVersion >= VK_API_VERSION_1_1);
        CHECK(req.minApiVersion <= VK_API_VERSION_1_3);
        CHECK(req.wantsTimelineSemaphore == VK_TRUE);
        CHECK(req.wantsStorageBuffer16BitAccess == VK_TRUE);
        auto check_names = [](uint32_t count, const char* const* names) {
            if (count) REQUIRE(names != nullptr);
            for (uint32_t i = 0; i < count; ++i) {
                REQUIRE(names[i] != nullptr);
                CHECK(std::strlen(names[i]) > 3);
                CHECK(std::string_view(names[i]).substr(0, 3) == "VK_");
            }
        };
        check_names(req.requiredDeviceExtensionCount, req.ppRequiredDeviceExtensions);
        check_names(req.optionalDeviceExtensionCount, req.ppOptionalDeviceExtensions);
        check_names(req.optionalInstanceExtensionCount, req.ppOptionalInstanceExtensions);
        bool debug_utils = false;
        for (uint32_t i = 0; i < req.optionalInstanceExtensionCount; ++i)
            debug_utils =
                debug_utils || std::strcmp(req.ppOptionalInstanceExtensions[i], VK_EXT_DEBUG_UTILS_EXTENSION_NAME) == 0;
        CHECK(debug_utils);

        // The test device (what the adopt tests use) offers every required extension and the minimum version.
        EngineDevice engine;
        require_engine(engine);
        VkPhysicalDeviceProperties props{};
        vkGetPhysicalDeviceProperties(engine.physical_device(), &props);
        CHECK(props.apiVersion >= req.minApiVersion);
        uint32_t count = 0;
        vkEnumerateDeviceExtensionProperties(engine.physical_device(), nullptr, &count, nullptr);
        std::vector<VkExtensionProperties> available(count);
        vkEnumerateDeviceExtensionProperties(engine.physical_device(), nullptr, &count, available.data());
        for (uint32_t i = 0; i < req.requiredDeviceExtensionCount; ++i) {
            const bool found = std::any_of(available.begin(), available.end(), [&](const VkExtensionProperties& e) {
                return std::strcmp(e.extensionName, req.ppRequiredDeviceExtensions[i]) == 0;
            });
            CHECK_MESSAGE(found, std::string(req.ppRequiredDeviceExtensions[i]));
        }

        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getDeviceRequirements(nullptr), "pRequirements");
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE("own mode: the default device's context describes itself") {
        const VkmhaProcTable& t = api();
        uint32_t count = 0;
        REQUIRE_VKMHA(t.enumerateDevices(&count, nullptr));
        REQUIRE(count >= 1);
        std::vector<std::array<char, 256>> names(count);
        uint32_t capacity = count;
        REQUIRE_VKMHA(t.enumerateDevices(&capacity, reinterpret_cast<char(*)[256]>(names.data())));
        CHECK(capacity == count);

        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log); // pOwnDevice NULL: the best device
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        const VkmhaContextProperties p = context_properties(context.get());
        CHECK(p.sType == VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES);
        CHECK(std::strlen(p.deviceName) > 0);
        CHECK(p.deviceApiVersion >= VK_API_VERSION_1_1);
        CHECK(p.ownsDevice == VK_TRUE);
        CHECK(p.canSubmit == VK_TRUE);
        CHECK(p.debugUtils == VK_TRUE); // the validation layer's run always has VK_EXT_debug_utils
        CHECK(p.subgroupSize >= 1);
        CHECK(p.maxStorageBufferRange >= 1u << 20);
        CHECK(p.validationMessageCount == 0);
        bool listed = false;
        for (const auto& n : names) listed = listed || std::strcmp(n.data(), p.deviceName) == 0;
        CHECK_MESSAGE(listed, std::string(p.deviceName), " is not among enumerateDevices' names");

        // The same device by index and by a piece of its name, in another case.
        int32_t index = -1;
        for (size_t i = 0; i < names.size() && index < 0; ++i)
            if (std::strcmp(names[i].data(), p.deviceName) == 0) index = static_cast<int32_t>(i);
        std::string piece(p.deviceName, std::min<size_t>(std::strlen(p.deviceName), 6));
        std::transform(piece.begin(), piece.end(), piece.begin(), [](char ch) {
            return static_cast<char>(std::isupper(static_cast<unsigned char>(ch)) ? std::tolower(ch)
                                                                                  : std::toupper(ch));
        });
        VkmhaOwnDeviceInfo by_index{VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO, nullptr, index, nullptr};
        VkmhaOwnDeviceInfo by_name{VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO, nullptr, -1, piece.c_str()};
        for (const VkmhaOwnDeviceInfo* own : {&by_index, &by_name}) {
            VkmhaContextCreateInfo ci2 = own_context_info(&log);
            ci2.pOwnDevice = own;
            ContextHandle other;
            REQUIRE_VKMHA(t.createContext(&ci2, other.out()));
            CHECK(std::strcmp(context_properties(other.get()).deviceName, p.deviceName) == 0);
            check_no_validation_messages(other.get(), log);
        }
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("pipeline cache: data from one context seeds the next, garbage is ignored with a warning") {
        const VkmhaProcTable& t = api();
        std::vector<uint8_t> data;
        uint32_t vendor = 0;
        {
            LogCapture log;
            ContextHandle context;
            const VkmhaContextCreateInfo ci = own_context_info(&log);
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            vendor = context_properties(context.get()).vendorId;
            size_t size = 0;
            REQUIRE_VKMHA(t.getPipelineCacheData(context.get(), &size, nullptr));
            REQUIRE(size >= 32); // at least VkPipelineCacheHeaderVersionOne
            data.assign(size, 0);
            size_t capacity = size;
            REQUIRE_VKMHA(t.getPipelineCacheData(context.get(), &capacity, data.data()));
            CHECK(capacity == size);
            uint32_t header[3] = {};
            std::memcpy(header, data.data(), sizeof header);
            CHECK(header[0] >= 32);                                   // headerSize
            CHECK(header[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE); // headerVersion
            CHECK(header[2] == vendor);                               // vendorID
            std::vector<uint8_t> short_buffer(size - 1);
            size_t short_capacity = short_buffer.size();
            CHECK(t.getPipelineCacheData(context.get(), &short_capacity, short_buffer.data()) != VKMHA_SUCCESS);
            CHECK(short_capacity <= short_buffer.size());
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getPipelineCacheData(context.get(), nullptr, nullptr),
                           "pSize");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getPipelineCacheData(nullptr, &size, nullptr), "context");
            check_no_validation_messages(context.get(), log);
        }
        SUBCASE("the data of an earlier run is accepted silently") {
            LogCapture log;
            ContextHandle context;
            VkmhaContextCreateInfo ci = own_context_info(&log);
            ci.pPipelineCacheData = data.data();
            ci.pipelineCacheDataSize = data.size();
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            CHECK_MESSAGE(log.count(VKMHA_LOG_LEVEL_WARNING) == 0, log.text());
            const VkmhaContextProperties p = context_properties(context.get());
            CHECK(p.pipelineCount > 0);
            CHECK(p.pipelinesFromCache >= -1);
            CHECK(p.pipelinesFromCache <= static_cast<int32_t>(p.pipelineCount));
            MESSAGE("pipelines found in the seeded cache: ", p.pipelinesFromCache, " of ", p.pipelineCount);
            HostModel host = make_model(ModelSpec{});
            ModelHandle model;
            create_model(context.get(), host, model);
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(1, 4, 4, true);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            run_and_check(session.get(), host, make_inputs(host.config, {1, 4, 4}, {}, false, false, 3),
                          "cached pipelines");
            check_no_validation_messages(context.get(), log);
        }
        SUBCASE("garbage bytes are ignored with a warning through the log callback") {
            std::vector<uint8_t> garbage(data.size() + 64);
            for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 37 + 11);
            LogCapture log;
            ContextHandle context;
            VkmhaContextCreateInfo ci = own_context_info(&log);
            ci.pPipelineCacheData = garbage.data();
            ci.pipelineCacheDataSize = garbage.size();
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            CHECK_MESSAGE(log.contains(VKMHA_LOG_LEVEL_WARNING, "pipeline cache"), "log:", log.text());
            CHECK(context_properties(context.get()).pipelinesFromCache <= 0); // nothing can come from an empty cache
            HostModel host = make_model(ModelSpec{});
            ModelHandle model;
            create_model(context.get(), host, model);
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(1, 4, 4, true);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            run_and_check(session.get(), host, make_inputs(host.config, {1, 4, 4}, {}, false, false, 3),
                          "after garbage");
            check_no_validation_messages(context.get(), log);
        }
        SUBCASE("a header from another vendor is ignored with a warning") {
            std::vector<uint8_t> foreign = data;
            const uint32_t other_vendor = vendor ^ 0x5A5Au;
            std::memcpy(foreign.data() + 8, &other_vendor, 4);
            LogCapture log;
            ContextHandle context;
            VkmhaContextCreateInfo ci = own_context_info(&log);
            ci.pPipelineCacheData = foreign.data();
            ci.pipelineCacheDataSize = foreign.size();
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            CHECK_MESSAGE(log.contains(VKMHA_LOG_LEVEL_WARNING, "pipeline cache"), "log:", log.text());
            check_no_validation_messages(context.get(), log);
        }
    }

} // TEST_SUITE("plugin")
