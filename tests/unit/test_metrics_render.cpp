// SPDX-License-Identifier: MIT
// The Prometheus text: every metric of the contract once, with its type, labels and values from
// the same facts status shows; the refusal reasons are status.refused's keys.
#include "daemon/master/metrics_render.hpp"
#include "common/version.hpp"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

namespace forkd {
namespace {

MetricsFacts sample_facts() {
    MetricsFacts facts;
    facts.status.state = "draining";
    facts.status.accepting = false;
    facts.status.active = 2;
    facts.status.limits.max_connections = 10;
    facts.status.handler = HandlerKind::echo;
    facts.status.totals.started();
    facts.status.totals.started();
    facts.status.totals.ended(Ending::killed);
    facts.status.totals.observe_end(2'000'000, true, 10, 20);    // 2 ms
    facts.status.totals.observe_end(7'000'000'000, false, 0, 0); // 7 s, bytes unknown
    facts.status.totals.refused(Refusal::limit, 2);
    facts.reloads_ok = 3;
    facts.reloads_failed = 1;
    facts.start_time_s = 1700000000.5;
    return facts;
}

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (l == line) return true;
    return false;
}

TEST(MetricsRender, EveryContractMetricHasHelpTypeAndSamples) {
    const std::string text = render_metrics(sample_facts());
    const std::set<std::string> contract = {
        "forkd_connections_active gauge", "forkd_connections_max gauge",
        "forkd_connections_accepted_total counter", "forkd_connections_ended_total counter",
        "forkd_refused_total counter", "forkd_connection_duration_seconds histogram",
        "forkd_bytes_total counter", "forkd_accepting gauge", "forkd_state gauge",
        "forkd_reloads_total counter", "forkd_start_time_seconds gauge", "forkd_build_info gauge"};
    EXPECT_EQ(metric_rows().size(), contract.size());
    for (const std::string& row : contract) EXPECT_TRUE(has_line(text, "# TYPE " + row)) << row;
    for (const MetricRow& row : metric_rows())
        EXPECT_NE(text.find("# HELP " + std::string(row.name) + " "), std::string::npos) << row.name;
    EXPECT_TRUE(text.ends_with("\n"));
}

TEST(MetricsRender, ValuesComeFromTheFacts) {
    const std::string text = render_metrics(sample_facts());
    EXPECT_TRUE(has_line(text, "forkd_connections_active 2"));
    EXPECT_TRUE(has_line(text, "forkd_connections_max 10"));
    EXPECT_TRUE(has_line(text, "forkd_connections_accepted_total 2"));
    EXPECT_TRUE(has_line(text, "forkd_connections_ended_total{outcome=\"killed\"} 1"));
    EXPECT_TRUE(has_line(text, "forkd_connections_ended_total{outcome=\"completed\"} 0"));
    EXPECT_TRUE(has_line(text, "forkd_bytes_total{direction=\"in\"} 10"));
    EXPECT_TRUE(has_line(text, "forkd_bytes_total{direction=\"out\"} 20"));
    EXPECT_TRUE(has_line(text, "forkd_accepting 0"));
    EXPECT_TRUE(has_line(text, "forkd_state{state=\"draining\"} 1"));
    EXPECT_TRUE(has_line(text, "forkd_state{state=\"running\"} 0"));
    EXPECT_TRUE(has_line(text, "forkd_reloads_total{result=\"ok\"} 3"));
    EXPECT_TRUE(has_line(text, "forkd_reloads_total{result=\"failed\"} 1"));
    EXPECT_TRUE(has_line(text, "forkd_start_time_seconds 1700000000.5"));
    EXPECT_TRUE(has_line(text, "forkd_build_info{version=\"" + std::string(forkd_version()) + "\",mode=\"fork\",handler=\"echo\"} 1"));
}

TEST(MetricsRender, RefusalReasonsAreStatusRefusedKeys) {
    const MetricsFacts facts = sample_facts();
    const std::string text = render_metrics(facts);
    const nlohmann::json refused = render_status(facts.status)["refused"];
    ASSERT_EQ(refused.size(), counted_refusals().size());
    for (const auto& [reason, count] : refused.items())
        EXPECT_TRUE(has_line(text, "forkd_refused_total{reason=\"" + reason + "\"} " + std::to_string(count.get<int>())))
            << reason;
}

TEST(MetricsRender, DurationHistogramIsCumulative) {
    const std::string text = render_metrics(sample_facts());
    EXPECT_TRUE(has_line(text, "forkd_connection_duration_seconds_bucket{le=\"0.001\"} 0"));
    EXPECT_TRUE(has_line(text, "forkd_connection_duration_seconds_bucket{le=\"0.005\"} 1"));
    EXPECT_TRUE(has_line(text, "forkd_connection_duration_seconds_bucket{le=\"5\"} 1"));
    EXPECT_TRUE(has_line(text, "forkd_connection_duration_seconds_bucket{le=\"10\"} 2"));
    EXPECT_TRUE(has_line(text, "forkd_connection_duration_seconds_bucket{le=\"+Inf\"} 2"));
    EXPECT_TRUE(has_line(text, "forkd_connection_duration_seconds_count 2"));
    EXPECT_NE(text.find("forkd_connection_duration_seconds_sum 7.002"), std::string::npos);
}

TEST(MetricsRender, LabelValuesAreEscaped) {
    EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

} // namespace
} // namespace forkd
