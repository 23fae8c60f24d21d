// shader_stats.h: vkmha-bench --shader-stats, the compiled code of every pipeline vkmha would run for the bench's
// model configurations on a device (registers, spills, shared memory, scratch, occupancy, ACO's estimates), read
// through getPipelineStatistics on a compile-only context: it works on devices that cannot run anything, such as
// RADV's null hardware (RADV_FORCE_FAMILY=gfx1100 vkmha-bench --shader-stats --device gfx1100).
#pragma once

#include "options.h"

namespace bench {

// Prints the table (and writes o.json_path when --json was given); returns the exit code: 0, also when the device
// reports no statistics (it says so: lavapipe lacks VK_KHR_pipeline_executable_properties).
int run_shader_stats(const Options& o);

} // namespace bench
