// The C ABI's session scratch: which version's default a table gives (1.3: no Lq x Lk score scratch unless asked; a
// 1.2 table keeps it), and scratch arenas that several sessions share, recorded back to back in one command buffer.
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

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using vkmha::AttentionOptions;
using vkmha::AttentionShape;
using vkmha::test::adopt_context;
using vkmha::test::api;
using vkmha::test::ArenaHandle;
using vkmha::test::barrier_to_host;
using vkmha::test::begin_command_buffer;
using vkmha::test::check_engine_quiet;
using vkmha::test::check_matches;
using vkmha::test::check_no_validation_messages;
using vkmha::test::context_properties;
using vkmha::test::ContextHandle;
using vkmha::test::create_model;
using vkmha::test::engine_buffer;
using vkmha::test::EngineBuffer;
using vkmha::test::EngineDevice;
using vkmha::test::EngineObjects;
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
using vkmha::test::record_info;
using vkmha::test::reference;
using vkmha::test::require_engine;
using vkmha::test::RunInputs;
using vkmha::test::SessionHandle;

VkmhaSessionCreateInfo plain_session(AttentionShape max, bool host_io, VkmhaSessionCreateFlags flags,
                                     uint32_t frames = 0) {
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = max.batch;
    si.maxQueryLength = max.lq;
    si.maxKeyLength = max.lk;
    si.framesInFlight = frames;
    si.hostIo = host_io ? VK_TRUE : VK_FALSE;
    si.flags = flags;
    return si;
}

VkDeviceSize session_bytes(const VkmhaProcTable& t, VkmhaModel model, const VkmhaSessionCreateInfo& si) {
    VkDeviceSize bytes = 0;
    REQUIRE_VKMHA(t.getSessionMemoryRequirements(model, &si, &bytes));
    return bytes;
}

VkDeviceSize scratch_bytes(VkmhaModel model, const VkmhaSessionCreateInfo& si) {
    VkDeviceSize bytes = 0;
    REQUIRE_VKMHA(api().getSessionScratchRequirements(model, &si, &bytes));
    return bytes;
}

// submit with `extra` attention flags (UNFUSED), wait, and compare the output with the CPU reference.
VkmhaResult submit_and_check(VkmhaSession session, const HostModel& m, const RunInputs& in, VkmhaAttentionFlags extra,
                             const std::string& what) {
    VkmhaHostSubmitInfo hi = host_submit_info(in);
    hi.flags |= extra;
    uint64_t value = 0;
    const VkmhaResult r = api().submit(session, &hi, &value);
    if (r != VKMHA_SUCCESS) return r;
    REQUIRE_VKMHA(api().wait(session, value, UINT64_MAX));
    std::vector<float> output(output_count(m.config, in), std::nanf(""));
    REQUIRE_VKMHA(api().readOutputs(session, value, output.data(), output.size(), nullptr, 0));
    check_matches(output.data(), reference(m, in).output, what);
    return r;
}

VkmhaScratchArenaCreateInfo arena_info(VkDeviceSize bytes_per_frame, uint32_t frames) {
    VkmhaScratchArenaCreateInfo ai{};
    ai.sType = VKMHA_STRUCTURE_TYPE_SCRATCH_ARENA_CREATE_INFO;
    ai.bytesPerFrame = bytes_per_frame;
    ai.framesInFlight = frames;
    return ai;
}

// README.md's "Memory" formulas, written as the README states them. Each figure is a lower bound: the README also
// says that each buffer is rounded up to 256 bytes, which `buffers` counts for the upper bound.
struct Formula {
    uint64_t bytes = 0;
    uint64_t buffers = 0;
};

struct LayerShape {
    uint64_t E, H, G, D, p; // p: bytes per stored element
};

Formula readme_model(const LayerShape& l) {
    const uint64_t QW = l.H * l.D, KV = l.G * l.D;
    // Weights, biases, and the fp32 table (16 bytes for a plain model) and the dummy: 6 buffers.
    return {l.p * (2 * l.E * QW + KV * (l.E + l.E)) + l.p * (QW + 2 * KV + l.E) + 16 + 16, 6};
}

Formula readme_scratch(const LayerShape& l, AttentionShape s, bool score_scratch) {
    const uint64_t B = s.batch, Lq = s.lq, Lk = s.lk;
    const uint64_t partials = std::min<uint64_t>(4ull << 20, 32 * std::min<uint64_t>(Lq, 16) * B * l.H * (l.D + 2));
    uint64_t bytes = l.p * (2 * B * Lk * l.G * l.D + B * Lq * l.H * l.D) + 4 * partials;
    if (score_scratch) {
        const uint64_t chunk = std::min<uint64_t>(B * l.H, (16ull << 20) / (Lq * Lk));
        bytes += l.p * B * l.H * Lq * l.D + 4 * B * l.H * Lq + 4 * chunk * Lq * Lk;
    }
    return {bytes, 7}; // Q, K, V, scores, heads, LSE, partials: each at least 16 bytes, rounded up
}

Formula readme_session(const LayerShape& l, AttentionShape s, bool score_scratch, uint64_t frames, bool arena) {
    const Formula scratch = readme_scratch(l, s, score_scratch);
    const uint64_t records = 24 * uint64_t(s.batch) * s.lq + 4 * uint64_t(s.batch) * l.H + 16; // and the sink
    return {frames * ((arena ? 0 : scratch.bytes) + records), frames * ((arena ? 0 : scratch.buffers) + 2)};
}

void check_formula(uint64_t reported, Formula f, const std::string& what) {
    INFO(what, ": reported ", reported, ", README formula ", f.bytes, " + up to ", f.buffers, " x 256");
    CHECK(reported >= f.bytes);
    CHECK(reported <= f.bytes + 256 * f.buffers);
}

} // namespace

TEST_SUITE("plugin_scratch") {

    TEST_CASE("session defaults: a 1.3 table gives no score scratch unless asked, a 1.2 table keeps it") {
        VkmhaProcTable t12{};
        REQUIRE(vkmha::test::library().get_proc_table(VKMHA_API_VERSION_1_2, &t12, sizeof t12) == VKMHA_SUCCESS);
        const VkmhaProcTable& t13 = api();
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(t13.createContext(&ci, context.out()));
        // Three heads (not a power of two), lengths 7 and 33: the scores of one frame slot are B*H*Lq*Lk floats.
        const HostModel host = make_model(ModelSpec{.embed = 24, .heads = 3});
        ModelHandle model;
        create_model(context.get(), host, model);
        const AttentionShape max{2, 7, 33};
        const VkmhaSessionCreateInfo plain = plain_session(max, true, 0, 1);
        const VkmhaSessionCreateInfo asked = plain_session(max, true, VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT, 1);
        const VkmhaSessionCreateInfo fused = plain_session(max, true, VKMHA_SESSION_CREATE_FUSED_ONLY_BIT, 1);
        const VkDeviceSize cheap13 = session_bytes(t13, model.get(), plain),
                           full13 = session_bytes(t13, model.get(), asked);
        const VkDeviceSize default12 = session_bytes(t12, model.get(), plain),
                           fused12 = session_bytes(t12, model.get(), fused);
        MESSAGE("session bytes: 1.3 default ", cheap13, ", 1.3 SCORE_SCRATCH ", full13, ", 1.2 default ", default12,
                ", 1.2 FUSED_ONLY ", fused12);
        CHECK(default12 == full13); // a 1.2 caller's session is what it always was
        CHECK(fused12 == cheap13);
        CHECK(full13 - cheap13 >= uint64_t(2) * 3 * 7 * 33 * 4); // at least the scores
        CHECK(scratch_bytes(model.get(), asked) > scratch_bytes(model.get(), plain));
        // SCORE_SCRATCH_BIT means nothing new to a 1.2 table (its default), and contradicts FUSED_ONLY_BIT on either.
        CHECK(session_bytes(t12, model.get(), asked) == default12);
        const VkmhaSessionCreateInfo both =
            plain_session(max, true, VKMHA_SESSION_CREATE_FUSED_ONLY_BIT | VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT, 1);
        for (const VkmhaProcTable* t : std::array<const VkmhaProcTable*, 2>{&t12, &t13}) {
            VkDeviceSize unused = 0;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, t->getSessionMemoryRequirements(model.get(), &both, &unused),
                           "VKMHA_SESSION_CREATE_FUSED_ONLY_BIT", "VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT");
        }

        const RunInputs in = make_inputs(host.config, {2, 7, 33}, AttentionOptions{}, true, true, 17);
        SessionHandle s13, s12, s13_asked;
        REQUIRE_VKMHA(t13.createSession(model.get(), &plain, s13.out()));
        REQUIRE_VKMHA(t12.createSession(model.get(), &plain, s12.out()));
        REQUIRE_VKMHA(t13.createSession(model.get(), &asked, s13_asked.out()));
        // The cheap 1.3 session runs the fused path and refuses the unfused one, naming the flag that would allow it.
        REQUIRE_VKMHA(submit_and_check(s13.get(), host, in, 0, "1.3 default session, fused"));
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT,
                       submit_and_check(s13.get(), host, in, VKMHA_ATTENTION_UNFUSED_BIT, "refused"),
                       "VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT", "unfused");
        REQUIRE_VKMHA(
            submit_and_check(s12.get(), host, in, VKMHA_ATTENTION_UNFUSED_BIT, "1.2 default session, unfused"));
        REQUIRE_VKMHA(
            submit_and_check(s13_asked.get(), host, in, VKMHA_ATTENTION_UNFUSED_BIT, "1.3 SCORE_SCRATCH, unfused"));
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("session defaults: a 1.3 session asking for weights, or of a model only the unfused path runs, has it") {
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        const AttentionShape max{1, 5, 9};
        {
            // HOST_WEIGHTS_BIT stages need_weights results: it asks for the weights, so the scratch comes with it.
            const HostModel host = make_model(ModelSpec{});
            ModelHandle model;
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo weights = plain_session(max, true, VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT);
            const VkmhaSessionCreateInfo both = plain_session(
                max, true, VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT | VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT);
            CHECK(session_bytes(api(), model.get(), weights) == session_bytes(api(), model.get(), both));
            SessionHandle session;
            REQUIRE_VKMHA(api().createSession(model.get(), &weights, session.out()));
            AttentionOptions o;
            o.need_weights = true;
            vkmha::test::run_and_check(session.get(), host, make_inputs(host.config, {1, 5, 9}, o, true, true, 3),
                                       "HOST_WEIGHTS session, need_weights");
        }
        {
            // Head dim 264 is over the fused kernel's: that model always runs unfused, so its default session can.
            const HostModel host = make_model(ModelSpec{.embed = 264, .heads = 1});
            ModelHandle model;
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo plain = plain_session(max, true, 0);
            const VkmhaSessionCreateInfo asked = plain_session(max, true, VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT);
            CHECK(session_bytes(api(), model.get(), plain) == session_bytes(api(), model.get(), asked));
            SessionHandle session;
            REQUIRE_VKMHA(api().createSession(model.get(), &plain, session.out()));
            vkmha::test::run_and_check(session.get(), host,
                                       make_inputs(host.config, {1, 5, 9}, AttentionOptions{}, true, true, 4),
                                       "head dim 264, default session");
        }
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("scratch arena: three layers on one arena, chained in one command buffer, two frames in flight") {
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            adopt_context(engine, context);
            // Three layers of one width E = 48 whose output feeds the next: head counts 3, 6 (2 KV heads) and 1, head
            // dims 16, 8 and 48.
            const ModelSpec specs[] = {{.embed = 48, .heads = 3, .seed = 11},
                                       {.embed = 48, .heads = 6, .kv_heads = 2, .naming = Naming::llama, .seed = 12},
                                       {.embed = 48, .heads = 1, .seed = 13}};
            constexpr size_t kLayers = std::size(specs);
            std::vector<HostModel> hosts;
            std::array<ModelHandle, kLayers> models;
            for (size_t l = 0; l < kLayers; ++l) {
                hosts.push_back(make_model(specs[l]));
                create_model(context.get(), hosts[l], models[l]);
            }
            const AttentionShape max{2, 129, 129};
            const VkmhaSessionCreateInfo own = plain_session(max, false, 0, 2);
            VkDeviceSize largest = 0, sum = 0, own_sum = 0;
            for (const ModelHandle& m : models) {
                const VkDeviceSize need = scratch_bytes(m.get(), own);
                CHECK(need % 256 == 0);
                largest = std::max(largest, need);
                sum += need;
                own_sum += session_bytes(api(), m.get(), own);
            }
            ArenaHandle arena;
            const VkmhaScratchArenaCreateInfo ai = arena_info(largest, 2);
            REQUIRE_VKMHA(api().createScratchArena(context.get(), &ai, arena.out()));
            VkmhaSessionScratchArenaInfo shared{VKMHA_STRUCTURE_TYPE_SESSION_SCRATCH_ARENA_INFO, nullptr, arena.get()};
            VkmhaSessionCreateInfo si = plain_session(max, false, 0, 0); // 0 frames: the arena's 2
            si.pNext = &shared;
            std::array<SessionHandle, kLayers + 1> sessions; // the last one only tries a frame the arena refuses
            VkDeviceSize shared_sum = 0;
            for (size_t l = 0; l <= kLayers; ++l) {
                const VkmhaModel m = models[std::min(l, kLayers - 1)].get();
                shared_sum += l < kLayers ? session_bytes(api(), m, si) : 0;
                REQUIRE_VKMHA(api().createSession(m, &si, sessions[l].out()));
            }
            MESSAGE("3 layers, 2 frames in flight: scratch per frame ", sum, " bytes own vs ", largest,
                    " shared; sessions ", own_sum, " bytes own vs ", shared_sum, " + arena ", 2 * largest);
            CHECK(shared_sum + 2 * largest < own_sum);
            // The sessions hold the arena: the caller's handle may go first (the header's destroy-order rule).
            arena.reset();

            struct Frame {
                AttentionShape shape;
                bool causal;
                std::vector<float> input;
                std::array<EngineBuffer, kLayers + 1> x; // x[0] in, x[l + 1] = layer l's output
                VkCommandBuffer cmd = VK_NULL_HANDLE;
                VkFence fence = VK_NULL_HANDLE;
            };
            std::array<Frame, 2> frames{Frame{{2, 7, 7}, false, {}, {}}, Frame{{1, 129, 129}, true, {}, {}}};
            for (uint64_t n = 0; n < frames.size(); ++n) {
                Frame& f = frames[n];
                AttentionOptions o;
                o.causal = f.causal;
                const RunInputs in = make_inputs(hosts[0].config, f.shape, o, false, false, 70 + uint32_t(n));
                f.input = in.query;
                const size_t bytes = in.query.size() * 4;
                f.x[0] = engine_buffer(engine, in.query.data(), bytes, 0, 0, 0);
                for (size_t l = 1; l <= kLayers; ++l) f.x[l] = engine_buffer(engine, nullptr, bytes, 4, 12, 0xFF);
                f.cmd = objects.command_buffer();
                f.fence = objects.fence();
                begin_command_buffer(f.cmd);
                for (size_t l = 0; l < kLayers; ++l) {
                    VkmhaRecordInfo ri = record_info(n, VKMHA_NO_FRAME, in);
                    // The engine's barrier contract: layer l reads what layer l - 1 wrote in a compute shader.
                    ri.query = l == 0
                                   ? f.x[0].binding()
                                   : f.x[l].binding(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT);
                    ri.output = f.x[l + 1].binding();
                    REQUIRE_MESSAGE(api().recordAttention(sessions[l].get(), f.cmd, &ri) == VKMHA_SUCCESS,
                                    last_error());
                }
                barrier_to_host(f.cmd);
                REQUIRE(vkEndCommandBuffer(f.cmd) == VK_SUCCESS);
                REQUIRE(engine.submit(f.cmd, f.fence) == VK_SUCCESS);
            }
            {
                // Frame 2 needs the arena's frame slot 0, which frame 0 of the other sessions holds: refused although
                // this session's own frame slot is free.
                Frame& f = frames[0];
                VkCommandBuffer cmd = objects.command_buffer();
                begin_command_buffer(cmd);
                const RunInputs in = make_inputs(hosts[2].config, f.shape, AttentionOptions{}, false, false, 9);
                VkmhaRecordInfo ri = record_info(2, VKMHA_NO_FRAME, in);
                ri.query = f.x[0].binding();
                ri.output = f.x[1].binding();
                EXPECT_FAILURE(VKMHA_ERROR_FRAME_IN_FLIGHT, api().recordAttention(sessions[kLayers].get(), cmd, &ri),
                               "scratch arena", "frame 2", "frame 0");
                REQUIRE(vkEndCommandBuffer(cmd) == VK_SUCCESS);
            }
            for (uint64_t n = 0; n < frames.size(); ++n) {
                Frame& f = frames[n];
                REQUIRE(vkWaitForFences(engine.device(), 1, &f.fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS);
                RunInputs in;
                in.shape = f.shape;
                in.options.causal = f.causal;
                in.query = f.input;
                for (size_t l = 0; l < kLayers; ++l) {
                    const std::vector<float> ref = reference(hosts[l], in).output;
                    const auto* got = reinterpret_cast<const float*>(f.x[l + 1].payload());
                    check_matches(got, ref, "frame " + std::to_string(n) + " layer " + std::to_string(l));
                    CHECK(f.x[l + 1].guards_intact());
                    in.query.assign(got, got + ref.size()); // the next layer's input is what the GPU wrote
                }
            }
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

    TEST_CASE("scratch arena: a too small arena, hostIo, other frame counts and bad arenas are refused by name") {
        LogCapture log;
        ContextHandle context, other;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        REQUIRE_VKMHA(api().createContext(&ci, other.out()));
        const HostModel host = make_model(ModelSpec{.embed = 20, .heads = 5});
        ModelHandle model;
        create_model(context.get(), host, model);
        VkmhaSessionCreateInfo si = plain_session({3, 127, 127}, false, 0, 2);
        const VkDeviceSize need = scratch_bytes(model.get(), si);
        const VkDeviceSize alone = session_bytes(api(), model.get(), si);

        ArenaHandle small, right, three, foreign;
        VkmhaScratchArenaCreateInfo ai = arena_info(need - 256, 2);
        REQUIRE_VKMHA(api().createScratchArena(context.get(), &ai, small.out()));
        ai.bytesPerFrame = need;
        REQUIRE_VKMHA(api().createScratchArena(context.get(), &ai, right.out()));
        REQUIRE_VKMHA(api().createScratchArena(other.get(), &ai, foreign.out()));
        ai.framesInFlight = 3;
        REQUIRE_VKMHA(api().createScratchArena(context.get(), &ai, three.out()));

        VkmhaSessionScratchArenaInfo shared{VKMHA_STRUCTURE_TYPE_SESSION_SCRATCH_ARENA_INFO, nullptr, small.get()};
        si.pNext = &shared;
        SessionHandle session;
        EXPECT_FAILURE(VKMHA_ERROR_BUDGET_EXCEEDED, api().createSession(model.get(), &si, session.out()),
                       std::to_string(need), std::to_string(need - 256), "bytesPerFrame",
                       "getSessionScratchRequirements");
        VkDeviceSize bytes = 0;
        EXPECT_FAILURE(VKMHA_ERROR_BUDGET_EXCEEDED, api().getSessionMemoryRequirements(model.get(), &si, &bytes),
                       std::to_string(need));
        shared.arena = three.get();
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().createSession(model.get(), &si, session.out()),
                       "framesInFlight 2", "3");
        shared.arena = foreign.get();
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().createSession(model.get(), &si, session.out()),
                       "another context");
        shared.arena = nullptr;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().createSession(model.get(), &si, session.out()),
                       "VkmhaSessionScratchArenaInfo::arena is NULL");
        shared.arena = right.get();
        si.hostIo = VK_TRUE;
        EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().createSession(model.get(), &si, session.out()), "hostIo");
        CHECK(session.get() == nullptr);
        si.hostIo = VK_FALSE;
        // Exactly the need fits, and the session then owns only its frame slots' records.
        REQUIRE_VKMHA(api().getSessionMemoryRequirements(model.get(), &si, &bytes));
        CHECK(bytes < alone);
        REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));

        for (const auto& [bad, text] : {std::pair{arena_info(0, 2), std::string("bytesPerFrame is 0")},
                                        std::pair{arena_info(256, 9), std::string("framesInFlight 9")}}) {
            ArenaHandle refused;
            EXPECT_FAILURE(VKMHA_ERROR_INVALID_ARGUMENT, api().createScratchArena(context.get(), &bad, refused.out()),
                           text);
            CHECK(refused.get() == nullptr);
        }
        VkmhaScratchArenaCreateInfo budget = arena_info(need, 2);
        budget.memoryBudget = need;
        ArenaHandle over;
        EXPECT_FAILURE(VKMHA_ERROR_BUDGET_EXCEEDED, api().createScratchArena(context.get(), &budget, over.out()),
                       std::to_string(need));
        // Destroy order: the session goes after its arena's handle, then the arena's memory with it.
        right.reset();
        session.reset();
        check_no_validation_messages(context.get(), log);
    }

    TEST_CASE("memory formula: README's model, session, arena and KV cache figures match the queries") {
        LogCapture log;
        ContextHandle context;
        const VkmhaContextCreateInfo ci = own_context_info(&log);
        REQUIRE_VKMHA(api().createContext(&ci, context.out()));
        struct Case {
            ModelSpec spec;
            AttentionShape max;
            uint32_t frames;
            VkmhaPrecision precision;
        };
        const Case cases[] = {
            {{.embed = 256, .heads = 8, .kv_heads = 2, .naming = Naming::llama},
             {2, 129, 129},
             2,
             VKMHA_PRECISION_FP32},
            {{.embed = 256, .heads = 8, .kv_heads = 2, .naming = Naming::llama},
             {2, 129, 129},
             2,
             VKMHA_PRECISION_FP16},
            {{.embed = 400, .heads = 5}, {1, 7, 127}, 3, VKMHA_PRECISION_FP32}, // head dim 80
        };
        for (const Case& c : cases) {
            const HostModel host = make_model(c.spec);
            const LayerShape l{host.config.embed_dim, host.config.num_heads, host.config.num_kv_heads,
                               host.config.head_dim(), c.precision == VKMHA_PRECISION_FP16 ? 2u : 4u};
            const std::string name = "E" + std::to_string(l.E) + " H" + std::to_string(l.H) + " G" +
                                     std::to_string(l.G) + " D" + std::to_string(l.D) + " p" + std::to_string(l.p);
            CAPTURE(name);
            const std::vector<VkmhaTensor> views = vkmha::test::tensor_views(host.tensors);
            VkmhaModelCreateInfo mi = vkmha::test::model_info(host.config.num_heads, views);
            mi.precision = c.precision;
            VkDeviceSize bytes = 0;
            REQUIRE_VKMHA(api().getModelMemoryRequirements(context.get(), &mi, &bytes));
            check_formula(bytes, readme_model(l), name + " model");
            ModelHandle model;
            if (api().createModel(context.get(), &mi, model.out()) != VKMHA_SUCCESS) {
                MESSAGE(name, ": no fp16 storage on this device: ", last_error());
                continue;
            }
            for (const bool scores : {false, true}) {
                const VkmhaSessionCreateInfo si =
                    plain_session(c.max, false, scores ? VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT : 0, c.frames);
                const std::string what = name + (scores ? " with score scratch" : " default");
                check_formula(scratch_bytes(model.get(), si), readme_scratch(l, c.max, scores), what + " scratch");
                check_formula(session_bytes(api(), model.get(), si), readme_session(l, c.max, scores, c.frames, false),
                              what + " session");
                ArenaHandle arena;
                const VkmhaScratchArenaCreateInfo ai = arena_info(scratch_bytes(model.get(), si), c.frames);
                REQUIRE_VKMHA(api().createScratchArena(context.get(), &ai, arena.out()));
                VkmhaSessionScratchArenaInfo shared{VKMHA_STRUCTURE_TYPE_SESSION_SCRATCH_ARENA_INFO, nullptr,
                                                    arena.get()};
                VkmhaSessionCreateInfo on_arena = si;
                on_arena.pNext = &shared;
                check_formula(session_bytes(api(), model.get(), on_arena),
                              readme_session(l, c.max, scores, c.frames, true), what + " session on an arena");
            }
            VkmhaKvCacheCreateInfo ki{};
            ki.sType = VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO;
            ki.sequences = 3;
            ki.capacity = 129;
            REQUIRE_VKMHA(api().getKvCacheMemoryRequirements(model.get(), &ki, &bytes));
            check_formula(bytes, {2 * 3 * l.G * 129 * l.D * l.p, 2}, name + " KV cache");
        }
        check_no_validation_messages(context.get(), log);
    }
}
