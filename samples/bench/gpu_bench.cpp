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
        if (m.heads == c.heads && m.kv_heads == c.kv_heads && m.head_dim == c.head_dim && m.precision == c.precision)
            return m;
    const ModelTensors tensors = make_model_tensors(layer, *c.precision);
    VkmhaModelCreateInfo mi{};
    mi.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO;
    mi.numHeads = c.heads;
    mi.numKvHeads = c.kv_heads;
    mi.tensorCount = static_cast<uint32_t>(tensors.tensors.size());
    mi.pTensors = tensors.tensors.data();
    mi.precision = c.precision->precision;
    VkmhaModel model = nullptr;
    m_api.check(m_api->createModel(m_context, &mi, &model), "model " + c.label());
    m_models.push_back({c.heads, c.kv_heads, c.head_dim, c.precision, model, tensors.bytes});
    return m_models.back();
}

GpuMeasurement GpuBench::run(const Config& c, const LayerWeights& layer, uint32_t lq, uint32_t lk, const Path& path,
                             const Inputs& inputs, uint32_t repeat, bool keep_output) {
    const CachedModel& cached = model_for(c, layer);
    GpuMeasurement m;
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
    const std::string what = shape_text(c, lq, lk) + " " + path.name;
    // What an engine pays: its own buffers hold inputs and outputs, so the session is measured without the
    // host-visible staging this benchmark itself uses to upload and read back.
    m_api.check(m_api->getSessionMemoryRequirements(cached.model, &si, &m.session_bytes), what + ": session memory");
    si.hostIo = VK_TRUE;
    VkmhaSession session = nullptr;
    m_api.check(m_api->createSession(cached.model, &si, &session), what + ": session");

    VkmhaHostSubmitInfo hi{};
    hi.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO;
    hi.batch = c.batch;
    hi.queryLength = lq;
    hi.keyLength = lk;
    hi.flags = path.flags | (c.causal ? VkmhaAttentionFlags(VKMHA_ATTENTION_CAUSAL_BIT) : 0u);
    hi.pQuery = inputs.query.data();
    hi.pKey = inputs.key.empty() ? nullptr : inputs.key.data();
    hi.pValue = inputs.value.empty() ? nullptr : inputs.value.data();

    std::vector<double> totals, cores, walls;
    std::vector<std::vector<double>> per_stage(VKMHA_STAGE_QKV_PROJ + 1);
    uint64_t value = 0;
    for (uint32_t run = 0; run <= repeat; ++run) { // run 0 warms up caches, allocations and the driver's JIT
        const auto start = std::chrono::steady_clock::now();
        m_api.check(m_api->submit(session, &hi, &value), what + ": submit");
        m_api.check(m_api->wait(session, value, UINT64_MAX), what + ": wait");
        const auto end = std::chrono::steady_clock::now();
        if (run == 0) continue;
        VkmhaStageTiming timings[16];
        uint32_t count = 16;
        VkmhaResult r = VKMHA_NOT_READY;
        for (int attempt = 0;
             attempt < 1000 && (r = m_api->getStageTimings(session, value - 1, &count, timings)) == VKMHA_NOT_READY;
             ++attempt) {
            count = 16;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        m_api.check(r, what + ": stage timings");
        double total = 0, core = 0;
        for (uint32_t i = 0; i < count; ++i) {
            const double ms = timings[i].milliseconds;
            total += ms;
            if (is_core_stage(timings[i].stage)) core += ms;
            if (static_cast<size_t>(timings[i].stage) < per_stage.size()) {
                if (run == 1) m.stages.push_back({timings[i].stage, 0});
                per_stage[static_cast<size_t>(timings[i].stage)].push_back(ms);
            }
        }
        totals.push_back(total);
        cores.push_back(core);
        walls.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    for (StageTime& s : m.stages) s.ms = median(per_stage[static_cast<size_t>(s.stage)]);
    m.total_ms = median(totals);
    m.core_ms = median(cores);
    m.wall_ms = median(walls);
    if (keep_output) {
        m.output.resize(size_t(c.batch) * lq * c.embed_dim());
        m_api.check(m_api->readOutputs(session, value, m.output.data(), m.output.size(), nullptr, 0),
                    what + ": read outputs");
    }
    m_api->destroySession(session);
    return m;
}

} // namespace bench
