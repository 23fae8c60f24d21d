// getPipelineStatistics (1.3) behind api.cpp's handle check: the C structs read and filled around the host's
// pipeline_statistics().
#pragma once

#include "context.h"
#include "vkmha/vkmha.h"

namespace vkmha::plugin {

VkmhaResult pipeline_statistics_c(const Context& context, const VkmhaPipelineStatisticsInfo* info, uint32_t* count,
                                  VkmhaPipelineStatistics* out);

} // namespace vkmha::plugin
