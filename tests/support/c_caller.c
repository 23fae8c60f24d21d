// See c_caller.h. In C, converting an integer to an enum type keeps its value (the enum's compatible type here is
// unsigned int, as GCC and Clang choose for enumerators that are all non-negative).
#include "support/c_caller.h"

const char* vkmha_test_stage_name_of_bits(const VkmhaProcTable* table, uint32_t bits) {
    return table->stageName((VkmhaStage)bits);
}
