// SPDX-License-Identifier: MIT
#include "harness/child_process.hpp"

#include "common/base/error.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

extern char** environ;

namespace forkd::test {

namespace {

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

} // namespace

ExecPlan::ExecPlan(std::vector<std::string> a, std::vector<std::string> e)
    : argv(std::move(a)), envp(std::move(e)) {
    for (auto& s : argv) argv_ptrs.push_back(s.data());
    argv_ptrs.push_back(nullptr);
    for (auto& s : envp) envp_ptrs.push_back(s.data());
    envp_ptrs.push_back(nullptr);
}

std::vector<std::string> build_env(const std::map<std::string, std::string>& overrides,
                                   const std::vector<std::string>& remove) {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& name : remove) env.erase(name);
    for (const auto& [k, v] : overrides) env[k] = v;
    std::vector<std::string> out;
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
}

pid_t spawn(const ExecPlan& plan, const ChildIo& io) {
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(system_error("fork").message());
    if (pid > 0) return pid;

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
    }
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(io.stdin_fd >= 0 ? io.stdin_fd : null_fd, 0);
    ::dup2(io.stdout_fd >= 0 ? io.stdout_fd : null_fd, 1);
    ::dup2(io.stderr_fd >= 0 ? io.stderr_fd : null_fd, 2);
    ::close_range(3, ~0U, 0);
    if (io.nofile) {
        struct rlimit rl{*io.nofile, *io.nofile};
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(126);
    }
    ::execvpe(plan.argv_ptrs[0], plan.argv_ptrs.data(), plan.envp_ptrs.data());
    ::_exit(127);
}

std::optional<int> try_reap(pid_t pid) {
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid) return decode_status(status);
    return std::nullopt;
}

std::optional<int> reap_within(pid_t pid, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (auto st = try_reap(pid)) return st;
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(5ms);
    }
}

UniqueFd open_output(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(system_error("open " + path).message());
    return UniqueFd(fd);
}

} // namespace forkd::test
