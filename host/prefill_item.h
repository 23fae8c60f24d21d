// PrefillItem: one bounded piece of a sliced prefill's work — what PrefillJob::next chooses, Session::record_prefill
// records and the planner (plan_prefill_item) lays out. Plain data, so the planner can take it without the job.
// The rest of the prefill types live in prefill_job.h.
#pragma once

#include <cstdint>

namespace vkmha {

// A prefill job's phases, in order. Each item belongs to one phase.
enum class PrefillPhase : uint32_t {
    project,  // Q/K/V projections of rows [begin, end): Q into the job, K/V into the cache
    attend,   // the attention of every row over key positions [begin, end), resumed from the running state
    finish,   // normalize the running state into the concatenated heads
    out_proj, // the output projection of rows [begin, end)
};

// A piece of a prefill job's work (PrefillJob::next), as record_prefill records it. For attend, BufferRole::records
// holds the rows' one record.
struct PrefillItem {
    PrefillPhase phase = PrefillPhase::project;
    uint32_t begin = 0, end = 0;         // rows (project, out_proj) or key positions (attend)
    uint32_t row_begin = 0, row_end = 0; // attend: the prompt rows
    bool first_slice = false;            // attend: the first key range (the rows' running state starts here)
    double units = 0;                    // rows, or (row, key) pairs for attend: what the cost model scales by
};

} // namespace vkmha
