// SPDX-License-Identifier: MIT
#include "daemon/exec/exec_launcher.hpp"
#include "daemon/core/tcp_activity.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <sstream>
#include <thread>

namespace forkd {
namespace {

using namespace std::chrono_literals;

ExecPlan plan_for(std::vector<std::string> argv) {
    ExecPlan plan;
    plan.argv = std::move(argv);
    return plan;
}

ExecPlan shell(const std::string& script) { return plan_for({"/bin/sh", "-c", script}); }

sockaddr_storage inet(const char* ip, std::uint16_t port, socklen_t& len) {
    sockaddr_storage storage{};
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &sin->sin_addr);
    len = sizeof(sockaddr_in);
    return storage;
}

ConnectionInfo tcp_connection() {
    ConnectionInfo info;
    info.id = 42;
    info.local = inet("127.0.0.1", 7000, info.local_len);
    info.peer = inet("127.0.0.2", 5555, info.peer_len);
    info.peer_text = "127.0.0.2:5555";
    info.source = "127.0.0.2";
    return info;
}

struct Finished {
    std::string out;     // what the handler wrote to the connection
    std::string err;     // what it wrote to fd 2
    int status = -1;
};

// Reads fd until EOF (non-blocking reads driven by poll).
void pump(int fd, std::string& into, bool& open) {
    char buffer[4096];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) into.append(buffer, static_cast<std::size_t>(n));
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) open = false;
}

// Spawns the plan on one end of a socketpair, feeds `input`, collects both outputs and the status.
std::variant<Finished, std::string> run(const ExecPlan& plan, const ConnectionInfo& info = tcp_connection(),
                                        const std::string& input = "") {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return std::string("socketpair");
    UniqueFd ours(pair[0]), theirs(pair[1]);
    auto spawned = spawn_exec_handler(plan, info, theirs.get());
    theirs.reset();  // the master would keep only a dup for TCP_INFO
    if (auto* failed = std::get_if<SpawnFailure>(&spawned)) return failed->error.message();
    auto& handler = std::get<SpawnedHandler>(spawned);
    if (!input.empty()) (void)!::write(ours.get(), input.data(), input.size());
    ::shutdown(ours.get(), SHUT_WR);
    ::fcntl(ours.get(), F_SETFL, O_NONBLOCK);

    Finished result;
    bool out_open = true, err_open = true;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while ((out_open || err_open) && std::chrono::steady_clock::now() < deadline) {
        pollfd fds[2] = {{out_open ? ours.get() : -1, POLLIN, 0},
                         {err_open ? handler.stderr_read.get() : -1, POLLIN, 0}};
        ::poll(fds, 2, 100);
        if (out_open && fds[0].revents) pump(ours.get(), result.out, out_open);
        if (err_open && fds[1].revents) pump(handler.stderr_read.get(), result.err, err_open);
    }
    ::waitpid(handler.pid, &result.status, 0);
    return result;
}

Finished run_ok(const ExecPlan& plan, const ConnectionInfo& info = tcp_connection(),
                const std::string& input = "") {
    auto result = run(plan, info, input);
    if (auto* error = std::get_if<std::string>(&result)) {
        ADD_FAILURE() << "spawn failed: " << *error;
        return {};
    }
    return std::get<Finished>(result);
}

std::string spawn_error(const ExecPlan& plan) {
    auto result = run(plan);
    if (auto* error = std::get_if<std::string>(&result)) return *error;
    return "(spawned)";
}

std::set<std::string> lines(const std::string& text) {
    std::set<std::string> result;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) result.insert(line);
    return result;
}

TEST(ExecSpawner, TcpEnvironmentIsUcspiPlusConfiguredAndNothingElse) {
    ExecPlan plan = plan_for({"/usr/bin/env"});
    plan.base_env = {"FOO=bar", "WITH_SPACE=a b"};
    Finished done = run_ok(plan);
    std::set<std::string> expected = {"PROTO=TCP",          "TCPLOCALIP=127.0.0.1",
                                      "TCPLOCALPORT=7000",  "TCPREMOTEIP=127.0.0.2",
                                      "TCPREMOTEPORT=5555", "FORKD_CONNECTION_ID=42",
                                      "FOO=bar",            "WITH_SPACE=a b"};
    EXPECT_EQ(lines(done.out), expected);
    EXPECT_TRUE(WIFEXITED(done.status) && WEXITSTATUS(done.status) == 0);
}

TEST(ExecSpawner, UnixEnvironmentCarriesThePeerCredentials) {
    ConnectionInfo info;
    info.id = 7;
    info.is_unix = true;
    info.local.ss_family = AF_UNIX;
    info.local_len = sizeof(sa_family_t);
    info.peer.ss_family = AF_UNIX;
    info.peer_len = sizeof(sa_family_t);
    info.peer_cred = ucred{1234, 1000, 1001};
    Finished done = run_ok(plan_for({"/usr/bin/env"}), info);
    std::set<std::string> expected = {"PROTO=UNIX", "UNIXREMOTEUID=1000", "UNIXREMOTEGID=1001",
                                      "UNIXREMOTEPID=1234", "FORKD_CONNECTION_ID=7"};
    EXPECT_EQ(lines(done.out), expected);
}

TEST(ExecSpawner, ConnectionIsStdinAndStdoutAndArgvIsKeptVerbatim) {
    Finished done = run_ok(plan_for({"/bin/sh", "-c", "cat; printf '%s|' \"$@\"", "sh", "a b", "c\"d", ""}),
                           tcp_connection(), "hello\n");
    EXPECT_EQ(done.out, "hello\na b|c\"d||");
}

TEST(ExecSpawner, OnlyFdsZeroToTwoAreOpenEvenIfTheMasterLeaksSome) {
    UniqueFd leaked(::dup(0));  // no O_CLOEXEC: close_range must catch it
    UniqueFd leaked_high(::fcntl(0, F_DUPFD, 100));
    ASSERT_TRUE(leaked.valid() && leaked_high.valid());
    Finished done = run_ok(shell(
        "i=0; while [ $i -lt 1100 ]; do [ -e /proc/$$/fd/$i ] && echo $i; i=$((i+1)); done;"
        "readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2"));
    std::istringstream in(done.out);
    std::vector<std::string> got;
    for (std::string line; std::getline(in, line);) got.push_back(line);
    ASSERT_EQ(got.size(), 6u) << done.out;
    EXPECT_EQ(got[0], "0");
    EXPECT_EQ(got[1], "1");
    EXPECT_EQ(got[2], "2");
    EXPECT_EQ(got[3].rfind("socket:", 0), 0u) << got[3];
    EXPECT_EQ(got[3], got[4]) << "fds 0 and 1 are the same connection";
    EXPECT_EQ(got[5].rfind("pipe:", 0), 0u) << "fd 2 is the stderr pipe: " << got[5];
}

TEST(ExecSpawner, SignalStateIsDefaultAndTheCallersMaskIsRestored) {
    sigset_t blocked, before, after;
    sigemptyset(&blocked);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&blocked, sig);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &blocked, &before), 0);
    struct sigaction ignore{}, handler{}, old_pipe{}, old_usr1{};
    ignore.sa_handler = SIG_IGN;
    handler.sa_handler = [](int) {};
    ::sigaction(SIGPIPE, &ignore, &old_pipe);
    ::sigaction(SIGUSR1, &handler, &old_usr1);

    Finished done = run_ok(plan_for({"/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"}));

    sigset_t current;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &current);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) EXPECT_TRUE(sigismember(&current, sig));
    EXPECT_FALSE(sigismember(&current, SIGUSR2)) << "only the caller's own mask comes back";
    ::sigaction(SIGPIPE, &old_pipe, nullptr);
    ::sigaction(SIGUSR1, &old_usr1, nullptr);
    ::pthread_sigmask(SIG_SETMASK, &before, &after);

    EXPECT_EQ(done.out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST(ExecSpawner, StderrGoesToThePipeNotTheConnection) {
    Finished done = run_ok(shell("echo to-log >&2; echo to-client"));
    EXPECT_EQ(done.out, "to-client\n");
    EXPECT_EQ(done.err, "to-log\n");
}

TEST(ExecSpawner, MissingProgramIsAnErrorAndTheChildIsReaped) {
    EXPECT_EQ(spawn_error(plan_for({"/nonexistent/prog"})),
              "execve /nonexistent/prog: No such file or directory");
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "no child left behind";
    EXPECT_EQ(errno, ECHILD);
}

TEST(ExecSpawner, MissingInterpreterIsNamedNotTheScript) {
    // The script exists; execve's ENOENT is about its #! line (gone since the load checked it).
    ExecPlan plan = plan_for({"/bin/sh"});
    plan.interpreter = "/nonexistent/interp";
    char path[] = "/tmp/forkd-script-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string text = "#!/nonexistent/interp\n";
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::fchmod(fd, 0755);
    ::close(fd);
    plan.argv = {path};
    EXPECT_EQ(spawn_error(plan), std::string("execve ") + path +
                                     ": interpreter /nonexistent/interp: No such file or directory");
    ::unlink(path);
}

TEST(ExecSpawner, BadWorkingDirectoryIsAnError) {
    ExecPlan plan = plan_for({"/bin/true"});
    plan.chdir = "/nonexistent-dir";
    EXPECT_EQ(spawn_error(plan), "chdir /nonexistent-dir: No such file or directory");
}

TEST(ExecSpawner, UmaskChdirAndRlimitsAreApplied) {
    ExecPlan plan = shell("umask; pwd; ulimit -n; ulimit -c; ulimit -t");
    plan.umask = 027;
    plan.chdir = "/tmp";
    plan.rlimits.nofile = 17;
    plan.rlimits.core = 0;
    plan.rlimits.cpu = 30;
    Finished done = run_ok(plan);
    EXPECT_EQ(done.out, "0027\n/tmp\n17\n0\n30\n");
}

TEST(ExecSpawner, ImpossibleRlimitIsAnError) {
    ExecPlan plan = plan_for({"/bin/true"});
    plan.rlimits.nofile = std::uint64_t{1} << 40;  // above fs.nr_open even for root
    EXPECT_EQ(spawn_error(plan).rfind("setrlimit(RLIMIT_NOFILE, 1099511627776): ", 0), 0u);
}

TEST(ExecSpawner, DropsToAnotherUserWithItsGroups) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to change identity";
    passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    ExecPlan plan = shell("id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    plan.identity = ExecIdentity{nobody->pw_uid, nobody->pw_gid, {nobody->pw_gid, 4}};
    Finished done = run_ok(plan);
    std::string uid = std::to_string(nobody->pw_uid), gid = std::to_string(nobody->pw_gid);
    std::string expected = uid + "\n" + gid + "\n" + gid + " 4\n" + "Uid:\t" + uid + "\t" + uid + "\t" +
                           uid + "\t" + uid + "\n" + "Gid:\t" + gid + "\t" + gid + "\t" + gid + "\t" +
                           gid + "\n" + "Groups:\t4 " + gid + " \n";
    EXPECT_EQ(done.out, expected) << "real, effective, saved and fs ids all dropped";
}

// Runs in a death-test child: drop to nobody if root, then ask for another uid.
[[noreturn]] void spawn_as_someone_else_unprivileged() {
    if (::geteuid() == 0) {
        passwd* nobody = ::getpwnam("nobody");
        if (!nobody || ::setgroups(1, &nobody->pw_gid) != 0 || ::setgid(nobody->pw_gid) != 0 ||
            ::setuid(nobody->pw_uid) != 0)
            ::_exit(3);
    }
    ExecPlan plan = plan_for({"/bin/true"});
    // Running handlers as itself needs no privilege (setgroups is skipped when nothing changes).
    plan.identity = ExecIdentity{::getuid(), ::getgid(), {::getgid()}};
    gid_t groups[64];
    int count = ::getgroups(64, groups);
    bool only_primary = count >= 0 && std::all_of(groups, groups + count, [](gid_t g) { return g == ::getgid(); });
    if (only_primary && spawn_error(plan) != "(spawned)") ::_exit(6);
    uid_t other = ::getuid() == 1 ? 2 : 1;
    plan.identity = ExecIdentity{other, ::getgid(), {::getgid()}};
    std::string error = spawn_error(plan);
    if (error != "setuid(" + std::to_string(other) + "): Operation not permitted") ::_exit(4);
    // Groups it does not have cannot be dropped into either.
    plan.identity = ExecIdentity{::getuid(), ::getgid(), {::getgid(), 0}};
    error = spawn_error(plan);
    std::fprintf(stderr, "%s\n", error.c_str());
    ::_exit(error == "setgroups(2 groups): Operation not permitted" ? 0 : 5);
}

TEST(ExecSpawner, FailedIdentityChangeIsReportedNotIgnored) {
    // An unprivileged master cannot become someone else: the spawn must fail, not run as itself.
    EXPECT_EXIT(spawn_as_someone_else_unprivileged(), ::testing::ExitedWithCode(0),
                "setgroups\\(2 groups\\): Operation not permitted");
}

TEST(ExecSpawner, HandlerDiesWithItsMaster) {
    int report[2];
    ASSERT_EQ(::pipe(report), 0);
    pid_t master = ::fork();
    ASSERT_GE(master, 0);
    if (master == 0) {
        ::close(report[0]);
        int pair[2];
        ::socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
        auto spawned = spawn_exec_handler(plan_for({"/bin/sleep", "30"}), tcp_connection(), pair[1]);
        pid_t pid = std::holds_alternative<SpawnedHandler>(spawned) ? std::get<SpawnedHandler>(spawned).pid : -1;
        (void)!::write(report[1], &pid, sizeof pid);
        ::_exit(0);  // the master dies without reaping or signalling its handler
    }
    ::close(report[1]);
    pid_t handler = -1;
    ASSERT_EQ(::read(report[0], &handler, sizeof handler), static_cast<ssize_t>(sizeof handler));
    ::close(report[0]);
    ::waitpid(master, nullptr, 0);
    ASSERT_GT(handler, 0);
    // Gone, or a zombie waiting for an init that does not reap: either way no longer running.
    auto not_running = [&] {
        std::string stat = "/proc/" + std::to_string(handler) + "/stat";
        FILE* f = std::fopen(stat.c_str(), "r");
        if (!f) return true;
        char state = '?';
        int ignored_pid;
        char comm[64];
        bool zombie = std::fscanf(f, "%d %63s %c", &ignored_pid, comm, &state) == 3 && state == 'Z';
        std::fclose(f);
        return zombie;
    };
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!not_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(not_running()) << "handler " << handler << " outlived its master";
}

TEST(TcpActivity, ReadsKernelCountersOnLoopbackAndNothingForUnixSockets) {
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    socklen_t len = 0;
    sockaddr_storage address = inet("127.0.0.1", 0, len);
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), len), 0);
    ASSERT_EQ(::listen(listener.get(), 1), 0);
    ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &len), 0);
    UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&address), len), 0);
    UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(server.valid());

    std::string request(100, 'q'), reply(50, 'r'), sink(200, '\0');
    ASSERT_EQ(::write(client.get(), request.data(), request.size()), 100);
    ASSERT_EQ(::recv(server.get(), sink.data(), 100, MSG_WAITALL), 100);
    ASSERT_EQ(::write(server.get(), reply.data(), reply.size()), 50);
    ASSERT_EQ(::recv(client.get(), sink.data(), 50, MSG_WAITALL), 50);

    std::optional<TcpActivity> activity = read_tcp_activity(server.get());
    ASSERT_TRUE(activity.has_value());
    EXPECT_EQ(activity->bytes_in, 100u);
    EXPECT_EQ(activity->bytes_out, 50u);
    EXPECT_LT(activity->idle_ms, 2000u);

    // FINs take a sequence number each but are not payload.
    ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
    ASSERT_EQ(::recv(server.get(), sink.data(), 1, 0), 0);  // server now in CLOSE_WAIT
    activity = read_tcp_activity(server.get());
    ASSERT_TRUE(activity.has_value());
    EXPECT_EQ(activity->bytes_in, 100u) << "the client's FIN";
    ASSERT_EQ(::shutdown(server.get(), SHUT_WR), 0);
    ASSERT_EQ(::recv(client.get(), sink.data(), 1, 0), 0);
    activity = read_tcp_activity(server.get());
    ASSERT_TRUE(activity.has_value());
    EXPECT_EQ(activity->bytes_out, 50u) << "the server's FIN";

    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    UniqueFd a(pair[0]), b(pair[1]);
    EXPECT_FALSE(read_tcp_activity(a.get()).has_value());
}

} // namespace
} // namespace forkd
