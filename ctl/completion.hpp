// SPDX-License-Identifier: MIT
#pragma once
// What bash may complete next, from the command tables: ctl/forkctl.bash-completion calls
// `forkctl [-s S | -i N] __complete WORD...` and offers the words printed, one a line.
#include "ctl/command_line.hpp"

#include <string>
#include <vector>

namespace forkd::ctl {

// Candidates for the word after invocation.complete_words (the command and its arguments so
// far): no words, the command names; then the row's completer, else the command's options.
// An unknown or ambiguous command has none.
std::vector<std::string> completion_words(const Invocation& invocation);

// Completers of rows of ctl/command_table.cpp.
// set: the keys, then for some keys their values.
std::vector<std::string> complete_set_arguments(const Invocation& invocation, const std::vector<std::string>& args);
// kill: the ids of the active connections, when forkd answers within a second.
std::vector<std::string> complete_connection_ids(const Invocation& invocation, const std::vector<std::string>& args);

} // namespace forkd::ctl
