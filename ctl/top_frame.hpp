// SPDX-License-Identifier: MIT
#pragma once
// forkctl top's screen as a pure function of what forkd said (status, list) and what top keeps
// between frames (rates, idle times, sort order, selection): the same frame is drawn with curses
// and printed by --once, and tested without a terminal.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace forkd::ctl {

enum class TopSort { age, bytes, idle };

struct TopRow {
    std::uint64_t id = 0;
    std::optional<std::int64_t> pid;
    std::string peer;
    std::int64_t age_s = 0;
    std::optional<std::uint64_t> bytes_in, bytes_out;  // unknown for an exec'd handler on UNIX
    std::optional<std::int64_t> idle_s;                // since top saw its bytes change
    std::string state;
    std::uint64_t bytes() const { return bytes_in.value_or(0) + bytes_out.value_or(0); }
};

// Idle time as top sees it: a connection is idle since the frame its byte counts last changed
// (or since top first saw it). Times are monotonic seconds passed in by the caller.
class IdleTracker {
public:
    void update(std::vector<TopRow>& rows, double now_s);

private:
    struct Seen {
        std::uint64_t bytes = 0;
        double since_s = 0;
    };
    std::map<std::uint64_t, Seen> seen_;
};

// Connections and refusals per second between two status replies.
struct TopRates {
    std::optional<double> connections_per_s, refusals_per_s;
};
class RateMeter {
public:
    TopRates update(const nlohmann::json& status, double now_s);

private:
    std::optional<double> last_s_;
    std::uint64_t last_accepted_ = 0, last_refused_ = 0;
};

// The rows of a list reply, in the order of SORT (age, bytes, idle: largest first; ties by id).
std::vector<TopRow> top_rows(const nlohmann::json& list);
void sort_rows(std::vector<TopRow>& rows, TopSort sort);

struct TopFrameInput {
    nlohmann::json status = nlohmann::json::object();
    std::vector<TopRow> rows;  // sorted
    TopRates rates;
    TopSort sort = TopSort::age;
    std::size_t selected = 0;  // index into rows (the highlighted one, `k` kills it)
    std::string message;       // the result of the last key ("connection 7 killed")
    int width = 80, height = 24;
    bool interactive = true;   // false (--once): no selection marker, no key help
};

struct TopFrame {
    std::vector<std::string> lines;         // each at most width characters
    std::optional<std::size_t> highlight;  // index into lines of the selected row
};

TopFrame top_frame(const TopFrameInput& input);
// The frame as text, one "\n" after each line (--once).
std::string frame_text(const TopFrame& frame);

} // namespace forkd::ctl
