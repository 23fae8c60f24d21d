// pNext chains: the walk that takes the structs a call accepts and refuses any other by name.
#include "chain.h"

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
    default: return nullptr;
    }
}

namespace {

// What every chained struct starts with.
struct ChainHeader {
    VkmhaStructureType sType;
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
        const auto* header = static_cast<const ChainHeader*>(next);
        const ChainTarget* slot = nullptr;
        for (const ChainTarget& s : slots)
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

Status no_chain(const void* next, const char* owner) { return walk_chain(next, owner, {}); }

namespace {

// The VkmhaPositionsInfo on `owner`'s chain, or nullptr.
Result<const VkmhaPositionsInfo*> positions_in_chain(const void* next, const char* owner) {
    const void* found = nullptr;
    const ChainTarget slots[] = {{VKMHA_STRUCTURE_TYPE_POSITIONS_INFO, &found}};
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

} // namespace vkmha::plugin
