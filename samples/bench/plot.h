// plot.h: the benchmark chart (GPU time and attention-core GFLOP/s against sequence length, one line per
// configuration and path, with axes, tick labels and a legend), drawn on a common/raster.h Raster and written as PNG.
#pragma once

#include "common/raster.h"

#include <string>
#include <vector>

namespace bench {

using vkmha::samples::Dash;

enum class Marker { disc, ring, square };

struct PlotSeries {
    std::string label;
    int color = 0; // palette index: one per configuration
    Dash dash = Dash::solid;
    Marker marker = Marker::disc;
    std::vector<double> x, time_ms, gflops; // one point per length, ascending x
};

// A legend line: a sample of the line style and marker, then the label.
struct LegendEntry {
    std::string label;
    int color = -1; // palette index; -1 = neutral ink (for entries that explain a line style)
    Dash dash = Dash::solid;
    Marker marker = Marker::disc;
};

// Entries under a heading, e.g. "colour: configuration" then "line: path", laid out in as many columns as fit.
struct LegendSection {
    std::string heading;
    std::vector<LegendEntry> entries;
};

// Empty on success, else a one-line error.
std::string write_plot(const std::string& path, const std::string& title, const std::string& x_title,
                       const std::vector<PlotSeries>& series, const std::vector<LegendSection>& legend);

} // namespace bench
