// report.cpp: vkmha-heads' table and JSON (see study.h).
#include "study.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace vkmha::heads {

std::string format_table(const Study& s) {
    std::string out;
    char line[256];
    for (size_t k = 0; k < s.inputs.size(); ++k) {
        std::snprintf(line, sizeof line, "input %zu: %s (%u tokens)\n", k, s.inputs[k].c_str(), s.lengths[k]);
        out += line;
        out += "  head  entropy  norm_ent  mean_dist   top1  importance  similar  similarity\n";
        for (const HeadRow& r : s.heads) {
            if (r.input != k) continue;
            const HeadMetrics& m = r.metrics;
            std::snprintf(line, sizeof line, "  %4u  %7.3f  %8.3f  %9.2f  %5.3f  %10.4f  %7d  %10.4f\n", r.head,
                          m.entropy, m.normalized_entropy, m.mean_distance, m.top1, m.importance, m.most_similar_head,
                          m.similarity);
            out += line;
        }
    }
    out += "configuration     heads  kv_heads  rel_error  prefill_ms  decode_ms@1024  decode_ms@4096  KV B/token\n";
    for (const ConfigRow& c : s.configs) {
        std::snprintf(line, sizeof line, "%-16s  %5u  %8u  %9.5f  %10.3f  %14.3f  %14.3f  %10llu\n", c.kind.c_str(),
                      c.heads, c.kv_heads, c.relative_error, c.prefill_ms, c.decode_ms_1024, c.decode_ms_4096,
                      static_cast<unsigned long long>(c.kv_bytes_per_token));
        out += line;
    }
    return out;
}

std::string format_json(const Study& s) {
    using Json = nlohmann::ordered_json;
    Json heads = Json::array(), configs = Json::array();
    for (const HeadRow& r : s.heads) {
        const HeadMetrics& m = r.metrics;
        heads.push_back(Json{{"head", r.head},
                             {"input", r.input},
                             {"entropy", m.entropy},
                             {"normalized_entropy", m.normalized_entropy},
                             {"mean_distance", m.mean_distance},
                             {"top1", m.top1},
                             {"importance", m.importance},
                             {"most_similar_head", m.most_similar_head},
                             {"similarity", m.similarity}});
    }
    for (const ConfigRow& c : s.configs)
        configs.push_back(Json{{"kind", c.kind},
                               {"heads", c.heads},
                               {"kv_heads", c.kv_heads},
                               {"relative_error", c.relative_error},
                               {"prefill_ms", c.prefill_ms},
                               {"decode_ms_1024", c.decode_ms_1024},
                               {"decode_ms_4096", c.decode_ms_4096},
                               {"kv_bytes_per_token", c.kv_bytes_per_token}});
    return Json{{"heads", heads}, {"configs", configs}}.dump(2) + "\n";
}

} // namespace vkmha::heads
