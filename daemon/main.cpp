// SPDX-License-Identifier: MIT
// forkd: the fork-per-connection super-server. Parse, check, then hand over to run_daemon().
#include "common/config/config.hpp"
#include "common/version.hpp"
#include "daemon/exec/exec_plan.hpp"
#include "daemon/startup.hpp"
#include "daemon/upgrade/state_memfd.hpp"
#include "daemon/upgrade/upgrade_check.hpp"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

namespace {

void print_config_error(const std::exception& e) {
    std::istringstream lines(e.what());  // a config error holds one problem per line
    for (std::string line; std::getline(lines, line);) std::fprintf(stderr, "forkd: %s\n", line.c_str());
}

// What a live upgrade re-executes: argv[0] made absolute (not resolved, so that a symbolic
// link a package update moves is followed anew), or, found on PATH, the file we run now.
forkd::Manager::Origin origin_of(int argc, char** argv) {
    forkd::Manager::Origin origin;
    origin.argv.assign(argv, argv + argc);
    const std::string zero = argc > 0 ? argv[0] : "";
    char buffer[PATH_MAX];
    if (zero.find('/') != std::string::npos) {
        if (zero.front() == '/') origin.binary = zero;
        else if (::getcwd(buffer, sizeof buffer)) origin.binary = std::string(buffer) + "/" + zero;
    } else if (const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1); n > 0) {
        origin.binary.assign(buffer, std::size_t(n));
    }
    return origin;
}

// forkd --upgrade-check VERSION ARGS...: can this binary take over a daemon started with ARGS
// whose state record has VERSION? (daemon/upgrade/upgrade_check.hpp)
int upgrade_check(const forkd::upgrade::CheckMode& mode) {
    using namespace forkd;
    if (!upgrade::can_read(mode.version)) {
        std::fprintf(stderr, "forkd: forkd %s reads upgrade state versions %u to %u, not %u\n", std::string(forkd_version()).c_str(),
                     upgrade::oldest_readable_version, upgrade::state_version, mode.version);
        return exit_config;
    }
    if (!upgrade::can_take_over(mode.version)) {
        std::fprintf(stderr,
                     "forkd: forkd %s cannot take over a daemon of upgrade state version %u (from %u on): its "
                     "scoreboard has an older layout; restart forkd instead\n",
                     std::string(forkd_version()).c_str(), mode.version, upgrade::oldest_adoptable_version);
        return exit_config;
    }
    try {
        std::vector<const char*> args;
        for (const auto& a : mode.argv) args.push_back(a.c_str());
        const CommandLine command_line = parse_command_line(int(args.size()), args.data());
        const Config config = load_config(command_line);
        (void)build_exec_plan(config);
    } catch (const std::exception& e) {
        print_config_error(e);
        return exit_config;
    }
    std::printf("forkd %s\n", std::string(forkd_version()).c_str());
    return exit_clean;
}

} // namespace

int main(int argc, char** argv) {
    using namespace forkd;
    if (auto check = upgrade::parse_check_mode(argc, argv)) return upgrade_check(*check);
    const int state_fd = upgrade::take_state_fd_from_environment();
    CommandLine command_line;
    Config config;
    try {
        command_line = parse_command_line(argc, argv);
        switch (command_line.action) {
        case CommandLine::Action::help: std::cout << command_line.help_text; return exit_clean;
        case CommandLine::Action::version: std::cout << "forkd " << forkd_version() << "\n"; return exit_clean;
        default: break;
        }
        config = load_config(command_line);
        // user, group, program, chdir: what the start and a reload check too
        const ExecPlan plan = build_exec_plan(config);
        if (command_line.action == CommandLine::Action::check_config)
            for (const auto& warning : plan.warnings) std::fprintf(stderr, "forkd: warning: %s\n", warning.c_str());
    } catch (const std::exception& e) {
        print_config_error(e);
        return exit_config;
    }
    if (command_line.action == CommandLine::Action::check_config) {
        std::cout << render_config(config);
        std::fprintf(stderr, "forkd: configuration OK\n");
        return exit_clean;
    }
    return run_daemon(command_line, std::move(config), origin_of(argc, argv), state_fd);
}
