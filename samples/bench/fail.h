// fail.h: the one way vkmha-bench fails: one line on stderr, exit code 1 (samples/common/die.h).
#pragma once

#include "common/die.h"

#include <cstdio>
#include <string>

namespace bench {

// True while a "[i/n] ... " progress line on stderr waits for its result, so an error starts on a line of its own.
inline bool progress_line_open = false;

[[noreturn]] inline void die(const std::string& message) {
    std::fflush(stdout); // what the table printed so far comes before the error
    if (progress_line_open) std::fputc('\n', stderr);
    vkmha::cli::die("vkmha-bench", message);
}

} // namespace bench
