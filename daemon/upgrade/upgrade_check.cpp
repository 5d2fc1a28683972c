// SPDX-License-Identifier: MIT
#include "daemon/upgrade/upgrade_check.hpp"

#include "daemon/core/child_setup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace forkd::upgrade {
namespace {

constexpr std::size_t max_output = 65536;

std::string first_line(const std::string& text) {
    std::string line = text.substr(0, text.find('\n'));
    if (line.rfind("forkd: ", 0) == 0) line.erase(0, 7);
    return line;
}

} // namespace

Result<CheckChild> start_upgrade_check(const std::string& binary, const std::vector<std::string>& argv,
                                       std::uint32_t version) {
    if (::access(binary.c_str(), X_OK) != 0) return system_error("new binary " + binary);
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC | O_NONBLOCK) < 0) return system_error("pipe");
    UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
    if (pipe2(err_pipe, O_CLOEXEC | O_NONBLOCK) < 0) return system_error("pipe");
    UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);
    // The child's ends block as a program expects (dup2 keeps the file's O_NONBLOCK).
    if (fcntl(out_write.get(), F_SETFL, 0) < 0 || fcntl(err_write.get(), F_SETFL, 0) < 0)
        return system_error("fcntl");

    std::vector<std::string> args{binary, check_option, std::to_string(version)};
    args.insert(args.end(), argv.begin() + (argv.empty() ? 0 : 1), argv.end());
    std::vector<char*> raw;
    for (auto& a : args) raw.push_back(a.data());
    raw.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    const CleanSignalsSpawnAttr attr;
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, binary.c_str(), &actions, attr.get(), raw.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return Error{rc, "cannot run " + binary};
    return CheckChild{pid, std::move(out_read), std::move(err_read)};
}

bool read_check_output(int fd, std::string& text) {
    for (;;) {
        char buffer[4096];
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got > 0) {
            if (text.size() < max_output) text.append(buffer, std::size_t(got));
            continue;
        }
        if (got < 0 && errno == EINTR) continue;
        return got < 0 && errno == EAGAIN;
    }
}

Error check_timed_out(const std::string& binary, std::chrono::milliseconds timeout) {
    return failure(binary + " --upgrade-check did not answer within " +
                   std::to_string(timeout.count() / 1000) + " s");
}

Result<std::string> judge_upgrade_check(const std::string& binary, int status, const std::string& out_text,
                                        const std::string& err_text) {
    if (WIFSIGNALED(status))
        return failure(binary + " --upgrade-check died of signal " + std::to_string(WTERMSIG(status)) +
                       " (" + strsignal(WTERMSIG(status)) + ")");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        const std::string why = first_line(err_text);
        return failure("new binary " + binary + " refused: " +
                       (why.empty() ? "exit status " + std::to_string(WEXITSTATUS(status)) : why));
    }
    const std::string line = first_line(out_text);
    if (line.rfind("forkd ", 0) != 0 || line.size() <= 6)
        return failure("new binary " + binary + " gave no version in its check: " + quoted(line));
    return line.substr(6);
}

std::optional<CheckMode> parse_check_mode(int argc, const char* const* argv) {
    if (argc < 2 || std::strcmp(argv[1], check_option) != 0) return std::nullopt;
    CheckMode mode;
    if (argc > 2) {
        char* end = nullptr;
        const unsigned long v = std::strtoul(argv[2], &end, 10);
        mode.version = (end != argv[2] && !*end && v <= 0xffffffffu) ? std::uint32_t(v) : 0;
    }
    mode.argv.push_back(argv[0]);
    for (int i = 3; i < argc; ++i) mode.argv.push_back(argv[i]);
    return mode;
}

} // namespace forkd::upgrade
