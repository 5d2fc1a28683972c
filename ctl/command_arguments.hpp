// SPDX-License-Identifier: MIT
#pragma once
// The positional words of the commands that take some, into the request (rows of
// ctl/command_table.cpp). Each throws UsageError saying what is missing or wrong.
#include "ctl/command_table.hpp"

#include <string>
#include <vector>

namespace forkd::ctl {

// set KEY VALUE: KEY one of control::set_keys() (a unique prefix is enough).
void parse_set_arguments(const CommandSpec& spec, const std::vector<std::string>& args, control::Request& request);
// kill ID: a connection id from `forkctl list`.
void parse_kill_arguments(const CommandSpec& spec, const std::vector<std::string>& args, control::Request& request);

} // namespace forkd::ctl
