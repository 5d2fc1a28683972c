// SPDX-License-Identifier: MIT
#include "daemon/exec/exec_launcher.hpp"

#include "common/base/error.hpp"
#include "daemon/core/child_setup.hpp"

#include "common/address.hpp"
#include "common/base/reap.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

// The child is started with clone(CLONE_VM | CLONE_VFORK): it borrows the master's memory
// instead of copying its page tables, which makes spawning markedly cheaper than fork (numbers
// in the README). The price is the vfork discipline: everything that allocates (environment,
// argv) is built in the parent first; the child only makes raw system calls on its own stack,
// reports a failing step through memory the parent reads after the child exec'd or exited,
// and never touches glibc state (no malloc, no stdio, no set*id wrappers, which in glibc
// broadcast to "all threads" and would reach into the parent's).

namespace forkd {
namespace {

enum class Step : int {
    none,
    move_fd,
    dup2_stdin,
    dup2_stdout,
    dup2_stderr,
    close_range,
    setrlimit,
    setgroups,
    setgid,
    setuid,
    verify_identity,
    regained_root,
    chdir,
    pdeathsig,
    master_gone,
    execve,
};

// Written by the child (same memory), read by the parent once clone() has returned.
struct ChildFailure {
    Step step = Step::none;
    int error = 0;
    long arg = 0;  // the step's argument, for the message (fd, id, resource)
};

struct RlimitSetting {
    int resource;
    rlim_t value;
};

struct ChildArgs {
    const char* path = nullptr;
    char* const* argv = nullptr;
    char* const* envp = nullptr;
    int connection_fd = -1;
    int stderr_fd = -1;
    const ExecIdentity* identity = nullptr;  // nullptr: keep the master's
    ChildIdentity child_identity;             // identity's, as drop_identity takes it
    const char* interpreter = "";             // the #! line's, for the execve error
    std::array<RlimitSetting, 6> rlimits{};
    std::size_t rlimit_count = 0;
    mode_t umask = 022;
    const char* chdir = "/";
    pid_t master = 0;
    ChildFailure* failure = nullptr;
};

long raw_sigmask(int how, const std::uint64_t* set, std::uint64_t* old) {
    return syscall(SYS_rt_sigprocmask, how, set, old, sizeof(std::uint64_t));
}

[[noreturn]] void child_fail(const ChildArgs& args, Step step, long arg = 0) {
    args.failure->error = errno;
    args.failure->arg = arg;
    args.failure->step = step;
    _exit(127);
}

// Keeps fd out of 0..2 so that the dup2 calls below cannot clobber each other.
int lift_above_stdio(const ChildArgs& args, int fd) {
    if (fd > 2) return fd;
    int moved = fcntl(fd, F_DUPFD, 3);
    if (moved < 0) child_fail(args, Step::move_fd, fd);
    return moved;
}

void child_set_stdio(const ChildArgs& args) {
    int connection = lift_above_stdio(args, args.connection_fd);
    int err = lift_above_stdio(args, args.stderr_fd);
    if (dup2(connection, 0) < 0) child_fail(args, Step::dup2_stdin, connection);
    if (dup2(connection, 1) < 0) child_fail(args, Step::dup2_stdout, connection);
    if (dup2(err, 2) < 0) child_fail(args, Step::dup2_stderr, err);
    if (close_range(3, ~0U, 0) == 0) return;
    if (errno != ENOSYS) child_fail(args, Step::close_range);
    // Kernels before 5.9: close one by one up to the descriptor limit.
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) child_fail(args, Step::close_range);
    for (rlim_t fd = 3; fd < limit.rlim_cur && fd < (1u << 20); ++fd) close(static_cast<int>(fd));
}

// Limits go first, while still root: raising a hard limit needs the privilege being dropped.
void child_set_rlimits(const ChildArgs& args) {
    for (std::size_t i = 0; i < args.rlimit_count; ++i) {
        rlimit limit{args.rlimits[i].value, args.rlimits[i].value};
        if (setrlimit(static_cast<__rlimit_resource>(args.rlimits[i].resource), &limit) < 0)
            child_fail(args, Step::setrlimit, i);
    }
}

void child_drop_identity(const ChildArgs& args) {
    if (!args.identity) return;
    switch (drop_identity(args.child_identity)) {
    case IdentityStep::none: return;
    case IdentityStep::setgroups: child_fail(args, Step::setgroups, static_cast<long>(args.identity->groups.size()));
    case IdentityStep::setgid: child_fail(args, Step::setgid, args.identity->gid);
    case IdentityStep::setuid: child_fail(args, Step::setuid, args.identity->uid);
    case IdentityStep::verify: child_fail(args, Step::verify_identity);
    case IdentityStep::regained_root: child_fail(args, Step::regained_root);
    }
}

int child_main(void* raw) {
    const ChildArgs& args = *static_cast<const ChildArgs*>(raw);
    child_set_stdio(args);
    reset_signal_dispositions();
    child_set_rlimits(args);
    child_drop_identity(args);
    umask(args.umask);
    if (chdir(args.chdir) < 0) child_fail(args, Step::chdir);
    // After the identity change, which clears the death signal.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(args, Step::pdeathsig);
    if (getppid() != args.master) {
        errno = ESRCH;
        child_fail(args, Step::master_gone);
    }
    clear_signal_mask();
    execve(args.path, args.argv, args.envp);
    child_fail(args, Step::execve);
}

// One child stack per thread, mapped once with a guard page below it: the parent is suspended
// while the child runs (CLONE_VFORK), so one stack serves every spawn.
class ChildStack {
public:
    static constexpr std::size_t kSize = 64 * 1024;
    static constexpr std::size_t kGuard = 4096;
    ChildStack() {
        void* p = mmap(nullptr, kSize + kGuard, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (p == MAP_FAILED) return;
        base_ = static_cast<char*>(p);
        mprotect(base_, kGuard, PROT_NONE);
    }
    ~ChildStack() {
        if (base_) munmap(base_, kSize + kGuard);
    }
    ChildStack(const ChildStack&) = delete;
    ChildStack& operator=(const ChildStack&) = delete;
    void* top() const { return base_ ? base_ + kGuard + kSize : nullptr; }

private:
    char* base_ = nullptr;
};

// The per-connection environment, built before the clone.
class Environment {
public:
    Environment(const ExecPlan& plan, const ConnectionInfo& connection) {
        const auto* local = reinterpret_cast<const sockaddr*>(&connection.local);
        const auto* peer = reinterpret_cast<const sockaddr*>(&connection.peer);
        if (connection.is_unix) {
            own_.push_back("PROTO=UNIX");
            if (connection.peer_cred) {
                own_.push_back("UNIXREMOTEUID=" + std::to_string(connection.peer_cred->uid));
                own_.push_back("UNIXREMOTEGID=" + std::to_string(connection.peer_cred->gid));
                own_.push_back("UNIXREMOTEPID=" + std::to_string(connection.peer_cred->pid));
            }
        } else {
            own_.push_back("PROTO=TCP");
            own_.push_back("TCPLOCALIP=" + host_of(local, connection.local_len));
            own_.push_back("TCPLOCALPORT=" + std::to_string(port_of(local, connection.local_len)));
            own_.push_back("TCPREMOTEIP=" + host_of(peer, connection.peer_len));
            own_.push_back("TCPREMOTEPORT=" + std::to_string(port_of(peer, connection.peer_len)));
            if (connection.proxy) {
                const auto* proxy = reinterpret_cast<const sockaddr*>(&*connection.proxy);
                own_.push_back("FORKD_PROXY_IP=" + host_of(proxy, connection.proxy_len));
                own_.push_back("FORKD_PROXY_PORT=" + std::to_string(port_of(proxy, connection.proxy_len)));
            }
        }
        own_.push_back("FORKD_CONNECTION_ID=" + std::to_string(connection.id));
        pointers_.reserve(own_.size() + plan.base_env.size() + 1);
        for (auto& entry : own_) pointers_.push_back(entry.data());
        for (const auto& entry : plan.base_env) pointers_.push_back(const_cast<char*>(entry.c_str()));
        pointers_.push_back(nullptr);
    }
    char* const* envp() const { return pointers_.data(); }

private:
    std::vector<std::string> own_;
    std::vector<char*> pointers_;
};

std::vector<char*> argv_pointers(const std::vector<std::string>& argv) {
    std::vector<char*> pointers;
    pointers.reserve(argv.size() + 1);
    for (const auto& word : argv) pointers.push_back(const_cast<char*>(word.c_str()));
    pointers.push_back(nullptr);
    return pointers;
}

void collect_rlimits(const ResourceLimits& limits, ChildArgs& args) {
    auto add = [&](int resource, const std::optional<std::uint64_t>& value) {
        if (value) args.rlimits[args.rlimit_count++] = {resource, static_cast<rlim_t>(*value)};
    };
    add(RLIMIT_CPU, limits.cpu);
    add(RLIMIT_AS, limits.as);
    add(RLIMIT_NOFILE, limits.nofile);
    add(RLIMIT_NPROC, limits.nproc);
    add(RLIMIT_FSIZE, limits.fsize);
    add(RLIMIT_CORE, limits.core);
}

const char* rlimit_name(int resource) {
    switch (resource) {
    case RLIMIT_CPU: return "RLIMIT_CPU";
    case RLIMIT_AS: return "RLIMIT_AS";
    case RLIMIT_NOFILE: return "RLIMIT_NOFILE";
    case RLIMIT_NPROC: return "RLIMIT_NPROC";
    case RLIMIT_FSIZE: return "RLIMIT_FSIZE";
    case RLIMIT_CORE: return "RLIMIT_CORE";
    default: return "RLIMIT_?";
    }
}

Error describe(const ChildFailure& failure, const ChildArgs& args) {
    const int err = failure.error;
    std::string arg = std::to_string(failure.arg);
    switch (failure.step) {
    case Step::none: return forkd::failure("no failure");
    case Step::move_fd: return Error{err, "fcntl(" + arg + ", F_DUPFD)"};
    case Step::dup2_stdin: return Error{err, "dup2(" + arg + ", 0)"};
    case Step::dup2_stdout: return Error{err, "dup2(" + arg + ", 1)"};
    case Step::dup2_stderr: return Error{err, "dup2(" + arg + ", 2)"};
    case Step::close_range: return Error{err, "close_range(3)"};
    case Step::setrlimit: {
        const auto& limit = args.rlimits[static_cast<std::size_t>(failure.arg)];
        return Error{err, std::string("setrlimit(") + rlimit_name(limit.resource) + ", " +
                              std::to_string(limit.value) + ")"};
    }
    case Step::setgroups: return Error{err, "setgroups(" + arg + " groups)"};
    case Step::setgid: return Error{err, "setgid(" + arg + ")"};
    case Step::setuid: return Error{err, "setuid(" + arg + ")"};
    case Step::verify_identity:
        return forkd::failure("identity check: uid/gid/groups are not " + std::to_string(args.identity->uid) +
                          "/" + std::to_string(args.identity->gid) + "/" +
                          std::to_string(args.identity->groups.size()) + " groups after setuid");
    case Step::regained_root: return forkd::failure("identity check: root regained after dropping it");
    case Step::chdir: return Error{err, std::string("chdir ") + args.chdir};
    case Step::pdeathsig: return Error{err, "prctl(PR_SET_PDEATHSIG)"};
    case Step::master_gone: return forkd::failure("master exited before the handler started");
    case Step::execve:
        // ENOENT for a script that exists means its interpreter is missing: name it.
        if (err == ENOENT && *args.interpreter)
            return Error{err, std::string("execve ") + args.path + ": interpreter " + args.interpreter};
        return Error{err, std::string("execve ") + args.path};
    }
    return Error{err, "unknown step"};
}

// clone(CLONE_VM | CLONE_VFORK) with every signal blocked around it, as glibc's posix_spawn
// does: no handler of the master's may run in the child while it shares the master's memory.
pid_t clone_child(ChildArgs& args, void* stack_top) {
    std::uint64_t all = ~std::uint64_t{0}, old = 0;
    raw_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(child_main, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
    int saved = errno;
    raw_sigmask(SIG_SETMASK, &old, nullptr);
    errno = saved;
    return pid;
}

} // namespace

std::variant<SpawnedHandler, SpawnFailure> spawn_exec_handler(const ExecPlan& plan,
                                                              const ConnectionInfo& connection,
                                                              int connection_fd) {
    if (plan.argv.empty()) return SpawnFailure{forkd::failure("exec: no program configured")};
    thread_local ChildStack stack;
    if (!stack.top()) return SpawnFailure{Error{ENOMEM, "mmap child stack"}};

    Environment environment(plan, connection);
    std::vector<char*> argv = argv_pointers(plan.argv);

    int ends[2];
    if (pipe2(ends, O_CLOEXEC) < 0) return SpawnFailure{system_error("pipe2")};
    UniqueFd read_end(ends[0]), write_end(ends[1]);
    // Only the master's end: the handler's stderr stays blocking.
    if (fcntl(read_end.get(), F_SETFL, O_NONBLOCK) < 0)
        return SpawnFailure{system_error("fcntl O_NONBLOCK")};

    ChildFailure failure;
    ChildArgs args;
    args.path = argv.front();
    args.argv = argv.data();
    args.envp = environment.envp();
    args.connection_fd = connection_fd;
    args.stderr_fd = write_end.get();
    args.identity = plan.identity ? &*plan.identity : nullptr;
    if (args.identity)
        args.child_identity = {args.identity->uid, args.identity->gid, args.identity->groups.data(),
                               args.identity->groups.size(),
                               groups_need_setting(args.identity->gid, args.identity->groups.data(),
                                                   args.identity->groups.size())};
    args.interpreter = plan.interpreter.c_str();
    collect_rlimits(plan.rlimits, args);
    args.umask = plan.umask;
    args.chdir = plan.chdir.c_str();
    args.master = getpid();
    args.failure = &failure;

    pid_t pid = clone_child(args, stack.top());
    if (pid < 0) return SpawnFailure{system_error("clone"), true};
    if (failure.step != Step::none) {
        reap(pid);
        return SpawnFailure{describe(failure, args)};
    }
    return SpawnedHandler{pid, std::move(read_end)};
}

} // namespace forkd
