/* Compiles vkmha.h as strict C99 (built with -Wall -Wextra -Werror -pedantic). */
#include <vkmha/vkmha.h>

int vkmha_header_check_c(void);
int vkmha_header_check_c(void) {
    VkmhaProcTable table;
    VkmhaRecordInfo info;
    VkmhaCachedRecordInfo cached;
    VkmhaPrefillStatus status;
    VkmhaModelAttentionInfo attention;
    VkmhaPositionsInfo positions;
    VkmhaQkvRecordInfo qkv;
    VkmhaHostQkvSubmitInfo host_qkv;
    VkmhaCachedQkvRecordInfo cached_qkv;
    VkmhaHostCachedQkvSubmitInfo host_cached_qkv;
    (void)table;
    qkv.sType = VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO;
    qkv.qLayout.batchStride = 0;
    host_qkv.sType = VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO;
    cached_qkv.sType = VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO;
    host_cached_qkv.sType = VKMHA_STRUCTURE_TYPE_HOST_CACHED_QKV_SUBMIT_INFO;
    attention.attentionOnly = VK_TRUE;
    attention.headDim = 64;
    info.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
    cached.sType = VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO;
    status.phase = VKMHA_PREFILL_PHASE_NONE;
    attention.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
    attention.ropeLayout = VKMHA_ROPE_LAYOUT_GPTJ;
    attention.ropeScaling = VKMHA_ROPE_SCALING_YARN;
    positions.sType = VKMHA_STRUCTURE_TYPE_POSITIONS_INFO;
    return (int)info.sType + (int)cached.sType + (int)status.phase + (int)sizeof(VkmhaContextCreateInfo) +
           (int)sizeof(VkmhaKvCacheCreateInfo) + (int)sizeof(VkmhaSequenceStep) +
           (int)sizeof(VkmhaHostCachedSubmitInfo) + (int)sizeof(VkmhaPrefillJobCreateInfo) +
           (int)sizeof(VkmhaPrefillRecordInfo) + (int)(VKMHA_ALL_SEQUENCES == 0xFFFFFFFFu) + (int)attention.sType +
           (int)attention.ropeLayout + (int)attention.ropeScaling + (int)positions.sType +
           (int)(VKMHA_HEADER_VERSION == VKMHA_API_VERSION_1_2) + (int)qkv.sType + (int)qkv.qLayout.batchStride +
           (int)host_qkv.sType + (int)cached_qkv.sType + (int)host_cached_qkv.sType + (int)attention.attentionOnly +
           (int)attention.headDim;
}
