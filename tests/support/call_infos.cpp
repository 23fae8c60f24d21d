// The C ABI's session, submit and record infos filled from a RunInputs; see call_infos.h.
#include "support/call_infos.h"

#include "support/run_inputs.h"

namespace vkmha::test {

VkmhaHostSubmitInfo host_submit_info(const RunInputs& in) {
    VkmhaHostSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
    hi.batch = in.shape.batch;
    hi.queryLength = in.shape.lq;
    hi.keyLength = in.shape.lk;
    hi.flags = flags_of(in.options);
    hi.keyPaddingMaskType = static_cast<VkmhaMaskType>(in.options.key_padding);
    hi.attnMaskType = static_cast<VkmhaMaskType>(in.options.attn_mask);
    hi.pQuery = in.query.data();
    hi.pKey = in.key.empty() ? nullptr : in.key.data();
    hi.pValue = in.value.empty() ? nullptr : in.value.data();
    hi.pKeyPaddingMask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    hi.pAttnMask = in.options.attn_mask == MaskKind::boolean    ? static_cast<const void*>(in.mask_bytes.data())
                   : in.options.attn_mask == MaskKind::additive ? static_cast<const void*>(in.mask_floats.data())
                                                                : nullptr;
    return hi;
}

VkmhaSessionCreateInfo session_info(uint32_t batch, uint32_t lq, uint32_t lk, bool host_io, uint32_t frames) {
    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = batch;
    si.maxQueryLength = lq;
    si.maxKeyLength = lk;
    si.framesInFlight = frames;
    si.hostIo = host_io ? VK_TRUE : VK_FALSE;
    // These tests submit weights and per-head masks through host I/O: stage both (HOST_WEIGHTS_BIT brings the score
    // scratch). Engine-recorded sessions record weights too: a 1.3 session has no score scratch unless asked.
    si.flags = host_io ? VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT | VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT
                       : VKMHA_SESSION_CREATE_SCORE_SCRATCH_BIT;
    return si;
}

VkmhaRecordInfo record_info(uint64_t frame, uint64_t completed, const RunInputs& in) {
    VkmhaRecordInfo ri{};
    ri.sType = VKMHA_STRUCTURE_TYPE_RECORD_INFO;
    ri.frameIndex = frame;
    ri.completedFrame = completed;
    ri.batch = in.shape.batch;
    ri.queryLength = in.shape.lq;
    ri.keyLength = in.shape.lk;
    ri.flags = flags_of(in.options);
    ri.keyPaddingMaskType = static_cast<VkmhaMaskType>(in.options.key_padding);
    ri.attnMaskType = static_cast<VkmhaMaskType>(in.options.attn_mask);
    return ri;
}

} // namespace vkmha::test
