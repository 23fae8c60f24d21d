// runner.cpp: a configuration's runs through the public API (see runner.h).
#include "runner.h"

#include <algorithm>

namespace vkmha::heads {
namespace {

std::vector<VkmhaTensor> views(const std::vector<io::Tensor>& tensors) {
    std::vector<VkmhaTensor> v;
    for (const io::Tensor& t : tensors) {
        VkmhaTensor x{};
        x.pName = t.name.c_str();
        x.dataType = VKMHA_DATA_TYPE_F32;
        x.rank = static_cast<uint32_t>(t.shape.size());
        for (size_t r = 0; r < t.shape.size(); ++r) x.shape[r] = t.shape[r];
        x.pData = t.data.data();
        v.push_back(x);
    }
    return v;
}

constexpr uint32_t kDecodeRepeats = 3;

} // namespace

LayerRunner::LayerRunner(const samples::Api& api, VkmhaContext context, const LayerSource& source, uint32_t max_batch,
                         uint32_t max_lq, uint32_t max_lk)
    : m_api(api), m_context(context) {
    const std::vector<VkmhaTensor> tensors = source.tensors ? views(*source.tensors) : std::vector<VkmhaTensor>{};
    VkmhaModelCreateInfo mi{VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO};
    mi.pNext = source.attention;
    mi.numHeads = source.heads;
    mi.numKvHeads = source.kv_heads;
    mi.pSafetensorsPath = source.tensors ? nullptr : source.path.c_str();
    mi.tensorCount = static_cast<uint32_t>(tensors.size());
    mi.pTensors = tensors.data();
    api.check(api->createModel(context, &mi, &m_model), "model (" + std::to_string(source.kv_heads) + " kv heads)");
    api.check(api->getModelProperties(m_model, &m_properties), "model properties");
    VkmhaSessionCreateInfo si{VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO};
    si.maxBatch = max_batch;
    si.maxQueryLength = max_lq;
    si.maxKeyLength = max_lk;
    si.framesInFlight = 1;
    si.hostIo = VK_TRUE;
    si.flags = VKMHA_SESSION_CREATE_FUSED_ONLY_BIT;
    api.check(api->createSession(m_model, &si, &m_session), "session");
}

LayerRunner::~LayerRunner() {
    m_api->destroySession(m_session);
    m_api->destroyModel(m_model);
}

VkmhaHostSubmitInfo LayerRunner::submit_info(const samples::InputTensors& in, bool causal) const {
    VkmhaHostSubmitInfo hi{VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO};
    hi.batch = in.batch;
    hi.queryLength = in.lq;
    hi.keyLength = in.lk;
    hi.flags = (causal ? uint32_t(VKMHA_ATTENTION_CAUSAL_BIT) : 0u) |
               (in.mask_per_head ? uint32_t(VKMHA_ATTENTION_PER_HEAD_MASK_BIT) : 0u);
    hi.keyPaddingMaskType = in.key_padding_mask.empty() ? VKMHA_MASK_TYPE_NONE : VKMHA_MASK_TYPE_BOOL;
    hi.attnMaskType = in.mask_type;
    hi.pQuery = in.query.data();
    hi.pKey = in.has_key ? in.key.data() : nullptr;
    hi.pValue = in.has_value ? in.value.data() : nullptr;
    hi.pKeyPaddingMask = in.key_padding_mask.empty() ? nullptr : in.key_padding_mask.data();
    hi.pAttnMask = in.attn_mask();
    return hi;
}

double LayerRunner::gpu_ms(VkmhaSession session, uint64_t timeline_value) const {
    VkmhaStageTiming timings[32];
    uint32_t count = 32;
    if (m_api->getStageTimings(session, timeline_value - 1, &count, timings) != VKMHA_SUCCESS) return 0;
    double ms = 0;
    for (uint32_t i = 0; i < count; ++i) ms += timings[i].milliseconds;
    return ms;
}

LayerRunner::Output LayerRunner::run(const samples::InputTensors& in, bool causal,
                                     std::span<const float> head_mask) const {
    VkmhaHostSubmitInfo hi = submit_info(in, causal);
    VkmhaHeadMaskInfo mask{VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO};
    mask.factorCount = static_cast<uint32_t>(head_mask.size());
    mask.pFactors = head_mask.data();
    if (!head_mask.empty()) hi.pNext = &mask;
    uint64_t value = 0;
    m_api.check(m_api->submit(m_session, &hi, &value), "submit");
    m_api.check(m_api->wait(m_session, value, UINT64_MAX), "wait");
    Output out;
    out.values.resize(size_t(in.batch) * in.lq * m_properties.embedDim);
    m_api.check(m_api->readOutputs(m_session, value, out.values.data(), out.values.size(), nullptr, 0), "read");
    out.gpu_ms = gpu_ms(m_session, value);
    return out;
}

std::vector<float> LayerRunner::probabilities(const samples::InputTensors& in, bool causal,
                                              uint64_t max_binding_bytes) const {
    const uint32_t H = m_properties.numHeads;
    const uint64_t row_bytes = uint64_t(in.batch) * H * in.lk * 4;
    const auto rows = static_cast<uint32_t>(std::clamp<uint64_t>(max_binding_bytes / row_bytes, 1, in.lq));
    if (rows == in.lq) return probabilities_of(in, causal);
    if (in.mask_type == VKMHA_MASK_TYPE_ADDITIVE || in.mask_per_head)
        m_api.check(VKMHA_ERROR_UNSUPPORTED, "attention weights of " + std::to_string(in.lq) +
                                                 " queries need more than one binding; in query chunks, vkmha-heads "
                                                 "takes a boolean [Lq, Lk] attn_mask only");
    // Query rows [r0, r0 + n) against the keys they may see: with the causal mask, keys [0, r0 + n + Lk - Lq), so
    // that the chunk's own bottom-right alignment puts its query i at r0 + i + Lk - Lq, as in the whole input.
    std::vector<float> probs(size_t(in.batch) * H * in.lq * in.lk, 0.0f);
    const int64_t offset = int64_t(in.lk) - int64_t(in.lq);
    const uint32_t E = m_properties.embedDim;
    const uint32_t kdim = in.has_key ? m_properties.kdim : E, vdim = m_properties.vdim;
    auto rows_of = [&](const std::vector<float>& src, uint32_t len, uint32_t width, uint32_t begin, uint32_t count) {
        std::vector<float> out;
        for (uint32_t b = 0; b < in.batch; ++b)
            out.insert(out.end(), src.begin() + std::ptrdiff_t((size_t(b) * len + begin) * width),
                       src.begin() + std::ptrdiff_t((size_t(b) * len + begin + count) * width));
        return out;
    };
    for (uint32_t r0 = 0; r0 < in.lq; r0 += rows) {
        const uint32_t n = std::min(rows, in.lq - r0);
        const auto lk = static_cast<uint32_t>(causal ? std::clamp<int64_t>(r0 + n + offset, 1, in.lk) : in.lk);
        samples::InputTensors chunk;
        chunk.batch = in.batch, chunk.lq = n, chunk.lk = lk;
        chunk.query = rows_of(in.query, in.lq, E, r0, n);
        chunk.key = rows_of(in.has_key ? in.key : in.query, in.lk, kdim, 0, lk);
        chunk.has_key = true;
        if (in.has_value) chunk.value = rows_of(in.value, in.lk, vdim, 0, lk);
        chunk.has_value = in.has_value;
        if (!in.key_padding_mask.empty())
            for (uint32_t b = 0; b < in.batch; ++b)
                chunk.key_padding_mask.insert(chunk.key_padding_mask.end(),
                                              in.key_padding_mask.begin() + std::ptrdiff_t(size_t(b) * in.lk),
                                              in.key_padding_mask.begin() + std::ptrdiff_t(size_t(b) * in.lk + lk));
        if (in.mask_type == VKMHA_MASK_TYPE_BOOL) {
            chunk.mask_type = VKMHA_MASK_TYPE_BOOL;
            for (uint32_t i = 0; i < n; ++i)
                chunk.mask_bytes.insert(chunk.mask_bytes.end(),
                                        in.mask_bytes.begin() + std::ptrdiff_t(size_t(r0 + i) * in.lk),
                                        in.mask_bytes.begin() + std::ptrdiff_t(size_t(r0 + i) * in.lk + lk));
        }
        const std::vector<float> part = probabilities_of(chunk, causal);
        for (uint32_t bh = 0; bh < in.batch * H; ++bh)
            for (uint32_t i = 0; i < n; ++i)
                std::copy_n(part.begin() + std::ptrdiff_t((size_t(bh) * n + i) * lk), lk,
                            probs.begin() + std::ptrdiff_t((size_t(bh) * in.lq + r0 + i) * in.lk));
    }
    return probs;
}

std::vector<float> LayerRunner::probabilities_of(const samples::InputTensors& in, bool causal) const {
    VkmhaSessionCreateInfo si{VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO};
    si.maxBatch = in.batch;
    si.maxQueryLength = in.lq;
    si.maxKeyLength = in.lk;
    si.framesInFlight = 1;
    si.hostIo = VK_TRUE;
    si.flags = VKMHA_SESSION_CREATE_HOST_WEIGHTS_BIT |
               (in.mask_per_head ? uint32_t(VKMHA_SESSION_CREATE_HOST_PER_HEAD_MASK_BIT) : 0u);
    VkmhaSession session = nullptr;
    m_api.check(m_api->createSession(m_model, &si, &session), "weights session");
    VkmhaHostSubmitInfo hi = submit_info(in, causal);
    hi.flags |= VKMHA_ATTENTION_NEED_WEIGHTS_BIT | VKMHA_ATTENTION_PER_HEAD_WEIGHTS_BIT;
    uint64_t value = 0;
    std::vector<float> probs(size_t(in.batch) * m_properties.numHeads * in.lq * in.lk);
    VkmhaResult r = m_api->submit(session, &hi, &value);
    if (r == VKMHA_SUCCESS) r = m_api->wait(session, value, UINT64_MAX);
    if (r == VKMHA_SUCCESS) r = m_api->readOutputs(session, value, nullptr, 0, probs.data(), probs.size());
    const std::string error = r == VKMHA_SUCCESS ? "" : m_api->getLastError();
    m_api->destroySession(session);
    m_api.check(r == VKMHA_SUCCESS ? r : VKMHA_ERROR_INVALID_ARGUMENT, "attention weights" + (": " + error));
    return probs;
}

double LayerRunner::decode_ms(uint32_t cached_keys, std::span<const float> head_mask) const {
    VkmhaKvCacheCreateInfo ci{VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO};
    ci.sequences = 1;
    ci.capacity = cached_keys;
    VkmhaKvCache cache = nullptr;
    m_api.check(m_api->createKvCache(m_model, &ci, &cache), "KV cache of " + std::to_string(cached_keys));
    VkmhaSessionCreateInfo si{VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO};
    si.maxBatch = 1;
    si.maxQueryLength = cached_keys;
    si.maxKeyLength = 1;
    si.framesInFlight = 1;
    si.hostIo = VK_TRUE;
    si.flags = VKMHA_SESSION_CREATE_FUSED_ONLY_BIT;
    VkmhaSession session = nullptr;
    m_api.check(m_api->createSession(m_model, &si, &session), "decode session");
    const uint32_t E = m_properties.embedDim;
    std::vector<float> tokens(size_t(cached_keys) * E, 0.0f);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = float(int(i % 17) - 8) / 8.0f;
    // The cache's keys, filled with every head masked: the fill's attention is skipped, only projections run.
    const std::vector<float> none(m_properties.numHeads, 0.0f);
    auto step = [&](uint32_t count, std::span<const float> mask) {
        VkmhaSequenceStep s{0, count};
        VkmhaHeadMaskInfo mi{VKMHA_STRUCTURE_TYPE_HEAD_MASK_INFO};
        mi.factorCount = static_cast<uint32_t>(mask.size());
        mi.pFactors = mask.data();
        VkmhaHostCachedSubmitInfo hi{VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO};
        hi.pNext = mask.empty() ? nullptr : &mi;
        hi.cache = cache;
        hi.stepCount = 1;
        hi.pSteps = &s;
        hi.pQuery = tokens.data();
        uint64_t value = 0;
        m_api.check(m_api->submitCached(session, &hi, &value), "cached step");
        m_api.check(m_api->wait(session, value, UINT64_MAX), "wait");
        return gpu_ms(session, value);
    };
    step(cached_keys - 1, none);
    double best = 0;
    for (uint32_t r = 0; r < kDecodeRepeats; ++r) {
        const double ms = step(1, head_mask);
        best = r == 0 ? ms : std::min(best, ms);
        m_api.check(m_api->truncateKvCache(cache, 0, cached_keys - 1), "truncate");
    }
    m_api->destroySession(session);
    m_api->destroyKvCache(cache);
    return best;
}

} // namespace vkmha::heads
