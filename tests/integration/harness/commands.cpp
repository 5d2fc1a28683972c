// SPDX-License-Identifier: MIT
#include "harness/commands.hpp"

#include "common/base/error.hpp"
#include "common/base/unique_fd.hpp"
#include "harness/child_process.hpp"
#include "harness/daemon.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace forkd::test {

namespace {

// A pipe: {read end, write end}, both close-on-exec.
std::pair<UniqueFd, UniqueFd> make_pipe() {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) throw std::runtime_error(system_error("pipe2").message());
    return {UniqueFd(ends[0]), UniqueFd(ends[1])};
}

} // namespace

CommandResult run(const std::vector<std::string>& argv, Millis timeout,
                  const std::map<std::string, std::string>& env) {
    CommandResult result;
    auto [out_r, out_w] = make_pipe();
    auto [err_r, err_w] = make_pipe();
    ExecPlan plan(argv, build_env(env));
    pid_t pid = spawn(plan, {-1, out_w.get(), err_w.get(), std::nullopt});
    out_w.reset();
    err_w.reset();

    auto deadline = Clock::now() + timeout;
    bool killed = false;
    char buf[65536];
    while (out_r || err_r) {
        pollfd fds[2];
        int n = 0;
        if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
        if (err_r) fds[n++] = {err_r.get(), POLLIN, 0};
        int r = ::poll(fds, static_cast<nfds_t>(n), std::max(1, remaining_ms(deadline)));
        if (r < 0 && errno == EINTR) continue;
        if (Clock::now() >= deadline && !killed) {
            ::kill(pid, SIGKILL);
            killed = true;
            deadline = Clock::now() + 5s;  // the pipes close once it is gone
            continue;
        }
        if (killed && Clock::now() >= deadline) break;  // a grandchild holds the pipes
        for (int i = 0; i < n; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
            bool is_out = out_r && fds[i].fd == out_r.get();
            if (got <= 0) {
                (is_out ? out_r : err_r).reset();
            } else {
                (is_out ? result.out : result.err).append(buf, static_cast<std::size_t>(got));
            }
        }
    }
    auto st = reap_within(pid, killed ? 5s : std::max(Millis(1000), Millis(remaining_ms(deadline))));
    if (!st) {
        ::kill(pid, SIGKILL);
        st = reap_within(pid, 5s);
    }
    result.exit_code = st.value_or(-1);
    return result;
}

std::vector<std::string> forkctl_argv(const Daemon& daemon, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {FORKCTL_BINARY, "-s", daemon.control_socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

CommandResult forkctl(const Daemon& daemon, const std::vector<std::string>& args, Millis timeout) {
    return run(forkctl_argv(daemon, args), timeout);
}

Result<nlohmann::json> status_json(const Daemon& daemon) {
    auto r = forkctl(daemon, {"--json", "status"});
    if (r.exit_code != 0)
        return failure("forkctl --json status exited " + std::to_string(r.exit_code) + ": " + r.err);
    try {
        return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
        return failure(std::string("forkctl --json status printed no JSON (") + e.what() + "): " + r.out);
    }
}

} // namespace forkd::test
