// Command-line helpers shared by the tools, on top of CLI11: the same --help, --version and error handling everywhere.
// Every usage error is one line on stderr ("PROGRAM: message" naming the flag) and exit code 1, the code every tool
// also uses for a failed run; --help and --version print to stdout and exit 0.
#pragma once

#include "common/die.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace vkmha::cli {

// An App named `program` with what every tool shares: --help/-h, --version (the project and C API versions) and
// "the last of a repeated flag wins", as the hand-written parsers had it.
void configure(CLI::App& app);

// Parses argv into `app`; returns only when the command line is valid.
void parse(CLI::App& app, int argc, char** argv);

// `text` as a count in 1..max, or false; "-2", "1x" and "" are not counts.
bool to_count(const std::string& text, unsigned long max, uint32_t* out);

// A count in 1..max, read as decimal; the refusal names the value and the range (CLI11 adds the flag). It rewrites
// the value (CLI11 itself would read "010" as octal), so add it with Option::transform, not Option::check.
CLI::Validator count(unsigned long max = 65536);

// A whole number in 0..max (an index, or a count that may be 0); like count(), added with Option::transform.
CLI::Validator whole_number(unsigned long max);

// A finite number above `minimum` (exclusive) and at most 3e38 (a float), or false.
bool to_number(const std::string& text, double minimum, float* out);

// A finite number above `minimum`, for a float option; like count(), added with Option::transform.
CLI::Validator number_above(double minimum);

} // namespace vkmha::cli
