// SPDX-License-Identifier: MIT
#pragma once
// forkctl's output for people: status like `systemctl status`, list as an aligned table.
// Pure functions of the daemon's JSON; fields the daemon does not send are shown as "-".
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace forkd::ctl {

std::string format_status(const nlohmann::json& status);
std::string format_list(const nlohmann::json& connections);
// "configuration reloaded:" and what changed, one option a line, and the values set with
// forkctl set that the reload replaced.
std::string format_reload(const nlohmann::json& result);
// upgrade: "upgraded in place: forkd 0.2.0 -> 0.2.1 (pid 1234, generation 1), 3 connections carried over"
std::string format_upgrade(const nlohmann::json& result);

// "42s", "3min 5s", "2h 10min", "4d 3h".
std::string format_duration(std::int64_t seconds);
// "512", "12.3K", "4.0M": powers of 1024, as ls -h.
std::string format_bytes(std::uint64_t bytes);

} // namespace forkd::ctl
