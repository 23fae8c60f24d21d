// The enums the C header mirrors from host/, converted in one place. Each pair must agree value for value, since a
// conversion is a cast: the static_asserts below stop the build the day one side gains, loses or moves a value.
#pragma once

#include "attention_config.h"
#include "attention_plan.h"
#include "result.h"
#include "vulkan/device.h"

#include "vkmha/vkmha.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <type_traits>

namespace vkmha::plugin {

// A caller's enum field as the 32 bits C wrote. C lets a caller store any value there; C++ loading one past the
// enumerators' range (e.g. 0xC6C6C6C6) as the enum is undefined behaviour (UBSan: "load of value ..., which is not
// a valid value for type ...", found by fuzz/). Every enum field a caller writes is read through this until checked.
template <typename E> uint32_t raw_enum(const E& field) {
    static_assert(std::is_enum_v<E> && sizeof(E) == sizeof(uint32_t));
    uint32_t bits = 0;
    std::memcpy(&bits, &field, sizeof bits);
    return bits;
}

template <typename Host, typename C> constexpr bool same_value(Host host, C c) {
    return static_cast<int64_t>(host) == static_cast<int64_t>(c);
}

// Stage <-> VkmhaStage (timings, stageName).
static_assert(same_value(Stage::q_proj, VKMHA_STAGE_Q_PROJ) && same_value(Stage::k_proj, VKMHA_STAGE_K_PROJ) &&
              same_value(Stage::v_proj, VKMHA_STAGE_V_PROJ) && same_value(Stage::scores, VKMHA_STAGE_SCORES) &&
              same_value(Stage::softmax, VKMHA_STAGE_SOFTMAX) && same_value(Stage::apply, VKMHA_STAGE_APPLY) &&
              same_value(Stage::average_weights, VKMHA_STAGE_AVERAGE_WEIGHTS) &&
              same_value(Stage::out_proj, VKMHA_STAGE_OUT_PROJ) &&
              same_value(Stage::attention, VKMHA_STAGE_ATTENTION) && same_value(Stage::combine, VKMHA_STAGE_COMBINE) &&
              same_value(Stage::qkv_proj, VKMHA_STAGE_QKV_PROJ) && same_value(Stage::rope, VKMHA_STAGE_ROPE) &&
              same_value(Stage::copy, VKMHA_STAGE_COPY));
static_assert(kStageCount == VKMHA_STAGE_COPY + 1, "a new Stage needs its VKMHA_STAGE_* value in vkmha.h");
constexpr VkmhaStage to_c(Stage s) { return static_cast<VkmhaStage>(s); }

// PrefillPhase -> VkmhaPrefillPhase (VkmhaPrefillStatus::phase); VKMHA_PREFILL_PHASE_NONE is the C side's own.
static_assert(same_value(PrefillPhase::project, VKMHA_PREFILL_PHASE_PROJECT) &&
              same_value(PrefillPhase::attend, VKMHA_PREFILL_PHASE_ATTEND) &&
              same_value(PrefillPhase::finish, VKMHA_PREFILL_PHASE_FINISH) &&
              same_value(PrefillPhase::out_proj, VKMHA_PREFILL_PHASE_OUT_PROJ));
constexpr VkmhaPrefillPhase to_c(PrefillPhase p) { return static_cast<VkmhaPrefillPhase>(p); }

// LogLevel -> VkmhaLogLevel (the log callback).
static_assert(same_value(LogLevel::debug, VKMHA_LOG_LEVEL_DEBUG) && same_value(LogLevel::info, VKMHA_LOG_LEVEL_INFO) &&
              same_value(LogLevel::warning, VKMHA_LOG_LEVEL_WARNING) &&
              same_value(LogLevel::error, VKMHA_LOG_LEVEL_ERROR));
constexpr VkmhaLogLevel to_c(LogLevel l) { return static_cast<VkmhaLogLevel>(l); }

// Precision <-> VkmhaPrecision (create-info, properties). Callers check the C value is known before converting.
static_assert(same_value(Precision::fp32, VKMHA_PRECISION_FP32) && same_value(Precision::fp16, VKMHA_PRECISION_FP16));
constexpr VkmhaPrecision to_c(Precision p) { return static_cast<VkmhaPrecision>(p); }
constexpr Precision to_host(VkmhaPrecision p) { return static_cast<Precision>(p); }

// MaskKind <- VkmhaMaskType (record and submit infos).
static_assert(same_value(MaskKind::none, VKMHA_MASK_TYPE_NONE) && same_value(MaskKind::boolean, VKMHA_MASK_TYPE_BOOL) &&
              same_value(MaskKind::additive, VKMHA_MASK_TYPE_ADDITIVE));
constexpr MaskKind to_host(VkmhaMaskType m) { return static_cast<MaskKind>(m); }

// RopeLayout, RopeScaling <- VkmhaRopeLayout, VkmhaRopeScaling (VkmhaModelAttentionInfo).
static_assert(same_value(RopeLayout::none, VKMHA_ROPE_LAYOUT_NONE) &&
              same_value(RopeLayout::neox, VKMHA_ROPE_LAYOUT_NEOX) &&
              same_value(RopeLayout::gptj, VKMHA_ROPE_LAYOUT_GPTJ));
static_assert(same_value(RopeScaling::none, VKMHA_ROPE_SCALING_NONE) &&
              same_value(RopeScaling::linear, VKMHA_ROPE_SCALING_LINEAR) &&
              same_value(RopeScaling::llama3, VKMHA_ROPE_SCALING_LLAMA3) &&
              same_value(RopeScaling::yarn, VKMHA_ROPE_SCALING_YARN));
constexpr RopeLayout to_host(VkmhaRopeLayout l) { return static_cast<RopeLayout>(l); }
constexpr RopeScaling to_host(VkmhaRopeScaling s) { return static_cast<RopeScaling>(s); }

// ErrorCode -> VkmhaResult is a mapping, not a cast: one row per ErrorCode, in the enum's order, so a code added to
// result.h without a row (or a row out of place) fails here instead of reaching a caller as VKMHA_ERROR_INTERNAL.
struct ResultOfError {
    ErrorCode code;
    VkmhaResult result;
};
inline constexpr ResultOfError kResultOfError[] = {
    {ErrorCode::invalid_argument, VKMHA_ERROR_INVALID_ARGUMENT},
    {ErrorCode::io, VKMHA_ERROR_IO},
    {ErrorCode::unsupported, VKMHA_ERROR_UNSUPPORTED},
    {ErrorCode::out_of_memory, VKMHA_ERROR_OUT_OF_MEMORY},
    {ErrorCode::budget_exceeded, VKMHA_ERROR_BUDGET_EXCEEDED},
    {ErrorCode::out_of_range, VKMHA_ERROR_OUT_OF_RANGE},
    {ErrorCode::frame_in_flight, VKMHA_ERROR_FRAME_IN_FLIGHT},
    {ErrorCode::vulkan, VKMHA_ERROR_VULKAN},
    {ErrorCode::not_ready, VKMHA_NOT_READY},
    {ErrorCode::timeout, VKMHA_TIMEOUT},
    {ErrorCode::device_lost, VKMHA_ERROR_DEVICE_LOST},
    {ErrorCode::internal, VKMHA_ERROR_INTERNAL},
};
constexpr bool rows_in_order() {
    for (size_t i = 0; i < std::size(kResultOfError); ++i)
        if (static_cast<size_t>(kResultOfError[i].code) != i) return false;
    return true;
}
static_assert(rows_in_order(), "kResultOfError must list every ErrorCode in its order");
static_assert(std::size(kResultOfError) == static_cast<size_t>(ErrorCode::internal) + 1,
              "ErrorCode::internal must stay last, and every code needs a row");

} // namespace vkmha::plugin
