// The C API fuzzer's calls (see api_calls.h): each fills one vkmha call's arguments from the input.
#include "api_calls.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace vkmha::fuzz {
namespace {

// What host memory a call may read or write, in bytes, saturating instead of wrapping.
uint64_t product(std::initializer_list<uint64_t> factors) {
    uint64_t p = 1;
    for (uint64_t f : factors) {
        if (f != 0 && p > UINT64_MAX / f) return UINT64_MAX;
        p *= f;
    }
    return p;
}

VkmhaModelProperties properties_of(const VkmhaProcTable& api, VkmhaModel model) {
    VkmhaModelProperties p{};
    if (api.getModelProperties(model, &p) != VKMHA_SUCCESS) p = {};
    return p;
}

// Weight names of both schemes, the extras and one no scheme knows.
constexpr const char* kNames[] = {"q_proj.weight",  "k_proj.weight", "v_proj.weight",   "o_proj.weight", "q_proj.bias",
                                  "in_proj_weight", "in_proj_bias",  "out_proj.weight", "out_proj.bias", "sinks",
                                  "q_norm.weight",  "k_norm.weight", "q_proj_weight",   "bogus"};

} // namespace

World& World::instance() {
    static World world;
    return world;
}

World::World() {
    if (vkmhaGetProcTable(VKMHA_HEADER_VERSION, &m_api, sizeof m_api) != VKMHA_SUCCESS) {
        m_why = "vkmhaGetProcTable failed";
        return;
    }
    m_pool = static_cast<float*>(std::calloc(kPoolBytes / 4, 4));
    VkmhaContextCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
    if (!m_pool || m_api.createContext(&ci, &m_context) != VKMHA_SUCCESS) {
        m_why = m_api.getLastError();
        return;
    }
    size_t size = 0;
    if (m_api.getPipelineCacheData(m_context, &size, nullptr) == VKMHA_SUCCESS) {
        m_pipeline_cache.resize(size);
        (void)m_api.getPipelineCacheData(m_context, &size, m_pipeline_cache.data());
    }
    // A GQA layer with Llama names (E 24, H 3, G 1, D 8): weights read from the zeroed pool.
    const uint64_t shapes[4][2] = {{24, 24}, {8, 24}, {8, 24}, {24, 24}};
    VkmhaTensor tensors[4]{};
    for (int i = 0; i < 4; ++i) tensors[i] = {kNames[i], VKMHA_DATA_TYPE_F32, 2, {shapes[i][0], shapes[i][1]}, m_pool};
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.numHeads = 3;
    mi.tensorCount = 4;
    mi.pTensors = tensors;
    if (m_api.createModel(m_context, &mi, &m_model) != VKMHA_SUCCESS) m_why = m_api.getLastError();
    VkmhaModelAttentionInfo ai{};
    ai.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
    ai.headDim = 8;
    ai.attentionOnly = VK_TRUE;
    VkmhaModelCreateInfo oi{};
    oi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    oi.pNext = &ai;
    oi.numHeads = 3;
    oi.numKvHeads = 1;
    if (m_api.createModel(m_context, &oi, &m_attention_only) != VKMHA_SUCCESS) m_why = m_api.getLastError();
}

void World::call(FuzzInput& in) {
    switch (in.byte() % 14) {
    case 0: return create_model(in);
    case 1: return create_session(in);
    case 2: return create_cache(in);
    case 3: return create_job(in);
    case 4: return submit(in);
    case 5: return submit_cached(in);
    case 6: return submit_qkv(in);
    case 7: return wait_and_read(in);
    case 8: return record(in);
    case 9: return cache_calls(in);
    case 10: return queries(in);
    case 11: return proc_table(in);
    case 12: return destroy_one(in);
    default: return create_context(in);
    }
}

void World::destroy_all() {
    for (VkmhaPrefillJob j : m_jobs) m_api.destroyPrefillJob(j);
    for (VkmhaSession s : m_sessions) m_api.destroySession(s);
    for (VkmhaKvCache c : m_caches) m_api.destroyKvCache(c);
    for (VkmhaModel m : m_models) m_api.destroyModel(m);
    m_jobs.clear();
    m_sessions.clear();
    m_session_models.clear();
    m_caches.clear();
    m_cache_slots.clear();
    m_models.clear();
    m_values.clear();
}

template <typename T> T pick_handle(FuzzInput& in, const std::vector<T>& made, std::initializer_list<T> own) {
    const size_t n = made.size() + own.size() + 1;
    const size_t i = in.byte() % n;
    if (i < made.size()) return made[i];
    if (i < made.size() + own.size()) return own.begin()[i - made.size()];
    return nullptr;
}

VkmhaModel World::model(FuzzInput& in) const { return pick_handle(in, m_models, {m_model, m_model, m_attention_only}); }
VkmhaSession World::session(FuzzInput& in) const { return pick_handle<VkmhaSession>(in, m_sessions, {}); }
VkmhaKvCache World::cache(FuzzInput& in) const { return pick_handle<VkmhaKvCache>(in, m_caches, {}); }
VkmhaPrefillJob World::job(FuzzInput& in) const { return pick_handle<VkmhaPrefillJob>(in, m_jobs, {}); }

const void* World::chain(FuzzInput& in) {
    if (in.byte() < 192) return nullptr;
    // A known extension struct's sType in the wrong place, or any value; its payload zeros or the input's bytes.
    m_chained = {};
    m_chained.sType = in.flag() ? in.byte() % 24 : in.u32();
    for (uint8_t& b : m_chained.payload) b = in.byte();
    return &m_chained;
}

bool World::fits(uint64_t count, uint64_t bytes) const { return product({count, bytes}) <= kPoolBytes; }

void World::create_context(FuzzInput& in) {
    VkmhaContextCreateInfo ci{};
    set_stype(in, ci, VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO);
    ci.pNext = chain(in);
    in.enum_field(ci.deviceMode, 2);
    VkmhaOwnDeviceInfo own{};
    set_stype(in, own, VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO);
    own.deviceIndex = static_cast<int32_t>(in.pick<uint32_t>({0xFFFFFFFFu, 0, 1, 7, 0x80000000u}));
    own.pDeviceName = in.pick<const char*>({nullptr, "llvmpipe", "no such device", ""});
    if (in.flag()) ci.pOwnDevice = &own;
    // Adopt mode with NULL handles (real ones are the engine's, trusted): must be refused by name.
    VkmhaAdoptDeviceInfo adopt{};
    set_stype(in, adopt, VKMHA_STRUCTURE_TYPE_ADOPT_DEVICE_INFO);
    adopt.apiVersion = in.u32();
    adopt.enabledDeviceExtensionCount = in.byte() % 3;
    if (in.flag()) ci.pAdoptDevice = &adopt;
    ci.pPipelineCacheData = in.flag() ? m_pipeline_cache.data() : nullptr;
    ci.pipelineCacheDataSize = in.flag() ? m_pipeline_cache.size() : in.byte();
    if (ci.pPipelineCacheData == nullptr && in.flag()) ci.pipelineCacheDataSize = 0;
    if (ci.pipelineCacheDataSize > m_pipeline_cache.size() && ci.pPipelineCacheData) ci.pipelineCacheDataSize = 0;
    VkmhaContext context = nullptr;
    if (m_api.createContext(in.flag() ? &ci : nullptr, in.byte() < 250 ? &context : nullptr) == VKMHA_SUCCESS)
        m_api.destroyContext(context);
}

void World::create_model(FuzzInput& in) {
    VkmhaTensor tensors[6]{};
    const uint32_t count = in.byte() % 7;
    for (uint32_t i = 0; i < count && i < 6; ++i) {
        VkmhaTensor& t = tensors[i];
        t.pName = in.byte() < 16 ? nullptr : kNames[in.byte() % std::size(kNames)];
        in.enum_field(t.dataType, 3);
        t.rank = in.byte() % 6;
        uint64_t elements = 1;
        for (uint64_t& d : t.shape) {
            d = in.flag() ? uint64_t(in.dim()) : in.u64();
            if (&d - t.shape < std::min<uint32_t>(t.rank, 4)) elements = product({elements, d});
        }
        // Honest: pData holds the elements the shape says, or the shape is one vkmha must refuse unread.
        if (!fits(elements, 4)) t.shape[0] = 0;
        t.pData = in.byte() < 8 ? nullptr : m_pool;
    }
    VkmhaModelAttentionInfo ai{};
    set_stype(in, ai, VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO);
    ai.pNext = chain(in);
    in.enum_field(ai.ropeLayout, 3);
    ai.rotaryDims = in.dim();
    in.enum_field(ai.ropeScaling, 4);
    float* floats[] = {&ai.ropeTheta,
                       &ai.ropeScalingFactor,
                       &ai.ropeLowFreqFactor,
                       &ai.ropeHighFreqFactor,
                       &ai.ropeBetaFast,
                       &ai.ropeBetaSlow,
                       &ai.scale,
                       &ai.softcap,
                       &ai.normEps};
    for (float* f : floats) *f = in.pick<float>({0.0f, 1.0f, 4.0f, -1.0f, 1e30f, __builtin_nanf(""), 10000.0f});
    ai.ropeOriginalMaxPositions = in.dim();
    ai.alibi = in.byte() % 3;
    ai.window = in.dim();
    ai.headDim = in.pick<uint32_t>({0, 8, 80, 96, 0xFFFFFFFFu, 7});
    ai.attentionOnly = in.byte() % 3;
    VkmhaModelCreateInfo mi{};
    set_stype(in, mi, VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO);
    mi.pNext = in.flag() ? static_cast<const void*>(&ai) : chain(in);
    mi.numHeads = in.dim();
    mi.numKvHeads = in.dim();
    mi.pSafetensorsPath = in.pick<const char*>(
        {nullptr, nullptr, nullptr, "/nonexistent.safetensors", "/dev/zero", "/proc/self/statm", "/"});
    mi.tensorCount = in.byte() < 16 ? in.u32() : count;
    mi.pTensors = in.byte() < 16 ? nullptr : tensors;
    if (mi.tensorCount > count && mi.pTensors) mi.tensorCount = count; // the array holds `count`
    mi.memoryBudget = in.flag() ? 0 : in.u64();
    in.enum_field(mi.precision, 2);
    VkDeviceSize bytes = 0;
    const VkmhaContext context = in.byte() < 8 ? nullptr : m_context;
    if (m_api.getModelMemoryRequirements(context, &mi, &bytes) != VKMHA_SUCCESS || bytes > kMaxObjectBytes) return;
    VkmhaModel made = nullptr;
    if (m_api.createModel(context, &mi, in.byte() < 4 ? nullptr : &made) == VKMHA_SUCCESS) m_models.push_back(made);
}

void World::create_session(FuzzInput& in) {
    VkmhaSessionCreateInfo si{};
    set_stype(in, si, VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO);
    si.pNext = chain(in);
    si.maxBatch = in.dim();
    si.maxQueryLength = in.dim();
    si.maxKeyLength = in.dim();
    si.framesInFlight = in.pick<uint32_t>({0, 1, 2, 3, 8, 9, 0xFFFFFFFFu});
    si.hostIo = in.pick<VkBool32>({VK_TRUE, VK_TRUE, VK_FALSE, 2});
    si.memoryBudget = in.flag() ? 0 : in.u64();
    si.flags = in.flag() ? in.byte() % 8 : in.u32();
    const VkmhaModel m = model(in);
    VkDeviceSize bytes = 0;
    if (m_api.getSessionMemoryRequirements(m, &si, &bytes) != VKMHA_SUCCESS || bytes > kMaxObjectBytes) return;
    VkmhaSession made = nullptr;
    if (m_api.createSession(m, &si, in.byte() < 4 ? nullptr : &made) != VKMHA_SUCCESS) return;
    m_sessions.push_back(made);
    m_session_models.push_back(m);
}

void World::create_cache(FuzzInput& in) {
    VkmhaKvCacheCreateInfo ci{};
    set_stype(in, ci, VKMHA_STRUCTURE_TYPE_KV_CACHE_CREATE_INFO);
    ci.pNext = chain(in);
    ci.sequences = in.dim();
    ci.capacity = in.dim();
    ci.window = in.dim();
    const VkmhaModel m = model(in);
    VkDeviceSize bytes = 0;
    if (m_api.getKvCacheMemoryRequirements(m, &ci, &bytes) != VKMHA_SUCCESS || bytes > kMaxObjectBytes) return;
    VkmhaKvCache made = nullptr;
    if (m_api.createKvCache(m, &ci, in.byte() < 4 ? nullptr : &made) != VKMHA_SUCCESS) return;
    m_caches.push_back(made);
    m_cache_slots.push_back(product({ci.sequences, ci.capacity}));
}

void World::create_job(FuzzInput& in) {
    VkmhaPrefillJobCreateInfo pi{};
    set_stype(in, pi, VKMHA_STRUCTURE_TYPE_PREFILL_JOB_CREATE_INFO);
    pi.pNext = chain(in);
    pi.cache = cache(in);
    pi.sequence = in.dim();
    pi.tokenCount = in.dim();
    VkmhaPrefillJob made = nullptr;
    if (m_api.createPrefillJob(model(in), &pi, in.byte() < 4 ? nullptr : &made) == VKMHA_SUCCESS)
        m_jobs.push_back(made);
}

VkmhaModel World::model_of(VkmhaSession s) const {
    for (size_t i = 0; i < m_sessions.size(); ++i)
        if (m_sessions[i] == s) return m_session_models[i];
    return m_model;
}

uint64_t World::slots_of(VkmhaKvCache c) const {
    for (size_t i = 0; i < m_caches.size(); ++i)
        if (m_caches[i] == c) return m_cache_slots[i];
    return 0;
}

void World::submit(FuzzInput& in) {
    const VkmhaSession s = session(in);
    const VkmhaModelProperties p = properties_of(m_api, model_of(s));
    VkmhaHostSubmitInfo hi{};
    set_stype(in, hi, VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO);
    hi.batch = in.dim();
    hi.queryLength = in.dim();
    hi.keyLength = in.dim();
    hi.flags = in.flag() ? in.byte() % 64 : in.u32();
    in.enum_field(hi.keyPaddingMaskType, 3);
    in.enum_field(hi.attnMaskType, 3);
    const uint64_t B = hi.batch, Lq = hi.queryLength, Lk = hi.keyLength;
    // Honest: every input the shape implies fits the pool (per-head masks and positions included), else no call.
    const uint64_t width = std::max({p.embedDim, p.kdim, p.vdim, 1u});
    if (!fits(product({B, std::max(Lq, Lk), width}), 4) || !fits(product({B, p.numHeads, Lq, Lk}), 4)) return;
    VkmhaPositionsInfo pos{};
    set_stype(in, pos, VKMHA_STRUCTURE_TYPE_POSITIONS_INFO);
    pos.pPositionIds = in.flag() ? reinterpret_cast<const int32_t*>(m_pool) : nullptr;
    hi.pNext = in.flag() ? static_cast<const void*>(&pos) : chain(in);
    hi.pQuery = in.byte() < 8 ? nullptr : m_pool;
    hi.pKey = in.flag() ? m_pool : nullptr;
    hi.pValue = in.flag() ? m_pool : nullptr;
    hi.pKeyPaddingMask = in.flag() ? reinterpret_cast<const uint8_t*>(m_pool) : nullptr;
    hi.pAttnMask = in.flag() ? m_pool : nullptr;
    uint64_t value = 0;
    if (m_api.submit(s, in.byte() < 8 ? nullptr : &hi, in.byte() < 4 ? nullptr : &value) == VKMHA_SUCCESS)
        m_values.push_back(value);
}

void World::submit_cached(FuzzInput& in) {
    const VkmhaSession s = session(in);
    const VkmhaModelProperties p = properties_of(m_api, model_of(s));
    VkmhaSequenceStep steps[8]{};
    const uint32_t count = in.byte() % 9;
    uint64_t tokens = 0;
    for (uint32_t i = 0; i < count; ++i) {
        steps[i] = {in.pick<uint32_t>({0, 1, 2, 0xFFFFFFFFu, in.u32()}), in.dim()};
        tokens += steps[i].newTokens;
    }
    VkmhaHostCachedSubmitInfo hi{};
    set_stype(in, hi, VKMHA_STRUCTURE_TYPE_HOST_CACHED_SUBMIT_INFO);
    hi.pNext = chain(in);
    hi.cache = cache(in);
    hi.stepCount = in.byte() < 8 ? in.u32() : count;
    hi.pSteps = in.byte() < 8 ? nullptr : steps;
    if (hi.pSteps && hi.stepCount > count) hi.stepCount = count; // the array holds `count`
    const uint64_t width = std::max({p.embedDim, p.kdim, p.vdim, 1u});
    if (!fits(product({tokens, width}), 4) || !fits(slots_of(hi.cache), 1)) return;
    hi.pQuery = in.byte() < 8 ? nullptr : m_pool;
    hi.pKey = in.flag() ? m_pool : nullptr;
    hi.pValue = in.flag() ? m_pool : nullptr;
    hi.pKeyPaddingMask = in.flag() ? reinterpret_cast<const uint8_t*>(m_pool) : nullptr;
    uint64_t value = 0;
    if (m_api.submitCached(s, &hi, &value) == VKMHA_SUCCESS) m_values.push_back(value);
}

void World::submit_qkv(FuzzInput& in) {
    const VkmhaSession s = session(in);
    const VkmhaModelProperties p = properties_of(m_api, model_of(s));
    VkmhaHostQkvSubmitInfo hi{};
    set_stype(in, hi, VKMHA_STRUCTURE_TYPE_HOST_QKV_SUBMIT_INFO);
    hi.pNext = chain(in);
    hi.batch = in.dim();
    hi.queryLength = in.dim();
    hi.keyLength = in.dim();
    hi.flags = in.flag() ? in.byte() % 64 : in.u32();
    in.enum_field(hi.keyPaddingMaskType, 3);
    in.enum_field(hi.attnMaskType, 3);
    const uint64_t B = hi.batch, L = std::max(hi.queryLength, hi.keyLength);
    if (!fits(product({B, std::max(p.numHeads, 1u), L, std::max(p.headDim, 1u)}), 4) ||
        !fits(product({B, p.numHeads, hi.queryLength, hi.keyLength}), 4))
        return;
    hi.pQ = in.byte() < 8 ? nullptr : m_pool;
    hi.pK = in.byte() < 8 ? nullptr : m_pool;
    hi.pV = in.byte() < 8 ? nullptr : m_pool;
    hi.pKeyPaddingMask = in.flag() ? reinterpret_cast<const uint8_t*>(m_pool) : nullptr;
    hi.pAttnMask = in.flag() ? m_pool : nullptr;
    uint64_t value = 0;
    if (m_api.submitQkv(s, &hi, &value) == VKMHA_SUCCESS) m_values.push_back(value);
}

void World::wait_and_read(FuzzInput& in) {
    const VkmhaSession s = session(in);
    uint64_t value = in.pick<uint64_t>({0, 1, UINT64_MAX, in.u64()});
    if (!m_values.empty() && in.flag()) value = m_values[in.byte() % m_values.size()];
    // A bounded timeout: a value that was never submitted must be refused, a real one completes.
    (void)m_api.wait(s, value, in.pick<uint64_t>({0, 1000, UINT64_MAX}));
    const size_t pool_floats = kPoolBytes / 4;
    const size_t outputs = in.flag() ? in.dim() % pool_floats : pool_floats;
    const size_t weights = in.flag() ? in.dim() % pool_floats : 0;
    (void)m_api.readOutputs(s, value, in.byte() < 8 ? nullptr : m_pool, outputs, weights ? m_pool : nullptr, weights);
}

void World::record(FuzzInput& in) {
    // No command buffer exists in this world: every record gets VK_NULL_HANDLE, and unbound buffers.
    const VkmhaSession s = session(in);
    uint64_t frame = in.pick<uint64_t>({0, 1, 2, UINT64_MAX, in.u64()});
    uint64_t completed = in.pick<uint64_t>({VKMHA_NO_FRAME, 0, 1, UINT64_MAX - 1, in.u64()});
    switch (in.byte() % 5) {
    case 0: {
        VkmhaRecordInfo ri{VKMHA_STRUCTURE_TYPE_RECORD_INFO, chain(in), frame, completed};
        set_stype(in, ri, VKMHA_STRUCTURE_TYPE_RECORD_INFO);
        ri.batch = in.dim();
        ri.queryLength = in.dim();
        ri.keyLength = in.dim();
        ri.flags = in.u32();
        (void)m_api.recordAttention(s, VK_NULL_HANDLE, in.flag() ? &ri : nullptr);
        return;
    }
    case 1: {
        VkmhaSequenceStep step{in.dim(), in.dim()};
        VkmhaCachedRecordInfo ri{VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO, chain(in), frame, completed};
        set_stype(in, ri, VKMHA_STRUCTURE_TYPE_CACHED_RECORD_INFO);
        ri.cache = cache(in);
        ri.stepCount = in.byte() % 2;
        ri.pSteps = in.flag() ? &step : nullptr;
        (void)m_api.recordCachedAttention(s, VK_NULL_HANDLE, &ri);
        return;
    }
    case 2: {
        VkmhaPrefillRecordInfo ri{VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO, chain(in), frame, completed};
        set_stype(in, ri, VKMHA_STRUCTURE_TYPE_PREFILL_RECORD_INFO);
        ri.job = job(in);
        ri.budgetMilliseconds = in.pick<float>({0.0f, 1.0f, -1.0f, __builtin_inff(), __builtin_nanf("")});
        ri.maxRows = in.dim();
        ri.maxKeys = in.dim();
        VkmhaPrefillStatus status{};
        (void)m_api.recordPrefill(s, VK_NULL_HANDLE, &ri, in.flag() ? &status : nullptr);
        return;
    }
    case 3: {
        VkmhaQkvRecordInfo ri{VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO, chain(in), frame, completed};
        set_stype(in, ri, VKMHA_STRUCTURE_TYPE_QKV_RECORD_INFO);
        ri.batch = in.dim();
        ri.queryLength = in.dim();
        ri.keyLength = in.dim();
        ri.qLayout = {in.dim(), in.dim(), in.dim()};
        ri.outputLayout = {in.dim(), in.dim(), in.dim()};
        (void)m_api.recordAttentionQkv(s, VK_NULL_HANDLE, &ri);
        return;
    }
    default: {
        VkmhaSequenceStep step{in.dim(), in.dim()};
        VkmhaCachedQkvRecordInfo ri{VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO, chain(in), frame, completed};
        set_stype(in, ri, VKMHA_STRUCTURE_TYPE_CACHED_QKV_RECORD_INFO);
        ri.cache = cache(in);
        ri.stepCount = in.byte() % 2;
        ri.pSteps = in.flag() ? &step : nullptr;
        ri.kLayout = {in.dim(), in.dim(), in.dim()};
        (void)m_api.recordCachedAttentionQkv(s, VK_NULL_HANDLE, &ri);
        return;
    }
    }
}

void World::cache_calls(FuzzInput& in) {
    const VkmhaKvCache c = cache(in);
    const uint32_t sequence = in.pick<uint32_t>({0, 1, 2, VKMHA_ALL_SEQUENCES, in.u32()});
    uint32_t length = 0;
    switch (in.byte() % 3) {
    case 0: (void)m_api.getKvCacheLength(c, sequence, in.flag() ? &length : nullptr); return;
    case 1: (void)m_api.resetKvCache(c, sequence); return;
    default: (void)m_api.truncateKvCache(c, sequence, in.dim()); return;
    }
}

void World::queries(FuzzInput& in) {
    switch (in.byte() % 5) {
    case 0: {
        VkmhaContextProperties p{};
        set_stype(in, p, VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES);
        p.pNext = const_cast<void*>(chain(in));
        (void)m_api.getContextProperties(in.byte() < 8 ? nullptr : m_context, in.flag() ? &p : nullptr);
        return;
    }
    case 1: {
        VkmhaModelProperties p{};
        (void)m_api.getModelProperties(model(in), in.byte() < 8 ? nullptr : &p);
        return;
    }
    case 2: {
        VkmhaStageTiming timings[16];
        uint32_t count = in.byte() % 17;
        (void)m_api.getStageTimings(session(in), in.u64(), in.byte() < 8 ? nullptr : &count,
                                    in.flag() ? timings : nullptr);
        return;
    }
    case 3: {
        // Honest: the buffer holds `size` bytes.
        size_t size = std::min<size_t>(in.u32(), kPoolBytes);
        (void)m_api.getPipelineCacheData(m_context, in.byte() < 8 ? nullptr : &size, in.flag() ? m_pool : nullptr);
        return;
    }
    default: {
        char names[4][256];
        uint32_t count = in.byte() % 5;
        (void)m_api.stageName(static_cast<VkmhaStage>(in.u32() & 0x7FFFFFFFu)); // within the enum (see above)
        (void)m_api.enumerateDevices(in.byte() < 8 ? nullptr : &count, in.flag() ? names : nullptr);
        VkmhaDeviceRequirements req{};
        (void)m_api.getDeviceRequirements(in.byte() < 8 ? nullptr : &req);
        return;
    }
    }
}

void World::proc_table(FuzzInput& in) {
    // Honest: the table buffer holds tableSize bytes.
    alignas(VkmhaProcTable) uint8_t buffer[4096];
    const size_t size = in.flag() ? in.byte() % sizeof buffer : sizeof(VkmhaProcTable);
    const uint32_t version = in.pick<uint32_t>({VKMHA_API_VERSION_1_0, VKMHA_API_VERSION_1_3, VKMHA_HEADER_VERSION,
                                                in.u32(), VKMHA_MAKE_API_VERSION(2, 0, 0)});
    (void)vkmhaGetProcTable(version, in.byte() < 8 ? nullptr : reinterpret_cast<VkmhaProcTable*>(buffer), size);
}

void World::destroy_one(FuzzInput& in) {
    // Children first, as the header asks: the newest job, else the newest session (no object depends on one).
    if (!m_jobs.empty() && in.flag()) {
        m_api.destroyPrefillJob(m_jobs.back());
        m_jobs.pop_back();
    } else if (!m_sessions.empty()) {
        m_api.destroySession(m_sessions.back());
        m_sessions.pop_back();
        m_session_models.pop_back();
    }
    // destroy* take NULL.
    m_api.destroySession(nullptr);
    m_api.destroyPrefillJob(nullptr);
}

} // namespace vkmha::fuzz
