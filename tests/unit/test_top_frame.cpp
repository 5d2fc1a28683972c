// SPDX-License-Identifier: MIT
// forkctl top's frame without a terminal: the header from status, the rows from list in the
// chosen order, the selection, idle times and rates between frames, and 80x24.
#include "ctl/top_frame.hpp"

#include <gtest/gtest.h>

namespace forkd::ctl {
namespace {

using nlohmann::json;

json status() {
    return {{"version", "1.0"}, {"pid", 99}, {"state", "running"}, {"accepting", true}, {"active", 3},
            {"uptime_s", 65}, {"handler", "echo"}, {"limits", {{"max_connections", 256}}},
            {"totals", {{"accepted", 100}, {"killed", 1}, {"failed", 0}}},
            {"refused", {{"limit", 4}, {"per_source", 1}}}};
}

json list() {
    return json::array({
        {{"id", 1}, {"pid", 11}, {"peer", "127.0.0.1:1001"}, {"age_s", 30}, {"state", "running"},
         {"bytes_in", 10}, {"bytes_out", 10}},
        {{"id", 2}, {"pid", 12}, {"peer", "127.0.0.1:1002"}, {"age_s", 5}, {"state", "running"},
         {"bytes_in", 5000}, {"bytes_out", 5000}},
        {{"id", 3}, {"pid", nullptr}, {"peer", "127.0.0.1:1003"}, {"age_s", 10}, {"state", "starting"}},
    });
}

std::vector<std::uint64_t> ids(const std::vector<TopRow>& rows) {
    std::vector<std::uint64_t> out;
    for (const TopRow& row : rows) out.push_back(row.id);
    return out;
}

TEST(TopFrame, SortingByAgeBytesAndIdle) {
    auto rows = top_rows(list());
    sort_rows(rows, TopSort::age);
    EXPECT_EQ(ids(rows), (std::vector<std::uint64_t>{1, 3, 2}));
    sort_rows(rows, TopSort::bytes);
    EXPECT_EQ(ids(rows), (std::vector<std::uint64_t>{2, 1, 3}));
    IdleTracker idle;
    idle.update(rows, 100);
    rows[1].bytes_in = 11;  // connection 1 moved
    idle.update(rows, 107);
    EXPECT_EQ(rows[0].idle_s, 7);
    EXPECT_EQ(rows[1].idle_s, 0);
    EXPECT_FALSE(rows[2].idle_s) << "no byte counts, no idle time";
    sort_rows(rows, TopSort::idle);
    EXPECT_EQ(ids(rows), (std::vector<std::uint64_t>{2, 1, 3}));
}

TEST(TopFrame, RatesBetweenTwoStatusReplies) {
    RateMeter meter;
    EXPECT_FALSE(meter.update(status(), 10).connections_per_s) << "one sample, no rate";
    json later = status();
    later["totals"]["accepted"] = 120;
    later["refused"]["limit"] = 8;
    TopRates rates = meter.update(later, 12);
    EXPECT_DOUBLE_EQ(*rates.connections_per_s, 10.0);
    EXPECT_DOUBLE_EQ(*rates.refusals_per_s, 2.0);
}

TEST(TopFrame, FitsEightyByTwentyFourWithKeysAndSelection) {
    TopFrameInput input;
    input.status = status();
    input.rows = top_rows(list());
    sort_rows(input.rows, TopSort::age);
    input.rates.connections_per_s = 12.5;
    input.rates.refusals_per_s = 0;
    input.selected = 1;
    TopFrame frame = top_frame(input);
    ASSERT_EQ(frame.lines.size(), 24u);
    for (const std::string& line : frame.lines) EXPECT_LE(line.size(), 80u) << line;
    EXPECT_NE(frame.lines[0].find("running, accepting"), std::string::npos);
    EXPECT_NE(frame.lines[1].find("load 3/256"), std::string::npos);
    EXPECT_NE(frame.lines[1].find("conn/s 12.5"), std::string::npos);
    EXPECT_NE(frame.lines[1].find("refused/s 0.0"), std::string::npos);
    EXPECT_NE(frame.lines[3].find("PEER"), std::string::npos);
    ASSERT_TRUE(frame.highlight);
    EXPECT_EQ(*frame.highlight, 5u);
    EXPECT_TRUE(frame.lines[5].starts_with(">")) << frame.lines[5];
    EXPECT_NE(frame.lines[5].find("127.0.0.1:1003"), std::string::npos);
    EXPECT_NE(frame.lines.back().find("a age"), std::string::npos);
    EXPECT_NE(frame.lines.back().find("k kill"), std::string::npos);
    EXPECT_NE(frame.lines.back().find("q quit"), std::string::npos);
}

TEST(TopFrame, ManyRowsScrollToTheSelection) {
    TopFrameInput input;
    input.status = status();
    for (std::uint64_t id = 1; id <= 40; ++id) {
        TopRow row;
        row.id = id;
        row.peer = "p";
        input.rows.push_back(row);
    }
    input.selected = 30;
    TopFrame frame = top_frame(input);
    EXPECT_EQ(frame.lines.size(), 24u);
    ASSERT_TRUE(frame.highlight);
    EXPECT_NE(frame.lines[*frame.highlight].find(" 31 "), std::string::npos) << frame.lines[*frame.highlight];
}

TEST(TopFrame, OnceIsPlainTextWithEveryRow) {
    TopFrameInput input;
    input.status = status();
    input.rows = top_rows(list());
    input.interactive = false;
    const std::string text = frame_text(top_frame(input));
    EXPECT_EQ(text.find(">"), std::string::npos);
    EXPECT_EQ(text.find("q quit"), std::string::npos);
    EXPECT_NE(text.find("127.0.0.1:1002"), std::string::npos);
    EXPECT_NE(text.find("conn/s -"), std::string::npos);
    EXPECT_EQ(text.find(" \n"), std::string::npos) << "no trailing blanks";
    input.rows.clear();
    EXPECT_NE(frame_text(top_frame(input)).find("no active connections"), std::string::npos);
}

} // namespace
} // namespace forkd::ctl
