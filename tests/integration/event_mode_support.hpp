// SPDX-License-Identifier: MIT
#pragma once
// What the event-mode tests share: their config, status and list lookups, the test patterns.
#include "harness.hpp"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <string>
#include <vector>

namespace forkd::test {

// listen on 127.0.0.1:0 in event mode, with these lines too (one worker unless they say).
inline DaemonOptions event_config(std::vector<std::string> lines) {
    bool workers = false;
    for (const auto& line : lines) workers |= line.rfind("workers", 0) == 0;
    lines.insert(lines.begin(), "mode = event");
    if (!workers) lines.push_back("workers = 1");
    return config(std::move(lines));
}

inline nlohmann::json list_json(const Daemon& d) {
    const auto result = forkctl(d, {"--json", "list"});
    auto parsed = nlohmann::json::parse(result.out, nullptr, false);
    return parsed.is_discarded() ? nlohmann::json::array() : parsed;
}

inline long active_of(const Daemon& d) {
    auto status = status_json(d);
    return status.ok() ? (*status)["active"].get<long>() : -1;
}

inline std::vector<pid_t> worker_pids(const Daemon& d) {
    std::vector<pid_t> pids;
    auto status = status_json(d);
    if (!status.ok()) return pids;
    for (const auto& w : (*status)["workers"]) pids.push_back(pid_t(w["pid"].get<long>()));
    return pids;
}

inline std::string test_pattern(std::size_t size) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i) s[i] = char((i * 7 + i / 251) & 0xff);
    return s;
}

inline std::string expected_chargen_line(std::size_t n) {
    std::string line;
    for (std::size_t i = 0; i < 72; ++i) line += char(' ' + (n + i) % 95);
    return line + "\r\n";
}


} // namespace forkd::test
