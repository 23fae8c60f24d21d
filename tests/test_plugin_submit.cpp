// The C ABI's host-I/O path, as a tool without Vulkan code of its own uses it: models from memory and from a
// safetensors file, submit/wait/readOutputs against the CPU reference on awkward shapes and options, polling, and
// sessions on different threads submitting to one queue.
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
#include "support/submit_watch.h"

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace io = vkmha::io;
namespace submit_watch = vkmha::test::submit_watch;
using vkmha::AttentionOptions;
using vkmha::AttentionShape;
using vkmha::MaskKind;
using vkmha::test::adopt_info;
using vkmha::test::api;
using vkmha::test::check_engine_quiet;
using vkmha::test::check_matches;
using vkmha::test::check_model_properties;
using vkmha::test::check_no_validation_messages;
using vkmha::test::ContextHandle;
using vkmha::test::create_model;
using vkmha::test::EngineDevice;
using vkmha::test::host_submit_info;
using vkmha::test::HostModel;
using vkmha::test::last_error;
using vkmha::test::LogCapture;
using vkmha::test::make_inputs;
using vkmha::test::make_model;
using vkmha::test::ModelHandle;
using vkmha::test::ModelSpec;
using vkmha::test::Naming;
using vkmha::test::output_count;
using vkmha::test::own_context_info;
using vkmha::test::OwnSetup;
using vkmha::test::reference;
using vkmha::test::require_engine;
using vkmha::test::result_name;
using vkmha::test::run_and_check;
using vkmha::test::RunInputs;
using vkmha::test::session_info;
using vkmha::test::SessionHandle;
using vkmha::test::weights_count;

} // namespace

TEST_SUITE("plugin") {

    TEST_CASE("own mode: models from in-memory tensors match the CPU reference") {
        ModelSpec spec;
        std::string what;
        SUBCASE("PyTorch packed in_proj, F32, biases") {
            spec.naming = Naming::torch_packed;
            what = "packed f32";
        }
        SUBCASE("PyTorch separate projections, F16, kdim 12 / vdim 20") {
            spec.naming = Naming::torch_separate;
            spec.kdim = 12;
            spec.vdim = 20;
            spec.dtype = io::DType::f16;
            what = "separate f16";
        }
        SUBCASE("Llama names, GQA (4 heads, 2 KV heads inferred), F32, no biases") {
            spec.naming = Naming::llama;
            spec.kv_heads = 2;
            spec.bias = false;
            what = "llama gqa f32";
        }
        SUBCASE("Llama names, multi-query (8 heads, 1 KV head), BF16, biases") {
            spec.naming = Naming::llama;
            spec.embed = 32;
            spec.heads = 8;
            spec.kv_heads = 1;
            spec.dtype = io::DType::bf16;
            what = "llama mqa bf16";
        }
        OwnSetup s(spec, session_info(3, 7, 129, true));
        check_model_properties(s.model.get(), s.host);
        AttentionOptions o;
        o.need_weights = true;
        const RunInputs in = make_inputs(s.host.config, {3, 7, 129}, o, true, true, 5);
        run_and_check(s.session.get(), s.host, in, what);
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("own mode: a model from a safetensors path matches the CPU reference") {
        ModelSpec spec;
        spec.naming = Naming::llama;
        spec.embed = 24;
        spec.heads = 6;
        spec.kv_heads = 3;
        spec.dtype = io::DType::f16;
        const HostModel host = make_model(spec);
        const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                           ("vkmha-test-plugin-" + std::to_string(::getpid()) + ".safetensors");
        const auto written = io::write_safetensors(path.string(), host.tensors);
        REQUIRE_MESSAGE(written.ok(), (written.ok() ? std::string() : written.error().message));

        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        VkmhaModelCreateInfo mi{};
        mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
        mi.numHeads = spec.heads;
        const std::string path_text = path.string();
        mi.pSafetensorsPath = path_text.c_str();
        ModelHandle model;
        const VkmhaResult created = api().createModel(context.get(), &mi, model.out());
        const std::string message = api().getLastError();
        std::filesystem::remove(path);
        REQUIRE_MESSAGE(created == VKMHA_SUCCESS, message);
        check_model_properties(model.get(), host);
        SessionHandle session;
        const VkmhaSessionCreateInfo si = session_info(2, 5, 9, true);
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
        AttentionOptions o;
        o.causal = true;
        o.need_weights = true;
        o.average_weights = false;
        run_and_check(session.get(), host, make_inputs(host.config, {2, 5, 9}, o, true, true, 11), "safetensors gqa");
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("own mode: submit matches the CPU reference on awkward shapes and options") {
        struct Case {
            const char* name;
            AttentionShape shape;
            bool cross, separate_value;
            AttentionOptions options;
            bool mask_whole_row;
        };
        AttentionOptions plain, kpm, bool_mask, additive, per_head_mask, causal, averaged, per_head, everything;
        kpm.key_padding = MaskKind::boolean;
        bool_mask.attn_mask = MaskKind::boolean;
        additive.attn_mask = MaskKind::additive;
        per_head_mask.attn_mask = MaskKind::additive;
        per_head_mask.attn_mask_per_head = true;
        causal.causal = true;
        averaged.need_weights = true;
        per_head.need_weights = true;
        per_head.average_weights = false;
        everything.causal = true;
        everything.key_padding = MaskKind::boolean;
        everything.attn_mask = MaskKind::boolean;
        everything.attn_mask_per_head = true;
        everything.need_weights = true;
        everything.average_weights = false;
        const Case cases[] = {
            {"self-attention b3 lq7", {3, 7, 7}, false, false, plain, false},
            {"cross b3 lq7 lk129", {3, 7, 129}, true, true, plain, false},
            {"cross, value = key", {3, 7, 129}, true, false, plain, false},
            {"key padding mask", {3, 7, 129}, true, true, kpm, false},
            {"bool attn mask", {3, 7, 129}, true, true, bool_mask, false},
            {"bool attn mask, a fully masked row", {3, 7, 129}, true, true, bool_mask, true},
            {"additive mask with -inf", {3, 7, 129}, true, true, additive, false},
            {"per-head additive mask", {3, 7, 129}, true, true, per_head_mask, false},
            {"causal lq7 lk129", {3, 7, 129}, true, true, causal, false},
            {"causal self-attention", {3, 7, 7}, false, false, causal, false},
            {"need_weights averaged", {3, 7, 129}, true, true, averaged, false},
            {"need_weights per head", {3, 7, 129}, true, true, per_head, false},
            {"causal + padding + per-head bool mask + per-head weights", {3, 7, 129}, true, true, everything, false},
            {"one of everything", {1, 1, 1}, true, true, averaged, false},
        };
        ModelSpec spec;
        std::string model_name;
        SUBCASE("PyTorch MHA, E 16, H 4") { model_name = "mha"; }
        SUBCASE("Llama GQA, E 32, H 8, G 2") {
            spec.naming = Naming::llama;
            spec.embed = 32;
            spec.heads = 8;
            spec.kv_heads = 2;
            model_name = "gqa";
        }
        OwnSetup s(spec, session_info(3, 7, 129, true));
        uint32_t seed = 100;
        for (const Case& c : cases) {
            CAPTURE(std::string(c.name));
            const RunInputs in =
                make_inputs(s.host.config, c.shape, c.options, c.cross, c.separate_value, seed++, c.mask_whole_row);
            run_and_check(s.session.get(), s.host, in, model_name + ": " + c.name);
        }
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("own mode: wait(0) polls and readOutputs never hands out partial results") {
        OwnSetup s(ModelSpec{}, session_info(3, 32, 256, true, 2));
        AttentionOptions o;
        o.need_weights = true;
        const RunInputs in = make_inputs(s.host.config, {3, 32, 256}, o, true, true, 21);
        const vkmha::AttentionOutputs ref = reference(s.host, in);
        const VkmhaHostSubmitInfo hi = host_submit_info(in);
        uint64_t value = 0;
        REQUIRE_VKMHA(api().submit(s.session.get(), &hi, &value));

        // Straight after submit: either still running (nothing copied) or complete (the real results).
        std::vector<float> early(output_count(s.host.config, in), std::nanf(""));
        const VkmhaResult early_read =
            api().readOutputs(s.session.get(), value, early.data(), early.size(), nullptr, 0);
        CHECK_MESSAGE((early_read == VKMHA_NOT_READY || early_read == VKMHA_SUCCESS), result_name(early_read), ": ",
                      last_error());
        if (early_read == VKMHA_NOT_READY)
            CHECK_MESSAGE(std::all_of(early.begin(), early.end(), [](float x) { return std::isnan(x); }),
                          "readOutputs wrote into the output while the submission was running");
        else
            check_matches(early.data(), ref.output, "early read");

        int polls = 0;
        VkmhaResult polled = VKMHA_TIMEOUT;
        const auto start = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - start < std::chrono::seconds(120)) {
            polled = api().wait(s.session.get(), value, 0);
            ++polls;
            if (polled != VKMHA_TIMEOUT) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        REQUIRE_MESSAGE(polled == VKMHA_SUCCESS, result_name(polled), ": ", last_error());
        MESSAGE("wait(timeout 0) polled ", polls, " times");
        std::vector<float> output(output_count(s.host.config, in));
        std::vector<float> weights(weights_count(s.host.config, in));
        REQUIRE_VKMHA(
            api().readOutputs(s.session.get(), value, output.data(), output.size(), weights.data(), weights.size()));
        check_matches(output.data(), ref.output, "polled output");
        check_matches(weights.data(), ref.weights, "polled weights");
        CHECK(api().wait(s.session.get(), value, 0) == VKMHA_SUCCESS); // a reached value stays reached
        std::vector<float> weights_only(weights.size(), std::nanf(""));
        REQUIRE_VKMHA(api().readOutputs(s.session.get(), value, nullptr, 0, weights_only.data(), weights_only.size()));
        check_matches(weights_only.data(), ref.weights, "weights read alone");

        // Submissions rotate through framesInFlight slots: each value reads back its own inputs' result until its slot
        // is reused, and then says so instead of returning another submission's data.
        std::vector<RunInputs> runs;
        std::vector<uint64_t> values;
        for (uint32_t i = 0; i < 3; ++i) {
            runs.push_back(make_inputs(s.host.config, {2, 5, 17}, AttentionOptions{}, true, true, 30 + i));
            const VkmhaHostSubmitInfo info = host_submit_info(runs.back());
            uint64_t v = 0;
            REQUIRE_VKMHA(api().submit(s.session.get(), &info, &v));
            if (!values.empty()) CHECK(v > values.back());
            values.push_back(v);
        }
        for (uint32_t i = 1; i < 3; ++i) {
            REQUIRE_VKMHA(api().wait(s.session.get(), values[i], UINT64_MAX));
            std::vector<float> out(output_count(s.host.config, runs[i]));
            REQUIRE_VKMHA(api().readOutputs(s.session.get(), values[i], out.data(), out.size(), nullptr, 0));
            check_matches(out.data(), reference(s.host, runs[i]).output, "rotating submission " + std::to_string(i));
        }
        std::vector<float> stale(output_count(s.host.config, runs[0]), std::nanf(""));
        const VkmhaResult stale_read =
            api().readOutputs(s.session.get(), values[0], stale.data(), stale.size(), nullptr, 0);
        const std::string stale_message = api().getLastError();
        CHECK_MESSAGE(stale_read < 0, "reading a submission whose slot was reused returned ", result_name(stale_read));
        CHECK_MESSAGE(stale_message.find(std::to_string(values[0])) != std::string::npos, stale_message);
        CHECK(std::all_of(stale.begin(), stale.end(), [](float x) { return std::isnan(x); }));
        check_no_validation_messages(s.context.get(), s.log);
    }

    TEST_CASE("adopt mode: sessions on different threads submit concurrently without racing on the queue") {
        // The header allows calls on different sessions from different threads at once. Their submits share the
        // context's VkQueue, which Vulkan requires to be externally synchronised: vkmha's job, not the caller's. The
        // engine hands vkmha a vkGetInstanceProcAddr whose vkQueueSubmit notices overlapping calls (and lingers, to
        // make any overlap likely), as an engine's own dispatch layer could.
        EngineDevice engine;
        require_engine(engine);
        submit_watch::g_real_gdpa =
            reinterpret_cast<PFN_vkGetDeviceProcAddr>(vkGetInstanceProcAddr(engine.instance(), "vkGetDeviceProcAddr"));
        submit_watch::g_real_submit =
            reinterpret_cast<PFN_vkQueueSubmit>(vkGetDeviceProcAddr(engine.device(), "vkQueueSubmit"));
        submit_watch::g_overlaps = 0;
        submit_watch::g_calls = 0;
        {
            ContextHandle context;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, VK_NULL_HANDLE);
            adopt.pfnGetInstanceProcAddr = &submit_watch::get_instance_proc_addr;
            ci.pAdoptDevice = &adopt;
            REQUIRE_VKMHA(api().createContext(&ci, context.out()));
            const HostModel host = make_model(ModelSpec{});
            ModelHandle model;
            create_model(context.get(), host, model);
            constexpr int kThreads = 3, kRuns = 8;
            std::array<SessionHandle, kThreads> sessions;
            const VkmhaSessionCreateInfo si = session_info(1, 4, 6, true, 2);
            for (SessionHandle& session : sessions) REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
            std::vector<RunInputs> inputs;
            std::vector<std::vector<float>> expected;
            for (int i = 0; i < kThreads; ++i) {
                inputs.push_back(
                    make_inputs(host.config, {1, 4, 6}, AttentionOptions{}, true, true, 900 + uint32_t(i)));
                expected.push_back(reference(host, inputs.back()).output);
            }
            std::array<std::string, kThreads> failures;
            std::vector<std::thread> threads;
            for (int i = 0; i < kThreads; ++i) {
                threads.emplace_back([&, i] {
                    const size_t at = size_t(i);
                    const VkmhaHostSubmitInfo hi = host_submit_info(inputs[at]);
                    std::vector<float> out(expected[at].size());
                    for (int run = 0; run < kRuns && failures[at].empty(); ++run) {
                        // Two back-to-back submits (two slots: the second waits for nothing), then check the latest.
                        uint64_t value = 0;
                        VkmhaResult r = api().submit(sessions[at].get(), &hi, &value);
                        if (r == VKMHA_SUCCESS) r = api().submit(sessions[at].get(), &hi, &value);
                        if (r == VKMHA_SUCCESS) r = api().wait(sessions[at].get(), value, UINT64_MAX);
                        if (r == VKMHA_SUCCESS)
                            r = api().readOutputs(sessions[at].get(), value, out.data(), out.size(), nullptr, 0);
                        if (r != VKMHA_SUCCESS) {
                            failures[at] = result_name(r) + ": " + api().getLastError();
                            break;
                        }
                        for (size_t k = 0; k < out.size() && failures[at].empty(); ++k)
                            if (!(std::fabs(out[k] - expected[at][k]) <= 1e-4 + 1e-3 * std::fabs(expected[at][k])))
                                failures[at] = "run " + std::to_string(run) + ": value " + std::to_string(k) + " is " +
                                               std::to_string(out[k]) + ", expected " + std::to_string(expected[at][k]);
                    }
                });
            }
            for (std::thread& th : threads) th.join();
            for (int i = 0; i < kThreads; ++i)
                CHECK_MESSAGE(failures[size_t(i)].empty(), "thread ", i, ": ", failures[size_t(i)]);
            CHECK(submit_watch::g_calls.load() >= kThreads * kRuns * 2);
            CHECK_MESSAGE(submit_watch::g_overlaps.load() == 0, submit_watch::g_overlaps.load(),
                          " vkQueueSubmit calls overlapped another on the same queue");
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

} // TEST_SUITE("plugin")
