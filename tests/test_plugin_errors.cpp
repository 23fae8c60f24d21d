// The C ABI's refusals: every entry point given bad arguments fails with a VkmhaResult and a message naming what
// is wrong, records nothing, and leaves its handles working.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

// The public header by path: the test target does not link libvkmha (nor take its include directory), on purpose.
#include "vkmha/vkmha.h"

#include "support/call_infos.h"
#include "support/check_matches.h"
#include "support/engine_buffer.h"
#include "support/engine_device.h"
#include "support/engine_frame.h"
#include "support/host_io.h"
#include "support/host_model.h"
#include "support/plugin_api.h"
#include "support/run_inputs.h"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace {

using vkmha::AttentionOptions;
using vkmha::MaskKind;
using vkmha::test::adopt_info;
using vkmha::test::api;
using vkmha::test::barrier_to_host;
using vkmha::test::begin_command_buffer;
using vkmha::test::check_engine_quiet;
using vkmha::test::check_failure;
using vkmha::test::check_matches;
using vkmha::test::check_model_properties;
using vkmha::test::check_no_validation_messages;
using vkmha::test::context_properties;
using vkmha::test::ContextHandle;
using vkmha::test::create_model;
using vkmha::test::end_submit_wait;
using vkmha::test::engine_buffer;
using vkmha::test::EngineBuffer;
using vkmha::test::EngineDevice;
using vkmha::test::EngineObjects;
using vkmha::test::host_submit_info;
using vkmha::test::HostModel;
using vkmha::test::LogCapture;
using vkmha::test::make_inputs;
using vkmha::test::make_model;
using vkmha::test::model_info;
using vkmha::test::ModelHandle;
using vkmha::test::ModelSpec;
using vkmha::test::Naming;
using vkmha::test::output_count;
using vkmha::test::own_context_info;
using vkmha::test::OwnSetup;
using vkmha::test::record_info;
using vkmha::test::reference;
using vkmha::test::require_engine;
using vkmha::test::run_and_check;
using vkmha::test::RunInputs;
using vkmha::test::session_info;
using vkmha::test::SessionHandle;
using vkmha::test::tensor_views;

} // namespace

TEST_SUITE("plugin") {

    TEST_CASE("bad arguments: context entry points fail with a message and leave nothing broken") {
        const VkmhaProcTable& t = api();
        LogCapture log;

        VkmhaContextCreateInfo ci = own_context_info(&log);
        ContextHandle context;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(nullptr, context.out()), "pCreateInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&ci, nullptr), "pContext");
        {
            VkmhaContextCreateInfo bad = ci;
            bad.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "sType", "expected 1");
            CHECK(context.get() == nullptr);
        }
        {
            VkmhaContextCreateInfo bad = ci;
            bad.deviceMode = static_cast<VkmhaDeviceMode>(7);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "deviceMode", "7");
        }
        {
            VkmhaContextCreateInfo bad = ci;
            bad.pipelineCacheDataSize = 40;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "pipelineCacheDataSize",
                           "40");
        }
        {
            VkmhaOwnDeviceInfo own{VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO, nullptr, -1, nullptr};
            VkmhaContextCreateInfo bad = ci;
            bad.pOwnDevice = &own;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "sType", "expected 2");
            own.sType = VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO;
            own.deviceIndex = 99;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "99");
            own.deviceIndex = -1;
            own.pDeviceName = "no-such-gpu-anywhere";
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "no-such-gpu-anywhere");
        }
        {
            VkmhaContextCreateInfo bad = ci;
            bad.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "pAdoptDevice");
        }
        {
            // Adopt with NULL handles, a wrong sType, a too-old API version: refused before touching anything.
            EngineDevice engine;
            require_engine(engine);
            VkmhaContextCreateInfo bad = ci;
            bad.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            bad.pAdoptDevice = &adopt;
            adopt.device = VK_NULL_HANDLE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "device");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.instance = VK_NULL_HANDLE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "instance");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.physicalDevice = VK_NULL_HANDLE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "physicalDevice");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.pfnGetInstanceProcAddr = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()),
                           "pfnGetInstanceProcAddr");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.sType = VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()), "sType", "expected 3");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.apiVersion = VK_API_VERSION_1_0;
            EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.createContext(&bad, context.out()), "apiVersion", "1.0");
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.enabledInstanceExtensionCount = 2;
            adopt.ppEnabledInstanceExtensions = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createContext(&bad, context.out()),
                           "ppEnabledInstanceExtensions");
            CHECK(context.get() == nullptr);

            // Adopted without a queue: a context that can record but not upload weights, and says so.
            const HostModel host = make_model(ModelSpec{});
            const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
            const VkmhaModelCreateInfo mi = model_info(4, views);
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.queue = VK_NULL_HANDLE;
            {
                ContextHandle queueless;
                REQUIRE_VKMHA(t.createContext(&bad, queueless.out()));
                CHECK(context_properties(queueless.get()).canSubmit == VK_FALSE);
                ModelHandle model;
                EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(queueless.get(), &mi, model.out()), "queue");
            }
            // Adopted without timeline semaphores: models and recording work, host I/O sessions are refused.
            adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.timelineSemaphoreEnabled = VK_FALSE;
            {
                ContextHandle no_timeline;
                REQUIRE_VKMHA(t.createContext(&bad, no_timeline.out()));
                CHECK(context_properties(no_timeline.get()).canSubmit == VK_FALSE);
                ModelHandle model;
                REQUIRE_VKMHA(t.createModel(no_timeline.get(), &mi, model.out()));
                SessionHandle session;
                const VkmhaSessionCreateInfo with_io = session_info(1, 2, 2, true);
                EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.createSession(model.get(), &with_io, session.out()),
                               "timeline");
                const VkmhaSessionCreateInfo without_io = session_info(1, 2, 2, false);
                REQUIRE_VKMHA(t.createSession(model.get(), &without_io, session.out()));
            }
            // The engine's device is untouched by all that.
            CHECK(vkDeviceWaitIdle(engine.device()) == VK_SUCCESS);
            engine.destroy();
            check_engine_quiet(engine);
        }

        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        VkmhaContextProperties props{};
        props.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getContextProperties(nullptr, &props), "context");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getContextProperties(context.get(), nullptr), "pProperties");
        props.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getContextProperties(context.get(), &props), "sType",
                       "expected 8");
        size_t size = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getPipelineCacheData(nullptr, &size, nullptr), "context");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getPipelineCacheData(context.get(), nullptr, nullptr), "pSize");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.enumerateDevices(nullptr, nullptr), "pCount");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getDeviceRequirements(nullptr), "pRequirements");
        t.destroyContext(nullptr); // destroying NULL is a no-op, as in Vulkan
        t.destroyModel(nullptr);
        t.destroySession(nullptr);
        CHECK(std::string(t.stageName(VKMHA_STAGE_Q_PROJ)) != "unknown");
        CHECK(std::string(t.stageName(static_cast<VkmhaStage>(42))) == "unknown");

        // The context works after all of that.
        const HostModel host = make_model(ModelSpec{});
        ModelHandle model;
        create_model(context.get(), host, model);
        SessionHandle session;
        const VkmhaSessionCreateInfo si = session_info(1, 3, 3, true);
        REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
        run_and_check(session.get(), host, make_inputs(host.config, {1, 3, 3}, {}, false, false, 1),
                      "after bad contexts");
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("bad arguments: createModel and getModelProperties name what is wrong") {
        const VkmhaProcTable& t = api();
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        const HostModel host = make_model(ModelSpec{});
        const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
        const VkmhaModelCreateInfo good = model_info(4, views);
        ModelHandle model;

        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(nullptr, &good, model.out()), "context");
        {
            VkDeviceSize bytes = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(nullptr, &good, &bytes),
                           "context");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), nullptr, &bytes),
                           "pCreateInfo");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), &good, nullptr),
                           "pBytes");
            VkmhaModelCreateInfo bad = good;
            bad.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), &bad, &bytes),
                           "sType", "expected 4");
            bad = good;
            bad.numHeads = 5;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), &bad, &bytes),
                           "16", "5");
            bad = good;
            bad.precision = static_cast<VkmhaPrecision>(7);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelMemoryRequirements(context.get(), &bad, &bytes),
                           "precision", "7");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "precision",
                           "7");
            bad = good;
            bad.tensorCount = 0;
            bad.pTensors = nullptr;
            bad.pSafetensorsPath = "/nonexistent/vkmha-dir/weights.safetensors";
            EXPECT_FAILURE(VKMHA_ERROR_IO, t.getModelMemoryRequirements(context.get(), &bad, &bytes),
                           "/nonexistent/vkmha-dir/weights.safetensors");
        }
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), nullptr, model.out()), "pCreateInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &good, nullptr), "pModel");
        {
            VkmhaModelCreateInfo bad = good;
            bad.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "sType",
                           "expected 4");
            bad = good;
            bad.numHeads = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "numHeads");
            bad = good;
            bad.numHeads = 5; // E = 16
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "16", "5");
            bad = good;
            bad.numKvHeads = 2; // PyTorch names have no GQA
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()),
                           "num_kv_heads", "2");
            bad = good;
            bad.pSafetensorsPath = "/tmp/whatever.safetensors";
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()),
                           "pSafetensorsPath");
            bad = good;
            bad.tensorCount = 0;
            bad.pTensors = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()),
                           "pSafetensorsPath");
            bad = good;
            bad.pTensors = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &bad, model.out()), "pTensors");
            bad = good;
            bad.tensorCount = 0;
            bad.pTensors = nullptr;
            bad.pSafetensorsPath = "/nonexistent/vkmha-dir/weights.safetensors";
            EXPECT_FAILURE(VKMHA_ERROR_IO, t.createModel(context.get(), &bad, model.out()),
                           "/nonexistent/vkmha-dir/weights.safetensors");
            // A file that exists but is not safetensors.
            const std::filesystem::path junk =
                std::filesystem::temp_directory_path() /
                ("vkmha-test-plugin-junk-" + std::to_string(::getpid()) + ".safetensors");
            {
                std::FILE* f = std::fopen(junk.string().c_str(), "wb");
                REQUIRE(f != nullptr);
                const char text[] = "\xff\xff\xff\xff\xff\xff\xff\x7f this is not a safetensors file";
                std::fwrite(text, 1, sizeof text, f);
                std::fclose(f);
            }
            const std::string junk_path = junk.string();
            bad.pSafetensorsPath = junk_path.c_str();
            const VkmhaResult junk_result = t.createModel(context.get(), &bad, model.out());
            const std::string junk_message = t.getLastError();
            std::filesystem::remove(junk);
            check_failure(junk_result, VKMHA_ERROR_IO, junk_message, {junk_path}, "createModel(junk file)", __FILE__,
                          __LINE__);
        }
        auto create_from = [&](const std::vector<VkmhaTensor>& tensors) {
            const VkmhaModelCreateInfo mi = model_info(4, tensors);
            return t.createModel(context.get(), &mi, model.out());
        };
        {
            std::vector<VkmhaTensor> broken = views;
            broken[1].pData = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "pTensors[1]", "pData",
                           host.tensors[1].name.c_str());
            broken = views;
            broken[2].pName = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "pTensors[2]", "pName");
            broken = views;
            broken[0].dataType = static_cast<VkmhaDataType>(9);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "dataType", "9");
            broken = views;
            broken[0].rank = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "rank", "0");
            broken = views;
            broken[0].shape[0] = 47; // in_proj_weight [3E, E] with a wrong row count
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "in_proj_weight", "47");
            broken = {views[2]}; // out_proj.weight alone
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create_from(broken), "in_proj_weight");
        }
        CHECK(model.get() == nullptr);
        VkmhaModelProperties mp{};
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelProperties(nullptr, &mp), "model");

        // The context still creates and runs a model.
        create_model(context.get(), host, model);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getModelProperties(model.get(), nullptr), "pProperties");
        check_model_properties(model.get(), host);
        SessionHandle session;
        const VkmhaSessionCreateInfo si = session_info(1, 3, 3, true);
        REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
        run_and_check(session.get(), host, make_inputs(host.config, {1, 3, 3}, {}, false, false, 1),
                      "after bad models");
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("bad arguments: createSession and getSessionMemoryRequirements name what is wrong") {
        const VkmhaProcTable& t = api();
        OwnSetup s(ModelSpec{}, session_info(2, 4, 4, true));
        const VkmhaSessionCreateInfo good = session_info(2, 4, 4, true);
        SessionHandle other;
        VkDeviceSize bytes = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createSession(nullptr, &good, other.out()), "model");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createSession(s.model.get(), nullptr, other.out()),
                       "pCreateInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createSession(s.model.get(), &good, nullptr), "pSession");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getSessionMemoryRequirements(nullptr, &good, &bytes), "model");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getSessionMemoryRequirements(s.model.get(), nullptr, &bytes),
                       "pCreateInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getSessionMemoryRequirements(s.model.get(), &good, nullptr),
                       "pBytes");
        struct Case {
            const char* what;
            VkmhaSessionCreateInfo info;
            std::vector<std::string> names;
        };
        VkmhaSessionCreateInfo wrong_stype = good, zero_batch = good, zero_lq = good, zero_lk = good, frames = good;
        wrong_stype.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
        zero_batch.maxBatch = 0;
        zero_lq.maxQueryLength = 0;
        zero_lk.maxKeyLength = 0;
        frames.framesInFlight = 9;
        const Case cases[] = {
            {"wrong sType", wrong_stype, {"sType", "expected 5"}},
            {"maxBatch 0", zero_batch, {"batch 0"}},
            {"maxQueryLength 0", zero_lq, {"lq 0"}},
            {"maxKeyLength 0", zero_lk, {"lk 0"}},
            {"framesInFlight 9", frames, {"framesInFlight", "9"}},
        };
        for (const Case& c : cases) {
            CAPTURE(std::string(c.what));
            {
                const VkmhaResult r = t.createSession(s.model.get(), &c.info, other.out());
                check_failure(r, VKMHA_ERROR_INVALID_ARGUMENT, t.getLastError(), c.names, c.what, __FILE__, __LINE__);
            }
            {
                const VkmhaResult r = t.getSessionMemoryRequirements(s.model.get(), &c.info, &bytes);
                check_failure(r, VKMHA_ERROR_INVALID_ARGUMENT, t.getLastError(), c.names, c.what, __FILE__, __LINE__);
            }
            CHECK(other.get() == nullptr);
        }
        s.check_still_works("after bad sessions");
    }

    TEST_CASE("bad arguments: submit, wait, readOutputs and getStageTimings name what is wrong") {
        const VkmhaProcTable& t = api();
        OwnSetup s(ModelSpec{}, session_info(2, 5, 8, true, 2));
        const RunInputs in = make_inputs(s.host.config, {2, 5, 8}, AttentionOptions{}, true, true, 7);
        const VkmhaHostSubmitInfo good = host_submit_info(in);
        uint64_t value = 0;

        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(nullptr, &good, &value), "session");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), nullptr, &value), "pInfo");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &good, nullptr), "pTimelineValue");
        {
            VkmhaHostSubmitInfo bad = good;
            bad.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "sType",
                           "expected 7");
            bad = good;
            bad.pQuery = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "query");
            bad = good;
            bad.batch = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "batch 0");
            bad = good;
            bad.batch = 3;
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.submit(s.session.get(), &bad, &value), "batch 3");
            bad = good;
            bad.keyLength = 9;
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, t.submit(s.session.get(), &bad, &value), "lk 9");
            bad = good;
            bad.flags = 0x100;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "flags", "0x100");
            bad = good;
            bad.keyPaddingMaskType = VKMHA_MASK_TYPE_ADDITIVE;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "keyPaddingMaskType",
                           "2");
            bad = good;
            bad.attnMaskType = static_cast<VkmhaMaskType>(5);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "attnMaskType", "5");
            bad = good;
            bad.attnMaskType = VKMHA_MASK_TYPE_BOOL; // no pAttnMask
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "attn_mask");
            bad = good;
            bad.keyPaddingMaskType = VKMHA_MASK_TYPE_BOOL; // no pKeyPaddingMask
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "key_padding_mask");
            bad = good;
            bad.pKey = nullptr; // self-attention with lk 8 != lq 5
            bad.pValue = nullptr;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(s.session.get(), &bad, &value), "lk 8", "lq 5");
        }
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(nullptr, 1, 0), "session");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(s.session.get(), 0, 0), "timeline value 0");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(s.session.get(), 12345, 0), "12345");
        std::vector<float> out(output_count(s.host.config, in));
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                       t.readOutputs(s.session.get(), 12345, out.data(), out.size(), nullptr, 0), "12345");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.readOutputs(nullptr, 1, out.data(), out.size(), nullptr, 0),
                       "session");
        uint32_t count = 8;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getStageTimings(nullptr, 0, &count, nullptr), "session");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.getStageTimings(s.session.get(), 0, nullptr, nullptr), "pCount");
        CHECK(t.getStageTimings(s.session.get(), 31337, &count, nullptr) < 0);
        CHECK(std::string(t.getLastError()).find("31337") != std::string::npos);

        // A good submission, then reads that ask for too little or the wrong thing.
        REQUIRE_VKMHA(t.submit(s.session.get(), &good, &value));
        REQUIRE_VKMHA(t.wait(s.session.get(), value, UINT64_MAX));
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(s.session.get(), value + 1, 0), std::to_string(value + 1));
        const std::string needed = std::to_string(out.size());
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                       t.readOutputs(s.session.get(), value, out.data(), out.size() - 1, nullptr, 0),
                       std::to_string(out.size() - 1).c_str(), needed.c_str());
        std::vector<float> weights(64);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                       t.readOutputs(s.session.get(), value, out.data(), out.size(), weights.data(), weights.size()),
                       "weights");
        // And the very same value still reads back correctly.
        REQUIRE_VKMHA(t.readOutputs(s.session.get(), value, out.data(), out.size(), nullptr, 0));
        check_matches(out.data(), reference(s.host, in).output, "after bad reads");

        // Host I/O calls on a session made without it are refused, naming why.
        SessionHandle plain;
        const VkmhaSessionCreateInfo no_io = session_info(1, 2, 2, false);
        REQUIRE_VKMHA(t.createSession(s.model.get(), &no_io, plain.out()));
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.submit(plain.get(), &good, &value), "host I/O");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.wait(plain.get(), 1, 0), "host I/O");
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.readOutputs(plain.get(), 1, out.data(), out.size(), nullptr, 0),
                       "host I/O");
        s.check_still_works("after bad submits");
    }

    TEST_CASE("bad arguments: recordAttention checks every binding before recording anything") {
        const VkmhaProcTable& t = api();
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            const VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            ci.pAdoptDevice = &adopt;
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            ModelSpec spec;
            spec.naming = Naming::torch_separate;
            spec.kdim = 12;
            spec.vdim = 20;
            const HostModel host = make_model(spec);
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(2, 5, 8, false, 1);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));

            AttentionOptions o;
            o.need_weights = true;
            o.key_padding = MaskKind::boolean;
            o.attn_mask = MaskKind::additive;
            const RunInputs in = make_inputs(host.config, {2, 5, 8}, o, true, true, 61);
            const vkmha::AttentionOutputs ref = reference(host, in);
            EngineBuffer query = engine_buffer(engine, in.query.data(), in.query.size() * 4, 0, 0, 0);
            EngineBuffer key = engine_buffer(engine, in.key.data(), in.key.size() * 4, 0, 0, 0);
            EngineBuffer value = engine_buffer(engine, in.value.data(), in.value.size() * 4, 0, 0, 0);
            EngineBuffer padding =
                engine_buffer(engine, in.key_padding_mask.data(), in.key_padding_mask.size(), 0, 0, 0);
            EngineBuffer mask = engine_buffer(engine, in.mask_floats.data(), in.mask_floats.size() * 4, 0, 0, 0);
            EngineBuffer output = engine_buffer(engine, nullptr, ref.output.size() * 4, 0, 0, 0xFF);
            EngineBuffer weights = engine_buffer(engine, nullptr, ref.weights.size() * 4, 0, 0, 0xFF);
            VkmhaRecordInfo good = record_info(0, VKMHA_NO_FRAME, in);
            good.query = query.binding();
            good.key = key.binding();
            good.value = value.binding();
            good.keyPaddingMask = padding.binding();
            good.attnMask = mask.binding();
            good.output = output.binding();
            good.weights = weights.binding();

            VkCommandBuffer cmd = objects.command_buffer();
            VkFence fence = objects.fence();
            begin_command_buffer(cmd);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(nullptr, cmd, &good), "session");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(session.get(), VK_NULL_HANDLE, &good),
                           "command buffer");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.recordAttention(session.get(), cmd, nullptr), "pInfo");

            struct Case {
                const char* what;
                VkmhaResult result;
                VkmhaRecordInfo info;
                std::vector<std::string> names;
            };
            std::vector<Case> cases;
            auto add = [&](const char* what, VkmhaResult r, std::vector<std::string> names, auto&& mutate) {
                VkmhaRecordInfo ri = good;
                mutate(ri);
                cases.push_back({what, r, ri, std::move(names)});
            };
            const VkmhaResult invalid = VKMHA_ERROR_INVALID_ARGUMENT;
            const std::string query_bytes = std::to_string(in.query.size() * 4);
            add("wrong sType", invalid, {"sType", "expected 6"},
                [](VkmhaRecordInfo& r) { r.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO; });
            add("batch 0", invalid, {"batch 0"}, [](VkmhaRecordInfo& r) { r.batch = 0; });
            add("queryLength 0", invalid, {"lq 0"}, [](VkmhaRecordInfo& r) { r.queryLength = 0; });
            add("batch over the budget", VKMHA_ERROR_OUT_OF_RANGE, {"batch 3"},
                [](VkmhaRecordInfo& r) { r.batch = 3; });
            add("keyLength over the budget", VKMHA_ERROR_OUT_OF_RANGE, {"lk 9"},
                [](VkmhaRecordInfo& r) { r.keyLength = 9; });
            add("unknown flag bits", invalid, {"flags", "0x40"}, [](VkmhaRecordInfo& r) { r.flags |= 0x40; });
            add("additive key padding mask", invalid, {"keyPaddingMaskType", "2"},
                [](VkmhaRecordInfo& r) { r.keyPaddingMaskType = VKMHA_MASK_TYPE_ADDITIVE; });
            add("unknown attn mask type", invalid, {"attnMaskType", "3"},
                [](VkmhaRecordInfo& r) { r.attnMaskType = static_cast<VkmhaMaskType>(3); });
            add("query range too small", invalid, {"query", std::to_string(in.query.size() * 4 - 4), query_bytes},
                [](VkmhaRecordInfo& r) { r.query.range -= 4; });
            add("query range VK_WHOLE_SIZE", invalid, {"query", "VK_WHOLE_SIZE"},
                [](VkmhaRecordInfo& r) { r.query.range = VK_WHOLE_SIZE; });
            add("key range too small", invalid, {"key", std::to_string(in.key.size() * 4)},
                [](VkmhaRecordInfo& r) { r.key.range = 4; });
            add("value range too small", invalid, {"value", std::to_string(in.value.size() * 4)},
                [](VkmhaRecordInfo& r) { r.value.range = 8; });
            add("output range too small", invalid, {"output", std::to_string(ref.output.size() * 4)},
                [](VkmhaRecordInfo& r) { r.output.range -= 1; });
            add("weights range too small", invalid, {"weights", std::to_string(ref.weights.size() * 4)},
                [](VkmhaRecordInfo& r) { r.weights.range /= 2; });
            add("key padding mask too small", invalid, {"key_padding_mask", std::to_string(in.key_padding_mask.size())},
                [](VkmhaRecordInfo& r) { r.keyPaddingMask.range -= 1; });
            add("attn mask too small (read as per-head)", invalid, {"attn_mask"},
                [](VkmhaRecordInfo& r) { r.flags |= VKMHA_ATTENTION_PER_HEAD_MASK_BIT; });
            add("no query buffer", invalid, {"query", "VK_NULL_HANDLE"}, [](VkmhaRecordInfo& r) { r.query = {}; });
            add("no output buffer", invalid, {"output", "VK_NULL_HANDLE"}, [](VkmhaRecordInfo& r) { r.output = {}; });
            add("need_weights without a weights buffer", invalid, {"weights", "VK_NULL_HANDLE"},
                [](VkmhaRecordInfo& r) { r.weights = {}; });
            add("key padding mask type without a buffer", invalid, {"key_padding_mask", "VK_NULL_HANDLE"},
                [](VkmhaRecordInfo& r) { r.keyPaddingMask = {}; });
            add("attn mask type without a buffer", invalid, {"attn_mask", "VK_NULL_HANDLE"},
                [](VkmhaRecordInfo& r) { r.attnMask = {}; });
            add("self-attention with kdim != E", invalid, {"kdim"}, [](VkmhaRecordInfo& r) {
                r.key = {};
                r.value = {};
            });
            add("value unbound with vdim != kdim", invalid, {"vdim 20", "kdim 12"},
                [](VkmhaRecordInfo& r) { r.value = {}; });
            add("float offset not a multiple of 4", invalid, {"offset", "2"},
                [](VkmhaRecordInfo& r) { r.output.offset = 2; });
            add("frame index UINT64_MAX", invalid, {"UINT64_MAX"},
                [](VkmhaRecordInfo& r) { r.frameIndex = UINT64_MAX; });
            for (const Case& c : cases) {
                CAPTURE(std::string(c.what));
                const VkmhaResult r = t.recordAttention(session.get(), cmd, &c.info);
                check_failure(r, c.result, t.getLastError(), c.names, c.what, __FILE__, __LINE__);
            }

            // Nothing was recorded by the refused calls: the same command buffer now takes a good record and runs
            // clean.
            REQUIRE_VKMHA(t.recordAttention(session.get(), cmd, &good));
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);
            check_matches(reinterpret_cast<const float*>(output.payload()), ref.output, "after bad records: output");
            check_matches(reinterpret_cast<const float*>(weights.payload()), ref.weights, "after bad records: weights");
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

} // TEST_SUITE("plugin")
