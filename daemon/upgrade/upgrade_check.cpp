// SPDX-License-Identifier: MIT
#include "daemon/upgrade/upgrade_check.hpp"

#include "common/base/reap.hpp"
#include "common/base/unique_fd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace forkd::upgrade {
namespace {

std::int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string first_line(const std::string& text) {
    std::string line = text.substr(0, text.find('\n'));
    if (line.rfind("forkd: ", 0) == 0) line.erase(0, 7);
    return line;
}

// Both pipes until EOF or the deadline; false on timeout.
bool read_until_eof(int out, int err, std::string& out_text, std::string& err_text, std::int64_t deadline) {
    pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
    std::string* texts[2] = {&out_text, &err_text};
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        const std::int64_t left = deadline - now_ms();
        if (left <= 0) return false;
        const int n = poll(fds, 2, int(left));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            char buffer[4096];
            const ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
            if (got > 0 && texts[i]->size() < 65536) texts[i]->append(buffer, std::size_t(got));
            if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) fds[i].fd = -1;
        }
    }
    return true;
}

} // namespace

Result<std::string> run_upgrade_check(const std::string& binary, const std::vector<std::string>& argv,
                                      std::uint32_t version, std::chrono::milliseconds timeout) {
    if (::access(binary.c_str(), X_OK) != 0) return system_error("new binary " + binary);
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) < 0) return system_error("pipe");
    UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
    if (pipe2(err_pipe, O_CLOEXEC) < 0) return system_error("pipe");
    UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

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
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, binary.c_str(), &actions, &attr, raw.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return Error{rc, "cannot run " + binary};
    out_write.reset();
    err_write.reset();

    std::string out_text, err_text;
    const bool finished = read_until_eof(out_read.get(), err_read.get(), out_text, err_text,
                                         now_ms() + timeout.count());
    if (!finished) ::kill(pid, SIGKILL);
    const int status = reap(pid);
    if (!finished) return failure(binary + " --upgrade-check did not answer within " +
                                  std::to_string(timeout.count() / 1000) + " s");
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
