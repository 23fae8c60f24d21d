// model_flags.h: the model-option flags every tool that takes a layer shares (--rope ... --norm-eps), parsed straight
// into the VkmhaModelAttentionInfo the public API takes (vkmha-run, vkmha-heads).
#pragma once

#include "vkmha/vkmha.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace vkmha::samples {

// The model-option flags (--rope ... --norm-eps), written straight into the VkmhaModelAttentionInfo the API takes.
// Each value is checked here, so a bad one is refused before any file is read; the library checks the rest.
struct ModelFlags {
    std::string rope, rope_scaling;
    bool alibi = false;
    std::vector<const CLI::Option*> rope_only; // refused without --rope
};

void add_model_flags(CLI::App& app, VkmhaModelAttentionInfo& m, ModelFlags& flags);

// What CLI11 cannot check alone: rope-only flags without --rope (refused as `program`), and --rope-scaling's value.
void apply_model_flags(const CLI::App& app, const ModelFlags& flags, VkmhaModelAttentionInfo& m, const char* program);

} // namespace vkmha::samples
