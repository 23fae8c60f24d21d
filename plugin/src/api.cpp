// The C ABI: vkmhaGetProcTable and the functions of its table, each a thin guarded shim over host/.
#include "guard.h"

#include "chain.h"
#include "enum_mirror.h"
#include "model_info.h"
#include "pipeline_statistics_api.h"
#include "qkv_layout.h"
#include "reference.h"
#include "struct_check.h"

#include "context.h"
#include "host_submit.h"
#include "io/weight_map.h"
#include "kv_cache.h"
#include "kv_state.h"
#include "model.h"
#include "prefill_job.h"
#include "scratch_arena.h"
#include "session.h"

#include <algorithm>
#include <cmath>
#include <cstring>

struct VkmhaContext_T {
    std::unique_ptr<vkmha::Context> context;
    PFN_vkmhaLogCallback log = nullptr;
    void* log_user = nullptr;
};
struct VkmhaModel_T {
    VkmhaContext_T* context = nullptr;
    std::unique_ptr<vkmha::Model> model;
};
struct VkmhaSession_T {
    VkmhaModel_T* model = nullptr;
    std::unique_ptr<vkmha::Session> session;
};
struct VkmhaKvCache_T {
    VkmhaModel_T* model = nullptr;
    std::unique_ptr<vkmha::KvCache> cache;
};
struct VkmhaPrefillJob_T {
    VkmhaKvCache_T* cache = nullptr;
    std::unique_ptr<vkmha::PrefillJob> job;
};
struct VkmhaScratchArena_T {
    VkmhaContext_T* context = nullptr;
    std::shared_ptr<vkmha::ScratchArena> arena; // its sessions hold it too: the memory goes with the last of them
};

namespace vkmha::plugin {
namespace {

constexpr uint32_t kLibraryVersion = VKMHA_API_VERSION_1_3;

VkmhaResult invalid(std::string message) { return fail(ErrorCode::invalid_argument, std::move(message)); }

std::string hex(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%x", v);
    return buf;
}

#define VKMHA_REQUIRE(cond, message)                                                                                   \
    do {                                                                                                               \
        if (!(cond)) return invalid(message);                                                                          \
    } while (0)

// A failed Status becomes the call's VkmhaResult and last error.
#define VKMHA_CHECK(expr)                                                                                              \
    do {                                                                                                               \
        if (Status check_ = (expr); !check_) return fail(check_.error());                                              \
    } while (0)

// ---- a lost device stays lost --------------------------------------------------------------------------------

const Context* context_of(const VkmhaContext_T* c) { return c ? c->context.get() : nullptr; }
const Context* context_of(const VkmhaModel_T* m) { return m ? context_of(m->context) : nullptr; }
const Context* context_of(const VkmhaSession_T* s) { return s ? context_of(s->model) : nullptr; }
const Context* context_of(const VkmhaKvCache_T* c) { return c ? context_of(c->model) : nullptr; }

// `guarded` for a call on `handle`'s context: once a Vulkan call returned VK_ERROR_DEVICE_LOST, nothing on that
// device works again (Vulkan's rule), so every later call says so before touching it. Destroy calls stay plain.
template <typename H, typename F> VkmhaResult guarded_on(const H* handle, F&& body) noexcept {
    return guarded([&]() -> VkmhaResult {
        const Context* ctx = context_of(handle);
        if (ctx && ctx->device().lost())
            return fail(ErrorCode::device_lost, "the device was lost (VK_ERROR_DEVICE_LOST) by an earlier call on this "
                                                "context; destroy everything made from it and the context");
        return body();
    });
}

const char* VKMHA_CALL get_last_error() { return last_error(); }

VkmhaResult VKMHA_CALL get_device_requirements(VkmhaDeviceRequirements* req) {
    return guarded([&] {
        VKMHA_REQUIRE(req, "pRequirements is NULL");
        // Every extension adopt mode looks for in ppEnabledDeviceExtensions (device.cpp), so engines can enable it.
        static const char* const optional_device[] = {"VK_KHR_timeline_semaphore", "VK_EXT_pipeline_creation_feedback"};
        static const char* const optional_instance[] = {"VK_EXT_debug_utils"};
        *req = {};
        req->minApiVersion = VK_API_VERSION_1_1;
        req->optionalDeviceExtensionCount = 2;
        req->ppOptionalDeviceExtensions = optional_device;
        req->optionalInstanceExtensionCount = 1;
        req->ppOptionalInstanceExtensions = optional_instance;
        req->wantsTimelineSemaphore = VK_TRUE;
        req->wantsStorageBuffer16BitAccess = VK_TRUE;
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL enumerate_devices(uint32_t* count, char (*names)[256]) {
    return guarded([&] {
        VKMHA_REQUIRE(count, "pCount is NULL");
        auto devices = Device::enumerate();
        if (!devices) return fail(devices.error());
        const uint32_t n = static_cast<uint32_t>(devices->size());
        if (names) {
            const uint32_t written = std::min(*count, n);
            for (uint32_t i = 0; i < written; ++i) {
                std::strncpy(names[i], (*devices)[i].name.c_str(), 255);
                names[i][255] = '\0';
            }
            *count = written;
            return written < n ? VKMHA_NOT_READY : VKMHA_SUCCESS;
        }
        *count = n;
        return VKMHA_SUCCESS;
    });
}

// Own mode: the device VkmhaOwnDeviceInfo names (optional: NULL takes the best one).
Result<std::unique_ptr<Device>> own_device(const VkmhaOwnDeviceInfo* own, bool compile_only, LogFunction log) {
    OwnDeviceOptions o;
    o.compile_only = compile_only;
    if (own) {
        VKMHA_TRY(check_unchained(own, "pOwnDevice"));
        o.device_index = own->deviceIndex;
        if (own->pDeviceName) o.device_name = own->pDeviceName;
    }
    return Device::create_own(o, std::move(log));
}

// Adopt mode: the engine's handles and what it enabled, as the host takes them.
Result<std::unique_ptr<Device>> adopt_device(const VkmhaAdoptDeviceInfo* a, bool compile_only, LogFunction log) {
    if (!a) return argument_error("deviceMode is ADOPT but pAdoptDevice is NULL");
    VKMHA_TRY(check_unchained(a, "pAdoptDevice"));
    if (a->enabledInstanceExtensionCount != 0 && !a->ppEnabledInstanceExtensions)
        return argument_error("enabledInstanceExtensionCount is nonzero but ppEnabledInstanceExtensions is NULL");
    if (a->enabledDeviceExtensionCount != 0 && !a->ppEnabledDeviceExtensions)
        return argument_error("enabledDeviceExtensionCount is nonzero but ppEnabledDeviceExtensions is NULL");
    AdoptDeviceOptions o;
    o.instance = a->instance;
    o.physical_device = a->physicalDevice;
    o.device = a->device;
    o.get_instance_proc_addr = a->pfnGetInstanceProcAddr;
    o.api_version = a->apiVersion;
    for (uint32_t i = 0; i < a->enabledInstanceExtensionCount; ++i)
        if (a->ppEnabledInstanceExtensions[i])
            o.enabled_instance_extensions.push_back(a->ppEnabledInstanceExtensions[i]);
    for (uint32_t i = 0; i < a->enabledDeviceExtensionCount; ++i)
        if (a->ppEnabledDeviceExtensions[i]) o.enabled_device_extensions.push_back(a->ppEnabledDeviceExtensions[i]);
    o.timeline_semaphore_enabled = a->timelineSemaphoreEnabled == VK_TRUE;
    o.storage_buffer_16bit_access_enabled = a->storageBuffer16BitAccessEnabled == VK_TRUE;
    o.queue_given = a->queue != VK_NULL_HANDLE;
    o.queue = a->queue;
    o.queue_family_index = a->queueFamilyIndex;
    o.pipeline_cache = a->pipelineCache;
    o.allocator = a->pAllocator;
    o.compile_only = compile_only;
    return Device::adopt(o, std::move(log));
}

VkmhaResult VKMHA_CALL create_context(const VkmhaContextCreateInfo* info, VkmhaContext* out) {
    return guarded([&] {
        VKMHA_REQUIRE(out, "pContext is NULL");
        *out = nullptr;
        VKMHA_CHECK(check_struct(info, "pCreateInfo"));
        const VkmhaContextCompileOnlyInfo* compile_only = nullptr; // 1.3
        const ChainTarget chain[] = {
            {VKMHA_STRUCTURE_TYPE_CONTEXT_COMPILE_ONLY_INFO, reinterpret_cast<const void**>(&compile_only)}};
        VKMHA_CHECK(walk_chain(info->pNext, "VkmhaContextCreateInfo", chain));
        if (compile_only) VKMHA_CHECK(no_chain(compile_only->pNext, "VkmhaContextCompileOnlyInfo"));
        const bool compile = compile_only && compile_only->compileOnly == VK_TRUE;
        VKMHA_REQUIRE(info->pipelineCacheDataSize == 0 || info->pPipelineCacheData,
                      "pipelineCacheDataSize is " + std::to_string(info->pipelineCacheDataSize) +
                          " but pPipelineCacheData is NULL");
        auto handle = std::make_unique<VkmhaContext_T>();
        handle->log = info->pfnLogCallback;
        handle->log_user = info->pLogUserData;
        VkmhaContext_T* raw = handle.get();
        LogFunction log = [raw](LogLevel level, const std::string& message) {
            if (raw->log) raw->log(to_c(level), message.c_str(), raw->log_user);
        };
        Result<std::unique_ptr<Device>> device = make_error(ErrorCode::internal, "no device");
        const uint32_t mode = raw_enum(info->deviceMode);
        if (mode == VKMHA_DEVICE_MODE_OWN)
            device = own_device(info->pOwnDevice, compile, log);
        else if (mode == VKMHA_DEVICE_MODE_ADOPT)
            device = adopt_device(info->pAdoptDevice, compile, log);
        else
            return invalid("deviceMode " + std::to_string(mode) + " is unknown");
        if (!device) return fail(device.error());
        std::vector<uint8_t> cache;
        if (info->pipelineCacheDataSize) {
            const auto* bytes = static_cast<const uint8_t*>(info->pPipelineCacheData);
            cache.assign(bytes, bytes + info->pipelineCacheDataSize);
        }
        auto context = Context::create(std::move(device.value()), cache);
        if (!context) return fail(context.error());
        handle->context = std::move(context.value());
        *out = handle.release();
        return VKMHA_SUCCESS;
    });
}

void VKMHA_CALL destroy_context(VkmhaContext context) {
    (void)guarded([&] {
        delete context;
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL get_context_properties(VkmhaContext context, VkmhaContextProperties* props) {
    return guarded_on(context, [&] {
        VKMHA_REQUIRE(context, "context is NULL");
        // No output struct extends this one yet: a chained struct would be left unfilled, so it is refused.
        VKMHA_CHECK(check_unchained(props, "pProperties"));
        const Device& d = context->context->device();
        *props = {};
        props->sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
        std::strncpy(props->deviceName, d.info().name.c_str(), sizeof(props->deviceName) - 1);
        props->deviceType = d.info().type;
        props->vendorId = d.info().vendor_id;
        props->deviceApiVersion = d.info().api_version;
        props->ownsDevice = d.owns_device();
        props->canSubmit = d.has_queue() && d.timeline_semaphores() && !d.compile_only();
        props->timestamps = d.limits().timestamps;
        props->debugUtils = d.debug_utils();
        props->subgroupSize = d.limits().subgroup_size;
        props->maxStorageBufferRange = d.limits().max_storage_buffer_range;
        props->validationMessageCount = d.validation_message_count();
        props->pipelineCount = context->context->shaders().pipeline_count();
        props->pipelinesFromCache = context->context->shaders().pipelines_from_cache();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL get_pipeline_cache_data(VkmhaContext context, size_t* size, void* data) {
    return guarded_on(context, [&] {
        VKMHA_REQUIRE(context, "context is NULL");
        VKMHA_REQUIRE(size, "pSize is NULL");
        auto bytes = context->context->shaders().cache_data();
        if (!bytes) return fail(bytes.error());
        if (!data) {
            *size = bytes->size();
            return VKMHA_SUCCESS;
        }
        const size_t n = std::min(*size, bytes->size());
        std::memcpy(data, bytes->data(), n);
        *size = n;
        return n < bytes->size() ? VKMHA_NOT_READY : VKMHA_SUCCESS;
    });
}

// 1.3 (pipeline_statistics_api.cpp)
VkmhaResult VKMHA_CALL get_pipeline_statistics(VkmhaContext context, const VkmhaPipelineStatisticsInfo* info,
                                               uint32_t* count, VkmhaPipelineStatistics* statistics) {
    return guarded_on(context, [&] {
        VKMHA_REQUIRE(context, "context is NULL");
        return pipeline_statistics_c(*context->context, info, count, statistics);
    });
}

// What createModel and getModelMemoryRequirements share (model_info.h), behind the context's own check.
Result<io::LoadedModel> load_model(VkmhaContext context, const VkmhaModelCreateInfo* info) {
    if (!context) return make_error(ErrorCode::invalid_argument, "context is NULL");
    return load_model_info(info);
}

VkmhaResult VKMHA_CALL get_model_memory_requirements(VkmhaContext context, const VkmhaModelCreateInfo* info,
                                                     VkDeviceSize* bytes) {
    return guarded_on(context, [&] {
        VKMHA_REQUIRE(bytes, "pBytes is NULL");
        auto loaded = load_model(context, info);
        if (!loaded) return fail(loaded.error());
        auto need = Model::memory_required(*context->context, loaded->config, precision_of(*info));
        if (!need) return fail(need.error());
        *bytes = need.value();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL create_model(VkmhaContext context, const VkmhaModelCreateInfo* info, VkmhaModel* out) {
    return guarded_on(context, [&] {
        VKMHA_REQUIRE(out, "pModel is NULL");
        *out = nullptr;
        auto loaded = load_model(context, info);
        if (!loaded) return fail(loaded.error());
        if (info->memoryBudget) {
            auto need = Model::memory_required(*context->context, loaded->config, precision_of(*info));
            if (!need) return fail(need.error());
            if (need.value() > info->memoryBudget)
                return fail(ErrorCode::budget_exceeded, "model needs " + std::to_string(need.value()) +
                                                            " bytes of device memory, over the budget of " +
                                                            std::to_string(info->memoryBudget));
        }
        auto upload = upload_of(*info);
        if (!upload) return fail(upload.error());
        // Own mode: the caller has no command buffer on vkmha's device to record the upload into.
        VKMHA_REQUIRE(upload.value() == ModelUpload::submit || !context->context->device().owns_device(),
                      "VkmhaModelUploadInfo::recordUpload needs an adopted device (deviceMode ADOPT): in own mode "
                      "there is no engine command buffer on vkmha's device to record the upload into");
        auto model =
            Model::create(*context->context, loaded->config, loaded->weights, precision_of(*info), upload.value());
        if (!model) return fail(model.error());
        auto handle = std::make_unique<VkmhaModel_T>();
        handle->context = context;
        handle->model = std::move(model.value());
        *out = handle.release();
        return VKMHA_SUCCESS;
    });
}

void VKMHA_CALL destroy_model(VkmhaModel model) {
    (void)guarded([&] {
        delete model;
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL get_model_properties(VkmhaModel model, VkmhaModelProperties* props) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(model, "model is NULL");
        VKMHA_REQUIRE(props, "pProperties is NULL");
        const AttentionConfig& c = model->model->config();
        *props = {};
        props->embedDim = c.embed_dim;
        props->numHeads = c.num_heads;
        props->numKvHeads = c.num_kv_heads;
        props->headDim = c.head_dim();
        props->kdim = c.kdim;
        props->vdim = c.vdim;
        props->hasInputBias = model->model->has_in_bias();
        props->hasOutputBias = model->model->has_out_bias();
        props->deviceMemoryBytes = model->model->bytes();
        props->precision = to_c(model->model->precision());
        return VKMHA_SUCCESS;
    });
}

// Which version's session defaults a table's createSession and getSessionMemoryRequirements follow: a table filled
// for 1.0-1.2 keeps their score scratch by default (a caller built against those headers must see no change), a
// 1.3 table gives the cheap session unless the caller asks for weights or the unfused path (vkmha.h, "Entry point").
enum class SessionDefaults { v1_2, v1_3 };

// The score scratch the flags and the defaults ask for. A 1.3 default session still gets it when nothing else could
// run the model: a head dim over the fused kernel's limit always takes the unfused path.
Result<bool> fused_only(const VkmhaModel_T& model, VkmhaSessionCreateFlags flags, SessionDefaults defaults) {
    const bool fused = flags & VKMHA_SESSION_CREATE_FUSED_ONLY_BIT;
    const bool scores = flags & VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT;
    if (fused && scores)
        return make_error(ErrorCode::invalid_argument, "session flags set both VKMHA_SESSION_CREATE_FUSED_ONLY_BIT and "
                                                       "VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT");
    if (defaults == SessionDefaults::v1_2 || fused || scores) return fused;
    const Model& m = *model.model;
    const bool unfused_only = m.config().head_dim() > m.attention_tiling().max_head_dim;
    return !(unfused_only || (flags & VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT));
}

// The session's limits; a chained VkmhaSessionScratchArenaInfo gives its arena (whose frame count a 0 takes).
Result<SessionLimits> session_limits(const VkmhaModel_T& model, const VkmhaSessionCreateInfo* info,
                                     SessionDefaults defaults) {
    VKMHA_TRY(check_struct(info, "pCreateInfo"));
    const void* arena_info = nullptr;
    const ChainTarget chain[] = {{VKMHA_STRUCTURE_TYPE_SESSION_SCRATCH_ARENA_INFO, &arena_info}};
    VKMHA_TRY(walk_chain(info->pNext, "VkmhaSessionCreateInfo", chain));
    SessionLimits l;
    l.max_shape = {info->maxBatch, info->maxQueryLength, info->maxKeyLength};
    l.frames_in_flight = info->framesInFlight ? info->framesInFlight : 2;
    l.host_io = info->hostIo == VK_TRUE;
    l.memory_budget = info->memoryBudget;
    constexpr uint32_t known = VKMHA_SESSION_CREATE_FUSED_ONLY_BIT | VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT |
                               VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT | VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT |
                               VKMHA_SESSION_CREATE_NO_TIMESTAMPS_BIT;
    if (info->flags & ~known)
        return make_error(ErrorCode::invalid_argument, "session flags 0x" + hex(info->flags) + " has unknown bits");
    auto fused = fused_only(model, info->flags, defaults);
    if (!fused) return fused.take_error();
    l.fused_only = fused.value();
    l.host_weights = info->flags & VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT;
    l.host_per_head_mask = info->flags & VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT;
    l.timestamps = !(info->flags & VKMHA_SESSION_CREATE_NO_TIMESTAMPS_BIT);
    if (arena_info) {
        const VkmhaScratchArena arena = static_cast<const VkmhaSessionScratchArenaInfo*>(arena_info)->arena;
        if (!arena) return argument_error("VkmhaSessionScratchArenaInfo::arena is NULL");
        l.scratch_arena = arena->arena;
        if (info->framesInFlight == 0) l.frames_in_flight = arena->arena->frames_in_flight();
    }
    return l;
}

template <SessionDefaults D>
VkmhaResult VKMHA_CALL get_session_memory_requirements(VkmhaModel model, const VkmhaSessionCreateInfo* info,
                                                       VkDeviceSize* bytes) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(model, "model is NULL");
        VKMHA_REQUIRE(bytes, "pBytes is NULL");
        auto limits = session_limits(*model, info, D);
        if (!limits) return fail(limits.error());
        auto need = Session::memory_required(*model->context->context, *model->model, limits.value());
        if (!need) return fail(need.error());
        *bytes = need.value();
        return VKMHA_SUCCESS;
    });
}

template <SessionDefaults D>
VkmhaResult VKMHA_CALL create_session(VkmhaModel model, const VkmhaSessionCreateInfo* info, VkmhaSession* out) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(out, "pSession is NULL");
        *out = nullptr;
        VKMHA_REQUIRE(model, "model is NULL");
        auto limits = session_limits(*model, info, D);
        if (!limits) return fail(limits.error());
        auto session = Session::create(*model->context->context, *model->model, limits.value());
        if (!session) return fail(session.error());
        auto handle = std::make_unique<VkmhaSession_T>();
        handle->model = model;
        handle->session = std::move(session.value());
        *out = handle.release();
        return VKMHA_SUCCESS;
    });
}

void VKMHA_CALL destroy_session(VkmhaSession session) {
    (void)guarded([&] {
        delete session;
        return VKMHA_SUCCESS;
    });
}

// kpm and mask: the raw_enum bits of the caller's keyPaddingMaskType and attnMaskType.
Result<AttentionOptions> attention_options(VkmhaAttentionFlags flags, uint32_t kpm, uint32_t mask) {
    constexpr VkmhaAttentionFlags known = VKMHA_ATTENTION_CAUSAL_BIT | VKMHA_ATTENTION_NEED_WEIGHTS_BIT |
                                          VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT | VKMHA_ATTENTION_PER_HEAD_MASK_BIT |
                                          VKMHA_ATTENTION_UNFUSED_BIT | VKMHA_ATTENTION_NO_SPLIT_K_BIT;
    if (flags & ~known)
        return make_error(ErrorCode::invalid_argument, "flags 0x" + hex(flags & ~known) + " are unknown");
    if (kpm != VKMHA_MASK_TYPE_NONE && kpm != VKMHA_MASK_TYPE_BOOL)
        return make_error(ErrorCode::invalid_argument,
                          "keyPaddingMaskType " + std::to_string(kpm) + " is not NONE or BOOL");
    if (mask != VKMHA_MASK_TYPE_NONE && mask != VKMHA_MASK_TYPE_BOOL && mask != VKMHA_MASK_TYPE_ADDITIVE)
        return make_error(ErrorCode::invalid_argument, "attnMaskType " + std::to_string(mask) + " is unknown");
    AttentionOptions o;
    o.causal = flags & VKMHA_ATTENTION_CAUSAL_BIT;
    o.need_weights = flags & VKMHA_ATTENTION_NEED_WEIGHTS_BIT;
    o.average_weights = !(flags & VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT);
    o.attn_mask_per_head = flags & VKMHA_ATTENTION_PER_HEAD_MASK_BIT;
    o.path = flags & VKMHA_ATTENTION_UNFUSED_BIT ? AttentionPath::unfused : AttentionPath::fused;
    o.split_k = !(flags & VKMHA_ATTENTION_NO_SPLIT_K_BIT);
    o.key_padding = to_host(static_cast<VkmhaMaskType>(kpm));
    o.attn_mask = to_host(static_cast<VkmhaMaskType>(mask));
    return o;
}

ExternalBuffer external(const VkmhaBufferBinding& b) {
    return ExternalBuffer{b.buffer, b.offset, b.range, b.srcStageMask, b.srcAccessMask};
}

// The calls that project (recordAttention, submit, the cached steps, prefill) on a model without projections.
Status refuse_attention_only(const VkmhaModel_T& model, const char* call, const char* instead) {
    if (!model.model->config().attention_only) return {};
    return make_error(ErrorCode::invalid_argument,
                      std::string("the model is attention-only (VkmhaModelAttentionInfo::attentionOnly, no projection "
                                  "weights): ") +
                          call + " projects its inputs; use " + instead + " with the caller's own Q, K and V");
}

// The session's host-submit path (submit*, wait, readOutputs): only a session created with hostIo has one.
Result<HostSubmitter*> host_submitter(VkmhaSession_T& session) {
    if (HostSubmitter* host = session.session->host_submitter()) return host;
    return make_error(ErrorCode::invalid_argument, "session was created without host I/O buffers");
}

VkmhaResult VKMHA_CALL record_attention(VkmhaSession session, VkCommandBuffer cmd, const VkmhaRecordInfo* info) {
    return guarded_on(session, [&] {
        VKMHA_CHECK(check_record_call(session, info));
        VKMHA_CHECK(refuse_attention_only(*session->model, "recordAttention", "recordAttentionQkv"));
        auto positions = record_positions(info->pNext, "VkmhaRecordInfo");
        if (!positions) return fail(positions.error());
        auto head_mask = head_mask_factors(info->pNext, "VkmhaRecordInfo");
        if (!head_mask) return fail(head_mask.error());
        auto options = attention_options(info->flags, raw_enum(info->keyPaddingMaskType), raw_enum(info->attnMaskType));
        if (!options) return fail(options.error());
        RecordArgs a;
        a.frame = info->frameIndex;
        a.completed_frame = info->completedFrame;
        a.shape = {info->batch, info->queryLength, info->keyLength};
        a.options = options.value();
        a.query = external(info->query);
        a.key = external(info->key);
        a.value = external(info->value);
        a.key_padding_mask = external(info->keyPaddingMask);
        a.attn_mask = external(info->attnMask);
        a.output = external(info->output);
        a.weights = external(info->weights);
        if (*positions) a.position_ids = external((*positions)->positionIds);
        a.head_factors = *head_mask;
        Status s = session->session->record(cmd, a);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

VkmhaResult VKMHA_CALL get_stage_timings(VkmhaSession session, uint64_t frame, uint32_t* count, VkmhaStageTiming* out) {
    return guarded_on(session, [&] {
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(count, "pCount is NULL");
        auto timings = session->session->timings(frame);
        if (!timings) return fail(timings.error());
        const uint32_t n = static_cast<uint32_t>(timings->size());
        if (!out) {
            *count = n;
            return VKMHA_SUCCESS;
        }
        const uint32_t written = std::min(*count, n);
        for (uint32_t i = 0; i < written; ++i)
            out[i] = {to_c((*timings)[i].stage), static_cast<float>((*timings)[i].ms)};
        *count = written;
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL submit(VkmhaSession session, const VkmhaHostSubmitInfo* info, uint64_t* value) {
    return guarded_on(session, [&] {
        VKMHA_CHECK(check_submit_call(session, info, value));
        VKMHA_CHECK(refuse_attention_only(*session->model, "submit", "submitQkv"));
        auto positions = host_positions(info->pNext, "VkmhaHostSubmitInfo");
        if (!positions) return fail(positions.error());
        auto head_mask = head_mask_factors(info->pNext, "VkmhaHostSubmitInfo");
        if (!head_mask) return fail(head_mask.error());
        auto options = attention_options(info->flags, raw_enum(info->keyPaddingMaskType), raw_enum(info->attnMaskType));
        if (!options) return fail(options.error());
        HostInputs in{info->pQuery,          info->pKey,      info->pValue,
                      info->pKeyPaddingMask, info->pAttnMask, positions->queries};
        in.head_factors = *head_mask;
        auto host = host_submitter(*session);
        if (!host) return fail(host.error());
        auto v = host.value()->submit({info->batch, info->queryLength, info->keyLength}, options.value(), in);
        if (!v) return fail(v.error());
        *value = v.value();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL wait(VkmhaSession session, uint64_t value, uint64_t timeout_ns) {
    return guarded_on(session, [&] {
        VKMHA_REQUIRE(session, "session is NULL");
        auto host = host_submitter(*session);
        if (!host) return fail(host.error());
        Status s = host.value()->wait(value, timeout_ns);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

VkmhaResult VKMHA_CALL read_outputs(VkmhaSession session, uint64_t value, float* output, size_t output_count,
                                    float* weights, size_t weights_count) {
    return guarded_on(session, [&] {
        VKMHA_REQUIRE(session, "session is NULL");
        auto host = host_submitter(*session);
        if (!host) return fail(host.error());
        Status s = host.value()->read_outputs(value, output, output_count, weights, weights_count);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

// ---- 1.1: KV caches, cached steps, sliced prefill -------------------------------------------------------------

Result<KvCacheLimits> kv_cache_limits(const VkmhaKvCacheCreateInfo* info) {
    VKMHA_TRY(check_unchained(info, "pCreateInfo"));
    return KvCacheLimits{info->sequences, info->capacity, info->window};
}

VkmhaResult VKMHA_CALL get_kv_cache_memory_requirements(VkmhaModel model, const VkmhaKvCacheCreateInfo* info,
                                                        VkDeviceSize* bytes) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(model, "model is NULL");
        VKMHA_REQUIRE(bytes, "pBytes is NULL");
        auto limits = kv_cache_limits(info);
        if (!limits) return fail(limits.error());
        auto need = KvCache::memory_required(*model->context->context, *model->model, limits.value());
        if (!need) return fail(need.error());
        *bytes = need.value();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL create_kv_cache(VkmhaModel model, const VkmhaKvCacheCreateInfo* info, VkmhaKvCache* out) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(out, "pCache is NULL");
        *out = nullptr;
        VKMHA_REQUIRE(model, "model is NULL");
        auto limits = kv_cache_limits(info);
        if (!limits) return fail(limits.error());
        auto cache = KvCache::create(*model->context->context, *model->model, limits.value());
        if (!cache) return fail(cache.error());
        auto handle = std::make_unique<VkmhaKvCache_T>();
        handle->model = model;
        handle->cache = std::move(cache.value());
        *out = handle.release();
        return VKMHA_SUCCESS;
    });
}

void VKMHA_CALL destroy_kv_cache(VkmhaKvCache cache) {
    (void)guarded([&] {
        delete cache;
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL get_kv_cache_length(VkmhaKvCache cache, uint32_t sequence, uint32_t* length) {
    return guarded_on(cache, [&] {
        VKMHA_REQUIRE(cache, "cache is NULL");
        VKMHA_REQUIRE(length, "pLength is NULL");
        auto n = cache->cache->length(sequence);
        if (!n) return fail(n.error());
        *length = n.value();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL reset_kv_cache(VkmhaKvCache cache, uint32_t sequence) {
    return guarded_on(cache, [&] {
        VKMHA_REQUIRE(cache, "cache is NULL");
        if (sequence == VKMHA_ALL_SEQUENCES) {
            cache->cache->reset_all();
            return VKMHA_SUCCESS;
        }
        Status s = cache->cache->reset(sequence);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

VkmhaResult VKMHA_CALL truncate_kv_cache(VkmhaKvCache cache, uint32_t sequence, uint32_t length) {
    return guarded_on(cache, [&] {
        VKMHA_REQUIRE(cache, "cache is NULL");
        Status s = cache->cache->truncate(sequence, length);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

// The C steps as the host's (checked for NULL here; ranges, duplicates and capacity are the host's to check).
Result<std::vector<SequenceStep>> sequence_steps(uint32_t count, const VkmhaSequenceStep* steps) {
    if (count == 0) return make_error(ErrorCode::invalid_argument, "stepCount is 0");
    if (!steps) return make_error(ErrorCode::invalid_argument, "stepCount is nonzero but pSteps is NULL");
    std::vector<SequenceStep> out(count);
    for (uint32_t i = 0; i < count; ++i) out[i] = {steps[i].sequence, steps[i].newTokens};
    return out;
}

VkmhaResult VKMHA_CALL record_cached_attention(VkmhaSession session, VkCommandBuffer cmd,
                                               const VkmhaCachedRecordInfo* info) {
    return guarded_on(session, [&] {
        VKMHA_CHECK(check_record_call(session, info));
        VKMHA_REQUIRE(info->cache, "pInfo->cache is NULL");
        VKMHA_CHECK(refuse_attention_only(*session->model, "recordCachedAttention", "recordCachedAttentionQkv"));
        auto positions = record_positions(info->pNext, "VkmhaCachedRecordInfo");
        if (!positions) return fail(positions.error());
        auto head_mask = head_mask_factors(info->pNext, "VkmhaCachedRecordInfo");
        if (!head_mask) return fail(head_mask.error());
        auto steps = sequence_steps(info->stepCount, info->pSteps);
        if (!steps) return fail(steps.error());
        CachedRecordArgs a;
        a.frame = info->frameIndex;
        a.completed_frame = info->completedFrame;
        a.cache = info->cache->cache.get();
        a.steps = steps.value();
        a.query = external(info->query);
        a.key = external(info->key);
        a.value = external(info->value);
        a.key_padding_mask = external(info->keyPaddingMask);
        a.output = external(info->output);
        if (*positions) a.position_ids = external((*positions)->positionIds);
        a.head_factors = *head_mask;
        Status s = session->session->record_cached(cmd, a);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

VkmhaResult VKMHA_CALL submit_cached(VkmhaSession session, const VkmhaHostCachedSubmitInfo* info, uint64_t* value) {
    return guarded_on(session, [&] {
        VKMHA_CHECK(check_submit_call(session, info, value));
        VKMHA_REQUIRE(info->cache, "pInfo->cache is NULL");
        VKMHA_REQUIRE(info->pQuery, "pInfo->pQuery is NULL");
        VKMHA_CHECK(refuse_attention_only(*session->model, "submitCached", "submitCachedQkv"));
        auto positions = host_positions(info->pNext, "VkmhaHostCachedSubmitInfo");
        if (!positions) return fail(positions.error());
        auto head_mask = head_mask_factors(info->pNext, "VkmhaHostCachedSubmitInfo");
        if (!head_mask) return fail(head_mask.error());
        auto steps = sequence_steps(info->stepCount, info->pSteps);
        if (!steps) return fail(steps.error());
        // position_ids: the [T] positions of the new tokens (as CachedRecordArgs::position_ids).
        HostInputs in{info->pQuery, info->pKey, info->pValue, info->pKeyPaddingMask, nullptr, positions->queries};
        in.head_factors = *head_mask;
        auto host = host_submitter(*session);
        if (!host) return fail(host.error());
        auto v = host.value()->submit_cached(*info->cache->cache, steps.value(), in);
        if (!v) return fail(v.error());
        *value = v.value();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL create_prefill_job(VkmhaModel model, const VkmhaPrefillJobCreateInfo* info,
                                          VkmhaPrefillJob* out) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(out, "pJob is NULL");
        *out = nullptr;
        VKMHA_REQUIRE(model, "model is NULL");
        VKMHA_CHECK(check_unchained(info, "pCreateInfo"));
        VKMHA_REQUIRE(info->cache, "pCreateInfo->cache is NULL");
        VKMHA_REQUIRE(info->cache->model == model, "pCreateInfo->cache was created for another model");
        VKMHA_CHECK(refuse_attention_only(*model, "a sliced prefill", "recordCachedAttentionQkv"));
        auto job = PrefillJob::create(*model->context->context, *info->cache->cache,
                                      PrefillJobInfo{info->sequence, info->tokenCount});
        if (!job) return fail(job.error());
        auto handle = std::make_unique<VkmhaPrefillJob_T>();
        handle->cache = info->cache;
        handle->job = std::move(job.value());
        *out = handle.release();
        return VKMHA_SUCCESS;
    });
}

void VKMHA_CALL destroy_prefill_job(VkmhaPrefillJob job) {
    (void)guarded([&] {
        delete job;
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL record_prefill(VkmhaSession session, VkCommandBuffer cmd, const VkmhaPrefillRecordInfo* info,
                                      VkmhaPrefillStatus* status) {
    return guarded_on(session, [&] {
        VKMHA_CHECK(check_record_call(session, info));
        auto positions = record_positions(info->pNext, "VkmhaPrefillRecordInfo");
        if (!positions) return fail(positions.error());
        auto head_mask = head_mask_factors(info->pNext, "VkmhaPrefillRecordInfo");
        if (!head_mask) return fail(head_mask.error());
        VKMHA_REQUIRE(info->job, "pInfo->job is NULL");
        VKMHA_REQUIRE(std::isfinite(info->budgetMilliseconds) && info->budgetMilliseconds >= 0,
                      "budgetMilliseconds is " + std::to_string(info->budgetMilliseconds) +
                          "; expected 0 or a positive number");
        PrefillRecordArgs a;
        a.frame = info->frameIndex;
        a.completed_frame = info->completedFrame;
        a.job = info->job->job.get();
        a.budget_ms = info->budgetMilliseconds;
        a.max_rows = info->maxRows;
        a.max_keys = info->maxKeys;
        a.query = external(info->query);
        a.key = external(info->key);
        a.value = external(info->value);
        a.output = external(info->output);
        if (*positions) a.position_ids = external((*positions)->positionIds);
        a.head_factors = *head_mask;
        const bool was_done = a.job->done();
        auto item = session->session->record_prefill(cmd, a);
        if (!item) return fail(item.error());
        if (status) {
            *status = {};
            status->done = a.job->done() ? VK_TRUE : VK_FALSE;
            status->progress = static_cast<float>(a.job->progress());
            const bool nothing = was_done || item->begin == item->end; // a default item: nothing was recorded
            status->phase = nothing ? VKMHA_PREFILL_PHASE_NONE : to_c(item->phase);
            status->begin = nothing ? 0 : item->begin;
            status->end = nothing ? 0 : item->end;
            status->rowBegin = nothing ? 0 : item->row_begin;
            status->rowEnd = nothing ? 0 : item->row_end;
        }
        return VKMHA_SUCCESS;
    });
}

// ---- 1.2: attention only (the caller's own Q, K, V) ------------------------------------------------------------

VkmhaResult VKMHA_CALL record_attention_qkv(VkmhaSession session, VkCommandBuffer cmd, const VkmhaQkvRecordInfo* info) {
    return guarded_on(session, [&] {
        constexpr const char* owner = "VkmhaQkvRecordInfo";
        VKMHA_CHECK(check_record_call(session, info));
        auto positions = record_positions(info->pNext, owner, true);
        if (!positions) return fail(positions.error());
        auto head_mask = head_mask_factors(info->pNext, owner);
        if (!head_mask) return fail(head_mask.error());
        auto options = attention_options(info->flags, raw_enum(info->keyPaddingMaskType), raw_enum(info->attnMaskType));
        if (!options) return fail(options.error());
        VKMHA_CHECK(
            require_bound(owner, {{"q", &info->q}, {"k", &info->k}, {"v", &info->v}, {"output", &info->output}}));
        const AttentionConfig& c = session->model->model->config();
        const VkmhaTensorLayout* layouts[4] = {&info->qLayout, &info->kLayout, &info->vLayout, &info->outputLayout};
        auto qkv = own_qkv(c, owner, layouts, info->batch, info->queryLength, info->keyLength, false, 0);
        if (!qkv) return fail(qkv.error());
        RecordArgs a;
        a.frame = info->frameIndex;
        a.completed_frame = info->completedFrame;
        a.shape = {info->batch, info->queryLength, info->keyLength};
        a.options = options.value();
        a.own_qkv = true;
        a.qkv = qkv.value();
        a.query = external(info->q);
        a.key = external(info->k);
        a.value = external(info->v);
        a.key_padding_mask = external(info->keyPaddingMask);
        a.attn_mask = external(info->attnMask);
        a.output = external(info->output);
        a.weights = external(info->weights);
        a.head_factors = *head_mask;
        if (*positions) {
            a.position_ids = external((*positions)->positionIds);
            // Positions are read only with RoPE (VkmhaPositionsInfo): without it the keys' are ignored too.
            if (c.rope.enabled()) a.key_position_ids = external((*positions)->keyPositionIds);
        }
        Status s = session->session->record(cmd, a);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

VkmhaResult VKMHA_CALL submit_qkv(VkmhaSession session, const VkmhaHostQkvSubmitInfo* info, uint64_t* value) {
    return guarded_on(session, [&] {
        constexpr const char* owner = "VkmhaHostQkvSubmitInfo";
        VKMHA_CHECK(check_submit_call(session, info, value));
        auto positions = host_positions(info->pNext, owner, true);
        if (!positions) return fail(positions.error());
        auto head_mask = head_mask_factors(info->pNext, owner);
        if (!head_mask) return fail(head_mask.error());
        auto options = attention_options(info->flags, raw_enum(info->keyPaddingMaskType), raw_enum(info->attnMaskType));
        if (!options) return fail(options.error());
        VKMHA_CHECK(require_pointers(owner, {{"pQ", info->pQ}, {"pK", info->pK}, {"pV", info->pV}}));
        const AttentionConfig& c = session->model->model->config();
        const uint32_t D = c.head_dim();
        // The host path stages contiguous tensors: their strides must fit too.
        for (const auto& [heads, L] : {std::pair{c.num_heads, info->queryLength}, {c.num_kv_heads, info->keyLength}})
            if (auto packed = contiguous(heads, L, D); !packed) return fail(packed.error());
        HostInputs in;
        in.query = info->pQ;
        in.key = info->pK;
        in.value = info->pV;
        in.key_padding_mask = info->pKeyPaddingMask;
        in.attn_mask = info->pAttnMask;
        in.head_factors = *head_mask;
        in.position_ids = positions->queries;
        in.own_qkv = true;
        if (c.rope.enabled()) in.key_position_ids = positions->keys; // else ignored, as the queries' are
        auto host = host_submitter(*session);
        if (!host) return fail(host.error());
        auto v = host.value()->submit({info->batch, info->queryLength, info->keyLength}, options.value(), in);
        if (!v) return fail(v.error());
        *value = v.value();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL record_cached_attention_qkv(VkmhaSession session, VkCommandBuffer cmd,
                                                   const VkmhaCachedQkvRecordInfo* info) {
    return guarded_on(session, [&] {
        constexpr const char* owner = "VkmhaCachedQkvRecordInfo";
        VKMHA_CHECK(check_record_call(session, info));
        VKMHA_REQUIRE(info->cache, "pInfo->cache is NULL");
        auto positions = record_positions(info->pNext, owner);
        if (!positions) return fail(positions.error());
        auto head_mask = head_mask_factors(info->pNext, owner);
        if (!head_mask) return fail(head_mask.error());
        auto steps = sequence_steps(info->stepCount, info->pSteps);
        if (!steps) return fail(steps.error());
        VKMHA_CHECK(
            require_bound(owner, {{"q", &info->q}, {"k", &info->k}, {"v", &info->v}, {"output", &info->output}}));
        uint64_t tokens = 0;
        for (const SequenceStep& st : steps.value()) tokens += st.new_tokens;
        const VkmhaTensorLayout* layouts[4] = {&info->qLayout, &info->kLayout, &info->vLayout, &info->outputLayout};
        auto qkv = own_qkv(session->model->model->config(), owner, layouts, 1, 1, 1, true, tokens);
        if (!qkv) return fail(qkv.error());
        CachedRecordArgs a;
        a.frame = info->frameIndex;
        a.completed_frame = info->completedFrame;
        a.cache = info->cache->cache.get();
        a.steps = steps.value();
        a.own_qkv = true;
        a.qkv = qkv.value();
        a.query = external(info->q);
        a.key = external(info->k);
        a.value = external(info->v);
        a.key_padding_mask = external(info->keyPaddingMask);
        a.output = external(info->output);
        if (*positions) a.position_ids = external((*positions)->positionIds);
        a.head_factors = *head_mask;
        Status s = session->session->record_cached(cmd, a);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

VkmhaResult VKMHA_CALL submit_cached_qkv(VkmhaSession session, const VkmhaHostCachedQkvSubmitInfo* info,
                                         uint64_t* value) {
    return guarded_on(session, [&] {
        constexpr const char* owner = "VkmhaHostCachedQkvSubmitInfo";
        VKMHA_CHECK(check_submit_call(session, info, value));
        VKMHA_REQUIRE(info->cache, "pInfo->cache is NULL");
        auto positions = host_positions(info->pNext, owner);
        if (!positions) return fail(positions.error());
        auto head_mask = head_mask_factors(info->pNext, owner);
        if (!head_mask) return fail(head_mask.error());
        auto steps = sequence_steps(info->stepCount, info->pSteps);
        if (!steps) return fail(steps.error());
        VKMHA_CHECK(require_pointers(owner, {{"pQ", info->pQ}, {"pK", info->pK}, {"pV", info->pV}}));
        HostInputs in;
        in.query = info->pQ;
        in.key = info->pK;
        in.value = info->pV;
        in.key_padding_mask = info->pKeyPaddingMask;
        in.head_factors = *head_mask;
        in.position_ids = positions->queries; // [T], as CachedRecordArgs::position_ids
        in.own_qkv = true;
        auto host = host_submitter(*session);
        if (!host) return fail(host.error());
        auto v = host.value()->submit_cached(*info->cache->cache, steps.value(), in);
        if (!v) return fail(v.error());
        *value = v.value();
        return VKMHA_SUCCESS;
    });
}

// ---- 1.3: scratch arenas ------------------------------------------------------------------------------------

VkmhaResult VKMHA_CALL get_session_scratch_requirements(VkmhaModel model, const VkmhaSessionCreateInfo* info,
                                                        VkDeviceSize* bytes) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(model, "model is NULL");
        VKMHA_REQUIRE(bytes, "pBytesPerFrame is NULL");
        auto limits = session_limits(*model, info, SessionDefaults::v1_3);
        if (!limits) return fail(limits.error());
        auto need = Session::scratch_bytes_per_frame(*model->context->context, *model->model, limits.value());
        if (!need) return fail(need.error());
        *bytes = need.value();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL create_scratch_arena(VkmhaContext context, const VkmhaScratchArenaCreateInfo* info,
                                            VkmhaScratchArena* out) {
    return guarded_on(context, [&] {
        VKMHA_REQUIRE(out, "pArena is NULL");
        *out = nullptr;
        VKMHA_REQUIRE(context, "context is NULL");
        VKMHA_CHECK(check_unchained(info, "pCreateInfo"));
        ScratchArenaLimits l;
        l.bytes_per_frame = info->bytesPerFrame;
        l.frames_in_flight = info->framesInFlight ? info->framesInFlight : 2;
        l.memory_budget = info->memoryBudget;
        auto arena = ScratchArena::create(*context->context, l);
        if (!arena) return fail(arena.error());
        auto handle = std::make_unique<VkmhaScratchArena_T>();
        handle->context = context;
        handle->arena = std::move(arena.value());
        *out = handle.release();
        return VKMHA_SUCCESS;
    });
}

void VKMHA_CALL destroy_scratch_arena(VkmhaScratchArena arena) {
    (void)guarded([&] {
        delete arena;
        return VKMHA_SUCCESS;
    });
}

// ---- 1.3: the weight upload recorded into the engine's command buffer --------------------------------------------

VkmhaResult VKMHA_CALL record_model_upload(VkmhaModel model, VkCommandBuffer cmd) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(model, "model is NULL");
        VKMHA_CHECK(model->model->record_upload(cmd));
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL complete_model_upload(VkmhaModel model) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(model, "model is NULL");
        VKMHA_CHECK(model->model->finish_upload());
        return VKMHA_SUCCESS;
    });
}

// ---- 1.3: the CPU reference --------------------------------------------------------------------------------------

VkmhaResult VKMHA_CALL reference_attention_c(const VkmhaReferenceInfo* info) {
    return guarded([&] {
        VKMHA_CHECK(check_unchained(info, "pInfo"));
        VKMHA_REQUIRE((info->pSubmit != nullptr) != (info->pQkv != nullptr),
                      std::string("pInfo->pSubmit and pInfo->pQkv are ") + (info->pSubmit ? "both set" : "both NULL") +
                          "; give exactly one");
        VKMHA_REQUIRE(info->pModel, "pInfo->pModel is NULL");
        auto loaded = load_model_info(info->pModel);
        if (!loaded) return fail(loaded.error());
        if (info->pSubmit) {
            const VkmhaHostSubmitInfo& s = *info->pSubmit;
            VKMHA_CHECK(check_struct(&s, "pInfo->pSubmit"));
            auto positions = host_positions(s.pNext, "VkmhaHostSubmitInfo");
            if (!positions) return fail(positions.error());
            auto head_mask = head_mask_factors(s.pNext, "VkmhaHostSubmitInfo");
            if (!head_mask) return fail(head_mask.error());
            auto options = attention_options(s.flags, raw_enum(s.keyPaddingMaskType), raw_enum(s.attnMaskType));
            if (!options) return fail(options.error());
            VKMHA_CHECK(run_reference(loaded.value(), *info, options.value(), positions.value(), *head_mask));
        } else {
            const VkmhaHostQkvSubmitInfo& s = *info->pQkv;
            VKMHA_CHECK(check_struct(&s, "pInfo->pQkv"));
            auto positions = host_positions(s.pNext, "VkmhaHostQkvSubmitInfo", true);
            if (!positions) return fail(positions.error());
            auto head_mask = head_mask_factors(s.pNext, "VkmhaHostQkvSubmitInfo");
            if (!head_mask) return fail(head_mask.error());
            auto options = attention_options(s.flags, raw_enum(s.keyPaddingMaskType), raw_enum(s.attnMaskType));
            if (!options) return fail(options.error());
            VKMHA_CHECK(run_reference(loaded.value(), *info, options.value(), positions.value(), *head_mask));
        }
        return VKMHA_SUCCESS;
    });
}

const char* VKMHA_CALL stage_name_c(VkmhaStage stage) {
    if (raw_enum(stage) >= kStageCount) return "unknown"; // a C caller may pass any 32 bits
    return stage_name(static_cast<Stage>(stage));         // in range, and enum_mirror.h holds the values equal
}

// ---- 1.3: KV-cache state (save games, branching dialogue) -------------------------------------------------------

VkmhaResult VKMHA_CALL read_kv_cache_state(VkmhaKvCache cache, uint32_t sequence, size_t* size, void* data) {
    return guarded_on(cache, [&] {
        VKMHA_REQUIRE(cache, "cache is NULL");
        VKMHA_REQUIRE(size, "pSize is NULL");
        auto need = kv_state_size(*cache->cache, sequence);
        if (!need) return fail(need.error());
        if (!data) {
            *size = need.value();
            return VKMHA_SUCCESS;
        }
        VKMHA_REQUIRE(*size >= need.value(), "*pSize " + std::to_string(*size) + " is smaller than the " +
                                                 std::to_string(need.value()) + " bytes of sequence " +
                                                 std::to_string(sequence) + "'s state");
        VKMHA_CHECK(read_kv_state(*context_of(cache), *cache->cache, sequence,
                                  std::span<uint8_t>(static_cast<uint8_t*>(data), need.value())));
        *size = need.value();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL write_kv_cache_state(VkmhaKvCache cache, uint32_t sequence, size_t size, const void* data) {
    return guarded_on(cache, [&] {
        VKMHA_REQUIRE(cache, "cache is NULL");
        VKMHA_REQUIRE(data, "pData is NULL");
        VKMHA_CHECK(write_kv_state(*context_of(cache), *cache->cache, sequence,
                                   std::span<const uint8_t>(static_cast<const uint8_t*>(data), size)));
        return VKMHA_SUCCESS;
    });
}

// The checks both copy calls make: the struct, both caches on one context, then the host's shape checks.
Status check_kv_copy_info(const VkmhaKvCacheCopyInfo* info) {
    VKMHA_TRY(check_unchained(info, "pInfo"));
    if (!info->srcCache) return argument_error("pInfo->srcCache is NULL");
    if (!info->dstCache) return argument_error("pInfo->dstCache is NULL");
    if (context_of(info->srcCache) != context_of(info->dstCache))
        return argument_error("pInfo->dstCache belongs to another context than pInfo->srcCache");
    return check_kv_copy(*info->srcCache->cache, info->srcSequence, *info->dstCache->cache, info->dstSequence);
}

VkmhaResult VKMHA_CALL record_kv_cache_copy(VkCommandBuffer cmd, const VkmhaKvCacheCopyInfo* info) {
    return guarded_on(info ? info->srcCache : nullptr, [&] {
        VKMHA_REQUIRE(cmd, "commandBuffer is NULL");
        VKMHA_CHECK(check_kv_copy_info(info));
        record_kv_copy(context_of(info->srcCache)->device(), cmd, *info->srcCache->cache, info->srcSequence,
                       *info->dstCache->cache, info->dstSequence);
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL copy_kv_cache(const VkmhaKvCacheCopyInfo* info) {
    return guarded_on(info ? info->srcCache : nullptr, [&] {
        VKMHA_CHECK(check_kv_copy_info(info));
        const Context& ctx = *context_of(info->srcCache);
        KvCache& dst = *info->dstCache->cache;
        const KvCache::SequenceState before = dst.save(info->dstSequence);
        Status s = ctx.run_once([&](VkCommandBuffer cmd) {
            record_kv_copy(ctx.device(), cmd, *info->srcCache->cache, info->srcSequence, dst, info->dstSequence);
        });
        if (!s) dst.restore(before); // the copy never ran
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

} // namespace

Status check_model_uploaded(VkmhaSession session) {
    if (!session->model->model->upload_pending()) return {};
    return argument_error(
        std::string("the session's model is waiting for its recorded weight upload (VkmhaModelUploadInfo"
                    "::recordUpload): ") +
        (session->model->model->upload_recorded()
             ? "call completeModelUpload once the command buffer holding recordModelUpload completed"
             : "record it with recordModelUpload, submit it, then call completeModelUpload"));
}

} // namespace vkmha::plugin

extern "C" VKMHA_EXPORT VkmhaResult VKMHA_CALL vkmhaGetProcTable(uint32_t requested, VkmhaProcTable* table,
                                                                 size_t table_size) {
    using namespace vkmha::plugin;
    return guarded([&] {
        if (!table) return fail(vkmha::ErrorCode::invalid_argument, "pTable is NULL");
        if (VKMHA_API_VERSION_MAJOR(requested) != VKMHA_API_VERSION_MAJOR(kLibraryVersion) ||
            VKMHA_API_VERSION_MINOR(requested) > VKMHA_API_VERSION_MINOR(kLibraryVersion)) {
            set_last_error("requested API version " + std::to_string(VKMHA_API_VERSION_MAJOR(requested)) + "." +
                           std::to_string(VKMHA_API_VERSION_MINOR(requested)) + " is not supported (library is " +
                           std::to_string(VKMHA_API_VERSION_MAJOR(kLibraryVersion)) + "." +
                           std::to_string(VKMHA_API_VERSION_MINOR(kLibraryVersion)) + ")");
            return VKMHA_ERROR_VERSION_NOT_SUPPORTED;
        }
        if (table_size < offsetof(VkmhaProcTable, getLastError) + sizeof(table->getLastError))
            return fail(vkmha::ErrorCode::invalid_argument,
                        "tableSize " + std::to_string(table_size) + " is too small");
        VkmhaProcTable full{};
        full.apiVersion = kLibraryVersion;
        full.getLastError = get_last_error;
        full.getDeviceRequirements = get_device_requirements;
        full.enumerateDevices = enumerate_devices;
        full.createContext = create_context;
        full.destroyContext = destroy_context;
        full.getContextProperties = get_context_properties;
        full.getPipelineCacheData = get_pipeline_cache_data;
        full.createModel = create_model;
        full.destroyModel = destroy_model;
        full.getModelMemoryRequirements = get_model_memory_requirements;
        full.getModelProperties = get_model_properties;
        // The session defaults follow the version the caller asked for (vkmha.h, "Entry point").
        const bool v1_3 = VKMHA_API_VERSION_MINOR(requested) >= 3;
        full.getSessionMemoryRequirements = v1_3 ? get_session_memory_requirements<SessionDefaults::v1_3>
                                                 : get_session_memory_requirements<SessionDefaults::v1_2>;
        full.createSession = v1_3 ? create_session<SessionDefaults::v1_3> : create_session<SessionDefaults::v1_2>;
        full.destroySession = destroy_session;
        full.recordAttention = record_attention;
        full.getStageTimings = get_stage_timings;
        full.submit = submit;
        full.wait = wait;
        full.readOutputs = read_outputs;
        full.stageName = stage_name_c;
        full.getKvCacheMemoryRequirements = get_kv_cache_memory_requirements;
        full.createKvCache = create_kv_cache;
        full.destroyKvCache = destroy_kv_cache;
        full.getKvCacheLength = get_kv_cache_length;
        full.resetKvCache = reset_kv_cache;
        full.truncateKvCache = truncate_kv_cache;
        full.recordCachedAttention = record_cached_attention;
        full.submitCached = submit_cached;
        full.createPrefillJob = create_prefill_job;
        full.destroyPrefillJob = destroy_prefill_job;
        full.recordPrefill = record_prefill;
        full.recordAttentionQkv = record_attention_qkv;
        full.submitQkv = submit_qkv;
        full.recordCachedAttentionQkv = record_cached_attention_qkv;
        full.submitCachedQkv = submit_cached_qkv;
        full.getPipelineStatistics = get_pipeline_statistics; // 1.3
        full.getSessionScratchRequirements = get_session_scratch_requirements;
        full.createScratchArena = create_scratch_arena;
        full.destroyScratchArena = destroy_scratch_arena;
        full.recordModelUpload = record_model_upload;
        full.completeModelUpload = complete_model_upload;
        full.referenceAttention = reference_attention_c;
        full.readKvCacheState = read_kv_cache_state;
        full.writeKvCacheState = write_kv_cache_state;
        full.recordKvCacheCopy = record_kv_cache_copy;
        full.copyKvCache = copy_kv_cache;
        std::memcpy(table, &full, std::min(table_size, sizeof(full)));
        return VKMHA_SUCCESS;
    });
}
