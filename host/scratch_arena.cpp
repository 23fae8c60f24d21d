// ScratchArena: one device-local buffer per frame slot, and the frame each slot last served.
#include "scratch_arena.h"

#include <string>

namespace vkmha {
namespace {

Status check_limits(const ScratchArenaLimits& l) {
    if (l.bytes_per_frame == 0) return make_error(ErrorCode::invalid_argument, "scratch arena bytesPerFrame is 0");
    if (l.bytes_per_frame > (VkDeviceSize(1) << 62))
        return make_error(ErrorCode::invalid_argument,
                          "scratch arena bytesPerFrame " + std::to_string(l.bytes_per_frame) + " is over 2^62");
    if (l.frames_in_flight == 0 || l.frames_in_flight > 8)
        return make_error(ErrorCode::invalid_argument,
                          "scratch arena framesInFlight " + std::to_string(l.frames_in_flight) + " is outside 1..8");
    return {};
}

std::vector<BufferRequest> requests(const ScratchArenaLimits& l) {
    std::vector<BufferRequest> reqs;
    for (uint32_t f = 0; f < l.frames_in_flight; ++f)
        reqs.push_back({"vkmha scratch arena [frame slot " + std::to_string(f) + "]", align_scratch(l.bytes_per_frame),
                        MemoryKind::device_local});
    return reqs;
}

} // namespace

Result<VkDeviceSize> ScratchArena::memory_required(const Context& ctx, const ScratchArenaLimits& l) {
    VKMHA_TRY(check_limits(l));
    return Arena::measure(ctx.device(), requests(l));
}

Result<std::shared_ptr<ScratchArena>> ScratchArena::create(const Context& ctx, const ScratchArenaLimits& l) {
    VKMHA_TRY(check_limits(l));
    const auto reqs = requests(l);
    if (l.memory_budget) {
        auto need = Arena::measure(ctx.device(), reqs);
        if (!need) return need.take_error();
        if (need.value() > l.memory_budget)
            return make_error(ErrorCode::budget_exceeded, "scratch arena needs " + std::to_string(need.value()) +
                                                              " bytes of device memory, over the budget of " +
                                                              std::to_string(l.memory_budget));
    }
    auto arena = Arena::create(ctx.device(), reqs);
    if (!arena) return arena.take_error();
    std::shared_ptr<ScratchArena> a(new ScratchArena());
    a->m_ctx = &ctx;
    a->m_limits = l;
    a->m_limits.bytes_per_frame = align_scratch(l.bytes_per_frame);
    a->m_arena = std::move(arena.value());
    a->m_slot_frame.assign(l.frames_in_flight, kNoFrame);
    return a;
}

Status ScratchArena::check_claim(uint64_t frame, uint64_t completed_frame) const {
    const uint32_t slot = static_cast<uint32_t>(frame % m_limits.frames_in_flight);
    const uint64_t held = m_slot_frame[slot];
    if (held == kNoFrame || held == frame || (completed_frame != kNoFrame && completed_frame >= held)) return {};
    return make_error(ErrorCode::frame_in_flight,
                      "frame " + std::to_string(frame) + " needs the scratch arena's frame slot " +
                          std::to_string(slot) + ", still in flight with frame " + std::to_string(held) +
                          " of a session sharing the arena (completed frame: " +
                          (completed_frame == kNoFrame ? std::string("none") : std::to_string(completed_frame)) +
                          "): record every session of an arena with the same frame indices");
}

void ScratchArena::mark_recorded(uint64_t frame) { m_slot_frame[frame % m_limits.frames_in_flight] = frame; }

} // namespace vkmha
