// Command-line helpers shared by the sample programs: every failure is one line on stderr and exit code 1.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace vkmha::cli {

[[noreturn]] inline void die(const char* program, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", program, message.c_str());
    std::exit(1);
}

// A count in 1..max given as `text` for `flag`; anything else ends the program naming both.
inline uint32_t parse_count(const char* program, const std::string& flag, const char* text, unsigned long max = 65536) {
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(text, &end, 10);
    if (!*text || *end || errno || v == 0 || v > max || text[0] == '-')
        die(program, flag + " '" + text + "' is not a count in 1.." + std::to_string(max));
    return static_cast<uint32_t>(v);
}

} // namespace vkmha::cli
