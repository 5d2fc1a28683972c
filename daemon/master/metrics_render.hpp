// SPDX-License-Identifier: MIT
#pragma once
// The metrics of the interface contract in the Prometheus text exposition format 0.0.4, rendered
// from plain facts (the same ones status shows) by one table of metric rows: a metric is a row
// in metrics_render.cpp, its name, type, help and the function that gives its samples.
#include "daemon/master/status_render.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace forkd {

struct MetricsFacts {
    StatusFacts status;            // state, accepting, active, limits, totals, handler
    std::uint64_t reloads_ok = 0, reloads_failed = 0;
    double start_time_s = 0;       // Unix time the daemon started
};

// The Content-Type of the HTTP endpoint's reply.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

struct MetricRow {
    std::string_view name;  // forkd_...
    std::string_view type;  // counter, gauge, histogram
    std::string_view help;
    void (*samples)(const MetricsFacts& facts, std::string& out, std::string_view name);
};

std::span<const MetricRow> metric_rows();

// Every row: "# HELP", "# TYPE" and its samples, each line ending in "\n".
std::string render_metrics(const MetricsFacts& facts);

// A label value escaped as the format says (backslash, double quote, newline).
std::string escape_label_value(std::string_view value);

} // namespace forkd
