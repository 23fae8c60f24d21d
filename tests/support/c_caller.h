// Calls made as a C engine makes them. C may pass any 32 bits where the header has an enum; C++ may not even load
// such a value as the enum (undefined behaviour), so the suites hand those calls to C.
#pragma once

#include "vkmha/vkmha.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// table->stageName with `bits` as its VkmhaStage argument.
const char* vkmha_test_stage_name_of_bits(const VkmhaProcTable* table, uint32_t bits);

#ifdef __cplusplus
}
#endif
