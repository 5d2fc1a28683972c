// SPDX-License-Identifier: MIT
// forkd: the fork-per-connection super-server. Parse, check, then hand over to run_daemon().
#include "common/config/config.hpp"
#include "daemon/exec/exec_plan.hpp"
#include "daemon/startup.hpp"

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
    using namespace forkd;
    CommandLine command_line;
    Config config;
    try {
        command_line = parse_command_line(argc, argv);
        switch (command_line.action) {
        case CommandLine::Action::help: std::cout << command_line.help_text; return exit_clean;
        case CommandLine::Action::version: std::cout << "forkd " FORKD_VERSION "\n"; return exit_clean;
        default: break;
        }
        config = load_config(command_line);
        // user, group, program, chdir: what the start and a reload check too
        const ExecPlan plan = build_exec_plan(config);
        if (command_line.action == CommandLine::Action::check_config)
            for (const auto& warning : plan.warnings) std::fprintf(stderr, "forkd: warning: %s\n", warning.c_str());
    } catch (const std::exception& e) {
        std::istringstream lines(e.what());  // a config error holds one problem per line
        for (std::string line; std::getline(lines, line);) std::fprintf(stderr, "forkd: %s\n", line.c_str());
        return exit_config;
    }
    if (command_line.action == CommandLine::Action::check_config) {
        std::cout << render_config(config);
        std::fprintf(stderr, "forkd: configuration OK\n");
        return exit_clean;
    }
    return run_daemon(command_line, std::move(config));
}
