// SPDX-License-Identifier: MIT
#pragma once
// Running commands (forkctl above all) to completion and capturing what they print.
#include "common/base/error.hpp"
#include "harness/wait.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace forkd::test {

class Daemon;

struct CommandResult {
    int exit_code = -1;   // 128+signal if killed
    std::string out, err;
};
// Runs argv with a timeout (killed by pid after it), capturing stdout and stderr.
CommandResult run(const std::vector<std::string>& argv, Millis timeout = 20s,
                  const std::map<std::string, std::string>& env = {});
// forkctl -s <daemon's control socket> ARGS...: the argv, and the run of it.
std::vector<std::string> forkctl_argv(const Daemon& daemon, const std::vector<std::string>& args);
CommandResult forkctl(const Daemon& daemon, const std::vector<std::string>& args,
                      Millis timeout = 20s);
// `forkctl --json status` parsed; an Error saying why if forkctl failed or printed no JSON.
Result<nlohmann::json> status_json(const Daemon& daemon);

} // namespace forkd::test
