/* Compiles vkmha.h as strict C99 (built with -Wall -Wextra -Werror -pedantic). */
#include <vkmha/vkmha.h>

int vkmha_header_check_c(void);
int vkmha_header_check_c(void) {
    VkmhaProcTable table;
    VkmhaRecordInfo info;
    VkmhaCachedRecordInfo cached;
    VkmhaPrefillStatus status;
    (void)table;
    info.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
    cached.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
    status.phase = VKMHA_PREFILL_PHASE_NONE;
    return (int)info.sType + (int)cached.sType + (int)status.phase + (int)sizeof(VkmhaContextCreateInfo) +
           (int)sizeof(VkmhaKvCacheCreateInfo) + (int)sizeof(VkmhaSequenceStep) +
           (int)sizeof(VkmhaHostCachedSubmitInfo) + (int)sizeof(VkmhaPrefillJobCreateInfo) +
           (int)sizeof(VkmhaPrefillRecordInfo) + (int)(VKMHA_ALL_SEQUENCES == 0xFFFFFFFFu);
}
