// SPDX-License-Identifier: MIT
#pragma once
// What a reload changed: every option of the table whose rendering (as forkd -t shows it) differs
// between two configurations, in table order.
#include <string>
#include <vector>

namespace forkd {

struct Config;

struct ConfigChange {
    std::string option;          // "max-connections"
    std::string before, after;   // rendered; repeated values joined by ", "; "(not set)"
};

std::vector<ConfigChange> config_changes(const Config& before, const Config& after);
// "max-connections 5 -> 256"
std::string describe_change(const ConfigChange& change);

} // namespace forkd
