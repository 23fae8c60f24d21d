// Compiles vkmha.h as strict C++17 (built with -Wall -Wextra -Werror -pedantic).
#include <vkmha/vkmha.h>

int vkmha_header_check_cxx();
int vkmha_header_check_cxx() {
    VkmhaRecordInfo info{};
    info.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
    VkmhaModelAttentionInfo attention{};
    attention.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
    VkmhaPositionsInfo positions{};
    positions.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
    info.pNext = &positions;
    attention.attentionOnly = VK_TRUE;
    VkmhaQkvRecordInfo qkv{};
    qkv.sType = VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO;
    qkv.pNext = &positions;
    qkv.outputLayout = VkmhaTensorLayout{0, 8, 32};
    VkmhaCachedQkvRecordInfo cached{};
    cached.sType = VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO;
    return static_cast<int>(info.sType) + static_cast<int>(sizeof(VkmhaProcTable)) + static_cast<int>(attention.sType) +
           static_cast<int>(sizeof positions) + static_cast<int>(qkv.sType) + static_cast<int>(cached.sType) +
           static_cast<int>(qkv.outputLayout.rowStride + attention.attentionOnly) +
           static_cast<int>(sizeof(VkmhaHostQkvSubmitInfo) + sizeof(VkmhaHostCachedQkvSubmitInfo));
}
