// study.h: what vkmha-heads measures, as data: per head and input, and per configuration.
#pragma once

#include "metrics.h"

#include <cstdint>
#include <string>
#include <vector>

namespace vkmha::heads {

struct HeadRow {
    uint32_t head = 0, input = 0;
    HeadMetrics metrics;
};

struct ConfigRow {
    std::string kind; // baseline, prune, gqa
    uint32_t heads = 0, kv_heads = 0;
    double relative_error = 0;
    double prefill_ms = 0, decode_ms_1024 = 0, decode_ms_4096 = 0;
    uint64_t kv_bytes_per_token = 0;
};

struct Study {
    std::vector<HeadRow> heads;
    std::vector<ConfigRow> configs;
    std::vector<std::string> inputs; // file names, by index
    std::vector<uint32_t> lengths;   // each input's query length
    std::string device;
};

// The readable table (stdout).
std::string format_table(const Study&);
// {"heads": [...], "configs": [...]}, exactly the keys.
std::string format_json(const Study&);
// The heat map of heads x metrics (per input) and the quality-vs-cost charts; "" or why it failed.
std::string write_picture(const std::string& path, const Study&);

} // namespace vkmha::heads
