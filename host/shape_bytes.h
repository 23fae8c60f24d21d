// ShapeBytes: the bytes each caller buffer of a plain record needs for a shape. The recorder checks the caller's
// ranges against it (Session::check); the host-submit path sizes its staging and copies by it (host_submit.h).
#pragma once

#include "attention_config.h"
#include "attention_plan.h" // OwnQkv, strided_extent

#include <cstdint>

namespace vkmha {

struct ShapeBytes {
    uint64_t query, key, value, kpm, mask_elems, output, weights, positions;
};

// qkv (attention-only records): query, key, value and output are the caller's strided Q, K, V and O. max_all (host
// staging): the most any record of this shape may need, either kind.
ShapeBytes shape_bytes(const AttentionConfig&, const AttentionShape&, const AttentionOptions&, bool max_all,
                       const OwnQkv* qkv = nullptr);

// Whether a count passed 2^64 (each is saturated there, never wrapped).
bool shape_bytes_overflow(const ShapeBytes&);

} // namespace vkmha
