// frame-loop --chat: KV caches in an engine frame loop. A dialogue sequence gets one token per frame (and NPC
// sequences one every few frames) through ragged cached steps, while a long prompt is prefilled in the background,
// in pieces sized to the GPU time the frame has left.
#pragma once

#include "engine.h"

namespace frame_loop {

struct ChatOptions {
    uint64_t frames = 64;    // at least this many frames; more while the prefill runs (at most kMaxFramesFactor x)
    uint32_t prefill = 1024; // prompt tokens of the background prefill
    float budget_ms = 16.6f; // the frame's GPU budget for vkmha; the prefill gets what the chat step left
    uint32_t npcs = 3;       // NPC sequences besides the dialogue
};

// Runs the chat frame loop on rt's device and model and checks the results against the CPU reference. True when
// they match; validation messages are counted in g_validation_messages.
bool run_chat(const Runtime& rt, std::mt19937& rng, const ChatOptions& options);

} // namespace frame_loop
