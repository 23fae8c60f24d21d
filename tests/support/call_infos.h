// The C ABI's create, submit and record infos as the plugin suites fill them: a session sized for a shape, and the
// host submit or engine record of a RunInputs (its shape, flags and mask types; the engine binds its own buffers).
#pragma once

#include "vkmha/vkmha.h"

#include <cstdint>

namespace vkmha::test {

struct RunInputs;

// hostIo sessions stage weights and per-head masks (VKMHA_SESSION_CREATE_HOST_*_BIT): these suites read both.
// Engine-recorded sessions ask for the score scratch (SCORE_SCRATCH_BIT): these suites record weights on them.
VkmhaSessionCreateInfo session_info(uint32_t batch, uint32_t lq, uint32_t lk, bool host_io, uint32_t frames = 0);

// Points at `in`'s vectors, which must outlive the submit.
VkmhaHostSubmitInfo host_submit_info(const RunInputs& in);

// Frame `frame` with `completed` finished; every binding left empty for the caller to fill.
VkmhaRecordInfo record_info(uint64_t frame, uint64_t completed, const RunInputs& in);

} // namespace vkmha::test
