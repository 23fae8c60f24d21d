// gpu_bench.cpp: the vkmha C API calls behind GpuBench.
#include "gpu_bench.h"

#include "fail.h"
#include "metrics.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace bench {

GpuBench::GpuBench(const std::string& device) {
    if (vkmhaGetProcTable(VKMHA_HEADER_VERSION, &m_api, sizeof m_api) != VKMHA_SUCCESS) die("vkmhaGetProcTable failed");
    VkmhaOwnDeviceInfo own{};
    own.sType = VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO;
    own.deviceIndex = -1;
    if (!device.empty()) {
        if (device.find_first_not_of("0123456789") == std::string::npos) {
            errno = 0;
            const unsigned long index = std::strtoul(device.c_str(), nullptr, 10);
            if (errno || index > 1024) die("--device '" + device + "' is not a device index");
            own.deviceIndex = static_cast<int32_t>(index);
        } else {
            own.pDeviceName = device.c_str();
        }
    }
    VkmhaContextCreateInfo ci{};
    ci.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO;
    ci.deviceMode = VKMHA_DEVICE_MODE_OWN;
    ci.pOwnDevice = &own;
    ci.pfnLogCallback = [](VkmhaLogLevel level, const char* message, void*) {
        if (level >= VKMHA_LOG_LEVEL_WARNING) std::fprintf(stderr, "vkmha-bench: %s\n", message);
    };
    check(m_api.createContext(&ci, &m_context),
          "--device '" + (device.empty() ? std::string("default") : device) + "'");
    m_properties.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES;
    check(m_api.getContextProperties(m_context, &m_properties), "context properties");
    if (!m_properties.timestamps)
        die(std::string("device '") + m_properties.deviceName +
            "' has no GPU timestamps on its queue; vkmha-bench needs them");
    if (!m_properties.canSubmit)
        die(std::string("device '") + m_properties.deviceName + "' cannot submit (no timeline semaphores)");
}

GpuBench::~GpuBench() {
    for (const CachedModel& m : m_models) m_api.destroyModel(m.model);
    if (m_context) m_api.destroyContext(m_context);
}

void GpuBench::check(VkmhaResult result, const std::string& what) const {
    if (result != VKMHA_SUCCESS) die(what + ": " + m_api.getLastError());
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
    VkmhaModel model = nullptr;
    check(m_api.createModel(m_context, &mi, &model), "model " + c.label());
    m_models.push_back({c.heads, c.kv_heads, c.head_dim, c.precision, model, tensors.bytes});
    return m_models.back();
}

GpuMeasurement GpuBench::run(const Config& c, const LayerWeights& layer, uint32_t lq, uint32_t lk, const Path& path,
                             const Inputs& inputs, uint32_t repeat, bool keep_output) {
    const CachedModel& cached = model_for(c, layer);
    GpuMeasurement m;
    m.weight_bytes = cached.weight_bytes;
    VkmhaModelProperties mp{};
    check(m_api.getModelProperties(cached.model, &mp), "model properties");
    m.model_bytes = mp.deviceMemoryBytes;

    VkmhaSessionCreateInfo si{};
    si.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO;
    si.maxBatch = c.batch;
    si.maxQueryLength = lq;
    si.maxKeyLength = lk;
    si.framesInFlight = 1;
    si.hostIo = VK_TRUE;
    si.flags = path.session_flags;
    const std::string what = shape_text(c, lq, lk) + " " + path.name;
    check(m_api.getSessionMemoryRequirements(cached.model, &si, &m.session_bytes), what + ": session memory");
    VkmhaSession session = nullptr;
    check(m_api.createSession(cached.model, &si, &session), what + ": session");

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
    std::vector<std::vector<double>> per_stage(VKMHA_STAGE_COMBINE + 1);
    uint64_t value = 0;
    for (uint32_t run = 0; run <= repeat; ++run) { // run 0 warms up caches, allocations and the driver's JIT
        const auto start = std::chrono::steady_clock::now();
        check(m_api.submit(session, &hi, &value), what + ": submit");
        check(m_api.wait(session, value, UINT64_MAX), what + ": wait");
        const auto end = std::chrono::steady_clock::now();
        if (run == 0) continue;
        VkmhaStageTiming timings[16];
        uint32_t count = 16;
        VkmhaResult r = VKMHA_NOT_READY;
        for (int attempt = 0; attempt < 1000 && (r = m_api.getStageTimings(session, value - 1, &count, timings)) ==
                                                    VKMHA_NOT_READY;
             ++attempt) {
            count = 16;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        check(r, what + ": stage timings");
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
        check(m_api.readOutputs(session, value, m.output.data(), m.output.size(), nullptr, 0), what + ": read outputs");
    }
    m_api.destroySession(session);
    return m;
}

} // namespace bench
