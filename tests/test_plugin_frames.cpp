// The C ABI's frame rule in adopt mode: frames in flight share a session's frame slots, a slot is reused only once
// completedFrame shows its last frame finished, and impossible or backwards frames are refused without recording.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

// The public header by path: the test target does not link libvkmha (nor take its include directory), on purpose.
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

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using vkmha::AttentionOptions;
using vkmha::test::adopt_context;
using vkmha::test::api;
using vkmha::test::barrier_to_host;
using vkmha::test::begin_command_buffer;
using vkmha::test::check_engine_quiet;
using vkmha::test::check_matches;
using vkmha::test::context_properties;
using vkmha::test::ContextHandle;
using vkmha::test::create_model;
using vkmha::test::end_submit_wait;
using vkmha::test::engine_buffer;
using vkmha::test::EngineBuffer;
using vkmha::test::EngineDevice;
using vkmha::test::EngineObjects;
using vkmha::test::HostModel;
using vkmha::test::last_error;
using vkmha::test::make_inputs;
using vkmha::test::make_model;
using vkmha::test::ModelHandle;
using vkmha::test::ModelSpec;
using vkmha::test::output_count;
using vkmha::test::record_info;
using vkmha::test::reference;
using vkmha::test::require_engine;
using vkmha::test::result_name;
using vkmha::test::RunInputs;
using vkmha::test::session_info;
using vkmha::test::SessionHandle;

} // namespace

TEST_SUITE("plugin") {

    TEST_CASE("adopt mode: frames in flight are refused until completed, then each frame's result is right") {
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            adopt_context(engine, context);
            const bool timestamps = context_properties(context.get()).timestamps == VK_TRUE;
            const HostModel host = make_model(ModelSpec{});
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(2, 9, 9, false, 2);
            REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));

            // The engine's own ring of three: inputs, output, command buffer, fence.
            struct EngineFrame {
                RunInputs in;
                EngineBuffer query, output;
                VkCommandBuffer cmd = VK_NULL_HANDLE;
                VkFence fence = VK_NULL_HANDLE;
                uint64_t frame = 0;
            };
            std::array<EngineFrame, 3> ring;
            for (EngineFrame& f : ring) {
                f.cmd = objects.command_buffer();
                f.fence = objects.fence();
            }
            auto prepare = [&](uint64_t n) -> EngineFrame& {
                EngineFrame& f = ring[n % 3];
                f.frame = n;
                f.in = make_inputs(host.config, {2, 9, 9}, AttentionOptions{}, false, false, 500 + uint32_t(n));
                f.query = engine_buffer(engine, f.in.query.data(), f.in.query.size() * 4, 4, 0, 0);
                f.output = engine_buffer(engine, nullptr, output_count(host.config, f.in) * 4, 4, 16, 0xFF);
                begin_command_buffer(f.cmd);
                return f;
            };
            auto record = [&](EngineFrame& f, uint64_t completed) {
                VkmhaRecordInfo ri = record_info(f.frame, completed, f.in);
                ri.query = f.query.binding();
                ri.output = f.output.binding();
                return api().recordAttention(session.get(), f.cmd, &ri);
            };
            auto finish_and_submit = [&](EngineFrame& f) {
                barrier_to_host(f.cmd);
                REQUIRE(vkEndCommandBuffer(f.cmd) == VK_SUCCESS);
                REQUIRE(vkResetFences(engine.device(), 1, &f.fence) == VK_SUCCESS);
                REQUIRE(engine.submit(f.cmd, f.fence) == VK_SUCCESS);
            };
            auto wait_and_check = [&](uint64_t n) {
                EngineFrame& f = ring[n % 3];
                REQUIRE(f.frame == n);
                REQUIRE(vkWaitForFences(engine.device(), 1, &f.fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
                check_matches(reinterpret_cast<const float*>(f.output.payload()), reference(host, f.in).output,
                              "frame " + std::to_string(n));
                CHECK(f.output.guards_intact());
            };

            for (uint64_t n = 0; n < 2; ++n) {
                EngineFrame& f = prepare(n);
                REQUIRE_MESSAGE(record(f, VKMHA_NO_FRAME) == VKMHA_SUCCESS, last_error());
                finish_and_submit(f);
            }
            {
                // Never blocks: a frame still in flight reports NOT_READY (or, if it already finished, its timings).
                uint32_t count = 8;
                std::array<VkmhaStageTiming, 8> early{};
                const VkmhaResult r = api().getStageTimings(session.get(), 1, &count, early.data());
                CHECK_MESSAGE(
                    (r == VKMHA_NOT_READY || r == VKMHA_SUCCESS || (!timestamps && r == VKMHA_ERROR_UNSUPPORTED)),
                    result_name(r), ": ", last_error());
            }
            // Frame 2 needs slot 0, which frame 0 holds until the engine says it completed.
            EngineFrame& third = prepare(2);
            EXPECT_FAILURE(VKMHA_ERROR_FRAME_IN_FLIGHT, record(third, VKMHA_NO_FRAME), "frame 2", "frame 0");
            uint32_t never = 8;
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, api().getStageTimings(session.get(), 77, &never, nullptr), "77");

            wait_and_check(0);
            if (timestamps) {
                uint32_t count = 0;
                REQUIRE_VKMHA(api().getStageTimings(session.get(), 0, &count, nullptr));
                // The fused path, prefill shape (no split-K), no weights, self-attention: Q, K and V in one dispatch.
                CHECK(count == 3);
                std::vector<VkmhaStageTiming> timings(count);
                REQUIRE_VKMHA(api().getStageTimings(session.get(), 0, &count, timings.data()));
                REQUIRE(count == timings.size());
                const VkmhaStage expected[] = {VKMHA_STAGE_QKV_PROJ, VKMHA_STAGE_ATTENTION, VKMHA_STAGE_OUT_PROJ};
                for (const VkmhaStage stage : expected) {
                    CAPTURE(std::string(api().stageName(stage)));
                    const auto it = std::find_if(timings.begin(), timings.end(),
                                                 [&](const VkmhaStageTiming& st) { return st.stage == stage; });
                    REQUIRE(it != timings.end());
                    CHECK(it->milliseconds > 0.0f);
                    CHECK(it->milliseconds < 60000.0f);
                }
                uint32_t one = 1;
                REQUIRE_VKMHA(api().getStageTimings(session.get(), 0, &one, timings.data()));
                CHECK(one == 1);
            } else {
                MESSAGE("the device's queue has no timestamps: stage timings not checked");
            }
            REQUIRE_MESSAGE(record(third, 0) == VKMHA_SUCCESS, last_error());
            finish_and_submit(third);
            // BufferRole 0 now belongs to frame 2: frame 0's timings are gone, and the call says which frame it was
            // asked.
            uint32_t count0 = 8;
            std::array<VkmhaStageTiming, 8> gone{};
            EXPECT_FAILURE(VKMHA_ERROR_OUT_OF_RANGE, api().getStageTimings(session.get(), 0, &count0, gone.data()),
                           "frame 0");

            for (uint64_t n = 3; n < 7; ++n) {
                wait_and_check(n - 2); // frame n-3, the last user of ring[n % 3], was checked one iteration ago
                EngineFrame& f = prepare(n);
                REQUIRE_MESSAGE(record(f, n - 2) == VKMHA_SUCCESS, last_error());
                finish_and_submit(f);
            }
            wait_and_check(5);
            wait_and_check(6);
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE(
        "adopt mode: impossible completed frames, frames that go back and a second record per frame are refused") {
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            adopt_context(engine, context);
            const HostModel host = make_model(ModelSpec{});
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(2, 9, 9, false, 2);
            REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
            const RunInputs in = make_inputs(host.config, {2, 9, 9}, AttentionOptions{}, false, false, 77);
            EngineBuffer query = engine_buffer(engine, in.query.data(), in.query.size() * 4, 4, 0, 0);
            std::array<EngineBuffer, 2> outputs;
            for (EngineBuffer& o : outputs)
                o = engine_buffer(engine, nullptr, output_count(host.config, in) * 4, 4, 16, 0xFF);
            const VkCommandBuffer cmd = objects.command_buffer();
            const VkFence fence = objects.fence();
            begin_command_buffer(cmd);
            auto record = [&](uint64_t frame, uint64_t completed, size_t output) {
                VkmhaRecordInfo ri = record_info(frame, completed, in);
                ri.query = query.binding();
                ri.output = outputs[output].binding();
                return api().recordAttention(session.get(), cmd, &ri);
            };
            // A frame cannot have completed before it is recorded: vkmha would take it as leave to reuse a slot.
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(0, 0, 0), "completedFrame 0", "frameIndex 0");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(3, 7, 0), "completedFrame 7", "frameIndex 3");
            REQUIRE_MESSAGE(record(3, VKMHA_NO_FRAME, 0) == VKMHA_SUCCESS, last_error());
            // Two records of one session in one frame would share its frame slot (descriptor sets, timestamps).
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(3, VKMHA_NO_FRAME, 1), "frameIndex 3",
                           "one record per session per frame — use a session per layer");
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(3, 2, 1),
                           "one record per session per frame — use a session per layer");
            // Frames never go back.
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, record(2, VKMHA_NO_FRAME, 1), "frameIndex 2", "frame 3");
            // None of the refusals recorded anything or spoiled the session: the next frame records and both run.
            REQUIRE_MESSAGE(record(4, VKMHA_NO_FRAME, 1) == VKMHA_SUCCESS, last_error());
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);
            const std::vector<float> want = reference(host, in).output;
            for (size_t i = 0; i < outputs.size(); ++i) {
                check_matches(reinterpret_cast<const float*>(outputs[i].payload()), want,
                              "output " + std::to_string(i));
                CHECK(outputs[i].guards_intact());
            }
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

} // TEST_SUITE("plugin")
