// The C ABI: vkmhaGetProcTable and the functions of its table, each a thin guarded shim over host/.
#include "guard.h"

#include "context.h"
#include "host_submit.h"
#include "io/safetensors.h"
#include "io/weight_map.h"
#include "kv_cache.h"
#include "model.h"
#include "prefill_job.h"
#include "rope.h"
#include "session.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <span>
#include <tuple>

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

namespace vkmha::plugin {
namespace {

constexpr uint32_t kLibraryVersion = VKMHA_API_VERSION_1_2;

VkmhaResult invalid(std::string message) { return fail(ErrorCode::invalid_argument, std::move(message)); }

std::string hex(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%x", v);
    return buf;
}

std::string stype_message(const char* what, uint32_t got, uint32_t want) {
    return std::string(what) + "->sType is " + std::to_string(got) + ", expected " + std::to_string(want);
}

#define VKMHA_REQUIRE(cond, message)                                                                                   \
    do {                                                                                                               \
        if (!(cond)) return invalid(message);                                                                          \
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

// ---- pNext chains (1.2) ---------------------------------------------------------------------------------------

// What every chained struct starts with.
struct ChainHeader {
    VkmhaStructureType sType;
    const void* pNext;
};

// A longer chain is a cycle or garbage, not a real caller's.
constexpr size_t kMaxChainLength = 64;

const char* structure_name(uint32_t type) {
    switch (type) {
    case VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO: return "VkmhaModelAttentionInfo";
    case VKMHA_STRUCTURE_TYPE_POSITIONS_INFO: return "VkmhaPositionsInfo";
    default: return nullptr; // the others are never chained: messages give their number only
    }
}

std::string structure_text(uint32_t type) {
    const char* name = structure_name(type);
    return "sType " + std::to_string(type) + (name ? std::string(" (") + name + ")" : std::string());
}

// One struct a chain may hold, and where the walk leaves it (nullptr when absent).
struct ChainSlot {
    VkmhaStructureType type;
    const void** found;
};

// Walks `owner`'s pNext chain into `slots`; a struct `owner` does not take, or one chained twice, is refused by name.
Status walk_chain(const void* next, const char* owner, std::span<const ChainSlot> slots) {
    for (const ChainSlot& slot : slots) *slot.found = nullptr;
    for (size_t length = 0; next; ++length) {
        if (length == kMaxChainLength)
            return make_error(ErrorCode::invalid_argument, std::string(owner) + "::pNext chain is longer than " +
                                                               std::to_string(kMaxChainLength) + " structs (a cycle?)");
        const auto* header = static_cast<const ChainHeader*>(next);
        const ChainSlot* slot = nullptr;
        for (const ChainSlot& s : slots)
            if (s.type == header->sType) slot = &s;
        if (!slot) {
            std::string takes = slots.empty() ? " (its pNext must be NULL)" : "; it takes ";
            for (size_t i = 0; i < slots.size(); ++i)
                takes += (i ? ", " : "") + std::string(structure_name(slots[i].type));
            return make_error(ErrorCode::invalid_argument, std::string(owner) + "::pNext chain holds " +
                                                               structure_text(header->sType) + ", which " + owner +
                                                               " does not take" + takes);
        }
        if (*slot->found)
            return make_error(ErrorCode::invalid_argument,
                              std::string(structure_name(slot->type)) + " is chained twice on " + owner);
        *slot->found = header;
        next = header->pNext;
    }
    return {};
}

// An input struct that takes no chained struct (its pNext is documented NULL).
Status no_chain(const void* next, const char* owner) { return walk_chain(next, owner, {}); }

// The VkmhaPositionsInfo on `owner`'s chain, or nullptr.
Result<const VkmhaPositionsInfo*> positions_in_chain(const void* next, const char* owner) {
    const void* found = nullptr;
    const ChainSlot slots[] = {{VKMHA_STRUCTURE_TYPE_POSITIONS_INFO, &found}};
    VKMHA_TRY(walk_chain(next, owner, slots));
    return static_cast<const VkmhaPositionsInfo*>(found);
}

// Only recordAttentionQkv and submitQkv read key positions: anywhere else they would be silently unused.
Status no_key_positions(const VkmhaPositionsInfo& p, const char* owner) {
    const char* field = p.keyPositionIds.buffer != VK_NULL_HANDLE ? "keyPositionIds is bound"
                        : p.pKeyPositionIds                       ? "pKeyPositionIds is set"
                                                                  : nullptr;
    if (!field) return {};
    return make_error(ErrorCode::invalid_argument, std::string("VkmhaPositionsInfo::") + field + " on " + owner +
                                                       "'s chain; only recordAttentionQkv and submitQkv read key "
                                                       "positions");
}

// Record calls read positions from a buffer, submit calls from host memory: the other fields must stay unset.
// `keys`: the call reads key positions too.
Result<const VkmhaPositionsInfo*> record_positions(const void* next, const char* owner, bool keys = false) {
    auto p = positions_in_chain(next, owner);
    if (!p || !*p) return p;
    const VkmhaPositionsInfo& info = **p;
    if (!keys) VKMHA_TRY(no_key_positions(info, owner));
    for (const auto& [set, field, reads] :
         {std::tuple{info.pPositionIds != nullptr, "pPositionIds", "positionIds"},
          std::tuple{info.pKeyPositionIds != nullptr, "pKeyPositionIds", "keyPositionIds"}})
        if (set)
            return make_error(ErrorCode::invalid_argument, std::string("VkmhaPositionsInfo::") + field + " is set on " +
                                                               owner + "'s chain; a record call reads " + reads);
    return p;
}

// A submit call's positions in host memory: the queries' (or new tokens') and, with `keys`, the keys'.
struct HostPositions {
    const int32_t* queries = nullptr;
    const int32_t* keys = nullptr;
};

Result<HostPositions> host_positions(const void* next, const char* owner, bool keys = false) {
    auto p = positions_in_chain(next, owner);
    if (!p) return p.take_error();
    if (!*p) return HostPositions{};
    const VkmhaPositionsInfo& info = **p;
    if (!keys) VKMHA_TRY(no_key_positions(info, owner));
    for (const auto& [bound, field, reads] :
         {std::tuple{info.positionIds.buffer != VK_NULL_HANDLE, "positionIds", "pPositionIds"},
          std::tuple{info.keyPositionIds.buffer != VK_NULL_HANDLE, "keyPositionIds", "pKeyPositionIds"}})
        if (bound)
            return make_error(ErrorCode::invalid_argument, std::string("VkmhaPositionsInfo::") + field +
                                                               " is bound on " + owner +
                                                               "'s chain; a submit call reads " + reads);
    return HostPositions{info.pPositionIds, info.pKeyPositionIds};
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

VkmhaResult VKMHA_CALL create_context(const VkmhaContextCreateInfo* info, VkmhaContext* out) {
    return guarded([&] {
        VKMHA_REQUIRE(out, "pContext is NULL");
        *out = nullptr;
        VKMHA_REQUIRE(info, "pCreateInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO,
                      stype_message("pCreateInfo", info->sType, VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO));
        if (Status chain = no_chain(info->pNext, "VkmhaContextCreateInfo"); !chain) return fail(chain.error());
        VKMHA_REQUIRE(info->pipelineCacheDataSize == 0 || info->pPipelineCacheData,
                      "pipelineCacheDataSize is " + std::to_string(info->pipelineCacheDataSize) +
                          " but pPipelineCacheData is NULL");
        auto handle = std::make_unique<VkmhaContext_T>();
        handle->log = info->pfnLogCallback;
        handle->log_user = info->pLogUserData;
        VkmhaContext_T* raw = handle.get();
        LogFunction log = [raw](LogLevel level, const std::string& message) {
            if (raw->log) raw->log(static_cast<VkmhaLogLevel>(level), message.c_str(), raw->log_user);
        };
        Result<std::unique_ptr<Device>> device = make_error(ErrorCode::internal, "no device");
        if (info->deviceMode == VKMHA_DEVICE_MODE_OWN) {
            OwnDeviceOptions o;
            if (const VkmhaOwnDeviceInfo* own = info->pOwnDevice) {
                VKMHA_REQUIRE(own->sType == VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO,
                              stype_message("pOwnDevice", own->sType, VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO));
                if (Status chain = no_chain(own->pNext, "VkmhaOwnDeviceInfo"); !chain) return fail(chain.error());
                o.device_index = own->deviceIndex;
                if (own->pDeviceName) o.device_name = own->pDeviceName;
            }
            device = Device::create_own(o, log);
        } else if (info->deviceMode == VKMHA_DEVICE_MODE_ADOPT) {
            const VkmhaAdoptDeviceInfo* a = info->pAdoptDevice;
            VKMHA_REQUIRE(a, "deviceMode is ADOPT but pAdoptDevice is NULL");
            VKMHA_REQUIRE(a->sType == VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO,
                          stype_message("pAdoptDevice", a->sType, VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO));
            if (Status chain = no_chain(a->pNext, "VkmhaAdoptDeviceInfo"); !chain) return fail(chain.error());
            VKMHA_REQUIRE(a->enabledInstanceExtensionCount == 0 || a->ppEnabledInstanceExtensions,
                          "enabledInstanceExtensionCount is nonzero but ppEnabledInstanceExtensions is NULL");
            VKMHA_REQUIRE(a->enabledDeviceExtensionCount == 0 || a->ppEnabledDeviceExtensions,
                          "enabledDeviceExtensionCount is nonzero but ppEnabledDeviceExtensions is NULL");
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
                if (a->ppEnabledDeviceExtensions[i])
                    o.enabled_device_extensions.push_back(a->ppEnabledDeviceExtensions[i]);
            o.timeline_semaphore_enabled = a->timelineSemaphoreEnabled == VK_TRUE;
            o.storage_buffer_16bit_access_enabled = a->storageBuffer16BitAccessEnabled == VK_TRUE;
            o.queue_given = a->queue != VK_NULL_HANDLE;
            o.queue = a->queue;
            o.queue_family_index = a->queueFamilyIndex;
            o.pipeline_cache = a->pipelineCache;
            o.allocator = a->pAllocator;
            device = Device::adopt(o, log);
        } else {
            return invalid("deviceMode " + std::to_string(info->deviceMode) + " is unknown");
        }
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
        VKMHA_REQUIRE(props, "pProperties is NULL");
        VKMHA_REQUIRE(props->sType == VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES,
                      stype_message("pProperties", props->sType, VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES));
        const Device& d = context->context->device();
        void* next = props->pNext;
        *props = {};
        props->sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
        props->pNext = next;
        std::strncpy(props->deviceName, d.info().name.c_str(), sizeof(props->deviceName) - 1);
        props->deviceType = d.info().type;
        props->vendorId = d.info().vendor_id;
        props->deviceApiVersion = d.info().api_version;
        props->ownsDevice = d.owns_device();
        props->canSubmit = d.has_queue() && d.timeline_semaphores();
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

// The create-info's tensors (read from pSafetensorsPath, or copied from pTensors) and where they came from, for
// messages. Neither given (an attention-only model): none.
struct ModelTensors {
    std::vector<io::Tensor> tensors;
    std::string origin;
};

Result<ModelTensors> read_tensors(const VkmhaModelCreateInfo& info) {
    std::vector<io::Tensor> tensors;
    std::string origin;
    if (info.pSafetensorsPath) {
        origin = info.pSafetensorsPath;
        auto read = io::read_safetensors(origin);
        if (!read) return read.take_error();
        tensors = std::move(read.value());
    } else {
        origin = "pTensors";
        for (uint32_t i = 0; i < info.tensorCount; ++i) {
            const VkmhaTensor& t = info.pTensors[i];
            const std::string at = "pTensors[" + std::to_string(i) + "]";
            if (!t.pName) return make_error(ErrorCode::invalid_argument, at + ".pName is NULL");
            if (!t.pData) return make_error(ErrorCode::invalid_argument, at + " ('" + t.pName + "') pData is NULL");
            if (t.rank == 0 || t.rank > 4)
                return make_error(ErrorCode::invalid_argument,
                                  at + " ('" + t.pName + "') rank " + std::to_string(t.rank) + " is outside 1..4");
            io::Tensor tensor;
            tensor.name = t.pName;
            size_t elem = 0;
            switch (t.dataType) {
            case VKMHA_DATA_TYPE_F32: tensor.dtype = io::DType::f32, elem = 4; break;
            case VKMHA_DATA_TYPE_F16: tensor.dtype = io::DType::f16, elem = 2; break;
            case VKMHA_DATA_TYPE_BF16: tensor.dtype = io::DType::bf16, elem = 2; break;
            default:
                return make_error(ErrorCode::invalid_argument,
                                  at + " ('" + t.pName + "') dataType " + std::to_string(t.dataType) + " is unknown");
            }
            uint64_t count = 1;
            for (uint32_t r = 0; r < t.rank; ++r) {
                if (t.shape[r] == 0 || t.shape[r] > (1ull << 32) || count > (1ull << 34) / t.shape[r])
                    return make_error(ErrorCode::invalid_argument,
                                      at + " ('" + t.pName + "') shape[" + std::to_string(r) +
                                          "] = " + std::to_string(t.shape[r]) + " is out of range");
                count *= t.shape[r];
                tensor.shape.push_back(t.shape[r]);
            }
            const auto* bytes = static_cast<const uint8_t*>(t.pData);
            tensor.data.assign(bytes, bytes + count * elem);
            tensors.push_back(std::move(tensor));
        }
    }
    return ModelTensors{std::move(tensors), std::move(origin)};
}

// The create-info's own fields (its chain is walked before: attention_only is its VkmhaModelAttentionInfo's).
Status check_model_info(const VkmhaModelCreateInfo* info, bool attention_only) {
    if (info->numHeads == 0) return make_error(ErrorCode::invalid_argument, "numHeads is 0");
    if (info->pSafetensorsPath != nullptr && info->tensorCount > 0)
        return make_error(ErrorCode::invalid_argument, "give exactly one of pSafetensorsPath and tensorCount/pTensors");
    if (!attention_only && info->pSafetensorsPath == nullptr && info->tensorCount == 0)
        return make_error(ErrorCode::invalid_argument, "give exactly one of pSafetensorsPath and tensorCount/pTensors "
                                                       "(only a VkmhaModelAttentionInfo::attentionOnly model has "
                                                       "no weights)");
    if (info->tensorCount && !info->pTensors)
        return make_error(ErrorCode::invalid_argument, "tensorCount is nonzero but pTensors is NULL");
    if (info->precision != VKMHA_PRECISION_FP32 && info->precision != VKMHA_PRECISION_FP16)
        return make_error(ErrorCode::invalid_argument, "precision " + std::to_string(info->precision) + " is unknown");
    return {};
}

// ---- 1.2: VkmhaModelAttentionInfo ------------------------------------------------------------------------------

Error attention_info_error(const std::string& what) {
    return make_error(ErrorCode::invalid_argument, "VkmhaModelAttentionInfo::" + what);
}

std::string number(float value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(value));
    return buf;
}

// A float field whose 0 is its default; anything else must be finite and above `minimum`.
Status check_above(const char* field, float value, float minimum = 0.0f) {
    if (value == 0.0f || (std::isfinite(value) && value > minimum)) return {};
    return attention_info_error(std::string(field) + " is " + number(value) +
                                "; expected 0 (the default) or a finite number > " + number(minimum));
}

Status check_bool(const char* field, VkBool32 value) {
    if (value == VK_FALSE || value == VK_TRUE) return {};
    return attention_info_error(std::string(field) + " is " + std::to_string(value) + ", not VK_TRUE or VK_FALSE");
}

const char* scaling_name(VkmhaRopeScaling scaling) {
    switch (scaling) {
    case VKMHA_ROPE_SCALING_LINEAR: return "LINEAR";
    case VKMHA_ROPE_SCALING_LLAMA3: return "LLAMA3";
    case VKMHA_ROPE_SCALING_YARN: return "YARN";
    default: return "NONE";
    }
}

Status check_enums(const VkmhaModelAttentionInfo& a) {
    if (static_cast<uint32_t>(a.ropeLayout) > VKMHA_ROPE_LAYOUT_GPTJ)
        return attention_info_error("ropeLayout " + std::to_string(a.ropeLayout) +
                                    " is unknown (NONE 0, NEOX 1, GPTJ 2)");
    if (static_cast<uint32_t>(a.ropeScaling) > VKMHA_ROPE_SCALING_YARN)
        return attention_info_error("ropeScaling " + std::to_string(a.ropeScaling) +
                                    " is unknown (NONE 0, LINEAR 1, LLAMA3 2, YARN 3)");
    VKMHA_TRY(check_bool("ropeNoTruncate", a.ropeNoTruncate));
    VKMHA_TRY(check_bool("attentionOnly", a.attentionOnly));
    return check_bool("alibi", a.alibi);
}

// RoPE settings without a layout are most likely a forgotten ropeLayout, not a wish for no RoPE.
Status check_rope_unset(const VkmhaModelAttentionInfo& a) {
    const std::pair<const char*, bool> fields[] = {{"rotaryDims", a.rotaryDims != 0},
                                                   {"ropeTheta", a.ropeTheta != 0},
                                                   {"ropeScaling", a.ropeScaling != VKMHA_ROPE_SCALING_NONE},
                                                   {"ropeScalingFactor", a.ropeScalingFactor != 0},
                                                   {"ropeLowFreqFactor", a.ropeLowFreqFactor != 0},
                                                   {"ropeHighFreqFactor", a.ropeHighFreqFactor != 0},
                                                   {"ropeOriginalMaxPositions", a.ropeOriginalMaxPositions != 0},
                                                   {"ropeBetaFast", a.ropeBetaFast != 0},
                                                   {"ropeBetaSlow", a.ropeBetaSlow != 0},
                                                   {"ropeNoTruncate", a.ropeNoTruncate != VK_FALSE}};
    for (const auto& [field, set] : fields)
        if (set) return attention_info_error(std::string(field) + " is set but ropeLayout is NONE");
    return {};
}

// The parameters the chosen scaling reads (the others are ignored).
Status check_rope_scaling(const VkmhaModelAttentionInfo& a) {
    if (a.ropeScaling == VKMHA_ROPE_SCALING_NONE) return {};
    const std::string scaling = scaling_name(a.ropeScaling);
    if (!(std::isfinite(a.ropeScalingFactor) && a.ropeScalingFactor > 0))
        return attention_info_error("ropeScalingFactor is " + number(a.ropeScalingFactor) + "; " + scaling +
                                    " scaling needs a finite factor > 0");
    if (a.ropeScaling == VKMHA_ROPE_SCALING_LINEAR) return {};
    if (a.ropeOriginalMaxPositions == 0)
        return attention_info_error("ropeOriginalMaxPositions is 0; " + scaling +
                                    " scaling needs the original context length (original_max_position_embeddings)");
    if (a.ropeScaling == VKMHA_ROPE_SCALING_YARN) return {};
    const float low = a.ropeLowFreqFactor, high = a.ropeHighFreqFactor;
    if (!(std::isfinite(low) && std::isfinite(high) && low > 0 && high > low))
        return attention_info_error("ropeLowFreqFactor " + number(low) + " and ropeHighFreqFactor " + number(high) +
                                    ": LLAMA3 scaling needs 0 < ropeLowFreqFactor < ropeHighFreqFactor");
    return {};
}

Status check_rope(const VkmhaModelAttentionInfo& a, uint32_t head_dim) {
    if (a.ropeLayout == VKMHA_ROPE_LAYOUT_NONE) return check_rope_unset(a);
    if (a.rotaryDims % 2 != 0 || a.rotaryDims > head_dim)
        return attention_info_error("rotaryDims " + std::to_string(a.rotaryDims) +
                                    " must be even and at most headDim " + std::to_string(head_dim));
    VKMHA_TRY(check_above("ropeTheta", a.ropeTheta, 1.0f));
    VKMHA_TRY(check_above("ropeBetaFast", a.ropeBetaFast));
    VKMHA_TRY(check_above("ropeBetaSlow", a.ropeBetaSlow));
    return check_rope_scaling(a);
}

// The header's defaults (0 = ...) made explicit.
RopeConfig rope_config(const VkmhaModelAttentionInfo& a) {
    RopeConfig r;
    r.layout = static_cast<RopeLayout>(a.ropeLayout);
    r.dims = a.rotaryDims;
    if (a.ropeTheta != 0) r.theta = a.ropeTheta;
    r.scaling = static_cast<RopeScaling>(a.ropeScaling);
    if (r.scaling != RopeScaling::none) r.factor = a.ropeScalingFactor;
    if (r.scaling == RopeScaling::llama3) {
        r.low_freq_factor = a.ropeLowFreqFactor;
        r.high_freq_factor = a.ropeHighFreqFactor;
    }
    if (r.scaling == RopeScaling::llama3 || r.scaling == RopeScaling::yarn)
        r.original_max_positions = a.ropeOriginalMaxPositions;
    if (a.ropeBetaFast != 0) r.beta_fast = a.ropeBetaFast;
    if (a.ropeBetaSlow != 0) r.beta_slow = a.ropeBetaSlow;
    r.truncate = a.ropeNoTruncate != VK_TRUE;
    return r;
}

// Checks every field against the model's head dim (known once the weights are read) and sets them in `c`.
Status apply_attention_info(const VkmhaModelAttentionInfo& a, AttentionConfig& c) {
    VKMHA_TRY(check_enums(a));
    VKMHA_TRY(check_rope(a, c.head_dim()));
    VKMHA_TRY(check_above("scale", a.scale));
    VKMHA_TRY(check_above("softcap", a.softcap));
    VKMHA_TRY(check_above("normEps", a.normEps));
    if (a.ropeLayout != VKMHA_ROPE_LAYOUT_NONE) c.rope = rope_config(a);
    // A backstop for what the checks above do not word themselves (validate_rope is the core's own rule).
    if (Status rope = validate_rope(c.rope, c.head_dim()); !rope)
        return make_error(ErrorCode::invalid_argument, "VkmhaModelAttentionInfo: " + rope.error().message);
    c.scale = a.scale;
    c.softcap = a.softcap;
    c.alibi = a.alibi == VK_TRUE;
    c.window = a.window;
    if (a.normEps != 0) c.norm_eps = a.normEps;
    return {};
}

// ---- 1.2: attention-only models ---------------------------------------------------------------------------------

// The tensors an attention-only model takes, and nothing else: q_norm.weight and k_norm.weight [D] (both or neither)
// and sinks [H], any float type.
Result<io::LoadedModel> map_attention_only(const ModelTensors& in, const AttentionConfig& config) {
    io::LoadedModel m;
    m.config = config;
    const uint32_t D = config.head_dim(), H = config.num_heads;
    const std::string& origin = in.origin;
    auto named = [&](const io::Tensor& t) { return origin + ": tensor " + io::quote_for_message(t.name); };
    for (const io::Tensor& t : in.tensors)
        if (t.name != "q_norm.weight" && t.name != "k_norm.weight" && t.name != "sinks")
            return make_error(ErrorCode::invalid_argument,
                              named(t) + " is not one an attention-only model takes (VkmhaModelAttentionInfo::"
                                         "attentionOnly: only sinks, q_norm.weight and k_norm.weight)");
    auto take = [&](const char* name, uint64_t size, const char* dims, std::vector<float>& out) -> Result<bool> {
        const io::Tensor* t = io::find_tensor(in.tensors, name);
        if (!t) return false;
        if (t->shape != std::vector<uint64_t>{size})
            return make_error(ErrorCode::io, named(*t) + " has shape " + io::shape_to_string(t->shape) + ", expected " +
                                                 dims + " = [" + std::to_string(size) + "]");
        auto values = io::to_float(*t, origin);
        if (!values) return values.take_error();
        out = std::move(values.value());
        return true;
    };
    auto q = take("q_norm.weight", D, "[D]", m.weights.q_norm);
    if (!q) return q.take_error();
    auto k = take("k_norm.weight", D, "[D]", m.weights.k_norm);
    if (!k) return k.take_error();
    if (*q != *k)
        return make_error(ErrorCode::io, origin + ": tensor " + (*q ? "'q_norm.weight'" : "'k_norm.weight'") +
                                             " is given without " + (*q ? "'k_norm.weight'" : "'q_norm.weight'") +
                                             " (QK-norm needs both, [D] each)");
    m.config.qk_norm = *q;
    auto sinks = take("sinks", H, "[H]", m.weights.sinks);
    if (!sinks) return sinks.take_error();
    m.config.sinks = *sinks;
    return m;
}

// An attention-only model's shape comes from the create-info and the struct, not from weights.
Result<AttentionConfig> attention_only_config(const VkmhaModelCreateInfo& info, const VkmhaModelAttentionInfo& a) {
    const uint32_t H = info.numHeads, G = info.numKvHeads ? info.numKvHeads : info.numHeads;
    if (a.headDim == 0)
        return attention_info_error("headDim is 0; an attentionOnly model has no weights to infer the head dim from");
    if (G > H || H % G != 0)
        return make_error(ErrorCode::invalid_argument,
                          "numKvHeads " + std::to_string(G) + " does not divide numHeads " + std::to_string(H));
    if (uint64_t(H) * a.headDim > (1u << 16))
        return attention_info_error("headDim " + std::to_string(a.headDim) + ": numHeads * headDim = " +
                                    std::to_string(uint64_t(H) * a.headDim) + " is over 65536");
    AttentionConfig c;
    c.num_heads = H;
    c.num_kv_heads = G;
    c.explicit_head_dim = a.headDim;
    c.embed_dim = c.kdim = c.vdim = H * a.headDim;
    c.attention_only = true;
    return c;
}

// What createModel and getModelMemoryRequirements share: the create-info and its chain checked, the weights read
// (which turn QK-norm and sinks on) and the chained options applied.
Result<io::LoadedModel> load_model(VkmhaContext context, const VkmhaModelCreateInfo* info) {
    if (!context) return make_error(ErrorCode::invalid_argument, "context is NULL");
    if (!info) return make_error(ErrorCode::invalid_argument, "pCreateInfo is NULL");
    if (info->sType != VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO)
        return make_error(ErrorCode::invalid_argument,
                          stype_message("pCreateInfo", info->sType, VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO));
    const void* chained = nullptr;
    const ChainSlot slots[] = {{VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO, &chained}};
    VKMHA_TRY(walk_chain(info->pNext, "VkmhaModelCreateInfo", slots));
    const auto* attention = static_cast<const VkmhaModelAttentionInfo*>(chained);
    if (attention) VKMHA_TRY(check_bool("attentionOnly", attention->attentionOnly));
    const bool attention_only = attention && attention->attentionOnly == VK_TRUE;
    VKMHA_TRY(check_model_info(info, attention_only));
    Result<io::LoadedModel> loaded = make_error(ErrorCode::internal, "no model");
    if (attention_only) {
        auto config = attention_only_config(*info, *attention);
        if (!config) return config.take_error();
        auto tensors = read_tensors(*info);
        if (!tensors) return tensors.take_error();
        loaded = map_attention_only(tensors.value(), config.value());
    } else {
        auto tensors = read_tensors(*info);
        if (!tensors) return tensors.take_error();
        loaded = io::map_attention_weights(tensors->tensors, info->numHeads, info->numKvHeads, tensors->origin);
        if (loaded && attention && attention->headDim != 0 && attention->headDim != loaded->config.head_dim())
            return attention_info_error("headDim is " + std::to_string(attention->headDim) +
                                        " but the weights give a head dim of " +
                                        std::to_string(loaded->config.head_dim()) + " (0: take the weights')");
    }
    // The weight mapping calls a missing or misshapen tensor an I/O error, which it is in a safetensors file; in the
    // caller's pTensors it is a bad argument.
    if (!loaded && !info->pSafetensorsPath && loaded.error().code == ErrorCode::io)
        return make_error(ErrorCode::invalid_argument, loaded.error().message);
    if (loaded && attention) VKMHA_TRY(apply_attention_info(*attention, loaded->config));
    return loaded;
}

Precision precision_of(const VkmhaModelCreateInfo& info) {
    return info.precision == VKMHA_PRECISION_FP16 ? Precision::fp16 : Precision::fp32;
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
        auto model = Model::create(*context->context, loaded->config, loaded->weights, precision_of(*info));
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
        props->precision = model->model->precision() == Precision::fp16 ? VKMHA_PRECISION_FP16 : VKMHA_PRECISION_FP32;
        return VKMHA_SUCCESS;
    });
}

Result<SessionLimits> session_limits(const VkmhaSessionCreateInfo* info) {
    if (!info) return make_error(ErrorCode::invalid_argument, "pCreateInfo is NULL");
    if (info->sType != VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO)
        return make_error(ErrorCode::invalid_argument,
                          stype_message("pCreateInfo", info->sType, VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO));
    VKMHA_TRY(no_chain(info->pNext, "VkmhaSessionCreateInfo"));
    SessionLimits l;
    l.max_shape = {info->maxBatch, info->maxQueryLength, info->maxKeyLength};
    l.frames_in_flight = info->framesInFlight ? info->framesInFlight : 2;
    l.host_io = info->hostIo == VK_TRUE;
    l.memory_budget = info->memoryBudget;
    constexpr uint32_t known = VKMHA_SESSION_CREATE_FUSED_ONLY_BIT | VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT |
                               VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT;
    if (info->flags & ~known)
        return make_error(ErrorCode::invalid_argument, "session flags 0x" + hex(info->flags) + " has unknown bits");
    l.fused_only = info->flags & VKMHA_SESSION_CREATE_FUSED_ONLY_BIT;
    l.host_weights = info->flags & VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT;
    l.host_per_head_mask = info->flags & VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT;
    return l;
}

VkmhaResult VKMHA_CALL get_session_memory_requirements(VkmhaModel model, const VkmhaSessionCreateInfo* info,
                                                       VkDeviceSize* bytes) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(model, "model is NULL");
        VKMHA_REQUIRE(bytes, "pBytes is NULL");
        auto limits = session_limits(info);
        if (!limits) return fail(limits.error());
        auto need = Session::memory_required(*model->context->context, *model->model, limits.value());
        if (!need) return fail(need.error());
        *bytes = need.value();
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL create_session(VkmhaModel model, const VkmhaSessionCreateInfo* info, VkmhaSession* out) {
    return guarded_on(model, [&] {
        VKMHA_REQUIRE(out, "pSession is NULL");
        *out = nullptr;
        VKMHA_REQUIRE(model, "model is NULL");
        auto limits = session_limits(info);
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

Result<AttentionOptions> attention_options(VkmhaAttentionFlags flags, VkmhaMaskType kpm, VkmhaMaskType mask) {
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
    o.key_padding = static_cast<MaskKind>(kpm);
    o.attn_mask = static_cast<MaskKind>(mask);
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
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(info, "pInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_RECORD_INFO,
                      stype_message("pInfo", info->sType, VKMHA_STRUCTURE_TYPE_RECORD_INFO));
        if (Status only = refuse_attention_only(*session->model, "recordAttention", "recordAttentionQkv"); !only)
            return fail(only.error());
        auto positions = record_positions(info->pNext, "VkmhaRecordInfo");
        if (!positions) return fail(positions.error());
        auto options = attention_options(info->flags, info->keyPaddingMaskType, info->attnMaskType);
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
            out[i] = {static_cast<VkmhaStage>((*timings)[i].stage), static_cast<float>((*timings)[i].ms)};
        *count = written;
        return VKMHA_SUCCESS;
    });
}

VkmhaResult VKMHA_CALL submit(VkmhaSession session, const VkmhaHostSubmitInfo* info, uint64_t* value) {
    return guarded_on(session, [&] {
        VKMHA_REQUIRE(value, "pTimelineValue is NULL");
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(info, "pInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO,
                      stype_message("pInfo", info->sType, VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO));
        if (Status only = refuse_attention_only(*session->model, "submit", "submitQkv"); !only)
            return fail(only.error());
        auto positions = host_positions(info->pNext, "VkmhaHostSubmitInfo");
        if (!positions) return fail(positions.error());
        auto options = attention_options(info->flags, info->keyPaddingMaskType, info->attnMaskType);
        if (!options) return fail(options.error());
        HostInputs in{info->pQuery,          info->pKey,      info->pValue,
                      info->pKeyPaddingMask, info->pAttnMask, positions->queries};
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
    if (!info) return make_error(ErrorCode::invalid_argument, "pCreateInfo is NULL");
    if (info->sType != VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO)
        return make_error(ErrorCode::invalid_argument,
                          stype_message("pCreateInfo", info->sType, VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO));
    VKMHA_TRY(no_chain(info->pNext, "VkmhaKvCacheCreateInfo"));
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
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(info, "pInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO,
                      stype_message("pInfo", info->sType, VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO));
        VKMHA_REQUIRE(info->cache, "pInfo->cache is NULL");
        if (Status only = refuse_attention_only(*session->model, "recordCachedAttention", "recordCachedAttentionQkv");
            !only)
            return fail(only.error());
        auto positions = record_positions(info->pNext, "VkmhaCachedRecordInfo");
        if (!positions) return fail(positions.error());
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
        Status s = session->session->record_cached(cmd, a);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

VkmhaResult VKMHA_CALL submit_cached(VkmhaSession session, const VkmhaHostCachedSubmitInfo* info, uint64_t* value) {
    return guarded_on(session, [&] {
        VKMHA_REQUIRE(value, "pTimelineValue is NULL");
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(info, "pInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO,
                      stype_message("pInfo", info->sType, VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO));
        VKMHA_REQUIRE(info->cache, "pInfo->cache is NULL");
        VKMHA_REQUIRE(info->pQuery, "pInfo->pQuery is NULL");
        if (Status only = refuse_attention_only(*session->model, "submitCached", "submitCachedQkv"); !only)
            return fail(only.error());
        auto positions = host_positions(info->pNext, "VkmhaHostCachedSubmitInfo");
        if (!positions) return fail(positions.error());
        auto steps = sequence_steps(info->stepCount, info->pSteps);
        if (!steps) return fail(steps.error());
        // position_ids: the [T] positions of the new tokens (as CachedRecordArgs::position_ids).
        HostInputs in{info->pQuery, info->pKey, info->pValue, info->pKeyPaddingMask, nullptr, positions->queries};
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
        VKMHA_REQUIRE(info, "pCreateInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO,
                      stype_message("pCreateInfo", info->sType, VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO));
        if (Status chain = no_chain(info->pNext, "VkmhaPrefillJobCreateInfo"); !chain) return fail(chain.error());
        VKMHA_REQUIRE(info->cache, "pCreateInfo->cache is NULL");
        VKMHA_REQUIRE(info->cache->model == model, "pCreateInfo->cache was created for another model");
        if (Status only = refuse_attention_only(*model, "a sliced prefill", "recordCachedAttentionQkv"); !only)
            return fail(only.error());
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
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(info, "pInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO,
                      stype_message("pInfo", info->sType, VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO));
        auto positions = record_positions(info->pNext, "VkmhaPrefillRecordInfo");
        if (!positions) return fail(positions.error());
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
        const bool was_done = a.job->done();
        auto item = session->session->record_prefill(cmd, a);
        if (!item) return fail(item.error());
        if (status) {
            *status = {};
            status->done = a.job->done() ? VK_TRUE : VK_FALSE;
            status->progress = static_cast<float>(a.job->progress());
            const bool nothing = was_done || item->begin == item->end; // a default item: nothing was recorded
            status->phase = nothing ? VKMHA_PREFILL_PHASE_NONE : static_cast<VkmhaPrefillPhase>(item->phase);
            status->begin = nothing ? 0 : item->begin;
            status->end = nothing ? 0 : item->end;
            status->rowBegin = nothing ? 0 : item->row_begin;
            status->rowEnd = nothing ? 0 : item->row_end;
        }
        return VKMHA_SUCCESS;
    });
}

// ---- 1.2: attention only (the caller's own Q, K, V) ------------------------------------------------------------

// `owner::field` for messages.
std::string field_name(const char* owner, const char* field) { return std::string(owner) + "::" + field; }

// Strides [heads, L, D] packed, or an error when they do not fit the 32 bits the kernels take.
Result<TensorStrides> contiguous(uint32_t heads, uint32_t L, uint32_t D) {
    const uint64_t batch = uint64_t(heads) * L * D;
    if (batch > UINT32_MAX)
        return make_error(ErrorCode::out_of_range, "a tensor of " + std::to_string(heads) + " heads x " +
                                                       std::to_string(L) + " rows x " + std::to_string(D) +
                                                       " floats is over 2^32 elements");
    return TensorStrides{static_cast<uint32_t>(batch), L * D, D};
}

// A caller's layout as the host's strides: all zero = `packed`; else every stride (but a cached step's batchStride,
// which must be 0) at least the head dim.
Result<TensorStrides> strides_of(const VkmhaTensorLayout& l, const TensorStrides& packed, uint32_t D,
                                 const std::string& field, bool cached) {
    if (cached && l.batchStride != 0)
        return make_error(ErrorCode::invalid_argument, field + ".batchStride is " + std::to_string(l.batchStride) +
                                                           "; a cached step's tensors have no batch: it must be 0");
    if (l.batchStride == 0 && l.headStride == 0 && l.rowStride == 0) return packed;
    const std::pair<const char*, uint32_t> all[] = {
        {"batchStride", l.batchStride}, {"headStride", l.headStride}, {"rowStride", l.rowStride}};
    for (const auto& [name, value] : all) {
        if (cached && std::string(name) == "batchStride") continue;
        if (value < D)
            return make_error(ErrorCode::invalid_argument, field + "." + name + " is " + std::to_string(value) +
                                                               ", below the head dim " + std::to_string(D) +
                                                               " (all strides 0: the contiguous layout)");
    }
    return TensorStrides{cached ? 0u : l.batchStride, l.headStride, l.rowStride};
}

// Refuses an output whose (b, h, l) rows of D floats could share a float (two invocations would write it): the strides,
// smallest first, must each step past everything the smaller ones span. Dimensions of size 1 never step.
Status check_output_rows(const TensorStrides& s, uint64_t B, uint64_t H, uint64_t L, uint32_t D,
                         const std::string& field) {
    std::array<std::pair<uint64_t, uint64_t>, 3> dims{{{s.batch, B}, {s.head, H}, {s.row, L}}};
    std::sort(dims.begin(), dims.end());
    uint64_t span = D;
    for (const auto& [stride, count] : dims) {
        if (count <= 1) continue;
        if (stride < span)
            return make_error(ErrorCode::invalid_argument,
                              field + " (batchStride " + std::to_string(s.batch) + ", headStride " +
                                  std::to_string(s.head) + ", rowStride " + std::to_string(s.row) +
                                  ") makes rows of the output overlap for [" + std::to_string(B) + ", " +
                                  std::to_string(H) + ", " + std::to_string(L) + ", " + std::to_string(D) + "]");
        span += stride * (count - 1);
    }
    return {};
}

// The four layouts of a Qkv record: Q and O of `H` heads over `lq` rows, K and V of G heads over `lk`; cached steps
// (no batch) pass lq = lk = 1 for the packed per-token layout [T, heads, D].
Result<OwnQkv> own_qkv(const AttentionConfig& c, const char* owner, const VkmhaTensorLayout* layouts[4], uint64_t B,
                       uint32_t lq, uint32_t lk, bool cached, uint64_t rows) {
    const uint32_t D = c.head_dim(), H = c.num_heads, G = c.num_kv_heads;
    Result<TensorStrides> packed_q = cached ? Result<TensorStrides>(TensorStrides{0, D, H * D}) : contiguous(H, lq, D);
    if (!packed_q) return packed_q.take_error();
    Result<TensorStrides> packed_kv = cached ? Result<TensorStrides>(TensorStrides{0, D, G * D}) : contiguous(G, lk, D);
    if (!packed_kv) return packed_kv.take_error();
    const char* names[4] = {"qLayout", "kLayout", "vLayout", "outputLayout"};
    TensorStrides* out[4];
    OwnQkv x;
    out[0] = &x.q, out[1] = &x.k, out[2] = &x.v, out[3] = &x.o;
    for (int i = 0; i < 4; ++i) {
        const bool kv = i == 1 || i == 2;
        auto st = strides_of(*layouts[i], kv ? *packed_kv : *packed_q, D, field_name(owner, names[i]), cached);
        if (!st) return st.take_error();
        *out[i] = *st;
    }
    VKMHA_TRY(check_output_rows(x.o, cached ? 1 : B, H, cached ? rows : lq, D, field_name(owner, "outputLayout")));
    return x;
}

// q, k, v and output: each required.
Status require_bound(const char* owner, std::initializer_list<std::pair<const char*, const VkmhaBufferBinding*>> all) {
    for (const auto& [name, b] : all)
        if (b->buffer == VK_NULL_HANDLE)
            return make_error(ErrorCode::invalid_argument,
                              field_name(owner, name) + " is not bound (q, k, v and output are required)");
    return {};
}

Status require_pointers(const char* owner, std::initializer_list<std::pair<const char*, const float*>> all) {
    for (const auto& [name, p] : all)
        if (!p) return make_error(ErrorCode::invalid_argument, field_name(owner, name) + " is NULL (required)");
    return {};
}

VkmhaResult VKMHA_CALL record_attention_qkv(VkmhaSession session, VkCommandBuffer cmd, const VkmhaQkvRecordInfo* info) {
    return guarded_on(session, [&] {
        constexpr const char* owner = "VkmhaQkvRecordInfo";
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(info, "pInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO,
                      stype_message("pInfo", info->sType, VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO));
        auto positions = record_positions(info->pNext, owner, true);
        if (!positions) return fail(positions.error());
        auto options = attention_options(info->flags, info->keyPaddingMaskType, info->attnMaskType);
        if (!options) return fail(options.error());
        if (Status bound =
                require_bound(owner, {{"q", &info->q}, {"k", &info->k}, {"v", &info->v}, {"output", &info->output}});
            !bound)
            return fail(bound.error());
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
        VKMHA_REQUIRE(value, "pTimelineValue is NULL");
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(info, "pInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO,
                      stype_message("pInfo", info->sType, VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO));
        auto positions = host_positions(info->pNext, owner, true);
        if (!positions) return fail(positions.error());
        auto options = attention_options(info->flags, info->keyPaddingMaskType, info->attnMaskType);
        if (!options) return fail(options.error());
        if (Status given = require_pointers(owner, {{"pQ", info->pQ}, {"pK", info->pK}, {"pV", info->pV}}); !given)
            return fail(given.error());
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
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(info, "pInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO,
                      stype_message("pInfo", info->sType, VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO));
        VKMHA_REQUIRE(info->cache, "pInfo->cache is NULL");
        auto positions = record_positions(info->pNext, owner);
        if (!positions) return fail(positions.error());
        auto steps = sequence_steps(info->stepCount, info->pSteps);
        if (!steps) return fail(steps.error());
        if (Status bound =
                require_bound(owner, {{"q", &info->q}, {"k", &info->k}, {"v", &info->v}, {"output", &info->output}});
            !bound)
            return fail(bound.error());
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
        Status s = session->session->record_cached(cmd, a);
        return s ? VKMHA_SUCCESS : fail(s.error());
    });
}

VkmhaResult VKMHA_CALL submit_cached_qkv(VkmhaSession session, const VkmhaHostCachedQkvSubmitInfo* info,
                                         uint64_t* value) {
    return guarded_on(session, [&] {
        constexpr const char* owner = "VkmhaHostCachedQkvSubmitInfo";
        VKMHA_REQUIRE(value, "pTimelineValue is NULL");
        VKMHA_REQUIRE(session, "session is NULL");
        VKMHA_REQUIRE(info, "pInfo is NULL");
        VKMHA_REQUIRE(info->sType == VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO,
                      stype_message("pInfo", info->sType, VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO));
        VKMHA_REQUIRE(info->cache, "pInfo->cache is NULL");
        auto positions = host_positions(info->pNext, owner);
        if (!positions) return fail(positions.error());
        auto steps = sequence_steps(info->stepCount, info->pSteps);
        if (!steps) return fail(steps.error());
        if (Status given = require_pointers(owner, {{"pQ", info->pQ}, {"pK", info->pK}, {"pV", info->pV}}); !given)
            return fail(given.error());
        HostInputs in;
        in.query = info->pQ;
        in.key = info->pK;
        in.value = info->pV;
        in.key_padding_mask = info->pKeyPaddingMask;
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

const char* VKMHA_CALL stage_name_c(VkmhaStage stage) {
    if (static_cast<uint32_t>(stage) >= kStageCount) return "unknown";
    return stage_name(static_cast<Stage>(stage));
}

} // namespace
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
        full.getSessionMemoryRequirements = get_session_memory_requirements;
        full.createSession = create_session;
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
        std::memcpy(table, &full, std::min(table_size, sizeof(full)));
        return VKMHA_SUCCESS;
    });
}
