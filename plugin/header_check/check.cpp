// Compiles vkmha.h as strict C++17 (built with -Wall -Wextra -Werror -pedantic).
#include <vkmha/vkmha.h>

int vkmha_header_check_cxx();
int vkmha_header_check_cxx() {
    VkmhaRecordInfo info{};
    info.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
    return static_cast<int>(info.sType) + static_cast<int>(sizeof(VkmhaProcTable));
}
