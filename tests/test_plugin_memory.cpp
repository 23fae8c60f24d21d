// The C ABI's memory and precision: session requirements and budgets, host-I/O staging sized by the session's
// flags, and FP16 models (half the memory, the fp16 tolerance, storageBuffer16BitAccess in adopt mode).
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

// The public header by path: the test target does not link libvkmha (nor take its include directory), on purpose.
#include "vkmha/vkmha.h"

#include "io/safetensors.h"
#include "support/call_infos.h"
#include "support/check_matches.h"
#include "support/engine_device.h"
#include "support/engine_frame.h"
#include "support/host_io.h"
#include "support/host_model.h"
#include "support/plugin_api.h"
#include "support/run_inputs.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

namespace io = vkmha::io;
using vkmha::AttentionOptions;
using vkmha::MaskKind;
using vkmha::test::adopt_info;
using vkmha::test::api;
using vkmha::test::check_engine_quiet;
using vkmha::test::check_no_validation_messages;
using vkmha::test::ContextHandle;
using vkmha::test::EngineDevice;
using vkmha::test::host_submit_info;
using vkmha::test::HostModel;
using vkmha::test::kFp16Tolerance;
using vkmha::test::last_error;
using vkmha::test::LogCapture;
using vkmha::test::make_inputs;
using vkmha::test::make_model;
using vkmha::test::model_info;
using vkmha::test::ModelHandle;
using vkmha::test::ModelSpec;
using vkmha::test::Naming;
using vkmha::test::own_context_info;
using vkmha::test::OwnSetup;
using vkmha::test::reference;
using vkmha::test::require_engine;
using vkmha::test::run_and_check;
using vkmha::test::RunInputs;
using vkmha::test::session_info;
using vkmha::test::SessionHandle;
using vkmha::test::tensor_views;

} // namespace

TEST_SUITE("plugin") {

    TEST_CASE("memory: session requirements are queryable, grow with the budget shape, and a budget is enforced") {
        const VkmhaProcTable& t = api();
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        const HostModel host = make_model(ModelSpec{});
        ModelHandle model;
        {
            // The model's own memory is known before creation, and its budget is enforced the same way.
            const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
            VkmhaModelCreateInfo mi = model_info(host.config.num_heads, views);
            VkDeviceSize model_bytes = 0;
            REQUIRE_VKMHA(t.getModelMemoryRequirements(context.get(), &mi, &model_bytes));
            CHECK(model_bytes >= (3 + 1) * 16 * 16 * sizeof(float)); // wq, wk, wv, wo at least
            mi.memoryBudget = model_bytes - 1;
            EXPECT_FAILURE(VKMHA_ERROR_BUDGET_EXCEEDED, t.createModel(context.get(), &mi, model.out()),
                           std::to_string(model_bytes), std::to_string(model_bytes - 1));
            CHECK(model.get() == nullptr);
            mi.memoryBudget = model_bytes;
            REQUIRE_VKMHA(t.createModel(context.get(), &mi, model.out()));
            VkmhaModelProperties mp{};
            REQUIRE_VKMHA(t.getModelProperties(model.get(), &mp));
            CHECK(mp.deviceMemoryBytes == model_bytes);
            MESSAGE("model bytes: ", model_bytes);
        }

        auto need = [&](const VkmhaSessionCreateInfo& si) {
            VkDeviceSize bytes = 0;
            REQUIRE_VKMHA(t.getSessionMemoryRequirements(model.get(), &si, &bytes));
            return bytes;
        };
        const VkDeviceSize small = need(session_info(2, 8, 64, false, 1));
        const VkDeviceSize longer = need(session_info(2, 64, 64, false, 1));
        const VkDeviceSize more_frames = need(session_info(2, 8, 64, false, 3));
        const VkDeviceSize host_io = need(session_info(2, 8, 64, true, 1));
        CHECK(small > 0);
        CHECK(longer > small);
        CHECK(more_frames > small);
        CHECK(host_io > small);
        MESSAGE("session bytes: ", small, " (lq 8), ", longer, " (lq 64), ", more_frames, " (3 frames), ", host_io,
                " (host I/O)");

        VkmhaSessionCreateInfo si = session_info(2, 8, 64, true, 1);
        const VkDeviceSize required = need(si);
        si.memoryBudget = required - 1;
        SessionHandle session;
        EXPECT_FAILURE(VKMHA_ERROR_BUDGET_EXCEEDED, t.createSession(model.get(), &si, session.out()),
                       std::to_string(required), std::to_string(required - 1));
        CHECK(session.get() == nullptr);
        si.memoryBudget = required;
        REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
        run_and_check(session.get(), host, make_inputs(host.config, {2, 8, 64}, {}, true, true, 8), "within budget");
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("memory: host I/O stages weights and per-head masks only when the session asks for them") {
        // Without the flags the staging is sized for [Lq, Lk] masks and no weights, and a submit that needs more is
        // refused by name rather than overrunning a buffer.
        VkmhaSessionCreateInfo lean = session_info(2, 33, 65, true);
        lean.flags = 0;
        OwnSetup setup(ModelSpec{}, lean);
        const VkmhaSessionCreateInfo full = session_info(2, 33, 65, true);
        VkDeviceSize lean_bytes = 0, full_bytes = 0;
        REQUIRE_VKMHA(api().getSessionMemoryRequirements(setup.model.get(), &lean, &lean_bytes));
        REQUIRE_VKMHA(api().getSessionMemoryRequirements(setup.model.get(), &full, &full_bytes));
        const uint32_t H = setup.host.config.num_heads;
        // Per frame slot: [B, H, Lq, Lk] weights plus (B*H - 1) more [Lq, Lk] mask planes, in floats.
        CHECK(full_bytes - lean_bytes >= uint64_t(2) * H * 33 * 65 * 4 + (uint64_t(2) * H - 1) * 33 * 65 * 4);

        AttentionOptions weights;
        weights.need_weights = true;
        RunInputs in = make_inputs(setup.host.config, {2, 33, 65}, weights, true, true, 7);
        VkmhaHostSubmitInfo hi = host_submit_info(in);
        uint64_t value = 0;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().submit(setup.session.get(), &hi, &value),
                       "VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT");
        AttentionOptions per_head_mask;
        per_head_mask.attn_mask = MaskKind::additive;
        per_head_mask.attn_mask_per_head = true;
        in = make_inputs(setup.host.config, {2, 33, 65}, per_head_mask, true, true, 8);
        hi = host_submit_info(in);
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().submit(setup.session.get(), &hi, &value),
                       "VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT");
        // A two-dimensional mask fits the lean staging.
        AttentionOptions mask_2d;
        mask_2d.attn_mask = MaskKind::boolean;
        run_and_check(setup.session.get(), setup.host,
                      make_inputs(setup.host.config, {2, 33, 65}, mask_2d, true, true, 9),
                      "lean host I/O, [Lq, Lk] mask");
        setup.check_still_works("after refused submits");
    }

    TEST_CASE("precision: FP16 models take half the memory, report it, and match the CPU reference within the fp16 "
              "tolerance") {
        const VkmhaProcTable& t = api();
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(t.createContext(&ci, context.out()));
        ModelSpec spec;
        spec.embed = 64;
        spec.heads = 4;
        spec.naming = Naming::llama;
        spec.kv_heads = 2;
        const HostModel host = make_model(spec);
        const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
        VkmhaModelCreateInfo mi = model_info(spec.heads, views);
        VkDeviceSize fp32_bytes = 0, fp16_bytes = 0;
        REQUIRE_VKMHA(t.getModelMemoryRequirements(context.get(), &mi, &fp32_bytes));
        mi.precision = VKMHA_PRECISION_FP16;
        const VkmhaResult queried = t.getModelMemoryRequirements(context.get(), &mi, &fp16_bytes);
        if (queried == VKMHA_ERROR_UNSUPPORTED) {
            MESSAGE("skipped: the default device has no storageBuffer16BitAccess (", last_error(), ")");
            return;
        }
        REQUIRE_VKMHA(queried);
        // 4 weight matrices (64x64, 64x32 twice) and 4 biases, each buffer 256-byte aligned: ~half, not exactly.
        MESSAGE("model bytes: fp32 ", fp32_bytes, ", fp16 ", fp16_bytes);
        CHECK(double(fp16_bytes) >= 0.45 * double(fp32_bytes));
        CHECK(double(fp16_bytes) <= 0.55 * double(fp32_bytes));

        ModelHandle model16, model32;
        REQUIRE_VKMHA(t.createModel(context.get(), &mi, model16.out()));
        VkmhaModelProperties p{};
        REQUIRE_VKMHA(t.getModelProperties(model16.get(), &p));
        CHECK(p.precision == VKMHA_PRECISION_FP16);
        CHECK(p.deviceMemoryBytes == fp16_bytes);
        CHECK(p.numKvHeads == 2);
        mi.precision = VKMHA_PRECISION_FP32;
        REQUIRE_VKMHA(t.createModel(context.get(), &mi, model32.out()));
        REQUIRE_VKMHA(t.getModelProperties(model32.get(), &p));
        CHECK(p.precision == VKMHA_PRECISION_FP32);
        CHECK(p.deviceMemoryBytes == fp32_bytes);

        {
            // A weight fp16 cannot hold is refused (it would silently become inf), naming it; FP32 takes it.
            std::vector<io::Tensor> big = host.tensors; // llama names: q_proj.weight first
            const float huge = 1e5f;
            std::memcpy(big[0].data.data() + 4 * 5, &huge, 4);
            const std::vector<VkmhaTensor> big_views = tensor_views(big);
            VkmhaModelCreateInfo big_info = model_info(spec.heads, big_views);
            big_info.precision = VKMHA_PRECISION_FP16;
            ModelHandle refused;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t.createModel(context.get(), &big_info, refused.out()), "wq",
                           "element 5", "100000", "fp16");
            CHECK(refused.get() == nullptr);
        }

        // Sessions: Q, K, V and the concatenated heads take 2 bytes per element instead of 4; scores stay fp32.
        const VkmhaSessionCreateInfo si = session_info(2, 64, 64, false, 1);
        VkDeviceSize session16 = 0, session32 = 0;
        REQUIRE_VKMHA(t.getSessionMemoryRequirements(model16.get(), &si, &session16));
        REQUIRE_VKMHA(t.getSessionMemoryRequirements(model32.get(), &si, &session32));
        const double halved = 2.0 * 64 * (64 + 32 + 32 + 64) * 2; // B*L*(E + 2*G*D + E) elements, 2 bytes each saved
        MESSAGE("session bytes: fp32 ", session32, ", fp16 ", session16, " (", halved, " bytes of Q/K/V/concat saved)");
        CHECK(session16 < session32);
        CHECK(double(session32 - session16) >= halved - 4 * 256);
        CHECK(double(session32 - session16) <= halved + 4 * 256);

        const VkmhaSessionCreateInfo run_si = session_info(3, 7, 129, true);
        SessionHandle session;
        REQUIRE_VKMHA(t.createSession(model16.get(), &run_si, session.out()));
        AttentionOptions o;
        o.need_weights = true;
        o.causal = true;
        run_and_check(session.get(), host, make_inputs(host.config, {3, 7, 129}, o, true, true, 21), "fp16 gqa",
                      kFp16Tolerance);
        o.need_weights = false;
        o.key_padding = MaskKind::boolean;
        run_and_check(session.get(), host, make_inputs(host.config, {3, 7, 129}, o, true, true, 22), "fp16 gqa padded",
                      kFp16Tolerance);
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("precision: FP16 in adopt mode follows storageBuffer16BitAccessEnabled") {
        const VkmhaProcTable& t = api();
        EngineDevice engine;
        require_engine(engine);
        ModelSpec spec;
        spec.embed = 32;
        spec.heads = 2;
        const HostModel host = make_model(spec);
        const std::vector<VkmhaTensor> views = tensor_views(host.tensors);
        VkmhaModelCreateInfo mi = model_info(spec.heads, views);
        mi.precision = VKMHA_PRECISION_FP16;
        {
            // The engine did not enable (or does not report) the feature: FP16 models are refused, naming it; FP32
            // works.
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.storageBuffer16BitAccessEnabled = VK_FALSE;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            ci.pAdoptDevice = &adopt;
            ContextHandle context;
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            ModelHandle model;
            EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.createModel(context.get(), &mi, model.out()),
                           "storageBuffer16BitAccess", "fp16");
            CHECK(model.get() == nullptr);
            VkDeviceSize bytes = 0;
            EXPECT_FAILURE(VKMHA_ERROR_UNSUPPORTED, t.getModelMemoryRequirements(context.get(), &mi, &bytes),
                           "storageBuffer16BitAccess");
            VkmhaModelCreateInfo fp32 = mi;
            fp32.precision = VKMHA_PRECISION_FP32;
            REQUIRE_VKMHA(t.createModel(context.get(), &fp32, model.out()));
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(1, 5, 5, true);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            run_and_check(session.get(), host, make_inputs(host.config, {1, 5, 5}, {}, false, false, 3), "adopt fp32");
        }
        if (engine.storage16()) {
            // The engine enabled it and says so: FP16 models run on its device.
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.storageBuffer16BitAccessEnabled = VK_TRUE;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            ci.pAdoptDevice = &adopt;
            ContextHandle context;
            REQUIRE_VKMHA(t.createContext(&ci, context.out()));
            ModelHandle model;
            REQUIRE_VKMHA(t.createModel(context.get(), &mi, model.out()));
            VkmhaModelProperties p{};
            REQUIRE_VKMHA(t.getModelProperties(model.get(), &p));
            CHECK(p.precision == VKMHA_PRECISION_FP16);
            SessionHandle session;
            const VkmhaSessionCreateInfo si = session_info(2, 9, 9, true);
            REQUIRE_VKMHA(t.createSession(model.get(), &si, session.out()));
            AttentionOptions o;
            o.need_weights = true;
            run_and_check(session.get(), host, make_inputs(host.config, {2, 9, 9}, o, false, false, 4), "adopt fp16",
                          kFp16Tolerance);
        } else {
            MESSAGE("the engine device has no storageBuffer16BitAccess: only the refusal was checked");
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

} // TEST_SUITE("plugin")
