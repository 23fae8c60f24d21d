// The C ABI's adopt mode, as an engine uses it: recordAttention into the engine's own command buffer on the
// engine's device and buffers (at unaligned offsets, through its allocation callbacks and pipeline cache), results
// checked against the CPU reference and guard bytes around every binding.
#undef VK_NO_PROTOTYPES // the engine side of these tests calls the Vulkan loader directly; the library never does
#include <vulkan/vulkan.h>

// The public header by path: the test target does not link libvkmha (nor take its include directory), on purpose.
#include "vkmha/vkmha.h"

#include "support/call_infos.h"
#include "support/check_matches.h"
#include "support/counting_allocator.h"
#include "support/engine_buffer.h"
#include "support/engine_device.h"
#include "support/engine_frame.h"
#include "support/host_model.h"
#include "support/plugin_api.h"
#include "support/run_inputs.h"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using vkmha::AttentionOptions;
using vkmha::MaskKind;
using vkmha::test::adopt_context;
using vkmha::test::adopt_info;
using vkmha::test::api;
using vkmha::test::barrier_to_host;
using vkmha::test::begin_command_buffer;
using vkmha::test::check_engine_quiet;
using vkmha::test::check_matches;
using vkmha::test::context_properties;
using vkmha::test::ContextHandle;
using vkmha::test::CountingAllocator;
using vkmha::test::create_model;
using vkmha::test::end_submit_wait;
using vkmha::test::engine_buffer;
using vkmha::test::EngineBuffer;
using vkmha::test::EngineDevice;
using vkmha::test::EngineObjects;
using vkmha::test::HostBuffer;
using vkmha::test::HostModel;
using vkmha::test::LogCapture;
using vkmha::test::make_inputs;
using vkmha::test::make_model;
using vkmha::test::ModelHandle;
using vkmha::test::ModelSpec;
using vkmha::test::Naming;
using vkmha::test::record_info;
using vkmha::test::reference;
using vkmha::test::require_engine;
using vkmha::test::RunInputs;
using vkmha::test::session_info;
using vkmha::test::SessionHandle;

} // namespace

TEST_SUITE("plugin") {

    TEST_CASE("adopt mode: the engine records attention into its own command buffer") {
        EngineDevice engine;
        require_engine(engine);
        // The engine's pipeline cache, lent to vkmha; destroyed by the engine (here, or on an early REQUIRE exit).
        struct EngineCache {
            const EngineDevice& engine;
            VkPipelineCache cache = VK_NULL_HANDLE;
            ~EngineCache() {
                if (cache && engine.ok()) vkDestroyPipelineCache(engine.device(), cache, nullptr);
            }
        } owned_cache{engine};
        {
            VkPipelineCacheCreateInfo pci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
            REQUIRE(vkCreatePipelineCache(engine.device(), &pci, nullptr, &owned_cache.cache) == VK_SUCCESS);
        }
        const VkPipelineCache engine_cache = owned_cache.cache;
        VkDeviceSize offset = 0;
        bool transfer = false;
        CountingAllocator counting;
        const VkAllocationCallbacks engine_callbacks = counting.callbacks();
        const VkAllocationCallbacks* allocator = nullptr;
        SUBCASE("offset 0, host-written inputs") { offset = 0; }
        SUBCASE("offset 4, vkmha's objects through the engine's allocation callbacks") {
            offset = 4;
            allocator = &engine_callbacks;
        }
        SUBCASE("offset 4, host-written inputs") { offset = 4; }
        SUBCASE("offset 12, host-written inputs") { offset = 12; }
        SUBCASE("offset 12, query copied and output filled by the engine's transfers in the same command buffer") {
            offset = 12;
            transfer = true;
        }
        CAPTURE(offset);
        CAPTURE(transfer);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            VkmhaContextCreateInfo ci{};
            ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
            ci.deviceMode = VKMHA_DEVICE_MODE_ADOPT;
            VkmhaAdoptDeviceInfo adopt = adopt_info(engine, engine_cache);
            adopt.pAllocator = allocator;
            ci.pAdoptDevice = &adopt;
            LogCapture log;
            ci.pfnLogCallback = &LogCapture::callback;
            ci.pLogUserData = &log;
            REQUIRE_VKMHA(api().createContext(&ci, context.out()));
            const VkmhaContextProperties p = context_properties(context.get());
            CHECK(p.ownsDevice == VK_FALSE);
            CHECK(p.canSubmit == VK_TRUE);
            CHECK(p.debugUtils == VK_TRUE);
            CHECK(p.validationMessageCount == 0);

            ModelSpec spec;
            spec.naming = Naming::torch_separate;
            spec.kdim = 12;
            spec.vdim = 20;
            const HostModel host = make_model(spec);
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(3, 7, 129, false, 1);
            REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));

            AttentionOptions o;
            o.need_weights = true;
            o.key_padding = MaskKind::boolean;
            const RunInputs in = make_inputs(host.config, {3, 7, 129}, o, true, true, 41);
            const vkmha::AttentionOutputs ref = reference(host, in);
            const size_t out_bytes = ref.output.size() * 4, weight_bytes = ref.weights.size() * 4;

            // The query buffer ends exactly where its data ends; the outputs have guard bytes on both sides.
            EngineBuffer query =
                engine_buffer(engine, transfer ? nullptr : in.query.data(), in.query.size() * 4, offset, 0, 0x3F);
            EngineBuffer key = engine_buffer(engine, in.key.data(), in.key.size() * 4, offset, 8, 0);
            EngineBuffer value = engine_buffer(engine, in.value.data(), in.value.size() * 4, offset, 8, 0);
            EngineBuffer padding = engine_buffer(engine, in.key_padding_mask.data(), in.key_padding_mask.size(),
                                                 offset + 1, 3, 0); // byte data: any offset
            EngineBuffer output = engine_buffer(engine, nullptr, out_bytes, offset, 64, 0xFF);
            EngineBuffer weights = engine_buffer(engine, nullptr, weight_bytes, offset, 64, 0xFF);
            EngineBuffer staging = engine_buffer(engine, in.query.data(), in.query.size() * 4, 0, 0, 0);

            VkmhaRecordInfo ri = record_info(0, VKMHA_NO_FRAME, in);
            ri.query = query.binding();
            ri.key = key.binding();
            ri.value = value.binding();
            ri.keyPaddingMask = padding.binding();
            ri.output = output.binding();
            ri.weights = weights.binding();

            VkCommandBuffer cmd = objects.command_buffer();
            VkFence fence = objects.fence();
            begin_command_buffer(cmd);
            if (transfer) {
                // The engine's own last use of the buffers: a copy into the query, a fill of the output.
                VkBufferCopy region{0, offset, in.query.size() * 4};
                vkCmdCopyBuffer(cmd, staging.buffer.buffer(), query.buffer.buffer(), 1, &region);
                vkCmdFillBuffer(cmd, output.buffer.buffer(), offset, out_bytes, 0x7FC00000u);
                ri.query = query.binding(VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT);
                ri.output = output.binding(VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT);
            }
            const int64_t allocations_before = counting.total();
            REQUIRE_VKMHA(api().recordAttention(session.get(), cmd, &ri));
            CHECK_MESSAGE(counting.total() == allocations_before,
                          "recordAttention allocated through the engine's callbacks");
            EngineBuffer readback = engine_buffer(engine, nullptr, out_bytes, 0, 0, 0xFF);
            if (transfer) {
                // The exit contract, followed by a GPU consumer: from COMPUTE_SHADER/SHADER_WRITE to the engine's copy.
                VkMemoryBarrier after{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
                after.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
                after.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT;
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1,
                                     &after, 0, nullptr, 0, nullptr);
                VkBufferCopy back{offset, 0, out_bytes};
                vkCmdCopyBuffer(cmd, output.buffer.buffer(), readback.buffer.buffer(), 1, &back);
                VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
                to_host.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
                to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                                     nullptr, 0, nullptr);
            }
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);

            check_matches(reinterpret_cast<const float*>(output.payload()), ref.output, "adopt output");
            if (transfer)
                check_matches(reinterpret_cast<const float*>(readback.payload()), ref.output,
                              "adopt output copied by the engine");
            check_matches(reinterpret_cast<const float*>(weights.payload()), ref.weights, "adopt weights");
            CHECK_MESSAGE(output.guards_intact(), "vkmha wrote outside the output binding");
            CHECK_MESSAGE(weights.guards_intact(), "vkmha wrote outside the weights binding");
            CHECK_MESSAGE(query.guards_intact(), "the query buffer's bytes before its offset changed");

            // A second frame into the same session, outputs only, now with the engine's compute having read the inputs.
            begin_command_buffer(cmd);
            VkmhaRecordInfo again = ri;
            again.frameIndex = 1;
            again.completedFrame = 0;
            again.flags = 0;
            again.keyPaddingMaskType = VKMHA_MASK_TYPE_NONE;
            again.keyPaddingMask = {};
            again.weights = {};
            again.query = query.binding();
            again.output = output.binding(VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
            REQUIRE_VKMHA(api().recordAttention(session.get(), cmd, &again));
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);
            RunInputs plain = in;
            plain.options = AttentionOptions{};
            plain.key_padding_mask.clear();
            check_matches(reinterpret_cast<const float*>(output.payload()), reference(host, plain).output,
                          "adopt second frame");
            CHECK(log.count(VKMHA_LOG_LEVEL_WARNING) == 0);
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        } // session, model, context (then the engine's pool and fences) destroyed here
        if (allocator) {
            CHECK(counting.total() > 0);
            CHECK_MESSAGE(counting.live() == 0, counting.live(),
                          " allocations made through the engine's callbacks are still live");
        }

        // vkmha destroyed nothing of the engine's: the device, queue and pipeline cache all still work.
        VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
        bi.size = 256;
        bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
        VkBuffer probe = VK_NULL_HANDLE;
        CHECK(vkCreateBuffer(engine.device(), &bi, nullptr, &probe) == VK_SUCCESS);
        vkDestroyBuffer(engine.device(), probe, nullptr);
        size_t cache_size = 0;
        CHECK(vkGetPipelineCacheData(engine.device(), engine_cache, &cache_size, nullptr) == VK_SUCCESS);
        CHECK(vkQueueWaitIdle(engine.queue()) == VK_SUCCESS);
        CHECK(vkDeviceWaitIdle(engine.device()) == VK_SUCCESS);
        vkDestroyPipelineCache(engine.device(), engine_cache, nullptr);
        owned_cache.cache = VK_NULL_HANDLE;
        engine.destroy(); // the layer reports any object vkmha left behind on the engine's device here
        check_engine_quiet(engine);
    }

    TEST_CASE("adopt mode: every binding packed into one engine buffer at unaligned offsets") {
        // Engines sub-allocate: query, key, value, mask and outputs all live in one VkBuffer, at offsets that are
        // 4-byte multiples but not the device's storage-buffer alignment. The query range is written by the engine's
        // copy in the same command buffer; the entry barrier (and the exit contract) must cover exactly these ranges.
        EngineDevice engine;
        require_engine(engine);
        {
            EngineObjects objects(engine);
            ContextHandle context;
            ModelHandle model;
            SessionHandle session;
            adopt_context(engine, context);
            ModelSpec spec;
            spec.naming = Naming::llama;
            spec.embed = 24;
            spec.heads = 6;
            spec.kv_heads = 2;
            const HostModel host = make_model(spec);
            create_model(context.get(), host, model);
            const VkmhaSessionCreateInfo si = session_info(2, 5, 11, false, 1);
            REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));

            AttentionOptions o;
            o.causal = true;
            o.attn_mask = MaskKind::boolean;
            o.need_weights = true;
            o.average_weights = false;
            const RunInputs in = make_inputs(host.config, {2, 5, 11}, o, true, true, 77);
            const vkmha::AttentionOutputs ref = reference(host, in);

            // Regions in order, each starting 4 bytes past a 16-byte boundary (masks: 1 byte past), 8 guard bytes
            // apart.
            struct Region {
                VkDeviceSize offset, bytes;
            };
            VkDeviceSize cursor = 0;
            auto place = [&](VkDeviceSize bytes, VkDeviceSize misalign) {
                const VkDeviceSize at = (cursor + 8 + 15) / 16 * 16 + misalign;
                cursor = at + bytes;
                return Region{at, bytes};
            };
            const Region rq = place(in.query.size() * 4, 4), rk = place(in.key.size() * 4, 12),
                         rv = place(in.value.size() * 4, 8), rm = place(in.mask_bytes.size(), 1),
                         ro = place(ref.output.size() * 4, 4), rw = place(ref.weights.size() * 4, 12);
            HostBuffer shared = engine.create_host_buffer(cursor + 32);
            REQUIRE(shared);
            std::memset(shared.bytes(), 0xFF, shared.size());
            std::memcpy(shared.bytes() + rk.offset, in.key.data(), rk.bytes);
            std::memcpy(shared.bytes() + rv.offset, in.value.data(), rv.bytes);
            std::memcpy(shared.bytes() + rm.offset, in.mask_bytes.data(), rm.bytes);
            EngineBuffer staging = engine_buffer(engine, in.query.data(), rq.bytes, 0, 0, 0);
            auto bind = [&](const Region& r, VkPipelineStageFlags stage = 0, VkAccessFlags access = 0) {
                return VkmhaBufferBinding{shared.buffer(), r.offset, r.bytes, stage, access};
            };
            VkmhaRecordInfo ri = record_info(0, VKMHA_NO_FRAME, in);
            ri.query = bind(rq, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT);
            ri.key = bind(rk);
            ri.value = bind(rv);
            ri.attnMask = bind(rm);
            ri.output = bind(ro);
            ri.weights = bind(rw);

            VkCommandBuffer cmd = objects.command_buffer();
            VkFence fence = objects.fence();
            begin_command_buffer(cmd);
            const VkBufferCopy region{0, rq.offset, rq.bytes};
            vkCmdCopyBuffer(cmd, staging.buffer.buffer(), shared.buffer(), 1, &region);
            REQUIRE_VKMHA(api().recordAttention(session.get(), cmd, &ri));
            barrier_to_host(cmd);
            end_submit_wait(engine, cmd, fence);

            check_matches(reinterpret_cast<const float*>(shared.bytes() + ro.offset), ref.output, "packed output");
            check_matches(reinterpret_cast<const float*>(shared.bytes() + rw.offset), ref.weights, "packed weights");
            // Nothing outside the output and weights regions changed (inputs included).
            std::vector<uint8_t> expected_bytes(shared.size(), 0xFF);
            std::memcpy(expected_bytes.data() + rq.offset, in.query.data(), rq.bytes);
            std::memcpy(expected_bytes.data() + rk.offset, in.key.data(), rk.bytes);
            std::memcpy(expected_bytes.data() + rv.offset, in.value.data(), rv.bytes);
            std::memcpy(expected_bytes.data() + rm.offset, in.mask_bytes.data(), rm.bytes);
            size_t changed = 0;
            for (VkDeviceSize i = 0; i < shared.size(); ++i) {
                const bool in_output =
                    (i >= ro.offset && i < ro.offset + ro.bytes) || (i >= rw.offset && i < rw.offset + rw.bytes);
                if (!in_output && shared.bytes()[i] != expected_bytes[i]) ++changed;
            }
            CHECK_MESSAGE(changed == 0, changed, " bytes outside the output bindings changed");
            CHECK(context_properties(context.get()).validationMessageCount == 0);
        }
        engine.destroy();
        check_engine_quiet(engine);
    }

} // TEST_SUITE("plugin")
