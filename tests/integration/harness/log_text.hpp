// SPDX-License-Identifier: MIT
#pragma once
// Reading the daemon's logfmt lines ("event=listening address=127.0.0.1:4242").
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace forkd::test {

std::vector<std::string> lines_of(const std::string& text);
// The value of key=VALUE (or key="VALUE") in a log line, nullopt if the line has no such key.
std::optional<std::string> field_value(const std::string& line, const std::string& key);
// The port of "HOST:PORT" ("[::1]:80" too), 0 if there is none.
std::uint16_t port_of_address(const std::string& address);

} // namespace forkd::test
