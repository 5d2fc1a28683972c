// SPDX-License-Identifier: MIT
// Default run-time paths: /run/forkd for root, $XDG_RUNTIME_DIR/forkd or /tmp/forkd-UID otherwise.
#include "common/runtime_paths.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

namespace forkd {
namespace {

// Restores one environment variable on scope exit.
class EnvGuard {
public:
    explicit EnvGuard(const char* name) : name_(name) {
        if (const char* value = std::getenv(name)) saved_ = value;
    }
    ~EnvGuard() {
        if (saved_)
            ::setenv(name_, saved_->c_str(), 1);
        else
            ::unsetenv(name_);
    }

private:
    const char* name_;
    std::optional<std::string> saved_;
};

// Runs check() in a child as an unprivileged uid (when we are root), so the non-root rules can
// be tested; the child's failures become its exit status.
void run_as_unprivileged(const std::function<bool()>& check) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::geteuid() == 0 && ::setresuid(65534, 65534, 65534) != 0) ::_exit(2);
        ::_exit(check() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(RuntimePaths, FileNamesDeriveFromTheInstance) {
    const std::string dir = runtime_dir();
    EXPECT_EQ(default_pidfile(std::nullopt), dir + "/forkd.pid");
    EXPECT_EQ(default_control_socket(std::nullopt), dir + "/forkd.sock");
    EXPECT_EQ(default_pidfile(std::string("web")), dir + "/web.pid");
    EXPECT_EQ(default_control_socket(std::string("web")), dir + "/web.sock");
}

TEST(RuntimePaths, InstanceConfigFile) {
    EXPECT_EQ(default_config_file(std::string("web")), "/etc/forkd/web.conf");
}

TEST(RuntimePaths, RootUsesRunForkd) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    EnvGuard guard("XDG_RUNTIME_DIR");
    ::setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    EXPECT_EQ(runtime_dir(), "/run/forkd");
    EXPECT_EQ(default_config_file(std::nullopt), "/etc/forkd/forkd.conf");
}

TEST(RuntimePaths, UserWithXdgRuntimeDir) {
    EnvGuard guard("XDG_RUNTIME_DIR");
    ::setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    run_as_unprivileged([] {
        return runtime_dir() == "/run/user/4242/forkd" && !default_config_file(std::nullopt) &&
               default_pidfile(std::nullopt) == "/run/user/4242/forkd/forkd.pid";
    });
}

TEST(RuntimePaths, UserWithoutXdgRuntimeDir) {
    EnvGuard guard("XDG_RUNTIME_DIR");
    ::unsetenv("XDG_RUNTIME_DIR");
    run_as_unprivileged([] { return runtime_dir() == "/tmp/forkd-" + std::to_string(::geteuid()); });
}

TEST(RuntimePaths, RelativeXdgRuntimeDirIsIgnored) {
    EnvGuard guard("XDG_RUNTIME_DIR");
    ::setenv("XDG_RUNTIME_DIR", "relative", 1);
    run_as_unprivileged([] { return runtime_dir() == "/tmp/forkd-" + std::to_string(::geteuid()); });
}

// forkctl without -s: a user with no daemon of their own reaches the system daemon.
TEST(RuntimePaths, ClientFallsBackToTheSystemSocketOnlyWhenItHasNoneOfItsOwn) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to place a socket name in /run/forkd";
    const std::string name = "forkd-test-" + std::to_string(::getpid());
    const std::string system_socket = "/run/forkd/" + name + ".sock";
    ::mkdir("/run/forkd", 0755);
    ASSERT_TRUE(std::ofstream(system_socket).good());
    EnvGuard guard("XDG_RUNTIME_DIR");
    ::setenv("XDG_RUNTIME_DIR", "/nonexistent-xdg", 1);
    run_as_unprivileged([&] { return client_control_socket(name) == system_socket; });
    ::unlink(system_socket.c_str());
    run_as_unprivileged([&] { return client_control_socket(name) == default_control_socket(name); });
    // Root always dials its own default.
    EXPECT_EQ(client_control_socket(name), default_control_socket(name));
}

} // namespace
} // namespace forkd
