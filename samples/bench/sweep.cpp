// sweep.cpp: configurations, rows and the name tables of sweep.h.
#include "sweep.h"

namespace bench {

std::string Config::label() const {
    std::string s = "B" + std::to_string(batch) + " H" + std::to_string(heads) + " G" + std::to_string(kv_heads) +
                    " D" + std::to_string(head_dim);
    if (decode()) s += " Lq" + std::to_string(query_length);
    if (causal) s += " causal";
    return s + " " + precision->name;
}

std::string shape_text(const Config& c, uint32_t lq, uint32_t lk) {
    std::string s = "B" + std::to_string(c.batch) + " H" + std::to_string(c.heads) + " G" + std::to_string(c.kv_heads) +
                    " D" + std::to_string(c.head_dim);
    s += c.decode() ? " Lq" + std::to_string(lq) + " Lk" + std::to_string(lk) : " L" + std::to_string(lk);
    if (c.causal) s += " causal";
    return s + " " + c.precision->name;
}

void add_config(Sweep& sweep, const Config& config, const std::vector<uint32_t>& lengths,
                const std::vector<const Path*>& paths) {
    std::vector<const Path*> chosen = paths;
    if (chosen.empty()) {
        chosen = {find_path("fused"), find_path("unfused")};
        if (config.decode()) chosen.insert(chosen.begin() + 1, find_path("fused-nosplit"));
    }
    sweep.configs.push_back(config);
    const size_t index = sweep.configs.size() - 1;
    for (uint32_t length : lengths)
        for (const Path* path : chosen)
            sweep.rows.push_back({index, config.decode() ? config.query_length : length, length, path});
}

const Path* find_path(const std::string& name) {
    for (const Path& p : kPaths)
        if (name == p.name) return &p;
    return nullptr;
}

const Precision* find_precision(const std::string& name) {
    for (const Precision& p : kPrecisions)
        if (name == p.name) return &p;
    return nullptr;
}

std::string path_names() {
    std::string s;
    for (const Path& p : kPaths) s += (s.empty() ? "" : ", ") + std::string(p.name);
    return s;
}

std::string precision_names() {
    std::string s;
    for (const Precision& p : kPrecisions) s += (s.empty() ? "" : ", ") + std::string(p.name);
    return s;
}

} // namespace bench
