// shader_stats.cpp: --shader-stats through the public API: a compile-only context, getPipelineStatistics per model
// configuration, a table on stdout and the issue-15 JSON schema on --json.
#include "shader_stats.h"

#include "common/api.h"
#include "fail.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace bench {
namespace {

// One model configuration's pipelines, as getPipelineStatistics fills them.
struct ConfigStats {
    Config config;
    std::vector<VkmhaPipelineStatistics> pipelines;
};

const char* role_name(VkmhaPipelineRole role) {
    switch (role) {
    case VKMHA_PIPELINE_ROLE_PREFILL: return "prefill";
    case VKMHA_PIPELINE_ROLE_DECODE: return "decode";
    case VKMHA_PIPELINE_ROLE_COMBINE: return "combine";
    case VKMHA_PIPELINE_ROLE_PROJECTION: return "projection";
    default: return "other";
    }
}

const VkmhaPipelineStatistic* find_stat(const VkmhaPipelineStatistics& p, const char* name) {
    for (uint32_t i = 0; i < p.statisticCount; ++i)
        if (std::string(p.statistics[i].name) == name) return &p.statistics[i];
    return nullptr;
}

double number(const VkmhaPipelineStatistic& s) {
    switch (s.format) {
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: return s.value.b32 ? 1.0 : 0.0;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: return static_cast<double>(s.value.i64);
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: return static_cast<double>(s.value.u64);
    default: return s.value.f64;
    }
}

nlohmann::ordered_json json_value(const VkmhaPipelineStatistic& s) {
    switch (s.format) {
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: return s.value.b32 == VK_TRUE;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: return s.value.i64;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: return s.value.u64;
    default: return s.value.f64;
    }
}

uint32_t spec(const VkmhaPipelineStatistics& p, const char* name, uint32_t fallback = 0) {
    for (uint32_t i = 0; i < p.specializationCount; ++i)
        if (std::string(p.specializationNames[i]) == name) return p.specializationValues[i];
    return fallback;
}

// "rows x keys" for the fused kernel (query rows x keys per K/V tile), "M x N" per workgroup for the projections.
std::string tile_text(const VkmhaPipelineStatistics& p, uint32_t* work) {
    *work = 0;
    if (std::string(p.kernel) == "attention") {
        *work = spec(p, "ROWS") * spec(p, "BC");
        return std::to_string(spec(p, "ROWS")) + "x" + std::to_string(spec(p, "BC"));
    }
    if (std::string(p.kernel) == "linear")
        return std::to_string(spec(p, "local_size_y") * spec(p, "ROWS_PER_INVOCATION")) + "x" +
               std::to_string(spec(p, "local_size_x") * spec(p, "COLS_PER_INVOCATION"));
    return "-";
}

std::string stat_text(const VkmhaPipelineStatistics& p, const char* name) {
    const VkmhaPipelineStatistic* s = find_stat(p, name);
    if (!s) return "-";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.0f", number(*s));
    return buffer;
}

std::string spill_text(const VkmhaPipelineStatistics& p) {
    const VkmhaPipelineStatistic* v = find_stat(p, "Spilled VGPRs");
    const VkmhaPipelineStatistic* s = find_stat(p, "Spilled SGPRs");
    if (!v && !s) return "-";
    return std::to_string(static_cast<uint64_t>((v ? number(*v) : 0) + (s ? number(*s) : 0)));
}

void print_table(const std::vector<ConfigStats>& all) {
    for (const ConfigStats& cs : all) {
        const Config& c = cs.config;
        std::printf("\nH%u G%u D%u %s%s%s\n", c.heads, c.kv_heads, c.head_dim, c.precision->name,
                    c.options.plain() ? "" : " ", c.options.plain() ? "" : c.options.name().c_str());
        std::printf("| kernel | variant | role | workgroup | tile | VGPRs | SGPRs | spilled | LDS B | scratch B | "
                    "subgroups/SIMD | instructions | latency | inv. throughput | per row x key |\n");
        std::printf("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (const VkmhaPipelineStatistics& p : cs.pipelines) {
            uint32_t work = 0;
            const std::string tile = tile_text(p, &work);
            const VkmhaPipelineStatistic* it = find_stat(p, "Inverse Throughput");
            char per[32] = "-";
            if (it && work) std::snprintf(per, sizeof per, "%.1f", number(*it) / work);
            const uint32_t wg = p.workgroupSize[0] * p.workgroupSize[1] * p.workgroupSize[2];
            std::printf("| %s | %s | %s | %u | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p.kernel,
                        p.variant, role_name(p.role), wg, tile.c_str(), stat_text(p, "VGPRs").c_str(),
                        stat_text(p, "SGPRs").c_str(), spill_text(p).c_str(), stat_text(p, "LDS size").c_str(),
                        stat_text(p, "Scratch size").c_str(), stat_text(p, "Subgroups per SIMD").c_str(),
                        stat_text(p, "Instructions").c_str(), stat_text(p, "Latency").c_str(),
                        stat_text(p, "Inverse Throughput").c_str(), per);
        }
    }
}

nlohmann::ordered_json to_json(const std::string& device, const std::vector<ConfigStats>& all) {
    nlohmann::ordered_json pipelines = nlohmann::ordered_json::array();
    for (const ConfigStats& cs : all)
        for (const VkmhaPipelineStatistics& p : cs.pipelines) {
            nlohmann::ordered_json specialization = nlohmann::ordered_json::object();
            for (uint32_t i = 0; i < p.specializationCount; ++i)
                specialization[p.specializationNames[i]] = p.specializationValues[i];
            nlohmann::ordered_json statistics = nlohmann::ordered_json::object();
            for (uint32_t i = 0; i < p.statisticCount; ++i)
                statistics[p.statistics[i].name] = json_value(p.statistics[i]);
            pipelines.push_back({{"kernel", p.kernel},
                                 {"variant", p.variant},
                                 {"role", role_name(p.role)},
                                 {"specialization", specialization},
                                 {"statistics", statistics}});
        }
    return {{"device", device}, {"pipelines", pipelines}};
}

// The bench's shape flags as model configurations (sequence lengths do not change a pipeline).
std::vector<Config> configs_of(const Options& o) {
    std::vector<Config> out;
    const auto pick = [](const std::vector<uint32_t>& given, uint32_t fallback) {
        return given.empty() ? std::vector<uint32_t>{fallback} : given;
    };
    for (const Precision* p : o.precisions)
        for (uint32_t h : pick(o.heads, 8))
            for (uint32_t g : pick(o.kv_heads, h))
                for (uint32_t d : pick(o.head_dims, 64))
                    for (const ModelOptions& m : o.model_options) {
                        if (g == 0 || g > h || h % g != 0)
                            die("--kv-heads '" + std::to_string(g) + "' does not divide --heads '" + std::to_string(h) +
                                "'");
                        Config c;
                        c.heads = h, c.kv_heads = g, c.head_dim = d, c.precision = p, c.options = m;
                        out.push_back(c);
                    }
    return out;
}

VkmhaContext create_compile_only_context(const vkmha::samples::Api& api, const std::string& device) {
    VkmhaOwnDeviceInfo own{VKMHA_STRUCTURE_TYPE_OWN_DEVICE_INFO};
    own.deviceIndex = -1;
    if (!device.empty()) {
        if (device.find_first_not_of("0123456789") == std::string::npos)
            own.deviceIndex = static_cast<int32_t>(std::stoul(device.substr(0, 6)));
        else
            own.pDeviceName = device.c_str();
    }
    VkmhaContextCompileOnlyInfo compile{VKMHA_STRUCTURE_TYPE_CONTEXT_COMPILE_ONLY_INFO};
    compile.compileOnly = VK_TRUE;
    VkmhaContextCreateInfo ci{VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO};
    ci.pNext = &compile;
    ci.deviceMode = VKMHA_DEVICE_MODE_OWN;
    ci.pOwnDevice = &own;
    VkmhaContext context = nullptr;
    api.check(api->createContext(&ci, &context),
              "--device '" + (device.empty() ? std::string("default") : device) + "'");
    return context;
}

} // namespace

int run_shader_stats(const Options& o) {
    const std::vector<Config> configs = configs_of(o); // bad shape flags fail before any device work
    const vkmha::samples::Api api(die);
    VkmhaContext context = create_compile_only_context(api, o.device);
    VkmhaContextProperties props{VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES};
    api.check(api->getContextProperties(context, &props), "getContextProperties");
    std::printf("device: %s (subgroup %u)\n", props.deviceName, props.subgroupSize);
    std::vector<ConfigStats> all;
    for (const Config& c : configs) {
        VkmhaModelAttentionInfo attention{VKMHA_STRUCTURE_TYPE_MODEL_ATTENTION_INFO};
        attention.softcap = c.options.softcap ? kSoftcap : 0.0f;
        attention.alibi = c.options.alibi ? VK_TRUE : VK_FALSE;
        VkmhaPipelineStatisticsInfo info{VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS_INFO};
        info.pNext = &attention;
        info.embedDim = c.heads * c.head_dim;
        info.numHeads = c.heads;
        info.numKvHeads = c.kv_heads;
        info.headDim = c.head_dim;
        info.precision = c.precision->precision;
        uint32_t count = 0;
        const VkmhaResult r = api->getPipelineStatistics(context, &info, &count, nullptr);
        if (r == VKMHA_ERROR_UNSUPPORTED) {
            std::printf("%s\n", api->getLastError()); // e.g. lavapipe: no VK_KHR_pipeline_executable_properties
            api->destroyContext(context);
            return 0;
        }
        api.check(r, "getPipelineStatistics");
        ConfigStats cs{c, std::vector<VkmhaPipelineStatistics>(count, {VKMHA_STRUCTURE_TYPE_PIPELINE_STATISTICS})};
        api.check(api->getPipelineStatistics(context, &info, &count, cs.pipelines.data()), "getPipelineStatistics");
        cs.pipelines.resize(count);
        all.push_back(std::move(cs));
    }
    api->destroyContext(context);
    print_table(all);
    if (o.json_given) {
        std::ofstream out(o.json_path);
        out << to_json(props.deviceName, all).dump(2) << "\n";
        if (!out) die("--json '" + o.json_path + "' could not be written");
        std::fprintf(stderr, "vkmha-bench: wrote %s\n", o.json_path.c_str());
    }
    return 0;
}

} // namespace bench
