// gpu_bench.cpp: the vkmha C API calls behind GpuBench.
#include "gpu_bench.h"

#include "fail.h"
#include "metrics.h"

#include <chrono>
#include <thread>

namespace bench {

GpuBench::GpuBench(const std::string& device) : m_api(die), m_context(m_api.create_own_context(device, "vkmha-bench")) {
    m_properties.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
    m_api.check(m_api->getContextProperties(m_context, &m_properties), "context properties");
    if (!m_properties.timestamps)
        die(std::string("device '") + m_properties.deviceName +
            "' has no GPU timestamps on its queue; vkmha-bench needs them");
    if (!m_properties.canSubmit)
        die(std::string("device '") + m_properties.deviceName + "' cannot submit (no timeline semaphores)");
}

GpuBench::~GpuBench() {
    for (const CachedModel& m : m_models) m_api->destroyModel(m.model);
    if (m_context) m_api->destroyContext(m_context);
}

const GpuBench::CachedModel& GpuBench::model_for(const Config& c, const LayerWeights& layer) {
    for (const CachedModel& m : m_models)
        if (m.heads == c.heads && m.kv_heads == c.kv_heads && m.head_dim == c.head_dim && m.precision == c.precision &&
            m.options == c.options)
            return m;
    const ModelTensors tensors = make_model_tensors(layer, *c.precision);
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.numHeads = c.heads;
    mi.numKvHeads = c.kv_heads;
    mi.tensorCount = static_cast<uint32_t>(tensors.tensors.size());
    mi.pTensors = tensors.tensors.data();
    mi.precision = c.precision->precision;
    // The options set in the struct (QK-norm and sinks come with the weights, make_model_tensors); chained only when
    // one is on, so a plain model is created exactly as before 1.2.
    VkmhaModelAttentionInfo ai{};
    ai.sType = VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO;
    if (c.options.rope) {
        ai.ropeLayout = VKMHA_ROPE_LAYOUT_NEOX;
        ai.rotaryDims = 0; // R = D
        ai.ropeTheta = kRopeTheta;
    }
    if (c.options.softcap) ai.softcap = kSoftcap;
    ai.alibi = c.options.alibi ? VK_TRUE : VK_FALSE;
    if (c.options.window) ai.window = kWindow;
    if (c.options.rope || c.options.softcap || c.options.alibi || c.options.window) mi.pNext = &ai;
    VkmhaModel model = nullptr;
    m_api.check(m_api->createModel(m_context, &mi, &model), "model " + c.label());
    m_models.push_back({c.heads, c.kv_heads, c.head_dim, c.precision, c.options, model, tensors.bytes});
    return m_models.back();
}

// One row in flight: its session and submit info, and the timings gathered so far.
struct GpuBench::Pending {
    std::string what;
    VkmhaSession session = nullptr;
    VkmhaHostSubmitInfo hi{};
    uint32_t batch = 0, lq = 0, embed_dim = 0;
    GpuMeasurement m;
    std::vector<double> totals, cores, walls;
    std::vector<std::vector<double>> per_stage = std::vector<std::vector<double>>(VKMHA_STAGE_ROPE + 1);
    uint64_t value = 0;
    bool first_timed = true;
};

GpuBench::Pending GpuBench::begin(const Config& c, const LayerWeights& layer, uint32_t lq, uint32_t lk,
                                  const Path& path, const Inputs& inputs) {
    const CachedModel& cached = model_for(c, layer);
    Pending p;
    p.batch = c.batch, p.lq = lq, p.embed_dim = c.embed_dim();
    GpuMeasurement& m = p.m;
    m.weight_bytes = cached.weight_bytes;
    VkmhaModelProperties mp{};
    m_api.check(m_api->getModelProperties(cached.model, &mp), "model properties");
    m.model_bytes = mp.deviceMemoryBytes;

    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = c.batch;
    si.maxQueryLength = lq;
    si.maxKeyLength = lk;
    si.framesInFlight = 1;
    si.flags = path.session_flags;
    p.what = shape_text(c, lq, lk) + " " + path.name;
    // What an engine pays: its own buffers hold inputs and outputs, so the session is measured without the
    // host-visible staging this benchmark itself uses to upload and read back.
    m_api.check(m_api->getSessionMemoryRequirements(cached.model, &si, &m.session_bytes), p.what + ": session memory");
    si.hostIo = VK_TRUE;
    m_api.check(m_api->createSession(cached.model, &si, &p.session), p.what + ": session");

    VkmhaHostSubmitInfo& hi = p.hi;
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
    hi.batch = c.batch;
    hi.queryLength = lq;
    hi.keyLength = lk;
    hi.flags = path.flags | (c.causal ? VkmhaAttentionFlags(VKMHA_ATTENTION_CAUSAL_BIT) : 0u);
    hi.pQuery = inputs.query.data();
    hi.pKey = inputs.key.empty() ? nullptr : inputs.key.data();
    hi.pValue = inputs.value.empty() ? nullptr : inputs.value.data();
    return p;
}

void GpuBench::submit_once(Pending& p, bool timed) {
    const auto start = std::chrono::steady_clock::now();
    m_api.check(m_api->submit(p.session, &p.hi, &p.value), p.what + ": submit");
    m_api.check(m_api->wait(p.session, p.value, UINT64_MAX), p.what + ": wait");
    const auto end = std::chrono::steady_clock::now();
    if (!timed) return;
    VkmhaStageTiming timings[16];
    uint32_t count = 16;
    VkmhaResult r = VKMHA_NOT_READY;
    for (int attempt = 0;
         attempt < 1000 && (r = m_api->getStageTimings(p.session, p.value - 1, &count, timings)) == VKMHA_NOT_READY;
         ++attempt) {
        count = 16;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    m_api.check(r, p.what + ": stage timings");
    double total = 0, core = 0;
    for (uint32_t i = 0; i < count; ++i) {
        const double ms = timings[i].milliseconds;
        total += ms;
        if (is_core_stage(timings[i].stage)) core += ms;
        if (static_cast<size_t>(timings[i].stage) < p.per_stage.size()) {
            if (p.first_timed) p.m.stages.push_back({timings[i].stage, 0});
            p.per_stage[static_cast<size_t>(timings[i].stage)].push_back(ms);
        }
    }
    p.first_timed = false;
    p.totals.push_back(total);
    p.cores.push_back(core);
    p.walls.push_back(std::chrono::duration<double, std::milli>(end - start).count());
}

GpuMeasurement GpuBench::finish(Pending& p, bool keep_output) {
    GpuMeasurement& m = p.m;
    for (StageTime& s : m.stages) s.ms = median(p.per_stage[static_cast<size_t>(s.stage)]);
    m.total_ms = median(p.totals);
    m.core_ms = median(p.cores);
    m.wall_ms = median(p.walls);
    m.run_total_ms = p.totals;
    m.run_core_ms = p.cores;
    if (keep_output) {
        m.output.resize(size_t(p.batch) * p.lq * p.embed_dim);
        m_api.check(m_api->readOutputs(p.session, p.value, m.output.data(), m.output.size(), nullptr, 0),
                    p.what + ": read outputs");
    }
    m_api->destroySession(p.session);
    p.session = nullptr;
    return std::move(m);
}

GpuMeasurement GpuBench::run(const Config& c, const LayerWeights& layer, uint32_t lq, uint32_t lk, const Path& path,
                             const Inputs& inputs, uint32_t repeat, bool keep_output) {
    Pending p = begin(c, layer, lq, lk, path, inputs);
    for (uint32_t run = 0; run <= repeat; ++run) submit_once(p, run > 0); // run 0 warms up caches and the driver's JIT
    return finish(p, keep_output);
}

std::vector<GpuMeasurement> GpuBench::run_interleaved(const std::vector<RowJob>& jobs, const Inputs& inputs,
                                                      uint32_t repeat, bool keep_output) {
    std::vector<Pending> pending;
    for (const RowJob& j : jobs) pending.push_back(begin(*j.config, *j.layer, j.lq, j.lk, *j.path, inputs));
    for (Pending& p : pending) submit_once(p, false); // warm-up, each session once
    for (uint32_t run = 1; run <= repeat; ++run)
        for (size_t k = 0; k < pending.size(); ++k) // forwards, then backwards: a drift in machine load hits all alike
            submit_once(pending[run % 2 ? k : pending.size() - 1 - k], true);
    std::vector<GpuMeasurement> out;
    for (Pending& p : pending) out.push_back(finish(p, keep_output));
    return out;
}

} // namespace bench
