/* Compiles vkmha.h as strict C99 (built with -Wall -Wextra -Werror -pedantic). */
#include <vkmha/vkmha.h>

int vkmha_header_check_c(void);
int vkmha_header_check_c(void) {
    VkmhaProcTable table;
    VkmhaRecordInfo info;
    (void)table;
    info.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
    return (int)info.sType + (int)sizeof(VkmhaContextCreateInfo);
}
