// SPDX-License-Identifier: MIT
#include "ctl/top_frame.hpp"

#include "ctl/human_format.hpp"

#include <algorithm>
#include <cstdio>

namespace forkd::ctl {
namespace {

using nlohmann::json;

constexpr int header_lines = 4;  // two of state and load, a blank, the column titles
constexpr int footer_lines = 1;

// A count: non-negative, whether the JSON holds it as signed or unsigned.
bool is_count(const json& value) {
    return value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0);
}

std::uint64_t unsigned_at(const json& object, const char* key) {
    if (!object.is_object()) return 0;
    auto it = object.find(key);
    return it != object.end() && is_count(*it) ? it->get<std::uint64_t>() : 0;
}

std::string text_at(const json& object, const char* key) {
    if (!object.is_object()) return "-";
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return "-";
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

std::uint64_t refused_sum(const json& status) {
    std::uint64_t sum = 0;
    auto it = status.find("refused");
    if (it == status.end() || !it->is_object()) return 0;
    for (const auto& [reason, count] : it->items())
        if (is_count(count)) sum += count.get<std::uint64_t>();
    return sum;
}

std::string rate_text(std::optional<double> rate) {
    if (!rate) return "-";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f", *rate);
    return buffer;
}

std::string fit(std::string line, int width) {
    if (width > 0 && line.size() > static_cast<std::size_t>(width)) line.resize(static_cast<std::size_t>(width));
    return line;
}

std::string sort_name(TopSort sort) {
    switch (sort) {
    case TopSort::age: return "age";
    case TopSort::bytes: return "bytes";
    case TopSort::idle: return "idle";
    }
    return "age";
}

std::string row_line(const TopRow& row, bool selected, bool interactive) {
    char line[160];
    const std::string pid = row.pid ? std::to_string(*row.pid) : "-";
    const std::string in = row.bytes_in ? format_bytes(*row.bytes_in) : "-";
    const std::string out = row.bytes_out ? format_bytes(*row.bytes_out) : "-";
    const std::string idle = row.idle_s ? format_duration(*row.idle_s) : "-";
    std::snprintf(line, sizeof line, "%s%6llu %7s %-22.22s %8s %7s %7s %7s %-8s",
                  interactive ? (selected ? ">" : " ") : "", static_cast<unsigned long long>(row.id), pid.c_str(),
                  row.peer.c_str(), format_duration(row.age_s).c_str(), in.c_str(), out.c_str(), idle.c_str(),
                  row.state.c_str());
    return line;
}

} // namespace

void IdleTracker::update(std::vector<TopRow>& rows, double now_s) {
    std::map<std::uint64_t, Seen> next;
    for (TopRow& row : rows) {
        auto it = seen_.find(row.id);
        Seen seen{row.bytes(), now_s};
        if (it != seen_.end() && it->second.bytes == row.bytes()) seen.since_s = it->second.since_s;
        if (row.bytes_in || row.bytes_out) row.idle_s = static_cast<std::int64_t>(now_s - seen.since_s);
        next.emplace(row.id, seen);
    }
    seen_ = std::move(next);  // forgets the connections that ended
}

TopRates RateMeter::update(const json& status, double now_s) {
    const std::uint64_t accepted = status.is_object() && status.contains("totals")
                                       ? unsigned_at(status["totals"], "accepted") : 0;
    const std::uint64_t refused = status.is_object() ? refused_sum(status) : 0;
    TopRates rates;
    if (last_s_ && now_s > *last_s_ && accepted >= last_accepted_ && refused >= last_refused_) {
        const double span = now_s - *last_s_;
        rates.connections_per_s = static_cast<double>(accepted - last_accepted_) / span;
        rates.refusals_per_s = static_cast<double>(refused - last_refused_) / span;
    }
    last_s_ = now_s;
    last_accepted_ = accepted;
    last_refused_ = refused;
    return rates;
}

std::vector<TopRow> top_rows(const json& list) {
    std::vector<TopRow> rows;
    if (!list.is_array()) return rows;
    for (const json& item : list) {
        if (!item.is_object()) continue;
        TopRow row;
        row.id = unsigned_at(item, "id");
        if (auto it = item.find("pid"); it != item.end() && it->is_number_integer()) row.pid = it->get<std::int64_t>();
        row.peer = text_at(item, "peer");
        if (auto it = item.find("age_s"); it != item.end() && it->is_number_integer()) row.age_s = it->get<std::int64_t>();
        if (auto it = item.find("bytes_in"); it != item.end() && is_count(*it)) row.bytes_in = it->get<std::uint64_t>();
        if (auto it = item.find("bytes_out"); it != item.end() && is_count(*it)) row.bytes_out = it->get<std::uint64_t>();
        row.state = text_at(item, "state");
        rows.push_back(std::move(row));
    }
    return rows;
}

void sort_rows(std::vector<TopRow>& rows, TopSort sort) {
    auto key = [sort](const TopRow& row) -> std::int64_t {
        switch (sort) {
        case TopSort::age: return row.age_s;
        case TopSort::bytes: return static_cast<std::int64_t>(row.bytes());
        case TopSort::idle: return row.idle_s.value_or(-1);
        }
        return 0;
    };
    std::stable_sort(rows.begin(), rows.end(), [&](const TopRow& a, const TopRow& b) {
        if (key(a) != key(b)) return key(a) > key(b);
        return a.id < b.id;
    });
}

TopFrame top_frame(const TopFrameInput& in) {
    TopFrame frame;
    const json& s = in.status;
    const json limits = s.is_object() && s.contains("limits") ? s["limits"] : json::object();
    const json totals = s.is_object() && s.contains("totals") ? s["totals"] : json::object();
    const std::uint64_t max = unsigned_at(limits, "max_connections");
    const bool accepting = s.is_object() && s.value("accepting", false);
    const std::int64_t uptime = s.is_object() && s.contains("uptime_s") && s["uptime_s"].is_number_integer()
                                    ? s["uptime_s"].get<std::int64_t>() : 0;

    frame.lines.push_back("forkd " + text_at(s, "version") + "  pid " + text_at(s, "pid") + "  " +
                          text_at(s, "state") + (accepting ? ", accepting" : ", not accepting") + "  up " +
                          format_duration(uptime) + "  handler " + text_at(s, "handler"));
    frame.lines.push_back("load " + text_at(s, "active") + "/" + (max ? std::to_string(max) : "unlimited") +
                          "  conn/s " + rate_text(in.rates.connections_per_s) + "  refused/s " +
                          rate_text(in.rates.refusals_per_s) + "  accepted " + text_at(totals, "accepted") +
                          " killed " + text_at(totals, "killed") + " failed " + text_at(totals, "failed"));
    frame.lines.push_back(in.message);
    char titles[160];
    std::snprintf(titles, sizeof titles, "%s%6s %7s %-22s %8s %7s %7s %7s %-8s", in.interactive ? " " : "", "ID", "PID",
                  "PEER", "AGE", "IN", "OUT", "IDLE", "STATE");
    frame.lines.push_back(titles);

    const int room = in.interactive ? std::max(0, in.height - header_lines - footer_lines)
                                    : static_cast<int>(in.rows.size());
    const std::size_t shown = std::min(in.rows.size(), static_cast<std::size_t>(room));
    // The selected row stays on screen: the window scrolls to it.
    std::size_t first = 0;
    if (in.interactive && shown && in.selected >= shown) first = in.selected - shown + 1;
    for (std::size_t i = first; i < first + shown && i < in.rows.size(); ++i) {
        const bool selected = in.interactive && i == in.selected;
        if (selected) frame.highlight = frame.lines.size();
        frame.lines.push_back(row_line(in.rows[i], selected, in.interactive));
    }
    if (in.interactive) {
        while (static_cast<int>(frame.lines.size()) < in.height - footer_lines) frame.lines.emplace_back();
        frame.lines.push_back("sort: a age  b bytes  i idle (now " + sort_name(in.sort) +
                              ")  up/down select  k kill  q quit");
    } else if (in.rows.empty()) {
        frame.lines.push_back(" no active connections");
    }
    for (std::string& line : frame.lines) line = fit(std::move(line), in.width);
    return frame;
}

std::string frame_text(const TopFrame& frame) {
    std::string out;
    for (const std::string& line : frame.lines) {
        std::string trimmed = line;
        while (!trimmed.empty() && trimmed.back() == ' ') trimmed.pop_back();
        out += trimmed + "\n";
    }
    return out;
}

} // namespace forkd::ctl
