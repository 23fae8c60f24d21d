// The checks every entry point makes of its struct arguments, in one place: present, of their own sType (named in
// the message), and with a pNext chain the struct takes. The shims in api.cpp call these instead of repeating them.
#pragma once

#include "chain.h"
#include "result.h"
#include "vkmha/vkmha.h"

#include <cstdint>
#include <string>

namespace vkmha::plugin {

// The sType each public struct that has one must carry. Structs without sType are frozen (docs/DESIGN.md, "ABI
// rules") and have no row.
template <typename T> struct StructType;
#define VKMHA_STRUCT_TYPE(Struct, value)                                                                               \
    template <> struct StructType<Struct> {                                                                            \
        static constexpr VkmhaStructureType type = value;                                                              \
        static constexpr const char* name = #Struct;                                                                   \
    };
VKMHA_STRUCT_TYPE(VkmhaContextCreateInfo, VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO)
VKMHA_STRUCT_TYPE(VkmhaOwnDeviceInfo, VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO)
VKMHA_STRUCT_TYPE(VkmhaAdoptDeviceInfo, VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO)
VKMHA_STRUCT_TYPE(VkmhaContextProperties, VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES)
VKMHA_STRUCT_TYPE(VkmhaModelCreateInfo, VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO)
VKMHA_STRUCT_TYPE(VkmhaSessionCreateInfo, VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO)
VKMHA_STRUCT_TYPE(VkmhaRecordInfo, VKMHA_STRUCTURE_TYPE_RECORD_INFO)
VKMHA_STRUCT_TYPE(VkmhaHostSubmitInfo, VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO)
VKMHA_STRUCT_TYPE(VkmhaKvCacheCreateInfo, VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO)
VKMHA_STRUCT_TYPE(VkmhaCachedRecordInfo, VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO)
VKMHA_STRUCT_TYPE(VkmhaHostCachedSubmitInfo, VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO)
VKMHA_STRUCT_TYPE(VkmhaPrefillJobCreateInfo, VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO)
VKMHA_STRUCT_TYPE(VkmhaPrefillRecordInfo, VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO)
VKMHA_STRUCT_TYPE(VkmhaQkvRecordInfo, VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO)
VKMHA_STRUCT_TYPE(VkmhaHostQkvSubmitInfo, VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO)
VKMHA_STRUCT_TYPE(VkmhaCachedQkvRecordInfo, VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO)
VKMHA_STRUCT_TYPE(VkmhaHostCachedQkvSubmitInfo, VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO)
VKMHA_STRUCT_TYPE(VkmhaKvCacheCopyInfo, VKMHA_STRUCTURE_TYPE_KV_CACHE_COPY_INFO) // 1.3
VKMHA_STRUCT_TYPE(VkmhaContextCompileOnlyInfo, VKMHA_STRUCTURE_TYPE_CONTEXT_COMPILE_ONLY_INFO)
VKMHA_STRUCT_TYPE(VkmhaPipelineStatisticsInfo, VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS_INFO)
VKMHA_STRUCT_TYPE(VkmhaPipelineStatistics, VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS)
VKMHA_STRUCT_TYPE(VkmhaScratchArenaCreateInfo, VKMHA_STRUCTURE_TYPE_SCRATCH_ARENA_CREATE_INFO)
VKMHA_STRUCT_TYPE(VkmhaSessionScratchArenaInfo, VKMHA_STRUCTURE_TYPE_SESSION_SCRATCH_ARENA_INFO)
VKMHA_STRUCT_TYPE(VkmhaReferenceInfo, VKMHA_STRUCTURE_TYPE_REFERENCE_INFO)
VKMHA_STRUCT_TYPE(VkmhaHeadMaskInfo, VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO) /* 1.3 */
#undef VKMHA_STRUCT_TYPE

inline Error argument_error(std::string message) { return make_error(ErrorCode::invalid_argument, std::move(message)); }

// `param` (the parameter's name in the header, e.g. "pInfo") is present and carries T's sType.
template <typename T> Status check_struct(const T* s, const char* param) {
    if (!s) return argument_error(std::string(param) + " is NULL");
    const uint32_t type = raw_structure_type(s); // any 32 bits a C caller wrote, not only the enum's values
    if (type == uint32_t(StructType<T>::type)) return {};
    return argument_error(std::string(param) + "->sType is " + std::to_string(type) + ", expected " +
                          std::to_string(StructType<T>::type) + " for a " + StructType<T>::name);
}

// The same, for a struct whose pNext the header documents as NULL.
template <typename T> Status check_unchained(const T* s, const char* param) {
    VKMHA_TRY(check_struct(s, param));
    return no_chain(s->pNext, StructType<T>::name);
}

// A session whose model's recorded upload (VkmhaModelUploadInfo) is not completed must not read its weights (api.cpp).
Status check_model_uploaded(VkmhaSession session);

// What every record call checks first: the session, its model's weights and its pInfo.
template <typename T> Status check_record_call(VkmhaSession session, const T* info) {
    if (!session) return argument_error("session is NULL");
    VKMHA_TRY(check_model_uploaded(session));
    return check_struct(info, "pInfo");
}

// What every submit call checks first: where the timeline value goes, the session and its pInfo.
template <typename T> Status check_submit_call(VkmhaSession session, const T* info, const uint64_t* value) {
    if (!value) return argument_error("pTimelineValue is NULL");
    return check_record_call(session, info);
}

} // namespace vkmha::plugin
