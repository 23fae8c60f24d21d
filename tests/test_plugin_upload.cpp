// The C ABI 1.3's recorded weight upload (VkmhaModelUploadInfo, recordModelUpload, completeModelUpload), as a
// streaming engine uses it: createModel only stages, the engine records the copies into its own command buffer and
// orders its compute after them with its own barrier, and the model's outputs equal a model uploaded by createModel
// bit for bit. Every misuse of the sequence is refused by name.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

// The public header by path: the test target does not link libvkmha, on purpose.
#include "vkmha/vkmha.h"

#include "support/call_infos.h"
#include "support/check_matches.h"
#include "support/engine_buffer.h"
#include "support/engine_device.h"
#include "support/engine_frame.h"
#include "support/host_model.h"
#include "support/plugin_api.h"
#include "support/run_inputs.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using vkmha::AttentionOptions;
using vkmha::test::adopt_context;
using vkmha::test::adopt_info;
using vkmha::test::api;
using vkmha::test::barrier_to_host;
using vkmha::test::begin_command_buffer;
using vkmha::test::check_engine_quiet;
using vkmha::test::ContextHandle;
using vkmha::test::end_submit_wait;
using vkmha::test::engine_buffer;
using vkmha::test::EngineBuffer;
using vkmha::test::EngineDevice;
using vkmha::test::EngineObjects;
using vkmha::test::HostModel;
using vkmha::test::make_inputs;
using vkmha::test::make_model;
using vkmha::test::model_info;
using vkmha::test::ModelHandle;
using vkmha::test::ModelSpec;
using vkmha::test::Naming;
using vkmha::test::record_info;
using vkmha::test::require_engine;
using vkmha::test::RunInputs;
using vkmha::test::session_info;
using vkmha::test::SessionHandle;
using vkmha::test::tensor_views;

// A GQA layer with an awkward head count: H 6, G 2, D 4.
ModelSpec gqa_spec() {
    ModelSpec spec;
    spec.naming = Naming::llama;
    spec.embed = 24;
    spec.heads = 6;
    spec.kv_heads = 2;
    return spec;
}

// createModel from `m`'s tensors, uploaded by createModel (record false) or left for recordModelUpload.
VkmhaResult create(VkmhaContext context, const HostModel& m, VkmhaPrecision precision, bool record, ModelHandle& out,
                   VkBool32 record_value = VK_TRUE) {
    const std::vector<VkmhaTensor> views = tensor_views(m.tensors);
    VkmhaModelCreateInfo mi = model_info(m.config.num_heads, views);
    mi.precision = precision;
    VkmhaModelUploadInfo upload{VKMHA_STRUCTURE_TYPE_MODEL_UPLOAD_INFO, nullptr, record_value};
    if (record) mi.pNext = &upload;
    return api().createModel(context, &mi, out.out());
}

// The engine's side of the upload's exit contract: its compute reads the weights after the copies.
void barrier_after_upload(VkCommandBuffer cmd) {
    VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    b.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    b.dstAccessMask = VK_ACCESS_SHADER_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &b, 0,
                         nullptr, 0, nullptr);
}

// recordAttention of `in` on `session` into `output` (self-attention, the query in `query`).
void record(VkmhaSession session, VkCommandBuffer cmd, const RunInputs& in, const EngineBuffer& query,
            const EngineBuffer& output) {
    VkmhaRecordInfo ri = record_info(0, VKMHA_NO_FRAME, in);
    ri.query = query.binding();
    ri.output = output.binding();
    REQUIRE_VKMHA(api().recordAttention(session, cmd, &ri));
}

} // namespace

TEST_SUITE("plugin_upload") {

    TEST_CASE("recorded upload: outputs equal a createModel-uploaded model's bit for bit") {
        EngineDevice engine;
        require_engine(engine);
        VkmhaPrecision precision = VKMHA_PRECISION_FP32;
        SUBCASE("fp32") { precision = VKMHA_PRECISION_FP32; }
        SUBCASE("fp16") { precision = VKMHA_PRECISION_FP16; }
        if (precision == VKMHA_PRECISION_FP16 && !engine.storage16()) return; // the device cannot store fp16
        CAPTURE(precision);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle submitted, recorded;
            SessionHandle plain_session, recorded_session;
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.storageBuffer16BitAccessEnabled = engine.storage16() ? VK_TRUE : VK_FALSE;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            ci.pAdoptDevice = &adopt;
            REQUIRE_VKMHA(api().createContext(&ci, context.out()));
            const HostModel host = make_model(gqa_spec());
            REQUIRE_VKMHA(create(context.get(), host, precision, false, submitted));
            REQUIRE_VKMHA(create(context.get(), host, precision, true, recorded));
            const VkmhaSessionCreateInfo si = session_info(2, 7, 7, false, 1);
            REQUIRE_VKMHA(api().createSession(submitted.get(), &si, plain_session.out()));
            REQUIRE_VKMHA(api().createSession(recorded.get(), &si, recorded_session.out()));

            // The engine's upload submit, as its streaming system would batch it beside its own copies.
            VkCommandBuffer cmd = objects.command_buffer();
            VkFence fence = objects.fence();
            begin_command_buffer(cmd);
            REQUIRE_VKMHA(api().recordModelUpload(recorded.get(), cmd));
            end_submit_wait(engine, cmd, fence);
            REQUIRE_VKMHA(api().completeModelUpload(recorded.get()));

            AttentionOptions o;
            o.causal = true;
            const RunInputs in = make_inputs(host.config, {2, 7, 7}, o, false, false, 17);
            const size_t out_bytes = vkmha::test::output_count(host.config, in) * 4;
            EngineBuffer query = engine_buffer(engine, in.query.data(), in.query.size() * 4, 0, 0, 0);
            EngineBuffer plain_out = engine_buffer(engine, nullptr, out_bytes, 0, 0, 0xFF);
            EngineBuffer recorded_out = engine_buffer(engine, nullptr, out_bytes, 0, 0, 0xFF);
            // The next frame: the barrier the header asks for, then both layers.
            begin_command_buffer(cmd);
            barrier_after_upload(cmd);
            record(plain_session.get(), cmd, in, query, plain_out);
            record(recorded_session.get(), cmd, in, query, recorded_out);
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);
            CHECK_MESSAGE(std::memcmp(plain_out.payload(), recorded_out.payload(), out_bytes) == 0,
                          "the recorded upload's output differs from the createModel upload's");
            // And it is attention, not two equal garbage buffers: the reference agrees within the fp32/fp16 bound.
            vkmha::test::check_matches(reinterpret_cast<const float*>(recorded_out.payload()),
                                       vkmha::test::reference(host, in).output, "recorded upload",
                                       precision == VKMHA_PRECISION_FP16 ? vkmha::test::kFp16Tolerance
                                                                         : vkmha::test::kFp32Tolerance);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE("recorded upload: a context adopted without a queue creates models this way only") {
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle refused, recorded;
            SessionHandle session;
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.queue = VK_NULL_HANDLE;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            ci.pAdoptDevice = &adopt;
            REQUIRE_VKMHA(api().createContext(&ci, context.out()));
            const HostModel host = make_model(ModelSpec{});
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                           create(context.get(), host, VKMHA_PRECISION_FP32, false, refused), "queue",
                           "VkmhaModelUploadInfo");
            REQUIRE_VKMHA(create(context.get(), host, VKMHA_PRECISION_FP32, true, recorded));
            VkCommandBuffer cmd = objects.command_buffer();
            begin_command_buffer(cmd);
            REQUIRE_VKMHA(api().recordModelUpload(recorded.get(), cmd));
            end_submit_wait(engine, cmd, objects.fence());
            REQUIRE_VKMHA(api().completeModelUpload(recorded.get()));

            const VkmhaSessionCreateInfo si = session_info(1, 7, 7, false, 1);
            REQUIRE_VKMHA(api().createSession(recorded.get(), &si, session.out()));
            const RunInputs in = make_inputs(host.config, {1, 7, 7}, AttentionOptions{}, false, false, 3);
            EngineBuffer query = engine_buffer(engine, in.query.data(), in.query.size() * 4, 0, 0, 0);
            EngineBuffer output =
                engine_buffer(engine, nullptr, vkmha::test::output_count(host.config, in) * 4, 0, 0, 0);
            begin_command_buffer(cmd);
            barrier_after_upload(cmd);
            record(session.get(), cmd, in, query, output);
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, objects.fence());
            vkmha::test::check_matches(reinterpret_cast<const float*>(output.payload()),
                                       vkmha::test::reference(host, in).output, "model uploaded without a vkmha queue");
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE("recorded upload: every misuse is refused by name") {
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context, own;
            ModelHandle submitted, recorded, bad, own_model, abandoned;
            SessionHandle session;
            adopt_context(engine, context);
            const HostModel host = make_model(ModelSpec{});
            REQUIRE_VKMHA(create(context.get(), host, VKMHA_PRECISION_FP32, false, submitted));
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                           create(context.get(), host, VKMHA_PRECISION_FP32, true, bad, 7), "recordUpload", "7");
            REQUIRE_VKMHA(create(context.get(), host, VKMHA_PRECISION_FP32, true, recorded));
            // A model staged and destroyed without ever being uploaded leaks nothing (the layer checks at destroy).
            REQUIRE_VKMHA(create(context.get(), host, VKMHA_PRECISION_FP32, true, abandoned));
            abandoned.reset();

            VkmhaContextCreateInfo oci = vkmha::test::own_context_info(nullptr);
            REQUIRE_VKMHA(api().createContext(&oci, own.out()));
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, create(own.get(), host, VKMHA_PRECISION_FP32, true, own_model),
                           "recordUpload", "ADOPT");

            VkCommandBuffer cmd = objects.command_buffer();
            begin_command_buffer(cmd);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().recordModelUpload(nullptr, cmd), "model");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().completeModelUpload(nullptr), "model");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().recordModelUpload(submitted.get(), cmd),
                           "already on the device");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().completeModelUpload(submitted.get()),
                           "already on the device");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().completeModelUpload(recorded.get()),
                           "before recordModelUpload");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().recordModelUpload(recorded.get(), VK_NULL_HANDLE),
                           "commandBuffer");

            // Sessions may be created while the upload is pending; their records are refused until it completed.
            const VkmhaSessionCreateInfo si = session_info(1, 7, 7, true, 1);
            REQUIRE_VKMHA(api().createSession(recorded.get(), &si, session.out()));
            const RunInputs in = make_inputs(host.config, {1, 7, 7}, AttentionOptions{}, false, false, 5);
            EngineBuffer query = engine_buffer(engine, in.query.data(), in.query.size() * 4, 0, 0, 0);
            EngineBuffer output =
                engine_buffer(engine, nullptr, vkmha::test::output_count(host.config, in) * 4, 0, 0, 0);
            VkmhaRecordInfo ri = record_info(0, VKMHA_NO_FRAME, in);
            ri.query = query.binding();
            ri.output = output.binding();
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().recordAttention(session.get(), cmd, &ri),
                           "recordModelUpload", "completeModelUpload");
            REQUIRE_VKMHA(api().recordModelUpload(recorded.get(), cmd));
            // The engine's barrier at the end of the upload's own command buffer: it orders every later submission
            // on the queue after the copies, vkmha's own submit below included.
            barrier_after_upload(cmd);
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().recordAttention(session.get(), cmd, &ri),
                           "call completeModelUpload");
            const VkmhaHostSubmitInfo hi = vkmha::test::host_submit_info(in);
            uint64_t value = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().submit(session.get(), &hi, &value),
                           "completeModelUpload");
            end_submit_wait(engine, cmd, objects.fence());
            REQUIRE_VKMHA(api().completeModelUpload(recorded.get()));
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().completeModelUpload(recorded.get()),
                           "already on the device");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().recordModelUpload(recorded.get(), cmd),
                           "already on the device");
            // Now usable, through the host path's own submit too.
            REQUIRE_VKMHA(api().submit(session.get(), &hi, &value));
            REQUIRE_VKMHA(api().wait(session.get(), value, UINT64_MAX));
        }
        engine.destroy();
        check_engine_quiet(engine);
    }
}
