// die.h: how every tool fails: one line on stderr that starts with the program's name, and exit code 1. Apart from
// cli.h so that code which only fails (vkmha-bench's) does not compile CLI11's headers.
#pragma once

#include <string>

namespace vkmha::cli {

[[noreturn]] void die(const char* program, const std::string& message);

} // namespace vkmha::cli
