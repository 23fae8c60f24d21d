// A VkmhaModelCreateInfo read into what the host takes (weights and config), for createModel and
// getModelMemoryRequirements.
#pragma once

#include "attention_config.h"
#include "io/weight_map.h"
#include "model.h"
#include "result.h"
#include "vkmha/vkmha.h"

namespace vkmha::plugin {

// The create-info and its chain checked, the weights read (which turn QK-norm and sinks on) and the chained
// VkmhaModelAttentionInfo applied.
Result<io::LoadedModel> load_model_info(const VkmhaModelCreateInfo* info);

// The model's storage precision; only for a create-info load_model_info accepted.
Precision precision_of(const VkmhaModelCreateInfo& info);

// 1.3: whether createModel submits the upload or leaves it to the engine (a chained VkmhaModelUploadInfo); only for a
// create-info load_model_info accepted.
Result<ModelUpload> upload_of(const VkmhaModelCreateInfo& info);

} // namespace vkmha::plugin
