/* vkmha.h: the stable C ABI of vkmha, multi-head attention as a Vulkan compute plugin.
 *
 * Entry point
 *   The library exports one symbol, vkmhaGetProcTable(). It negotiates the API version and fills an
 *   append-only table of function pointers (VkmhaProcTable). New functions are only ever appended, so a table
 *   filled for version 1.0 stays valid for every later 1.x library.
 *   Behaviour follows the version the caller requested, as Vulkan's does: a table filled for 1.3 or later gives the
 *   1.3 defaults, a table filled for 1.0 to 1.2 keeps those versions' defaults, so a caller built against an older
 *   header runs exactly as before. The one such default: a session's Lq x Lk score scratch (see
 *   VkmhaSessionCreateFlagBits).
 *
 * Errors
 *   Every function returns a VkmhaResult (VKMHA_SUCCESS = 0, negative = error). Nothing throws, aborts or exits
 *   across this boundary. After an error, getLastError() returns a one-line message naming the bad value; it is
 *   per thread and valid until that thread's next vkmha call. A context may also have a log callback.
 *   Once a call sees VK_ERROR_DEVICE_LOST it returns VKMHA_ERROR_DEVICE_LOST, and so does every later call on that
 *   context or anything made from it, until they are destroyed (destroy* still works).
 *
 * Extension structs (pNext)
 *   Since 1.2 some input structs take extension structs chained on pNext, as in Vulkan: each starts with sType and
 *   pNext (which continues the same chain), and each input struct's pNext comment lists the ones it takes (in any
 *   order, each at most once; "NULL": none). A chain holding any other sType is refused with
 *   VKMHA_ERROR_INVALID_ARGUMENT naming the sType value and the struct it was chained to. Chained structs are read
 *   during the call only. A caller that negotiated an older version may still chain the newer structs the library
 *   knows. A struct whose pNext comment says "NULL" refuses any chained struct, naming itself in the message; so does
 *   an output struct (VkmhaContextProperties), whose chained structs would otherwise be silently left unfilled.
 *
 * ABI rules (how later versions extend this header without breaking 1.0, 1.1, 1.2 and 1.3 callers)
 *   - The layout of a struct in a released version never changes: no field is added, removed, moved or resized.
 *   - A struct that begins with sType/pNext grows by a new extension struct chained on its pNext, with its own
 *     VKMHA_STRUCTURE_TYPE_* value (as VkmhaModelAttentionInfo extends VkmhaModelCreateInfo in 1.2).
 *   - Structs without sType (VkmhaDeviceRequirements, VkmhaTensor, VkmhaModelProperties, VkmhaBufferBinding,
 *     VkmhaSequenceStep, VkmhaPrefillStatus, VkmhaTensorLayout, VkmhaStageTiming) are frozen. One used inside an
 *     input struct grows through an extension struct chained on that input struct (e.g. per-tensor options as an
 *     array parallel to pTensors, chained on VkmhaModelCreateInfo); an output struct is superseded by a new
 *     function appended to VkmhaProcTable whose struct begins with sType/pNext (Vulkan's "2" pattern).
 *   - Every new struct, input or output, begins with sType/pNext.
 *   - VkmhaProcTable only grows at its end; enums only gain values; a flags type only gains bits.
 *
 * Ownership
 *   Handles (context, model, session) are created by create* and destroyed by the matching destroy*; destroy
 *   a session before its model, and models before their context. (1.3) A scratch arena may be destroyed before or
 *   after the sessions created against it: its memory is freed with the last of them; destroy it, and them,
 *   before their context. vkmha never destroys a Vulkan object it did
 *   not create: in adopt mode the instance, device, queue, pipeline cache and all buffers bound to a record stay
 *   the caller's. Pointers passed in a create-info need only live for the duration of the call unless a field
 *   says otherwise. destroy* does not wait for GPU work the caller submitted: wait for the frames that used a
 *   session or model (fences, vkDeviceWaitIdle) before destroying it. (Work vkmha submitted itself, through
 *   submit, is waited for.)
 *
 * Threading (as Vulkan states it: an object a call takes as "externally synchronized" must not be used by any other
 * call on another thread at the same time; the caller orders those calls, with a mutex or by design)
 *   - Free-threaded: vkmhaGetProcTable, getLastError (per thread), getDeviceRequirements, enumerateDevices,
 *     stageName, and every call on a context or model that does not also name an externally synchronized object
 *     below: createModel, getModelMemoryRequirements, getContextProperties, getPipelineCacheData on one context;
 *     createSession, createKvCache, createPrefillJob's model argument, getModelProperties and the get*Memory-
 *     Requirements queries on one model. A model is read-only once created, so any number of threads may record
 *     and submit sessions of one model at once. createModel calls on one context take turns internally (they share
 *     its one-time upload command pool and fence).
 *   - Externally synchronized: a session in every call that takes it (record*, submit*, wait, readOutputs,
 *     getStageTimings, destroySession); a KV cache in every call that takes it (cached steps recorded or submitted
 *     on it by any session, createPrefillJob, getKvCacheLength, resetKvCache, truncateKvCache, destroyKvCache), and
 *     its prefill jobs with it (recordPrefill, destroyPrefillJob); the VkCommandBuffer a record writes into (and,
 *     by Vulkan's rule, the VkCommandPool it came from); and each handle in its destroy call: no call may use a
 *     model, context or anything made from it while it is destroyed.
 *   - Queues: vkmha submits to the context's queue only in createModel (the weights' upload) and in submit*. Its
 *     own submits take an internal lock, so host submits of different sessions may race. In adopt mode that queue
 *     is the engine's: the engine must not use that VkQueue on another thread during those calls (Vulkan's
 *     external-synchronization rule for queues). Record calls never touch a queue.
 *   - A lost device (VKMHA_ERROR_DEVICE_LOST) is seen by every thread: the flag is shared by the context.
 *   - The log callback is called on the thread of the vkmha call that logs, possibly from several threads at once.
 *   tests/test_threads.cpp exercises these rules, and scripts/test.sh runs it under ThreadSanitizer.
 *
 * Frames and the barrier contract (recordAttention)
 *   recordAttention writes one forward pass into the caller's VkCommandBuffer, which must be in the recording
 *   state and outside a render pass. It allocates no memory, waits on nothing and submits nothing.
 *   - On entry it inserts one pipeline barrier: from each bound buffer's srcStageMask/srcAccessMask (how the
 *     caller last used it; 0/0 = nothing to wait for, e.g. written by the host before submission) to
 *     VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT with SHADER_READ (inputs) or SHADER_READ|SHADER_WRITE (outputs).
 *   - Inside, it owns all barriers between its dispatches.
 *   - On exit the outputs (output, weights) were last written by VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT with
 *     VK_ACCESS_SHADER_WRITE_BIT. The caller barriers from there before reading them (in a shader, a copy or
 *     the host).
 *   - It overwrites the command buffer's bound compute pipeline, compute descriptor sets and push constants:
 *     rebind yours afterwards.
 *   - Per-frame resources live in a ring of framesInFlight slots; frame N uses slot N % framesInFlight. Recording
 *     frame N is refused (VKMHA_ERROR_FRAME_IN_FLIGHT) until the caller reports, via completedFrame, that the
 *     frame which last used that slot has finished on the GPU.
 */
#ifndef VKMHA_H_
#define VKMHA_H_ 1

#include <stddef.h>
#include <stdint.h>

#include <vulkan/vulkan.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define VKMHA_CALL __stdcall
#ifdef VKMHA_BUILDING_LIBRARY
#define VKMHA_EXPORT __declspec(dllexport)
#else
#define VKMHA_EXPORT __declspec(dllimport)
#endif
#else
#define VKMHA_CALL
#define VKMHA_EXPORT __attribute__((visibility("default")))
#endif

#define VKMHA_MAKE_API_VERSION(major, minor, patch)                                                                    \
    ((((uint32_t)(major)) << 22U) | (((uint32_t)(minor)) << 12U) | ((uint32_t)(patch)))
#define VKMHA_API_VERSION_MAJOR(version) ((uint32_t)(version) >> 22U)
#define VKMHA_API_VERSION_MINOR(version) (((uint32_t)(version) >> 12U) & 0x3FFU)
#define VKMHA_API_VERSION_1_0 VKMHA_MAKE_API_VERSION(1, 0, 0)
#define VKMHA_API_VERSION_1_1 VKMHA_MAKE_API_VERSION(1, 1, 0) /* KV caches, cached steps, sliced prefill */
/* 1.2: RoPE, QK-norm, scale, soft-cap, ALiBi, window, sinks; attention only (the caller's own Q, K, V) */
#define VKMHA_API_VERSION_1_2 VKMHA_MAKE_API_VERSION(1, 2, 0)
/* 1.3: what engines ship with (see the entries and structs marked 1.3) */
#define VKMHA_API_VERSION_1_3 VKMHA_MAKE_API_VERSION(1, 3, 0)
/* The version this header describes. */
#define VKMHA_HEADER_VERSION VKMHA_API_VERSION_1_3

/* No frame has completed yet (for VkmhaRecordInfo::completedFrame). */
#define VKMHA_NO_FRAME UINT64_MAX

typedef struct VkmhaContext_T* VkmhaContext;
typedef struct VkmhaModel_T* VkmhaModel;
typedef struct VkmhaSession_T* VkmhaSession;
typedef struct VkmhaKvCache_T* VkmhaKvCache;           /* 1.1 */
typedef struct VkmhaPrefillJob_T* VkmhaPrefillJob;     /* 1.1 */
typedef struct VkmhaScratchArena_T* VkmhaScratchArena; /* 1.3 */

/* resetKvCache: every sequence. */
#define VKMHA_ALL_SEQUENCES UINT32_MAX

typedef enum VkmhaResult {
    VKMHA_SUCCESS = 0,
    VKMHA_NOT_READY = 1, /* results not available yet: poll again */
    VKMHA_TIMEOUT = 2,   /* a wait's timeout passed */
    VKMHA_ERROR_INVALID_ARGUMENT = -1,
    VKMHA_ERROR_VERSION_NOT_SUPPORTED = -2,
    VKMHA_ERROR_UNSUPPORTED = -3, /* the device or driver cannot do this */
    VKMHA_ERROR_OUT_OF_MEMORY = -4,
    VKMHA_ERROR_BUDGET_EXCEEDED = -5, /* a caller-given memory budget would be exceeded */
    VKMHA_ERROR_OUT_OF_RANGE = -6,    /* a shape over the session's declared budget; a KV cache sequence index,
                                         capacity ("KV cache overflow"), ring or rollback limit exceeded */
    VKMHA_ERROR_FRAME_IN_FLIGHT = -7, /* the frame slot is still in use by an uncompleted frame */
    VKMHA_ERROR_IO = -8,              /* a file could not be read or is malformed */
    VKMHA_ERROR_VULKAN = -9,          /* a Vulkan call failed (the message names it) */
    VKMHA_ERROR_INTERNAL = -10,
    VKMHA_ERROR_DEVICE_LOST = -11, /* the device was lost (VK_ERROR_DEVICE_LOST): every later call on the context, or
                                      on anything made from it, returns this until the context is destroyed */
    VKMHA_RESULT_MAX_ENUM = 0x7FFFFFFF
} VkmhaResult;

typedef enum VkmhaStructureType {
    VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO = 1,
    VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO = 2,
    VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO = 3,
    VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO = 4,
    VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO = 5,
    VKMHA_STRUCTURE_TYPE_RECORD_INFO = 6,
    VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO = 7,
    VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES = 8,
    VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO = 9,
    VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO = 10,
    VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO = 11,
    VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO = 12,
    VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO = 13,
    VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO = 14,        /* 1.2 */
    VKMHA_STRUCTURE_TYPE_POSITIONS_INFO = 15,              /* 1.2 */
    VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO = 16,             /* 1.2 */
    VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO = 17,        /* 1.2 */
    VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO = 18,      /* 1.2 */
    VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO = 19, /* 1.2 */
    VKMHA_STRUCTURE_TYPE_KV_CACHE_COPY_INFO = 20,          /* 1.3 */
    VKMHA_STRUCTURE_TYPE_SCRATCH_ARENA_CREATE_INFO = 21,   /* 1.3 */
    VKMHA_STRUCTURE_TYPE_SESSION_SCRATCH_ARENA_INFO = 22,  /* 1.3 */
    VKMHA_STRUCTURE_TYPE_MODEL_UPLOAD_INFO = 23,           /* 1.3 */
    VKMHA_STRUCTURE_TYPE_REFERENCE_INFO = 24,              /* 1.3 */
    VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO = 25,              /* 1.3 */
    VKMHA_STRUCTURE_TYPE_CONTEXT_COMPILE_ONLY_INFO = 26,   /* 1.3 */
    VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS_INFO = 27,    /* 1.3 */
    VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS = 28,         /* 1.3 */
    VKMHA_STRUCTURE_TYPE_MAX_ENUM = 0x7FFFFFFF
} VkmhaStructureType;

typedef enum VkmhaDeviceMode {
    VKMHA_DEVICE_MODE_OWN = 0,   /* vkmha creates (and destroys) its own instance and device */
    VKMHA_DEVICE_MODE_ADOPT = 1, /* vkmha uses the engine's instance and device and destroys neither */
    VKMHA_DEVICE_MODE_MAX_ENUM = 0x7FFFFFFF
} VkmhaDeviceMode;

typedef enum VkmhaLogLevel {
    VKMHA_LOG_LEVEL_DEBUG = 0,
    VKMHA_LOG_LEVEL_INFO = 1,
    VKMHA_LOG_LEVEL_WARNING = 2,
    VKMHA_LOG_LEVEL_ERROR = 3,
    VKMHA_LOG_LEVEL_MAX_ENUM = 0x7FFFFFFF
} VkmhaLogLevel;

typedef enum VkmhaMaskType {
    VKMHA_MASK_TYPE_NONE = 0,
    VKMHA_MASK_TYPE_BOOL = 1,     /* one byte per element; nonzero = not allowed */
    VKMHA_MASK_TYPE_ADDITIVE = 2, /* one float per element, added to the scaled score (may hold -inf) */
    VKMHA_MASK_TYPE_MAX_ENUM = 0x7FFFFFFF
} VkmhaMaskType;

typedef enum VkmhaAttentionFlagBits {
    VKMHA_ATTENTION_CAUSAL_BIT = 0x1,       /* key j masked for query i when j > i + (lk - lq) */
    VKMHA_ATTENTION_NEED_WEIGHTS_BIT = 0x2, /* also write the softmax probabilities to `weights` */
    VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT =
        0x4, /* with NEED_WEIGHTS: [B, H, Lq, Lk] instead of the head mean [B, Lq, Lk] */
    VKMHA_ATTENTION_PER_HEAD_MASK_BIT = 0x8, /* attn_mask is [B*H, Lq, Lk] instead of [Lq, Lk] */
    VKMHA_ATTENTION_UNFUSED_BIT = 0x10,      /* run the unfused stages (scores, softmax, P·V in separate passes
                                                through an Lq x Lk buffer) instead of the fused kernel: the
                                                readable baseline, for benchmarks and debugging */
    VKMHA_ATTENTION_NO_SPLIT_K_BIT = 0x20,   /* fused path: never split the keys across workgroups (decode
                                                shapes normally do); for benchmarks */
    VKMHA_ATTENTION_FLAG_BITS_MAX_ENUM = 0x7FFFFFFF
} VkmhaAttentionFlagBits;
typedef uint32_t VkmhaAttentionFlags;

typedef enum VkmhaStage {
    VKMHA_STAGE_Q_PROJ = 0,
    VKMHA_STAGE_K_PROJ = 1,
    VKMHA_STAGE_V_PROJ = 2,
    VKMHA_STAGE_SCORES = 3,
    VKMHA_STAGE_SOFTMAX = 4,
    VKMHA_STAGE_APPLY = 5,
    VKMHA_STAGE_AVERAGE_WEIGHTS = 6,
    VKMHA_STAGE_OUT_PROJ = 7,
    VKMHA_STAGE_ATTENTION = 8, /* the fused kernel (scores, online softmax and P·V in one pass) */
    VKMHA_STAGE_COMBINE = 9,   /* the exact merge of split-K partial results */
    VKMHA_STAGE_QKV_PROJ = 10, /* 1.1: Q, K and V projected in one dispatch (self-attention with kdim = vdim = E) */
    VKMHA_STAGE_ROPE = 11,     /* 1.2: QK-norm and rotary positions applied to Q and K */
    VKMHA_STAGE_COPY = 12,     /* 1.2: the caller's own Q, K, V copied in and O out (attention-only records) */
    VKMHA_STAGE_MAX_ENUM = 0x7FFFFFFF
} VkmhaStage;

typedef void(VKMHA_CALL* PFN_vkmhaLogCallback)(VkmhaLogLevel level, const char* message, void* userData);

/* Which device capabilities vkmha uses; ask before creating an engine device to adopt. */
typedef struct VkmhaDeviceRequirements {
    uint32_t minApiVersion;                /* Vulkan version the device must support (1.1) */
    uint32_t requiredDeviceExtensionCount; /* extensions vkmha cannot work without */
    const char* const* ppRequiredDeviceExtensions;
    uint32_t optionalDeviceExtensionCount; /* extensions vkmha uses when enabled (see each name's comment in
                                              docs/ENGINE_INTEGRATION.md) */
    const char* const* ppOptionalDeviceExtensions;
    uint32_t optionalInstanceExtensionCount; /* VK_EXT_debug_utils: labels and object names */
    const char* const* ppOptionalInstanceExtensions;
    VkBool32 wantsTimelineSemaphore;        /* feature timelineSemaphore: needed only for submit/wait */
    VkBool32 wantsStorageBuffer16BitAccess; /* feature storageBuffer16BitAccess (VkPhysicalDevice16BitStorage-
                                               Features, core 1.1): needed only for VKMHA_PRECISION_FP16 models */
} VkmhaDeviceRequirements;

/* Own mode: which physical device to use. */
typedef struct VkmhaOwnDeviceInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO */
    const void* pNext;        /* NULL */
    int32_t deviceIndex;      /* -1 (default): the best device, discrete > integrated > virtual > CPU */
    const char* pDeviceName;  /* optional (NULL): first device whose name contains this, case-insensitive */
} VkmhaOwnDeviceInfo;

/* Adopt mode: the engine's Vulkan objects. All handles must outlive the context. */
typedef struct VkmhaAdoptDeviceInfo {
    VkmhaStructureType sType;                         /* VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO */
    const void* pNext;                                /* NULL */
    VkInstance instance;                              /* required */
    VkPhysicalDevice physicalDevice;                  /* required */
    VkDevice device;                                  /* required */
    PFN_vkGetInstanceProcAddr pfnGetInstanceProcAddr; /* required: every Vulkan call goes through it */
    uint32_t apiVersion;                    /* required: the version the engine's instance/device use; >= 1.1 */
    uint32_t enabledInstanceExtensionCount; /* optional: e.g. VK_EXT_debug_utils turns labels on */
    const char* const* ppEnabledInstanceExtensions;
    uint32_t enabledDeviceExtensionCount; /* optional */
    const char* const* ppEnabledDeviceExtensions;
    VkBool32 timelineSemaphoreEnabled;        /* whether the engine enabled the timelineSemaphore feature */
    VkQueue queue;                            /* optional (VK_NULL_HANDLE): needed by createModel and submit */
    uint32_t queueFamilyIndex;                /* the family of `queue`; also decides timestamp support
                                                 (timestampValidBits). Record into command buffers of this family
                                                 only: vkmha's buffers are VK_SHARING_MODE_EXCLUSIVE */
    VkPipelineCache pipelineCache;            /* optional: used for vkmha's pipelines, never destroyed */
    const VkAllocationCallbacks* pAllocator;  /* optional: must outlive the context */
    VkBool32 storageBuffer16BitAccessEnabled; /* whether the engine enabled the storageBuffer16BitAccess feature
                                                 (default VK_FALSE); VKMHA_PRECISION_FP16 models need it */
} VkmhaAdoptDeviceInfo;

typedef struct VkmhaContextCreateInfo {
    VkmhaStructureType sType;                 /* VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO */
    const void* pNext;                        /* optional (1.3): VkmhaContextCompileOnlyInfo */
    VkmhaDeviceMode deviceMode;               /* default OWN (0) */
    const VkmhaOwnDeviceInfo* pOwnDevice;     /* optional in OWN mode (NULL = best device); ignored in ADOPT */
    const VkmhaAdoptDeviceInfo* pAdoptDevice; /* required in ADOPT mode */
    PFN_vkmhaLogCallback pfnLogCallback;      /* optional: called from the calling thread (validation messages too,
                                                 in OWN mode when the validation layer is on); must outlive the
                                                 context */
    void* pLogUserData;                       /* passed to pfnLogCallback */
    const void* pPipelineCacheData;           /* optional: bytes from getPipelineCacheData of an earlier run;
                                                 stale or foreign data is ignored with a warning. Ignored in ADOPT
                                                 mode when the engine passes its own pipelineCache */
    size_t pipelineCacheDataSize;
} VkmhaContextCreateInfo;

/* 1.3, chained on VkmhaContextCreateInfo: a context that builds vkmha's pipelines and never submits work, to read
 * their shader statistics (getPipelineStatistics) on any device, one that cannot execute included: Mesa's RADV
 * "null hardware" device (RADV_FORCE_FAMILY=gfx1100, navi21, vangogh, ... without that GPU), which compiles with
 * the real AMD compiler. In OWN mode it enables VK_KHR_pipeline_executable_properties where the device has it.
 * On such a context createModel (which uploads weights) fails with VKMHA_ERROR_UNSUPPORTED naming the context as
 * compile-only, so nothing that would submit work (sessions, KV caches, records, submit) can be made from it;
 * getContextProperties reports canSubmit VK_FALSE. A context without this struct on a null-hardware device is
 * refused (VKMHA_ERROR_UNSUPPORTED), and own mode never picks one as "the best device". */
typedef struct VkmhaContextCompileOnlyInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_CONTEXT_COMPILE_ONLY_INFO */
    const void* pNext;        /* NULL */
    VkBool32 compileOnly;     /* VK_TRUE: compile only; VK_FALSE: an ordinary context, as without this struct */
} VkmhaContextCompileOnlyInfo;

typedef struct VkmhaContextProperties {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES */
    void* pNext;              /* NULL (no output struct extends this one yet: a chained struct is refused) */
    char deviceName[256];
    VkPhysicalDeviceType deviceType;
    uint32_t vendorId;
    uint32_t deviceApiVersion;
    VkBool32 ownsDevice; /* VK_TRUE in OWN mode */
    VkBool32 canSubmit;  /* a queue and timeline semaphores are available */
    VkBool32 timestamps; /* per-pass GPU timings available */
    VkBool32 debugUtils; /* labels and object names are emitted */
    uint32_t subgroupSize;
    VkDeviceSize maxStorageBufferRange;
    uint64_t validationMessageCount; /* OWN mode: validation messages seen so far (0 without the layer) */
    uint32_t pipelineCount;          /* compute pipelines created at context creation */
    int32_t pipelinesFromCache;      /* of those, how many the driver found in the pipeline cache
                                        (pPipelineCacheData or the adopted VkPipelineCache); -1 when the
                                        device cannot tell (no VK_EXT_pipeline_creation_feedback) */
} VkmhaContextProperties;

/* One named tensor of weights in host memory (names as in safetensors files: see VkmhaModelCreateInfo). */
typedef enum VkmhaDataType {
    VKMHA_DATA_TYPE_F32 = 0,
    VKMHA_DATA_TYPE_F16 = 1,
    VKMHA_DATA_TYPE_BF16 = 2,
    VKMHA_DATA_TYPE_MAX_ENUM = 0x7FFFFFFF
} VkmhaDataType;

typedef struct VkmhaTensor {
    const char* pName; /* required */
    VkmhaDataType dataType;
    uint32_t rank; /* 1 or 2 */
    uint64_t shape[4];
    const void* pData; /* required: product(shape) elements; read during the call only */
} VkmhaTensor;

/* How a model stores its weights, and its sessions their Q/K/V and concatenated-heads scratch, on the GPU.
 * Arithmetic is fp32 either way (fp16 is a storage format, never an accumulator); inputs, outputs and weights
 * passed through this API are fp32 either way. FP16 halves the model's device memory and the sessions' Q/K/V/concat
 * scratch and moves less data; it rounds the weights and those activations to fp16 (relative error up to 2^-11
 * each), so results differ from FP32 by about 1e-3 relative. */
typedef enum VkmhaPrecision {
    VKMHA_PRECISION_FP32 = 0,
    VKMHA_PRECISION_FP16 = 1, /* needs storageBuffer16BitAccess (see VkmhaDeviceRequirements); without it createModel
                                 fails with VKMHA_ERROR_UNSUPPORTED */
    VKMHA_PRECISION_MAX_ENUM = 0x7FFFFFFF
} VkmhaPrecision;

/* Weights use PyTorch nn.MultiheadAttention state_dict names (in_proj_weight/in_proj_bias, or q_proj_weight,
 * k_proj_weight, v_proj_weight; out_proj.weight, out_proj.bias) or Hugging Face Llama names (q_proj.weight,
 * k_proj.weight, v_proj.weight, o_proj.weight, each with an optional .bias). Give a safetensors path or tensors.
 * 1.2, with either naming: q_norm.weight and k_norm.weight ([headDim] each, both or neither) turn QK-norm on, and
 * sinks ([numHeads]) attention sinks (see VkmhaModelAttentionInfo). */
typedef struct VkmhaModelCreateInfo {
    VkmhaStructureType sType;     /* VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO */
    const void* pNext;            /* NULL, (1.2) a VkmhaModelAttentionInfo, (1.3) a VkmhaModelUploadInfo */
    uint32_t numHeads;            /* required: H */
    uint32_t numKvHeads;          /* 0 (default) = numHeads, or inferred from k_proj.weight with Llama names.
                                     Query head h reads KV head h / (numHeads / numKvHeads): consecutive query
                                     heads share one, as Hugging Face's repeat_kv */
    const char* pSafetensorsPath; /* either this ... */
    uint32_t tensorCount;         /* ... or these tensors (1.2: an attentionOnly model may have neither) */
    const VkmhaTensor* pTensors;
    VkDeviceSize memoryBudget; /* bytes of device memory the model may take; 0 = unlimited. Over it: creation
                                  fails with VKMHA_ERROR_BUDGET_EXCEEDED */
    VkmhaPrecision precision;  /* default VKMHA_PRECISION_FP32 (0). FP16: the weights are converted at creation
                                  (round to nearest even), whatever the tensors' data type; a finite weight over
                                  fp16's range (65504) fails with VKMHA_ERROR_INVALID_ARGUMENT */
} VkmhaModelCreateInfo;

typedef struct VkmhaModelProperties {
    uint32_t embedDim, numHeads, numKvHeads, headDim, kdim, vdim;
    VkBool32 hasInputBias, hasOutputBias;
    VkDeviceSize deviceMemoryBytes;
    VkmhaPrecision precision; /* as created */
} VkmhaModelProperties;

/* The score scratch: NEED_WEIGHTS and UNFUSED records (and models whose headDim is over what the fused kernel
 * runs, getSessionMemoryRequirements tells) go through an Lq x Lk score buffer per chunk of (batch, head) pairs, up
 * to 64 MiB per frame slot; plain fused records never touch it. Whether a session has one depends on the version its
 * proc table was filled for (the header's "Entry point"):
 *   1.3 and later: none unless asked for (SCORE_SCRATCH_BIT, or HOST_WEIGHTS_BIT), or the model can only run
 *     unfused; the cheap session is the default.
 *   1.0 to 1.2: always, unless FUSED_ONLY_BIT; a caller built against those headers sees no change.
 * A session without one refuses NEED_WEIGHTS and UNFUSED records with VKMHA_ERROR_INVALID_ARGUMENT naming
 * VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT. */
typedef enum VkmhaSessionCreateFlagBits {
    VKMHA_SESSION_CREATE_FUSED_ONLY_BIT = 0x1,   /* allocate no Lq x Lk score scratch: the least device memory, and
                                                    records that ask for NEED_WEIGHTS or UNFUSED are refused. The
                                                    default for 1.3 tables; not with SCORE_SCRATCH_BIT */
    VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT = 0x2, /* hostIo: also stage NEED_WEIGHTS results for readOutputs
                                                    ([B, H, Lq, Lk] floats per frame slot); without it, a submit
                                                    with NEED_WEIGHTS is refused */
    VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT = 0x4, /* hostIo: stage [B*H, Lq, Lk] masks (PER_HEAD_MASK);
                                                          without it, host masks are [Lq, Lk] */
    VKMHA_SESSION_CREATE_NO_TIMESTAMPS_BIT = 0x8,      /* 1.3: no GPU timestamps (shipping builds): no query pool, and
                                                          no query reset or timestamp write in any record;
                                                          getStageTimings returns VKMHA_ERROR_UNSUPPORTED, and sliced
                                                          prefill sizes its pieces without measurements. Without it
                                                          (the default, as in 1.2) every record is timed */
    VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT = 0x10,     /* 1.3: allocate the Lq x Lk score scratch that NEED_WEIGHTS and
                                                          UNFUSED records need (a 1.0-1.2 table always does, unless
                                                          FUSED_ONLY_BIT); not with FUSED_ONLY_BIT */
    VKMHA_SESSION_CREATE_FLAG_BITS_MAX_ENUM = 0x7FFFFFFF
} VkmhaSessionCreateFlagBits;
typedef uint32_t VkmhaSessionCreateFlags;

typedef struct VkmhaSessionCreateInfo {
    VkmhaStructureType sType;      /* VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO */
    const void* pNext;             /* NULL or (1.3) a VkmhaSessionScratchArenaInfo */
    uint32_t maxBatch;             /* required, >= 1: every record's batch must be <= (else OUT_OF_RANGE) */
    uint32_t maxQueryLength;       /* required, >= 1: every record's queryLength must be <=. A cached step's new
                                      tokens (the sum of newTokens) must be <= maxBatch * maxQueryLength */
    uint32_t maxKeyLength;         /* required, >= 1: every record's keyLength must be <=. Cached steps do not check
                                      it (the cache bounds their keys) and prefill pieces check no limit: a session
                                      used only for those may declare 1 */
    uint32_t framesInFlight;       /* 1..8; 0 = 2 */
    VkBool32 hostIo;               /* allocate host-visible I/O buffers for submit/readOutputs (tools); default off */
    VkDeviceSize memoryBudget;     /* bytes of device memory the session may take; 0 = unlimited. Over it: creation
                                      fails with VKMHA_ERROR_BUDGET_EXCEEDED */
    VkmhaSessionCreateFlags flags; /* default 0 */
} VkmhaSessionCreateInfo;

/* A caller-owned buffer bound for one record. */
typedef struct VkmhaBufferBinding {
    VkBuffer buffer;                   /* VK_NULL_HANDLE = not bound */
    VkDeviceSize offset;               /* bytes; a multiple of 4 for float data */
    VkDeviceSize range;                /* bytes; at least what the shape needs (VK_WHOLE_SIZE is refused). Byte
                                          masks are read as 32-bit words: offset + range rounded up to a multiple
                                          of 4 must stay inside the buffer */
    VkPipelineStageFlags srcStageMask; /* how the caller last used the buffer (0: nothing to wait for) */
    VkAccessFlags srcAccessMask;
} VkmhaBufferBinding;

typedef struct VkmhaRecordInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_RECORD_INFO */
    const void* pNext;        /* NULL or (1.2) a VkmhaPositionsInfo */
    uint64_t frameIndex;      /* the caller's frame counter (not UINT64_MAX); never lower than the session's last
                                 recorded frame, and one record per session per frame (else INVALID_ARGUMENT) */
    uint64_t completedFrame;  /* every frame <= this has finished on the GPU; VKMHA_NO_FRAME if none; must be below
                                 frameIndex (else INVALID_ARGUMENT). A new session's first record may use any
                                 frameIndex (0, or the engine's own counter); the one-record rule counts every kind
                                 of record (plain, cached step, prefill piece) */
    uint32_t batch, queryLength, keyLength;
    VkmhaAttentionFlags flags;
    VkmhaMaskType keyPaddingMaskType; /* NONE or BOOL */
    VkmhaMaskType attnMaskType;
    VkmhaBufferBinding query;          /* required: fp32 [batch, queryLength, embedDim] */
    VkmhaBufferBinding key;            /* fp32 [batch, keyLength, kdim]; unbound = query (self-attention) */
    VkmhaBufferBinding value;          /* fp32 [batch, keyLength, vdim]; unbound = key */
    VkmhaBufferBinding keyPaddingMask; /* bytes [batch, keyLength] */
    VkmhaBufferBinding attnMask;       /* [queryLength, keyLength] or [batch*H, ...] bytes or floats */
    VkmhaBufferBinding output;         /* required: fp32 [batch, queryLength, embedDim] */
    VkmhaBufferBinding weights;        /* with NEED_WEIGHTS: fp32 [batch, queryLength, keyLength] or [batch, H, ...] */
} VkmhaRecordInfo;

/* Host-pointer inputs for submit (sessions created with hostIo). Pointers are read during the call only. */
typedef struct VkmhaHostSubmitInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO */
    const void* pNext;        /* NULL or (1.2) a VkmhaPositionsInfo */
    uint32_t batch, queryLength, keyLength;
    VkmhaAttentionFlags flags;
    VkmhaMaskType keyPaddingMaskType;
    VkmhaMaskType attnMaskType;
    const float* pQuery; /* required */
    const float* pKey;   /* NULL = query (self-attention) */
    const float* pValue; /* NULL = key */
    const uint8_t* pKeyPaddingMask;
    const void* pAttnMask;
} VkmhaHostSubmitInfo;

/* ---- 1.1: KV caches --------------------------------------------------------------------------------------------
 * A KV cache holds the projected keys and values of many independent causal sequences (one per NPC, say) in device
 * memory: [sequences, numKvHeads, capacity, headDim] each, in the model's precision (GQA/MQA store only the KV
 * heads). Each frame, a cached step appends the new tokens of any number of its sequences and attends each new
 * token causally over its sequence's cached positions, in one recorded pass for the whole ragged batch.
 * Positions are absolute (0, 1, 2, ... per sequence). Without a window a sequence holds at most `capacity`
 * positions (more is VKMHA_ERROR_OUT_OF_RANGE, "KV cache overflow"); with a window W, a token at position t attends
 * to keys t - W < j <= t and position p lives in slot p % capacity, a ring: a step may append at most
 * capacity - W + 1 tokens to a sequence. Lengths are tracked on the host when a step is recorded: record (and
 * submit) steps in the order they will execute. A cache may be shared by sessions of its model (a chat session and
 * a background prefill session, say) on one queue; calls that touch one cache must not run concurrently. */
typedef struct VkmhaKvCacheCreateInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO */
    const void* pNext;        /* NULL */
    uint32_t sequences;       /* required, >= 1 */
    uint32_t capacity;        /* required, >= 1: slots per sequence */
    uint32_t window;          /* 0: no window; else 1..capacity (sliding window, ring) */
} VkmhaKvCacheCreateInfo;

/* One sequence's share of a cached step: its new tokens, packed after the previous entry's. */
typedef struct VkmhaSequenceStep {
    uint32_t sequence;  /* < sequences; listed at most once per step */
    uint32_t newTokens; /* >= 1 */
} VkmhaSequenceStep;

/* T = the sum of newTokens (at most the session's maxBatch * maxQueryLength). */
typedef struct VkmhaCachedRecordInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO */
    const void* pNext;        /* NULL or (1.2) a VkmhaPositionsInfo */
    uint64_t frameIndex;
    uint64_t completedFrame; /* frameIndex and completedFrame: as VkmhaRecordInfo's */
    VkmhaKvCache cache;      /* required: created for the session's model */
    uint32_t stepCount;      /* >= 1 */
    const VkmhaSequenceStep* pSteps;
    VkmhaBufferBinding query;          /* required: fp32 [T, embedDim] */
    VkmhaBufferBinding key;            /* fp32 [T, kdim]; unbound = query (the usual self-attention decode) */
    VkmhaBufferBinding value;          /* fp32 [T, vdim]; unbound = key */
    VkmhaBufferBinding keyPaddingMask; /* optional bytes [sequences, capacity] by slot: nonzero = never attend to
                                          the key in that slot (slot = position % capacity) */
    VkmhaBufferBinding output;         /* required: fp32 [T, embedDim] */
} VkmhaCachedRecordInfo;

/* Host-pointer cached step (hostIo sessions); readOutputs then returns [T, embedDim]. */
typedef struct VkmhaHostCachedSubmitInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO */
    const void* pNext;        /* NULL or (1.2) a VkmhaPositionsInfo */
    VkmhaKvCache cache;
    uint32_t stepCount;
    const VkmhaSequenceStep* pSteps;
    const float* pQuery;            /* required: [T, embedDim] */
    const float* pKey;              /* NULL = query */
    const float* pValue;            /* NULL = key */
    const uint8_t* pKeyPaddingMask; /* NULL or [sequences, capacity] bytes by slot */
} VkmhaHostCachedSubmitInfo;

/* ---- 1.1: sliced prefill ----------------------------------------------------------------------------------------
 * A long prompt digested into one cached sequence across frames, each frame's piece bounded by a GPU-time budget:
 * projections in row chunks, the attention of all the prompt's rows over one key range per frame (each row's
 * running max, sum and accumulator stay in device memory between frames and merge exactly, so the result equals
 * the one-shot pass), then the output projection in row chunks. Pieces are sized from the GPU timestamps of the
 * job's earlier pieces. The sequence is busy (steps, reset and truncation refused) until the job is done;
 * destroying an unfinished job gives its positions back. */
typedef struct VkmhaPrefillJobCreateInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO */
    const void* pNext;        /* NULL */
    VkmhaKvCache cache;       /* required; outlives the job */
    uint32_t sequence;        /* the prompt continues what the sequence holds */
    uint32_t tokenCount;      /* >= 1 */
} VkmhaPrefillJobCreateInfo;

typedef struct VkmhaPrefillRecordInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO */
    const void* pNext;        /* NULL or (1.2) a VkmhaPositionsInfo: the prompt's [tokenCount] int32 positions, the
                                 same buffer and data on every call of the job */
    uint64_t frameIndex;
    uint64_t completedFrame;   /* frameIndex and completedFrame: as VkmhaRecordInfo's; completedFrame also frees the
                                  job's own record slots */
    VkmhaPrefillJob job;       /* required */
    float budgetMilliseconds;  /* > 0: size the piece to about this much GPU time; 0: a whole phase per call */
    uint32_t maxRows;          /* 0 or a cap on the rows of a projection piece */
    uint32_t maxKeys;          /* 0 or a cap on the keys of an attention piece (rounded to whole key tiles) */
    VkmhaBufferBinding query;  /* required: fp32 [tokenCount, embedDim], the same data on every call of the job */
    VkmhaBufferBinding key;    /* fp32 [tokenCount, kdim]; unbound = query */
    VkmhaBufferBinding value;  /* fp32 [tokenCount, vdim]; unbound = key */
    VkmhaBufferBinding output; /* required: fp32 [tokenCount, embedDim], complete once the job is done */
} VkmhaPrefillRecordInfo;

typedef enum VkmhaPrefillPhase {
    VKMHA_PREFILL_PHASE_PROJECT = 0,  /* Q/K/V projections of rows [begin, end) */
    VKMHA_PREFILL_PHASE_ATTEND = 1,   /* attention over key positions [begin, end) */
    VKMHA_PREFILL_PHASE_FINISH = 2,   /* normalization */
    VKMHA_PREFILL_PHASE_OUT_PROJ = 3, /* output projection of rows [begin, end) */
    VKMHA_PREFILL_PHASE_NONE = 4,     /* nothing was recorded: the job was already done */
    VKMHA_PREFILL_PHASE_MAX_ENUM = 0x7FFFFFFF
} VkmhaPrefillPhase;

typedef struct VkmhaPrefillStatus {
    VkBool32 done;             /* every piece has been recorded */
    float progress;            /* 0..1, by arithmetic recorded */
    VkmhaPrefillPhase phase;   /* of the piece the call recorded */
    uint32_t begin, end;       /* its prompt rows (PROJECT, OUT_PROJ) or key positions (ATTEND) */
    uint32_t rowBegin, rowEnd; /* ATTEND: its prompt rows (a key range is covered in blocks of rows) */
} VkmhaPrefillStatus;

/* ---- 1.2: the attention of real model families -----------------------------------------------------------------
 * Options fixed per model (VkmhaModelAttentionInfo, chained on VkmhaModelCreateInfo) and per-call RoPE positions
 * (VkmhaPositionsInfo). Applied in this order: QK-norm, RoPE (before a key enters a KV cache), the softmax scale,
 * soft-cap, ALiBi and the masks (causal, window, key padding, attn_mask), then the softmax with the sinks in its
 * denominator. Everything is off by default: a model created without the struct computes what 1.1 computed. */

/* Rotary position embeddings, as Hugging Face transformers defines them: position p turns pair i of the first
 * rotaryDims dims of every query and key head by the angle p * inv_freq[i]. */
typedef enum VkmhaRopeLayout {
    VKMHA_ROPE_LAYOUT_NONE = 0, /* no rotary embeddings */
    VKMHA_ROPE_LAYOUT_NEOX = 1, /* rotate halves: dims i and i + R/2 form a pair (Llama, Qwen, Mistral, gpt-oss) */
    VKMHA_ROPE_LAYOUT_GPTJ = 2, /* interleaved: dims 2i and 2i + 1 form a pair (GPT-J) */
    VKMHA_ROPE_LAYOUT_MAX_ENUM = 0x7FFFFFFF
} VkmhaRopeLayout;

/* How inv_freq[i] = ropeTheta^(-2i/R) is rescaled for a longer context (HF's rope_scaling / rope_type). */
typedef enum VkmhaRopeScaling {
    VKMHA_ROPE_SCALING_NONE = 0,
    VKMHA_ROPE_SCALING_LINEAR = 1, /* inv_freq / factor */
    VKMHA_ROPE_SCALING_LLAMA3 = 2, /* low frequencies / factor, high ones kept, a smooth blend between (Llama 3.1) */
    VKMHA_ROPE_SCALING_YARN = 3,   /* NTK-by-parts with a correction range; cos and sin times 0.1 ln(factor) + 1 */
    VKMHA_ROPE_SCALING_MAX_ENUM = 0x7FFFFFFF
} VkmhaRopeScaling;

/* Chained on VkmhaModelCreateInfo::pNext. Every field's zero is its default, so a zero-initialised struct (sType
 * set) changes nothing. QK-norm and sinks come with the weights, not from here: the model applies a per-head RMSNorm
 * of Q and K (over headDim, weights q_norm.weight and k_norm.weight, [headDim] each) when the weights hold both, and
 * attention sinks (one logit per head joining each row's softmax denominator) when they hold `sinks` [numHeads].
 * Invalid values (an unknown enum, odd rotaryDims, a negative or non-finite number, a scaling without its
 * parameters) fail createModel and getModelMemoryRequirements with VKMHA_ERROR_INVALID_ARGUMENT naming the field. */
typedef struct VkmhaModelAttentionInfo {
    VkmhaStructureType sType;     /* VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO */
    const void* pNext;            /* the rest of the chain (NULL at its end) */
    VkmhaRopeLayout ropeLayout;   /* default NONE (0): no RoPE, and every rope* field must stay 0 */
    uint32_t rotaryDims;          /* R: 0 (default) = headDim; else even and <= headDim (partial rotary: the other dims
                                     pass through unrotated) */
    float ropeTheta;              /* base of the frequencies; 0 (default) = 10000; else finite and > 1 */
    VkmhaRopeScaling ropeScaling; /* default NONE (0) */
    float ropeScalingFactor;      /* LINEAR, LLAMA3, YARN: required, finite and > 0 (HF's factor) */
    float ropeLowFreqFactor;      /* LLAMA3: required, > 0 (HF's low_freq_factor, 1 in Llama 3.1) */
    float ropeHighFreqFactor;     /* LLAMA3: required, > ropeLowFreqFactor (HF's high_freq_factor, 4 in Llama 3.1) */
    uint32_t ropeOriginalMaxPositions; /* LLAMA3, YARN: required, >= 1 (original_max_position_embeddings) */
    float ropeBetaFast;                /* YARN: 0 (default) = 32 */
    float ropeBetaSlow;                /* YARN: 0 (default) = 1 */
    VkBool32 ropeNoTruncate; /* YARN: VK_TRUE keeps the correction range fractional (HF's truncate = false); default
                                VK_FALSE rounds it to whole dims, HF's default */
    float scale;             /* softmax scale: 0 (default) = 1/sqrt(headDim); else finite and > 0 */
    float softcap;           /* 0 (default) = off; > 0: s <- softcap * tanh(s / softcap) on the scaled scores */
    VkBool32 alibi;          /* VK_TRUE: adds slope_h * (j - i) to the scaled scores, Bloom's slopes per head */
    uint32_t window;         /* 0 (default) = off; W: query position i sees key j only when i - W < j (a sliding
                                window, as Mistral's; combine with CAUSAL for the usual causal window) */
    float normEps;           /* QK-norm's epsilon: 0 (default) = 1e-6; else finite and > 0. Used only when the weights
                                hold q_norm.weight and k_norm.weight */
    uint32_t headDim;        /* D: 0 (default) = from the weights (q_proj rows / numHeads); else it must equal that,
                                or, with attentionOnly, it is required and sets D */
    VkBool32 attentionOnly;  /* VK_TRUE: a model without projections, for the caller's own Q, K and V (the *Qkv
                                calls below): numHeads, numKvHeads (0 = numHeads) and headDim give the shape; the
                                tensors (pSafetensorsPath or pTensors) may hold only sinks, q_norm.weight and
                                k_norm.weight, or nothing at all (pSafetensorsPath NULL and tensorCount 0). Its
                                embedDim, kdim and vdim (getModelProperties) are numHeads * headDim. recordAttention,
                                submit, recordCachedAttention, submitCached and createPrefillJob refuse it (a message
                                containing "attention-only"). Default VK_FALSE */
} VkmhaModelAttentionInfo;

/* RoPE positions of one call, chained on the pNext of any record or submit info. Read only by models with a
 * ropeLayout (ignored otherwise); any int32 value is taken.
 *   recordAttention / submit: [batch, queryLength] int32, each query token's position; with self-attention (key
 *     unbound / pKey NULL) the keys take the same positions. Without the struct: query i is at
 *     keyLength - queryLength + i and key j at j (0..queryLength-1 for self-attention).
 *   recordAttentionQkv / submitQkv: positionIds [batch, queryLength] for the queries (absent: keyLength -
 *     queryLength + i) and keyPositionIds [batch, keyLength] for the keys (absent: j), independently.
 *   recordCachedAttention / submitCached and their Qkv forms: [T] int32, each new token's position, packed like the
 *     query rows; its key is rotated by it before it enters the cache. Without the struct: its cache position (the
 *     sequence's length before the step, plus its index among the sequence's new tokens).
 *   recordPrefill: positionIds [tokenCount] int32, the prompt's positions (the same on every call of the job).
 *     Without the struct: the cache positions the prompt continues at.
 * Record chains bind positionIds (and keyPositionIds) and leave the pointers NULL; host chains set pPositionIds (and
 * pKeyPositionIds) and leave the bindings unbound (the other kind is refused, naming it). The key positions are
 * read by recordAttentionQkv and submitQkv only: any other call refuses them, naming the field. */
typedef struct VkmhaPositionsInfo {
    VkmhaStructureType sType;       /* VKMHA_STRUCTURE_TYPE_POSITIONS_INFO */
    const void* pNext;              /* the rest of the chain (NULL at its end) */
    VkmhaBufferBinding positionIds; /* record calls: the int32 positions on the device, offset a multiple of 4; read by
                                       the recorded commands, so the buffer must live until they complete */
    const int32_t* pPositionIds;    /* submit calls: the int32 positions in host memory, read during the call only */
    VkmhaBufferBinding keyPositionIds; /* recordAttentionQkv: the keys' int32 positions [batch, keyLength], as
                                          positionIds */
    const int32_t* pKeyPositionIds;    /* submitQkv: the keys' positions [batch, keyLength] in host memory */
} VkmhaPositionsInfo;

/* ---- 1.2: attention only (the caller's own Q, K and V) -----------------------------------------------------------
 * An engine that projects Q, K and V itself (its own fused kernels, quantised weights, LoRA, ...) hands vkmha the
 * projected heads and gets the attention's heads back, as torch.nn.functional.scaled_dot_product_attention takes and
 * returns them: no input or output projection runs. Everything between them does, exactly as for a model with
 * projections: QK-norm, RoPE (VkmhaPositionsInfo), the scale, soft-cap, ALiBi, window, masks, sinks and GQA (query
 * head h reads key/value head h / (H / G)). The Qkv calls work on any model (its projection weights are then
 * unused); a model created with VkmhaModelAttentionInfo::attentionOnly stores none. Q, K, V and O are fp32 whatever
 * the model's precision (FP16 stores the session's copies of Q, K and V in fp16). */

/* Where element (b, h, l, d) of a caller's tensor lives: at offset/4 + b * batchStride + h * headStride +
 * l * rowStride + d floats into its buffer (d, the head dim, is always contiguous). All three 0 (the default): the
 * contiguous layout the field names, e.g. [B, heads, L, D]. Otherwise every stride must be >= headDim; the output's
 * rows may not overlap. Common layouts (H heads of D, length L):
 *   [B, H, L, D] (contiguous, SDPA's):        batchStride = H*L*D, headStride = L*D, rowStride = D (or 0, 0, 0)
 *   [B, L, H, D] (a transformer block's):     batchStride = L*H*D, headStride = D,   rowStride = H*D
 *   cached steps, per token [T, H, D]:        batchStride = 0,     headStride = D,   rowStride = H*D (or 0, 0, 0) */
typedef struct VkmhaTensorLayout {
    uint32_t batchStride; /* floats between batch items; cached steps: must be 0 (no batch) */
    uint32_t headStride;  /* floats between heads */
    uint32_t rowStride;   /* floats between tokens */
} VkmhaTensorLayout;

/* recordAttentionQkv: as VkmhaRecordInfo (the same frames, flags, masks, weights and barrier contract), on the
 * caller's own tensors. A binding's range must cover its tensor at its layout: at least (the last element's index
 * + 1) * 4 bytes from its offset. H, G and D are the model's (getModelProperties: numHeads, numKvHeads, headDim). */
typedef struct VkmhaQkvRecordInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO */
    const void* pNext;        /* NULL or a VkmhaPositionsInfo (positionIds, keyPositionIds) */
    uint64_t frameIndex;      /* the caller's frame counter (not UINT64_MAX); never lower than the session's last
                                 recorded frame, and one record per session per frame (else INVALID_ARGUMENT) */
    uint64_t completedFrame;  /* every frame <= this has finished on the GPU; VKMHA_NO_FRAME if none; must be below
                                 frameIndex (else INVALID_ARGUMENT) */
    uint32_t batch, queryLength, keyLength;
    VkmhaAttentionFlags flags;
    VkmhaMaskType keyPaddingMaskType;  /* NONE or BOOL */
    VkmhaMaskType attnMaskType;        /* NONE, BOOL or ADDITIVE */
    VkmhaBufferBinding q;              /* required: fp32 Q [batch, H, queryLength, D] at qLayout */
    VkmhaBufferBinding k;              /* required: fp32 K [batch, G, keyLength, D] at kLayout */
    VkmhaBufferBinding v;              /* required: fp32 V [batch, G, keyLength, D] at vLayout */
    VkmhaBufferBinding keyPaddingMask; /* bytes [batch, keyLength], as VkmhaRecordInfo's */
    VkmhaBufferBinding attnMask;       /* [queryLength, keyLength] or [batch*H, ...] bytes or floats */
    VkmhaBufferBinding output;         /* required: fp32 O [batch, H, queryLength, D] at outputLayout */
    VkmhaBufferBinding weights;        /* with NEED_WEIGHTS: fp32 [batch, queryLength, keyLength] or [batch, H, ...] */
    VkmhaTensorLayout qLayout;         /* 0, 0, 0: contiguous [batch, H, queryLength, D] */
    VkmhaTensorLayout kLayout;         /* 0, 0, 0: contiguous [batch, G, keyLength, D] */
    VkmhaTensorLayout vLayout;         /* 0, 0, 0: contiguous [batch, G, keyLength, D] */
    VkmhaTensorLayout outputLayout;    /* 0, 0, 0: contiguous [batch, H, queryLength, D] */
} VkmhaQkvRecordInfo;

/* submitQkv (hostIo sessions): contiguous tensors in host memory, read during the call only. readOutputs then
 * returns O [batch, H, queryLength, D] (and the weights as for submit). */
typedef struct VkmhaHostQkvSubmitInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO */
    const void* pNext;        /* NULL or a VkmhaPositionsInfo (pPositionIds, pKeyPositionIds) */
    uint32_t batch, queryLength, keyLength;
    VkmhaAttentionFlags flags;
    VkmhaMaskType keyPaddingMaskType;
    VkmhaMaskType attnMaskType;
    const float* pQ; /* required: [batch, H, queryLength, D] */
    const float* pK; /* required: [batch, G, keyLength, D] */
    const float* pV; /* required: [batch, G, keyLength, D] */
    const uint8_t* pKeyPaddingMask;
    const void* pAttnMask;
} VkmhaHostQkvSubmitInfo;

/* recordCachedAttentionQkv: a cached step (as VkmhaCachedRecordInfo) on the caller's own tensors. Each new token's K
 * and V rows are appended to the cache as they are (K rotated at its position, after QK-norm), then every new token
 * attends causally over its sequence's cached positions. T = the sum of newTokens; the tensors are per token, packed
 * like the steps (no batch dimension). */
typedef struct VkmhaCachedQkvRecordInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO */
    const void* pNext;        /* NULL or a VkmhaPositionsInfo (positionIds [T]) */
    uint64_t frameIndex;
    uint64_t completedFrame;
    VkmhaKvCache cache; /* required: created for the session's model */
    uint32_t stepCount; /* >= 1 */
    const VkmhaSequenceStep* pSteps;
    VkmhaBufferBinding q;              /* required: fp32 Q [T, H, D] at qLayout */
    VkmhaBufferBinding k;              /* required: fp32 K [T, G, D] at kLayout */
    VkmhaBufferBinding v;              /* required: fp32 V [T, G, D] at vLayout */
    VkmhaBufferBinding keyPaddingMask; /* optional bytes [sequences, capacity] by slot, as VkmhaCachedRecordInfo's */
    VkmhaBufferBinding output;         /* required: fp32 O [T, H, D] at outputLayout */
    VkmhaTensorLayout qLayout;         /* batchStride 0; 0, 0 (head, row): contiguous [T, H, D] */
    VkmhaTensorLayout kLayout;         /* batchStride 0; 0, 0: contiguous [T, G, D] */
    VkmhaTensorLayout vLayout;         /* batchStride 0; 0, 0: contiguous [T, G, D] */
    VkmhaTensorLayout outputLayout;    /* batchStride 0; 0, 0: contiguous [T, H, D] */
} VkmhaCachedQkvRecordInfo;

/* submitCachedQkv (hostIo sessions): contiguous per-token tensors; readOutputs then returns O [T, H, D]. */
typedef struct VkmhaHostCachedQkvSubmitInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO */
    const void* pNext;        /* NULL or a VkmhaPositionsInfo (pPositionIds [T]) */
    VkmhaKvCache cache;
    uint32_t stepCount;
    const VkmhaSequenceStep* pSteps;
    const float* pQ;                /* required: [T, H, D] */
    const float* pK;                /* required: [T, G, D] */
    const float* pV;                /* required: [T, G, D] */
    const uint8_t* pKeyPaddingMask; /* NULL or [sequences, capacity] bytes by slot */
} VkmhaHostCachedQkvSubmitInfo;

/* ---- 1.3: KV-cache state (save games, branching dialogue) -------------------------------------------------------
 * readKvCacheState copies one sequence's cached keys and values to host memory as a self-describing byte blob, and
 * writeKvCacheState puts such a blob into a sequence of the same cache or another one of the same shape (a save
 * game). recordKvCacheCopy forks a sequence into another on the GPU (vkCmdCopyBuffer into the caller's command
 * buffer), so two replies can be explored from one conversation; copyKvCache does the same on the context's queue.
 * The blob, little-endian (every platform vkmha runs on), is ten uint32 words and then the rows:
 *   [0] magic 0x53564B56 ("VKVS")  [1] format version (1)  [2] precision (VkmhaPrecision)  [3] numKvHeads
 *   [4] headDim  [5] window (0: none)  [6] capacity of the cache it was read from  [7] length (next position)
 *   [8] first, the oldest position stored  [9] rows = length - first
 *   then K and then V, each [numKvHeads, rows, headDim] elements (fp32, or fp16 for FP16 models) in position order.
 * The rows are every position the sequence's ring still holds (all of them without a window), so a restored
 * sequence continues bit for bit as the original would have, and can be rolled back as far (truncateKvCache). A
 * blob is written only into a cache whose model has the same precision, numKvHeads and headDim and whose window is
 * the same, with a capacity of at least its rows (at least its length without a window); anything else, and a
 * size that disagrees with the header, is refused naming the field, the cache unchanged. vkmha cannot tell which
 * weights made the rows: restore a conversation into a cache of the model that wrote it. */
typedef struct VkmhaKvCacheCopyInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_KV_CACHE_COPY_INFO */
    const void* pNext;        /* NULL */
    VkmhaKvCache srcCache;    /* required */
    VkmhaKvCache dstCache;    /* required: srcCache itself, or a cache on the same context whose model has the same
                                 precision, numKvHeads and headDim, with the same window and room for the source's
                                 rows */
    uint32_t srcSequence;     /* < srcCache's sequences */
    uint32_t dstSequence;     /* < dstCache's sequences; not srcSequence when dstCache is srcCache. Whatever it held
                                 is replaced: its length becomes the source's */
} VkmhaKvCacheCopyInfo;

/* 1.3: getPipelineStatistics. What a pipeline does in a forward pass. */
typedef enum VkmhaPipelineRole {
    VKMHA_PIPELINE_ROLE_PREFILL = 0,    /* the fused attention kernel's row tiling (prompts, many query rows) */
    VKMHA_PIPELINE_ROLE_DECODE = 1,     /* the fused attention kernel's decode tiling (a few query rows) */
    VKMHA_PIPELINE_ROLE_COMBINE = 2,    /* the split-K merge (combine) */
    VKMHA_PIPELINE_ROLE_PROJECTION = 3, /* the Q/K/V and output projections (linear) */
    VKMHA_PIPELINE_ROLE_OTHER = 4,      /* unfused path, weights, QK-norm/RoPE, copies */
    VKMHA_PIPELINE_ROLE_MAX_ENUM = 0x7FFFFFFF
} VkmhaPipelineRole;

/* 1.3: the model configuration whose pipelines getPipelineStatistics builds (as createModel would, with the same
 * tiling choices and specialization constants). */
typedef struct VkmhaPipelineStatisticsInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS_INFO */
    const void* pNext;        /* optional: VkmhaModelAttentionInfo (its softcap and alibi are compiled into the
                                 fused kernel; no other field changes a pipeline, and they are ignored) */
    uint32_t embedDim;        /* E, required */
    uint32_t numHeads;        /* H, required */
    uint32_t numKvHeads;      /* G; 0 (default) = numHeads; must divide numHeads */
    uint32_t headDim;         /* D; 0 (default) = embedDim / numHeads */
    VkmhaPrecision precision; /* storage precision, as VkmhaModelCreateInfo::precision */
} VkmhaPipelineStatisticsInfo;

#define VKMHA_MAX_SPECIALIZATION_CONSTANTS 8U /* 1.3 */
#define VKMHA_MAX_PIPELINE_STATISTICS 48U     /* 1.3; more than any driver reports today (RADV: 19) */

/* 1.3: one statistic as the driver reports it (VkPipelineExecutableStatisticKHR), under the driver's own name. */
typedef struct VkmhaPipelineStatistic {
    char name[64];                                 /* e.g. RADV's "VGPRs", "Spilled VGPRs", "Subgroups per SIMD" */
    VkPipelineExecutableStatisticFormatKHR format; /* which member of value holds it */
    VkPipelineExecutableStatisticValueKHR value;
} VkmhaPipelineStatistic;

/* 1.3: one pipeline and its statistics (output of getPipelineStatistics). */
typedef struct VkmhaPipelineStatistics {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS */
    void* pNext;              /* NULL */
    char kernel[64];          /* the kernel (shaders/<kernel>.comp family), e.g. "attention" */
    char variant[64];         /* its SPIR-V variant, e.g. "attention_f16", "softmax_subgroup", "linear_lanes_f16" */
    VkmhaPipelineRole role;
    uint32_t workgroupSize[3];
    uint32_t specializationCount; /* the constants it was specialised with, in constant_id order (0: defaults) */
    char specializationNames[VKMHA_MAX_SPECIALIZATION_CONSTANTS][32];
    uint32_t specializationValues[VKMHA_MAX_SPECIALIZATION_CONSTANTS];
    uint32_t statisticCount;
    VkmhaPipelineStatistic statistics[VKMHA_MAX_PIPELINE_STATISTICS];
} VkmhaPipelineStatistics;

/* ---- 1.3: one scratch arena for a whole model ----------------------------------------------------------------
 * A transformer runs its layers one after another, so their sessions need not each own scratch: sessions created
 * against one scratch arena (VkmhaSessionScratchArenaInfo) take their Q/K/V, score, concat, LSE and split-K scratch
 * from it, and 32 layers take the scratch of the largest one instead of 32 times it. Each session keeps its own
 * frame slots (descriptor sets, timestamps, cached-step records), and its own host staging is refused (hostIo).
 * The rule: sessions sharing an arena must not run concurrently on the GPU. Record them into one command buffer, or
 * into command buffers submitted in order to one queue: every record begins with a barrier that orders it after
 * the vkmha work before it on that queue, so consecutive layers are safe. Frame N of every session uses the arena's
 * frame slot N % framesInFlight; a record is refused (VKMHA_ERROR_FRAME_IN_FLIGHT, naming the arena) while that
 * slot still holds another, uncompleted frame of any of its sessions, so record every session of an arena with the
 * same frame indices. Sessions of one arena must not be used from two threads at once. */
typedef struct VkmhaScratchArenaCreateInfo {
    VkmhaStructureType sType;   /* VKMHA_STRUCTURE_TYPE_SCRATCH_ARENA_CREATE_INFO */
    const void* pNext;          /* NULL */
    VkDeviceSize bytesPerFrame; /* required, >= 1: at least the largest getSessionScratchRequirements of the sessions
                                   it will serve (rounded up to 256). The arena takes framesInFlight times this */
    uint32_t framesInFlight;    /* 1..8; 0 = 2. Its sessions' framesInFlight must be 0 (take this) or equal it */
    VkDeviceSize memoryBudget;  /* bytes of device memory the arena may take; 0 = unlimited. Over it: creation fails
                                   with VKMHA_ERROR_BUDGET_EXCEEDED */
} VkmhaScratchArenaCreateInfo;

/* Chained on VkmhaSessionCreateInfo::pNext (createSession, getSessionMemoryRequirements, getSessionScratch-
 * Requirements): the session's scratch comes from `arena`. Refused with VKMHA_ERROR_BUDGET_EXCEEDED when the arena's
 * bytesPerFrame is below what the session needs, with VKMHA_ERROR_INVALID_ARGUMENT for a hostIo session, another
 * context's arena or a different framesInFlight. getSessionMemoryRequirements then counts only what the session
 * owns besides the arena. */
typedef struct VkmhaSessionScratchArenaInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_SESSION_SCRATCH_ARENA_INFO */
    const void* pNext;        /* the rest of the chain (NULL at its end) */
    VkmhaScratchArena arena;  /* required; made on the model's context */
} VkmhaSessionScratchArenaInfo;

/* ---- 1.3: the weight upload recorded into the engine's command buffer -------------------------------------------
 * By default createModel copies the weights to the device through the context's queue and waits. Engines that stream
 * assets record the copies themselves instead, beside their own uploads:
 *   1. createModel with a VkmhaModelUploadInfo (recordUpload VK_TRUE) chained: it allocates the model's device memory
 *      and fills host-visible staging (converted to the model's precision); it uses no queue and waits on nothing,
 *      so it works on a context adopted without a queue too. Own mode refuses it (the caller has no command buffer
 *      on vkmha's device).
 *   2. recordModelUpload(model, commandBuffer): vkmha records one vkCmdCopyBuffer per weight buffer from its
 *      staging. The command buffer must be recording, outside a render pass, of the context's queue family (the
 *      model's buffers are VK_SHARING_MODE_EXCLUSIVE). vkmha records no barrier: on exit the weights were last
 *      written by VK_PIPELINE_STAGE_TRANSFER_BIT with VK_ACCESS_TRANSFER_WRITE_BIT. The engine orders every use of
 *      the model after them with a barrier from TRANSFER / TRANSFER_WRITE to COMPUTE_SHADER / SHADER_READ (a
 *      VkMemoryBarrier suffices): at the end of the upload's command buffer (it then orders every later submission
 *      on that queue, submit's included) or at the start of the frame that first records the model; from another
 *      queue of the family, a semaphore whose wait stage includes COMPUTE_SHADER. Record again (into another command
 *      buffer) if the engine discarded the first one.
 *   3. completeModelUpload(model), once every submission of that command buffer has completed on the GPU (the
 *      engine's fence or timeline): frees the staging. Until then the model's sessions refuse every record and
 *      submit, naming completeModelUpload; sessions, KV caches and prefill jobs may be created meanwhile.
 * destroyModel frees the staging of an upload never completed; as for any destroy, the GPU must be done with the
 * copies first. */
typedef struct VkmhaModelUploadInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_MODEL_UPLOAD_INFO */
    const void* pNext;        /* the rest of the chain (NULL at its end) */
    VkBool32 recordUpload;    /* VK_TRUE: createModel only allocates and stages (steps above); default VK_FALSE:
                                 createModel uploads through the context's queue and waits, as without the struct */
} VkmhaModelUploadInfo;

/* ---- 1.3: the CPU reference ---------------------------------------------------------------------------------------
 * referenceAttention runs one layer on vkmha's CPU reference: the math of docs/DESIGN.md with every dot product
 * accumulated in double, in index order, from the weights as given (fp32, whatever the model's precision). It needs no
 * context or device, so an engine can check vkmha on a player's GPU against it (a test scene, a bug report) as vkmha's
 * own tools do. It is slow (no SIMD, no threads): small layers only. Compare a GPU result g with the reference r
 * element by element:
 *   VKMHA_PRECISION_FP32 models: |g - r| <= 2e-4 + 2e-3 |r| (vkmha's promise; its tests hold half of it on O(1) data)
 *   VKMHA_PRECISION_FP16 models: |g - r| <= 1.5e-3 + 1.5e-3 |r| on O(1) data (weights and Q/K/V/concat rounded to
 *     fp16, about 1e-3 relative, growing with the size of the logits: no fixed bound)
 * The output and weights layouts are those readOutputs returns for the same submit. */
typedef struct VkmhaReferenceInfo {
    VkmhaStructureType sType;           /* VKMHA_STRUCTURE_TYPE_REFERENCE_INFO */
    const void* pNext;                  /* NULL */
    const VkmhaModelCreateInfo* pModel; /* required: the layer exactly as createModel takes it (weights, chained
                                           VkmhaModelAttentionInfo); memoryBudget, precision and a chained
                                           VkmhaModelUploadInfo do not change the result */
    const VkmhaHostSubmitInfo* pSubmit; /* the inputs as submit takes them (masks, flags, chained structs) ... */
    const VkmhaHostQkvSubmitInfo* pQkv; /* ... or as submitQkv takes them (any model): exactly one of the two */
    float* pOutput;                     /* required: [batch, queryLength, embedDim] floats (pSubmit) or
                                           [batch, numHeads, queryLength, headDim] (pQkv) */
    size_t outputCount;                 /* floats pOutput holds: at least the output's count */
    float* pWeights;                    /* NULL, or with NEED_WEIGHTS the weights as readOutputs returns them:
                                           [batch, queryLength, keyLength] (head mean) or [batch, numHeads, ...] */
    size_t weightsCount;                /* floats pWeights holds: at least the weights' count */
} VkmhaReferenceInfo;

/* ---- 1.3: head mask -------------------------------------------------------------------------------------------
 * Hugging Face's head_mask: a factor per query head that multiplies the head's attention probabilities, so its
 * output P·V (and, with NEED_WEIGHTS, its weights) before the output projection; 1 keeps a head, 0 prunes it. A head
 * whose factor is 0 costs nothing in the fused kernel: its rows compute no scores (with GQA, the rows of a key/value
 * head are skipped when all its query heads in them are 0). Chained on the pNext of any record or submit info, as
 * VkmhaPositionsInfo:
 *   recordAttention / submit / recordAttentionQkv / submitQkv: [numHeads] factors for every batch item, or
 *     [batch, numHeads];
 *   recordCachedAttention / submitCached and their Qkv forms: [numHeads] factors for every new token;
 *   recordPrefill: [numHeads], the same factors (or none) on every call of a job: the first call fixes them and a
 *     later call with others is refused.
 * The factors are read during the call only (written into the frame slot's host-visible records, as the cached
 * steps' records are), so a record holds the mask it was recorded with. Any finite factor is taken; a wrong count or
 * a non-finite factor is VKMHA_ERROR_INVALID_ARGUMENT naming it. Without the struct, or with factorCount 0, every
 * head counts fully, as in 1.2. */
typedef struct VkmhaHeadMaskInfo {
    VkmhaStructureType sType; /* VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO */
    const void* pNext;        /* the rest of the chain (NULL at its end) */
    uint32_t factorCount;     /* 0 (no mask), numHeads, or (plain records and submits) batch * numHeads */
    const float* pFactors;    /* factorCount floats, [numHeads] or [batch, numHeads]; required when factorCount > 0 */
} VkmhaHeadMaskInfo;

typedef struct VkmhaStageTiming {
    VkmhaStage stage;
    float milliseconds; /* GPU time summed over the stage's dispatches */
} VkmhaStageTiming;

typedef struct VkmhaProcTable {
    uint32_t apiVersion; /* the version the library filled the table for */
    /* 1.0 */
    const char*(VKMHA_CALL* getLastError)(void);
    VkmhaResult(VKMHA_CALL* getDeviceRequirements)(VkmhaDeviceRequirements* pRequirements);
    /* Names of the Vulkan devices own mode can pick, by index. *pCount in: capacity of ppNames' array; out: count. */
    VkmhaResult(VKMHA_CALL* enumerateDevices)(uint32_t* pCount, char (*pNames)[256]);
    VkmhaResult(VKMHA_CALL* createContext)(const VkmhaContextCreateInfo* pCreateInfo, VkmhaContext* pContext);
    void(VKMHA_CALL* destroyContext)(VkmhaContext context);
    VkmhaResult(VKMHA_CALL* getContextProperties)(VkmhaContext context, VkmhaContextProperties* pProperties);
    /* Two-call idiom: pData NULL returns the size in *pSize; a smaller *pSize copies that much and returns
       VKMHA_NOT_READY. */
    VkmhaResult(VKMHA_CALL* getPipelineCacheData)(VkmhaContext context, size_t* pSize, void* pData);
    /* Uploads the weights on the context's queue and waits. Since 1.3 that submission also dispatches once (with
       zero workgroups) every pipeline the model's sessions may bind, so that drivers which compile at first dispatch
       (llvmpipe) do it here and no record compiles: create models at load time. */
    VkmhaResult(VKMHA_CALL* createModel)(VkmhaContext context, const VkmhaModelCreateInfo* pCreateInfo,
                                         VkmhaModel* pModel);
    void(VKMHA_CALL* destroyModel)(VkmhaModel model);
    VkmhaResult(VKMHA_CALL* getModelProperties)(VkmhaModel model, VkmhaModelProperties* pProperties);
    VkmhaResult(VKMHA_CALL* getSessionMemoryRequirements)(VkmhaModel model, const VkmhaSessionCreateInfo* pCreateInfo,
                                                          VkDeviceSize* pBytes);
    VkmhaResult(VKMHA_CALL* createSession)(VkmhaModel model, const VkmhaSessionCreateInfo* pCreateInfo,
                                           VkmhaSession* pSession);
    void(VKMHA_CALL* destroySession)(VkmhaSession session);
    VkmhaResult(VKMHA_CALL* recordAttention)(VkmhaSession session, VkCommandBuffer commandBuffer,
                                             const VkmhaRecordInfo* pInfo);
    /* Per-stage GPU times of a recorded frame; VKMHA_NOT_READY until it has completed. *pCount in: capacity;
       out: stages written. Never blocks. A submit's frame index is its timeline value - 1. Once the frame's slot
       has been reused by a later frame, VKMHA_ERROR_OUT_OF_RANGE. VKMHA_ERROR_UNSUPPORTED without timestamps (the
       queue family has none, or 1.3: the session was created with VKMHA_SESSION_CREATE_NO_TIMESTAMPS_BIT). */
    VkmhaResult(VKMHA_CALL* getStageTimings)(VkmhaSession session, uint64_t frameIndex, uint32_t* pCount,
                                             VkmhaStageTiming* pTimings);
    /* Standalone submission (hostIo sessions): uploads, records and submits to the context's queue, and returns
       in *pTimelineValue the value the session's timeline semaphore will signal. Blocks only when every frame
       slot is in flight. */
    VkmhaResult(VKMHA_CALL* submit)(VkmhaSession session, const VkmhaHostSubmitInfo* pInfo, uint64_t* pTimelineValue);
    /* VKMHA_SUCCESS once the value is reached; VKMHA_TIMEOUT otherwise. timeoutNs 0 polls. */
    VkmhaResult(VKMHA_CALL* wait)(VkmhaSession session, uint64_t timelineValue, uint64_t timeoutNs);
    /* Copies a completed submission's outputs (either pointer may be NULL); VKMHA_NOT_READY while it runs;
       VKMHA_ERROR_OUT_OF_RANGE once its frame slot was reused by a later submit (read within framesInFlight). */
    VkmhaResult(VKMHA_CALL* readOutputs)(VkmhaSession session, uint64_t timelineValue, float* pOutput,
                                         size_t outputCount, float* pWeights, size_t weightsCount);
    const char*(VKMHA_CALL* stageName)(VkmhaStage stage);
    /* Device memory createModel would take for this create-info (reads the weights to learn the shapes). */
    VkmhaResult(VKMHA_CALL* getModelMemoryRequirements)(VkmhaContext context, const VkmhaModelCreateInfo* pCreateInfo,
                                                        VkDeviceSize* pBytes);
    /* 1.1 */
    VkmhaResult(VKMHA_CALL* getKvCacheMemoryRequirements)(VkmhaModel model, const VkmhaKvCacheCreateInfo* pCreateInfo,
                                                          VkDeviceSize* pBytes);
    VkmhaResult(VKMHA_CALL* createKvCache)(VkmhaModel model, const VkmhaKvCacheCreateInfo* pCreateInfo,
                                           VkmhaKvCache* pCache);
    /* Destroy prefill jobs on the cache first; the GPU must be done with every step that used it. */
    void(VKMHA_CALL* destroyKvCache)(VkmhaKvCache cache);
    /* Positions appended to a sequence so far (its next token's position). */
    VkmhaResult(VKMHA_CALL* getKvCacheLength)(VkmhaKvCache cache, uint32_t sequence, uint32_t* pLength);
    /* Forgets a sequence (VKMHA_ALL_SEQUENCES: every one); its next token is position 0. */
    VkmhaResult(VKMHA_CALL* resetKvCache)(VkmhaKvCache cache, uint32_t sequence);
    /* Rolls a sequence back so its next token is position `length` (<= its length). With a window, the positions
       that token sees must still be in the ring (else VKMHA_ERROR_OUT_OF_RANGE, the cache unchanged). */
    VkmhaResult(VKMHA_CALL* truncateKvCache)(VkmhaKvCache cache, uint32_t sequence, uint32_t length);
    /* Records a cached step of a ragged batch (see VkmhaCachedRecordInfo). On error nothing is recorded and no
       length changes. */
    VkmhaResult(VKMHA_CALL* recordCachedAttention)(VkmhaSession session, VkCommandBuffer commandBuffer,
                                                   const VkmhaCachedRecordInfo* pInfo);
    /* The host-pointer counterpart (hostIo sessions), as submit; readOutputs then copies [T, embedDim] floats. */
    VkmhaResult(VKMHA_CALL* submitCached)(VkmhaSession session, const VkmhaHostCachedSubmitInfo* pInfo,
                                          uint64_t* pTimelineValue);
    /* pCreateInfo->cache must have been created for `model`. Reserves the prompt's positions at once (so
       getKvCacheLength counts them); a prompt over the cache's capacity is VKMHA_ERROR_OUT_OF_RANGE. */
    VkmhaResult(VKMHA_CALL* createPrefillJob)(VkmhaModel model, const VkmhaPrefillJobCreateInfo* pCreateInfo,
                                              VkmhaPrefillJob* pJob);
    void(VKMHA_CALL* destroyPrefillJob)(VkmhaPrefillJob job);
    /* Records the job's next piece into commandBuffer (nothing once done); pStatus (optional) says what. */
    VkmhaResult(VKMHA_CALL* recordPrefill)(VkmhaSession session, VkCommandBuffer commandBuffer,
                                           const VkmhaPrefillRecordInfo* pInfo, VkmhaPrefillStatus* pStatus);
    /* 1.2: attention only (see VkmhaQkvRecordInfo). Any model; on error nothing is recorded. */
    VkmhaResult(VKMHA_CALL* recordAttentionQkv)(VkmhaSession session, VkCommandBuffer commandBuffer,
                                                const VkmhaQkvRecordInfo* pInfo);
    /* The host-pointer counterpart (hostIo sessions), as submit; readOutputs then copies O [B, H, Lq, D]. */
    VkmhaResult(VKMHA_CALL* submitQkv)(VkmhaSession session, const VkmhaHostQkvSubmitInfo* pInfo,
                                       uint64_t* pTimelineValue);
    /* A cached step on the caller's own Q, K, V (see VkmhaCachedQkvRecordInfo). On error nothing is recorded and no
       length changes. */
    VkmhaResult(VKMHA_CALL* recordCachedAttentionQkv)(VkmhaSession session, VkCommandBuffer commandBuffer,
                                                      const VkmhaCachedQkvRecordInfo* pInfo);
    /* The host-pointer counterpart (hostIo sessions); readOutputs then copies O [T, H, D]. */
    VkmhaResult(VKMHA_CALL* submitCachedQkv)(VkmhaSession session, const VkmhaHostCachedQkvSubmitInfo* pInfo,
                                             uint64_t* pTimelineValue);
    /* 1.3 */
    /* The shader statistics of every pipeline a model of pInfo's configuration would run on the context's device
       (the driver's VK_KHR_pipeline_executable_properties). Needs a compile-only context in OWN mode
       (VkmhaContextCompileOnlyInfo) on a device with that extension, else VKMHA_ERROR_UNSUPPORTED naming what is
       missing (lavapipe lacks the extension). Two-call idiom: pStatistics NULL returns the count in *pCount; a
       smaller *pCount fills that many and returns VKMHA_NOT_READY. Each element's sType must be set by the caller.
       Builds the fused-kernel pipelines anew on every call (milliseconds each with ACO). */
    VkmhaResult(VKMHA_CALL* getPipelineStatistics)(VkmhaContext context, const VkmhaPipelineStatisticsInfo* pInfo,
                                                   uint32_t* pCount, VkmhaPipelineStatistics* pStatistics);
    /* Bytes of scratch one frame slot of this session takes, from its own memory or from an arena (the figure an
       arena's bytesPerFrame must reach; a multiple of 256). A chained VkmhaSessionScratchArenaInfo is taken but
       its arena is not consulted. */
    VkmhaResult(VKMHA_CALL* getSessionScratchRequirements)(VkmhaModel model, const VkmhaSessionCreateInfo* pCreateInfo,
                                                           VkDeviceSize* pBytesPerFrame);
    /* A scratch arena that sessions of any model on this context are created against (see
       VkmhaScratchArenaCreateInfo); all its device memory is allocated here. */
    VkmhaResult(VKMHA_CALL* createScratchArena)(VkmhaContext context, const VkmhaScratchArenaCreateInfo* pCreateInfo,
                                                VkmhaScratchArena* pArena);
    /* Releases the caller's handle; the memory goes with the last session using it. The GPU must be done with every
       record of its sessions before the last of them is destroyed. */
    void(VKMHA_CALL* destroyScratchArena)(VkmhaScratchArena arena);
    /* Records the weight upload of a model created with VkmhaModelUploadInfo::recordUpload into commandBuffer (see
       VkmhaModelUploadInfo); VKMHA_ERROR_INVALID_ARGUMENT for any other model or once completeModelUpload was
       called. Not concurrently with any other call on the model or its sessions. */
    VkmhaResult(VKMHA_CALL* recordModelUpload)(VkmhaModel model, VkCommandBuffer commandBuffer);
    /* The recorded upload has completed on the GPU: frees the staging; the model's sessions may record from now
       on. Refused before recordModelUpload and for a model created without recordUpload. */
    VkmhaResult(VKMHA_CALL* completeModelUpload)(VkmhaModel model);
    /* Runs the layer on the CPU reference (see VkmhaReferenceInfo); thread-safe; no context needed. */
    VkmhaResult(VKMHA_CALL* referenceAttention)(const VkmhaReferenceInfo* pInfo);
    /* KV-cache state (see VkmhaKvCacheCopyInfo for the blob). Two-call idiom: pData NULL returns the blob's size in
       *pSize; otherwise *pSize must be at least that (else VKMHA_ERROR_INVALID_ARGUMENT naming both sizes) and
       receives the bytes written. Copies through a staging buffer it allocates, submits to the context's queue and
       waits (not for per-frame use): the steps that wrote the sequence must have been submitted to that queue
       before, or have completed. */
    VkmhaResult(VKMHA_CALL* readKvCacheState)(VkmhaKvCache cache, uint32_t sequence, size_t* pSize, void* pData);
    /* Replaces a sequence with a blob from readKvCacheState (its length becomes the blob's). Submits and waits, as
       readKvCacheState; the GPU must be done with the steps that read the sequence. On error the cache is
       unchanged. Refused while a prefill job fills the sequence. */
    VkmhaResult(VKMHA_CALL* writeKvCacheState)(VkmhaKvCache cache, uint32_t sequence, size_t size, const void* pData);
    /* Records a copy of one sequence onto another (see VkmhaKvCacheCopyInfo) into commandBuffer, outside a render
       pass, and sets the destination's length at once, as cached steps do: record in submission order. Its barriers:
       on entry from every earlier COMPUTE_SHADER and TRANSFER write (vkmha's steps and copies), on exit to every
       later COMPUTE_SHADER and TRANSFER access. Allocates nothing, waits on nothing. */
    VkmhaResult(VKMHA_CALL* recordKvCacheCopy)(VkCommandBuffer commandBuffer, const VkmhaKvCacheCopyInfo* pInfo);
    /* The same copy, submitted to the context's queue and waited for (as createModel). */
    VkmhaResult(VKMHA_CALL* copyKvCache)(const VkmhaKvCacheCopyInfo* pInfo);
} VkmhaProcTable;

/* The one exported function. requestedApiVersion: the header version the caller was built with
 * (VKMHA_HEADER_VERSION). Fails with VKMHA_ERROR_VERSION_NOT_SUPPORTED when the major version differs or the
 * minor is newer than the library's. tableSize: sizeof(VkmhaProcTable) as the caller knows it; the library
 * fills at most that many bytes (a caller built against the 1.1 header gets the 1.1 table: everything up to
 * recordPrefill). */
VKMHA_EXPORT VkmhaResult VKMHA_CALL vkmhaGetProcTable(uint32_t requestedApiVersion, VkmhaProcTable* pTable,
                                                      size_t tableSize);
typedef VkmhaResult(VKMHA_CALL* PFN_vkmhaGetProcTable)(uint32_t requestedApiVersion, VkmhaProcTable* pTable,
                                                       size_t tableSize);

#ifdef __cplusplus
}
#endif

#endif /* VKMHA_H_ */
