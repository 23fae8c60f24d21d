// cli.cpp: the one place that turns CLI11's outcomes into the tools' exit codes and one-line messages.
#include "common/cli.h"

#include "vkmha/vkmha.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#ifndef VKMHA_PROJECT_VERSION
#error "samples/common/CMakeLists.txt passes the project version"
#endif

namespace vkmha::cli {

void die(const char* program, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", program, message.c_str());
    std::exit(1);
}

void configure(CLI::App& app) {
    // Repeating a flag replaced its value in the old parsers; CLI11 would refuse the second one.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    const uint32_t api = VKMHA_HEADER_VERSION;
    app.set_version_flag("--version", app.get_name() + " " + VKMHA_PROJECT_VERSION + " (vkmha C API " +
                                          std::to_string(VKMHA_API_VERSION_MAJOR(api)) + "." +
                                          std::to_string(VKMHA_API_VERSION_MINOR(api)) + ")");
    app.get_formatter()->column_width(34);
}

namespace {

// The first argument, in command-line order, that CLI11 matched to no flag; "" when there is none.
std::string first_unknown(const CLI::App& app, int argc, char** argv) {
    const std::vector<std::string> unknown = app.remaining();
    for (int i = 1; i < argc; ++i)
        if (std::find(unknown.begin(), unknown.end(), argv[i]) != unknown.end()) return argv[i];
    return {};
}

} // namespace

void parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::string help = app.help();
        if (!help.empty() && help.back() != '\n') help += '\n'; // CLI11 ends a footer without one
        std::fputs(help.c_str(), stdout);
        std::exit(0);
    } catch (const CLI::CallForVersion& e) {
        std::printf("%s\n", e.what());
        std::exit(0);
    } catch (const CLI::ParseError& e) {
        // CLI11 checks required flags before it refuses unknown ones; an unknown flag is the likelier cause (a typo
        // of a required one), so it is named first. CLI11's other messages name the flag ("--heads: ...").
        std::string message = e.what();
        if (const std::string unknown = first_unknown(app, argc, argv); !unknown.empty())
            message = "unknown argument '" + unknown + "' (see --help)";
        for (char& c : message)
            if (c == '\n') c = ' ';
        die(app.get_name().c_str(), message);
    }
}

bool to_count(const std::string& text, unsigned long max, uint32_t* out) {
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || *end || errno || v == 0 || v > max || text[0] == '-') return false;
    *out = static_cast<uint32_t>(v);
    return true;
}

CLI::Validator count(unsigned long max) {
    const std::string range = "1.." + std::to_string(max);
    return CLI::Validator(
        [max, range](std::string& text) {
            uint32_t v = 0;
            if (!to_count(text, max, &v)) return "'" + text + "' is not a count in " + range;
            text = std::to_string(v); // CLI11 would read "010" as octal; the tools have always read decimal
            return std::string();
        },
        "COUNT in " + range);
}

CLI::Validator whole_number(unsigned long max) {
    const std::string range = "0.." + std::to_string(max);
    return CLI::Validator(
        [max, range](std::string& text) {
            uint32_t v = 0;
            if (text != "0" && !to_count(text, max, &v)) return "'" + text + "' is not a whole number in " + range;
            text = std::to_string(v); // decimal, as count() has it
            return std::string();
        },
        range);
}

bool to_number(const std::string& text, double minimum, float* out) {
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end || errno || !std::isfinite(v) || !(v > minimum) || v > 3.0e38) return false;
    *out = static_cast<float>(v);
    return true;
}

CLI::Validator number_above(double minimum) {
    const std::string bound = "> " + std::to_string(static_cast<int>(minimum));
    return CLI::Validator(
        [minimum, bound](std::string& text) {
            float v = 0;
            if (!to_number(text, minimum, &v)) return "'" + text + "' is not a finite number " + bound;
            // The float the old parsers made (through double); 9 significant digits read back as exactly it, where
            // CLI11's own conversion (through long double) could round the last bit differently.
            char exact[32];
            std::snprintf(exact, sizeof exact, "%.9g", double(v));
            text = exact;
            return std::string();
        },
        "NUMBER " + bound);
}

} // namespace vkmha::cli
