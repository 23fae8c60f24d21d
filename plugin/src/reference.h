// 1.3: referenceAttention's work once the call's structs are checked: the host submit's inputs handed to the CPU
// reference (host/cpu_reference.h) and its results copied out.
#pragma once

#include "chain.h"
#include "cpu_reference.h"
#include "io/weight_map.h"
#include "result.h"
#include "vkmha/vkmha.h"

namespace vkmha::plugin {

// Runs `model` on info.pSubmit's (or info.pQkv's) inputs with `options` (their flags and mask types) and `positions`
// (their VkmhaPositionsInfo) and `head_mask` (their VkmhaHeadMaskInfo's factors, [H] or [B, H]; empty: none), and
// writes info.pOutput (and info.pWeights). Refuses missing pointers and too small counts by name before any arithmetic.
Status run_reference(const io::LoadedModel& model, const VkmhaReferenceInfo& info, const AttentionOptions& options,
                     const HostPositions& positions, std::span<const float> head_mask);

} // namespace vkmha::plugin
