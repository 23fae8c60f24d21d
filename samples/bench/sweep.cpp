// sweep.cpp: configurations, rows and the name tables of sweep.h.
#include "sweep.h"

namespace bench {
namespace {

struct OptionName {
    const char* name;
    bool ModelOptions::*flag;
};
constexpr OptionName kOptionNames[] = {
    {"rope", &ModelOptions::rope},   {"qk-norm", &ModelOptions::qk_norm}, {"softcap", &ModelOptions::softcap},
    {"alibi", &ModelOptions::alibi}, {"sinks", &ModelOptions::sinks},     {"window", &ModelOptions::window},
};

std::string options_suffix(const ModelOptions& o) { return o.plain() ? "" : " " + o.name(); }

} // namespace

std::string ModelOptions::name() const {
    std::string s;
    for (const OptionName& o : kOptionNames)
        if (this->*o.flag) s += (s.empty() ? "" : "+") + std::string(o.name);
    return s.empty() ? "plain" : s;
}

bool parse_model_options(const std::string& item, ModelOptions* options, std::string* error) {
    *options = {};
    if (item == "plain") return true;
    size_t start = 0;
    while (true) {
        const size_t plus = item.find('+', start);
        const std::string part = item.substr(start, plus - start);
        const OptionName* found = nullptr;
        for (const OptionName& o : kOptionNames)
            if (part == o.name) found = &o;
        if (!found) {
            *error = part.empty()      ? "'" + item + "' has an empty option"
                     : part == "plain" ? "'" + item + "': plain means no option and joins nothing"
                                       : "'" + part + "' is not a model option";
            return false;
        }
        options->*found->flag = true;
        if (plus == std::string::npos) return true;
        start = plus + 1;
    }
}

std::string model_option_names() {
    std::string s;
    for (const OptionName& o : kOptionNames) s += (s.empty() ? "" : ", ") + std::string(o.name);
    return s;
}

bool same_but_options(const Config& a, const Config& b) {
    return a.batch == b.batch && a.heads == b.heads && a.kv_heads == b.kv_heads && a.head_dim == b.head_dim &&
           a.query_length == b.query_length && a.causal == b.causal && a.precision == b.precision;
}

std::string Config::label() const {
    std::string s = "B" + std::to_string(batch) + " H" + std::to_string(heads) + " G" + std::to_string(kv_heads) +
                    " D" + std::to_string(head_dim);
    if (decode()) s += " Lq" + std::to_string(query_length);
    if (causal) s += " causal";
    return s + " " + precision->name + options_suffix(options);
}

std::string shape_text(const Config& c, uint32_t lq, uint32_t lk) {
    std::string s = "B" + std::to_string(c.batch) + " H" + std::to_string(c.heads) + " G" + std::to_string(c.kv_heads) +
                    " D" + std::to_string(c.head_dim);
    s += c.decode() ? " Lq" + std::to_string(lq) + " Lk" + std::to_string(lk) : " L" + std::to_string(lk);
    if (c.causal) s += " causal";
    return s + " " + c.precision->name + options_suffix(c.options);
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
