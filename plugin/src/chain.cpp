// pNext chains: the walk that takes the structs a call accepts and refuses any other by name.
#include "chain.h"

#include <cstring>
#include <string>
#include <tuple>

namespace vkmha::plugin {

const char* structure_name(uint32_t type) {
    switch (type) {
    case VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO: return "VkmhaContextCreateInfo";
    case VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO: return "VkmhaOwnDeviceInfo";
    case VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO: return "VkmhaAdoptDeviceInfo";
    case VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO: return "VkmhaModelCreateInfo";
    case VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO: return "VkmhaSessionCreateInfo";
    case VKMHA_STRUCTURE_TYPE_RECORD_INFO: return "VkmhaRecordInfo";
    case VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO: return "VkmhaHostSubmitInfo";
    case VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES: return "VkmhaContextProperties";
    case VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO: return "VkmhaKvCacheCreateInfo";
    case VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO: return "VkmhaCachedRecordInfo";
    case VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO: return "VkmhaHostCachedSubmitInfo";
    case VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO: return "VkmhaPrefillJobCreateInfo";
    case VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO: return "VkmhaPrefillRecordInfo";
    case VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO: return "VkmhaModelAttentionInfo";
    case VKMHA_STRUCTURE_TYPE_POSITIONS_INFO: return "VkmhaPositionsInfo";
    case VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO: return "VkmhaQkvRecordInfo";
    case VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO: return "VkmhaHostQkvSubmitInfo";
    case VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO: return "VkmhaCachedQkvRecordInfo";
    case VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO: return "VkmhaHostCachedQkvSubmitInfo";
    case VKMHA_STRUCTURE_TYPE_CONTEXT_COMPILE_ONLY_INFO: return "VkmhaContextCompileOnlyInfo";
    case VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS_INFO: return "VkmhaPipelineStatisticsInfo";
    case VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS: return "VkmhaPipelineStatistics";
    case VKMHA_STRUCTURE_TYPE_SCRATCH_ARENA_CREATE_INFO: return "VkmhaScratchArenaCreateInfo";
    case VKMHA_STRUCTURE_TYPE_SESSION_SCRATCH_ARENA_INFO: return "VkmhaSessionScratchArenaInfo";
    case VKMHA_STRUCTURE_TYPE_MODEL_UPLOAD_INFO: return "VkmhaModelUploadInfo";
    case VKMHA_STRUCTURE_TYPE_REFERENCE_INFO: return "VkmhaReferenceInfo";
    case VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO: return "VkmhaHeadMaskInfo";
    default: return nullptr;
    }
}

uint32_t raw_structure_type(const void* header) {
    uint32_t type = 0;
    std::memcpy(&type, header, sizeof type);
    return type;
}

namespace {

// What every chained struct starts with (sType read through raw_structure_type).
struct ChainHeader {
    uint32_t sType;
    const void* pNext;
};

// A longer chain is a cycle or garbage, not a real caller's.
constexpr size_t kMaxChainLength = 64;

std::string structure_text(uint32_t type) {
    const char* name = structure_name(type);
    return "sType " + std::to_string(type) + (name ? std::string(" (") + name + ")" : std::string());
}

} // namespace

Status walk_chain(const void* next, const char* owner, std::span<const ChainTarget> slots) {
    for (const ChainTarget& slot : slots) *slot.found = nullptr;
    for (size_t length = 0; next; ++length) {
        if (length == kMaxChainLength)
            return make_error(ErrorCode::invalid_argument, std::string(owner) + "::pNext chain is longer than " +
                                                               std::to_string(kMaxChainLength) + " structs (a cycle?)");
        const uint32_t type = raw_structure_type(next);
        const ChainTarget* slot = nullptr;
        for (const ChainTarget& s : slots)
            if (uint32_t(s.type) == type) slot = &s;
        if (!slot) {
            std::string takes = slots.empty() ? " (its pNext must be NULL)" : "; it takes ";
            for (size_t i = 0; i < slots.size(); ++i)
                takes += (i ? ", " : "") + std::string(structure_name(slots[i].type));
            return make_error(ErrorCode::invalid_argument, std::string(owner) + "::pNext chain holds " +
                                                               structure_text(type) + ", which " + owner +
                                                               " does not take" + takes);
        }
        if (*slot->found)
            return make_error(ErrorCode::invalid_argument,
                              std::string(structure_name(slot->type)) + " is chained twice on " + owner);
        *slot->found = next;
        next = static_cast<const ChainHeader*>(next)->pNext;
    }
    return {};
}

Status no_chain(const void* next, const char* owner) { return walk_chain(next, owner, {}); }

namespace {

// What every record and submit info's chain may hold: positions (1.2) and a head mask (1.3).
struct RecordChain {
    const void* positions = nullptr;
    const void* head_mask = nullptr;
};
Result<RecordChain> walk_record_chain(const void* next, const char* owner) {
    RecordChain chain;
    const ChainTarget slots[] = {{VKMHA_STRUCTURE_TYPE_POSITIONS_INFO, &chain.positions},
                                 {VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO, &chain.head_mask}};
    VKMHA_TRY(walk_chain(next, owner, slots));
    return chain;
}

// The VkmhaPositionsInfo on `owner`'s chain, or nullptr.
Result<const VkmhaPositionsInfo*> positions_in_chain(const void* next, const char* owner) {
    auto chain = walk_record_chain(next, owner);
    if (!chain) return chain.take_error();
    return static_cast<const VkmhaPositionsInfo*>(chain->positions);
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

} // namespace

Result<const VkmhaPositionsInfo*> record_positions(const void* next, const char* owner, bool keys) {
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

Result<HostPositions> host_positions(const void* next, const char* owner, bool keys) {
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

Result<std::span<const float>> head_mask_factors(const void* next, const char* owner) {
    auto chain = walk_record_chain(next, owner);
    if (!chain) return chain.take_error();
    if (!chain->head_mask) return std::span<const float>{};
    const auto& info = *static_cast<const VkmhaHeadMaskInfo*>(chain->head_mask);
    if (info.factorCount > 0 && info.pFactors == nullptr)
        return make_error(ErrorCode::invalid_argument, "VkmhaHeadMaskInfo::pFactors is NULL with factorCount " +
                                                           std::to_string(info.factorCount) + " on " + owner +
                                                           "'s chain");
    return std::span<const float>(info.pFactors, info.factorCount);
}

} // namespace vkmha::plugin
