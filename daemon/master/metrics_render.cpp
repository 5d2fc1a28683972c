// SPDX-License-Identifier: MIT
#include "daemon/master/metrics_render.hpp"
#include "common/version.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <utility>

namespace forkd {
namespace {

using Label = std::pair<std::string_view, std::string_view>;

void sample(std::string& out, std::string_view name, std::initializer_list<Label> labels, std::string_view value) {
    out += name;
    if (labels.size()) {
        out += '{';
        bool first = true;
        for (const auto& [key, text] : labels) {
            if (!first) out += ',';
            first = false;
            out += key;
            out += "=\"";
            out += escape_label_value(text);
            out += '"';
        }
        out += '}';
    }
    out += ' ';
    out += value;
    out += '\n';
}

std::string number(std::uint64_t value) { return std::to_string(value); }

// The shortest text that reads back as VALUE ("0.005", not "0.0050000000000000001").
std::string number(double value) {
    char buffer[40];
    if (value == std::floor(value) && std::fabs(value) < 1e15) {  // "10", not "1e+01"
        std::snprintf(buffer, sizeof buffer, "%.0f", value);
        return buffer;
    }
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
        if (std::strtod(buffer, nullptr) == value) break;
    }
    return buffer;
}

std::string suffixed(std::string_view name, std::string_view suffix) {
    return std::string(name) + std::string(suffix);
}

void active(const MetricsFacts& f, std::string& out, std::string_view name) {
    sample(out, name, {}, number(std::uint64_t{f.status.active}));
}
void max_connections(const MetricsFacts& f, std::string& out, std::string_view name) {
    sample(out, name, {}, number(std::uint64_t{f.status.limits.max_connections}));
}
void accepted(const MetricsFacts& f, std::string& out, std::string_view name) {
    sample(out, name, {}, number(f.status.totals.accepted()));
}
void ended(const MetricsFacts& f, std::string& out, std::string_view name) {
    const ConnectionTotals& t = f.status.totals;
    sample(out, name, {{"outcome", "completed"}}, number(t.completed()));
    sample(out, name, {{"outcome", "killed"}}, number(t.killed()));
    sample(out, name, {{"outcome", "failed"}}, number(t.failed()));
}
// The reasons are status.refused's keys (ConnectionTotals::refusals()).
void refused(const MetricsFacts& f, std::string& out, std::string_view name) {
    for (const RefusalCount& row : f.status.totals.refusals())
        sample(out, name, {{"reason", row.reason}}, number(row.count));
}
void durations(const MetricsFacts& f, std::string& out, std::string_view name) {
    const DurationHistogram h = f.status.totals.durations();
    const auto bounds = duration_buckets_s();
    const std::string bucket = suffixed(name, "_bucket");
    for (std::size_t i = 0; i < bounds.size(); ++i)
        sample(out, bucket, {{"le", number(bounds[i])}}, number(h.cumulative[i]));
    sample(out, bucket, {{"le", "+Inf"}}, number(h.cumulative.back()));
    sample(out, suffixed(name, "_sum"), {}, number(h.sum_s));
    sample(out, suffixed(name, "_count"), {}, number(h.count));
}
void bytes(const MetricsFacts& f, std::string& out, std::string_view name) {
    sample(out, name, {{"direction", "in"}}, number(f.status.totals.bytes_in()));
    sample(out, name, {{"direction", "out"}}, number(f.status.totals.bytes_out()));
}
void accepting(const MetricsFacts& f, std::string& out, std::string_view name) {
    sample(out, name, {}, f.status.accepting ? "1" : "0");
}
void state(const MetricsFacts& f, std::string& out, std::string_view name) {
    for (std::string_view s : {"running", "draining", "stopping"})
        sample(out, name, {{"state", s}}, f.status.state == s ? "1" : "0");
}
void reloads(const MetricsFacts& f, std::string& out, std::string_view name) {
    sample(out, name, {{"result", "ok"}}, number(f.reloads_ok));
    sample(out, name, {{"result", "failed"}}, number(f.reloads_failed));
}
void start_time(const MetricsFacts& f, std::string& out, std::string_view name) {
    sample(out, name, {}, number(f.start_time_s));
}
void build_info(const MetricsFacts& f, std::string& out, std::string_view name) {
    sample(out, name,
           {{"version", std::string(forkd_version())}, {"mode", mode_name(f.status.mode)}, {"handler", handler_name(f.status.handler)}}, "1");
}

// The contract's table (interface.md, "Observability"), in its order.
const auto rows = std::to_array<MetricRow>({
    {"forkd_connections_active", "gauge", "Connections being served.", active},
    {"forkd_connections_max", "gauge", "max-connections (0 = unlimited).", max_connections},
    {"forkd_connections_accepted_total", "counter", "Connections accepted and started.", accepted},
    {"forkd_connections_ended_total", "counter", "Connections ended, by outcome.", ended},
    {"forkd_refused_total", "counter", "Connections refused, by reason.", refused},
    {"forkd_connection_duration_seconds", "histogram", "How long ended connections lasted.", durations},
    {"forkd_bytes_total", "counter", "Bytes from and to clients, where forkd counts them.", bytes},
    {"forkd_accepting", "gauge", "1 while forkd accepts new connections.", accepting},
    {"forkd_state", "gauge", "1 for the daemon's current state.", state},
    {"forkd_reloads_total", "counter", "Configuration reloads, by result.", reloads},
    {"forkd_start_time_seconds", "gauge", "When forkd started, in seconds since the Unix epoch.", start_time},
    {"forkd_build_info", "gauge", "forkd's version, mode and handler.", build_info},
});

} // namespace

std::span<const MetricRow> metric_rows() { return rows; }

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string render_metrics(const MetricsFacts& facts) {
    std::string out;
    out.reserve(4096);
    for (const MetricRow& row : rows) {
        out += "# HELP ";
        out += row.name;
        out += ' ';
        out += row.help;
        out += "\n# TYPE ";
        out += row.name;
        out += ' ';
        out += row.type;
        out += '\n';
        row.samples(facts, out, row.name);
    }
    return out;
}

} // namespace forkd
