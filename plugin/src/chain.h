// pNext chains (1.2): each input struct's pNext takes the extension structs its header comment lists, each at most
// once; anything else, and anything at all on a struct whose pNext must be NULL, is refused naming the struct.
#pragma once

#include "result.h"
#include "vkmha/vkmha.h"

#include <cstdint>
#include <span>

namespace vkmha::plugin {

// The struct a VkmhaStructureType value belongs to, or nullptr for a value the header does not define.
const char* structure_name(uint32_t type);

// The sType at the start of a caller's struct, as the 32 bits C wrote. Read as the enum, a value past the
// enumerators' range (e.g. 0xC6C6C6C6, which C allows) is undefined behaviour in C++ (found by fuzz/).
uint32_t raw_structure_type(const void* header);

// One struct a chain may hold, and where the walk leaves it (nullptr when absent).
struct ChainTarget {
    VkmhaStructureType type;
    const void** found;
};

// Walks `owner`'s pNext chain into `slots`; a struct `owner` does not take, or one chained twice, is refused by name.
Status walk_chain(const void* next, const char* owner, std::span<const ChainTarget> slots);

// A struct whose pNext the header documents as NULL: any chained struct is refused, naming `owner`.
Status no_chain(const void* next, const char* owner);

// Record calls read positions from a buffer, submit calls from host memory: the other fields must stay unset.
// `keys`: the call reads key positions too. nullptr when the chain holds no VkmhaPositionsInfo.
Result<const VkmhaPositionsInfo*> record_positions(const void* next, const char* owner, bool keys = false);

// A submit call's positions in host memory: the queries' (or new tokens') and, with `keys`, the keys'.
struct HostPositions {
    const int32_t* queries = nullptr;
    const int32_t* keys = nullptr;
};
Result<HostPositions> host_positions(const void* next, const char* owner, bool keys = false);

// 1.3: the head mask's factors on a record or submit info's chain (empty when it holds no VkmhaHeadMaskInfo, or
// factorCount is 0); a count without pFactors is refused. The count against the heads is the session's to check.
Result<std::span<const float>> head_mask_factors(const void* next, const char* owner);

} // namespace vkmha::plugin
