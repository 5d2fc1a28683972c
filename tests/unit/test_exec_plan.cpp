// SPDX-License-Identifier: MIT
#include "daemon/exec/exec_plan.hpp"

#include "common/base/unique_fd.hpp"

#include <gtest/gtest.h>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace forkd {
namespace {

Config exec_config(std::vector<std::string> argv = {"/bin/cat"}) {
    Config config;
    config.handler = HandlerKind::exec;
    config.exec_argv = std::move(argv);
    return config;
}

std::string error_of(const Config& config) {
    try {
        build_exec_plan(config);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(ExecPlan, CopiesArgvAndProcessSettings) {
    Config config = exec_config({"/bin/sh", "-c", "echo 'a b'", "x"});
    config.umask = 027;
    config.chdir = "/tmp";
    config.rlimits.nofile = 64;
    config.rlimits.core = 0;
    ExecPlan plan = build_exec_plan(config);
    EXPECT_EQ(plan.argv, config.exec_argv);
    EXPECT_EQ(plan.umask, 027u);
    EXPECT_EQ(plan.chdir, "/tmp");
    EXPECT_EQ(plan.rlimits.nofile, 64u);
    EXPECT_EQ(plan.rlimits.core, 0u);
    EXPECT_FALSE(plan.rlimits.cpu.has_value());
    EXPECT_FALSE(plan.identity.has_value());
    EXPECT_TRUE(plan.base_env.empty());
}

TEST(ExecPlan, RejectsMissingRelativeOrNonExecutablePrograms) {
    EXPECT_EQ(error_of(exec_config({})), "option 'exec': no program given");
    EXPECT_EQ(error_of(exec_config({"cat"})), "option 'exec': 'cat' is not an absolute path");
    EXPECT_EQ(error_of(exec_config({"/nonexistent/prog"})),
              "option 'exec': /nonexistent/prog: No such file or directory");
    EXPECT_EQ(error_of(exec_config({"/tmp"})), "option 'exec': /tmp: not a regular file");
    char path[] = "/tmp/forkd-not-executable-XXXXXX";
    UniqueFd file(::mkstemp(path));  // mode 0600: no x bit, which even root needs for access(X_OK)
    ASSERT_TRUE(file.valid());
    EXPECT_EQ(error_of(exec_config({path})), std::string("option 'exec': ") + path + ": Permission denied");
    ::unlink(path);
}

TEST(ExecPlan, FirstEnvEntryWinsAndPassEnvReadsTheDaemonsEnvironment) {
    ::setenv("FORKD_TEST_PASSED", "from daemon", 1);
    ::setenv("FORKD_TEST_SHADOWED", "daemon value", 1);
    ::unsetenv("FORKD_TEST_ABSENT");
    Config config = exec_config();
    config.env = {"A=1", "B=two words", "A=3", "FORKD_TEST_SHADOWED=env value", "EMPTY="};
    config.pass_env = {"FORKD_TEST_PASSED", "FORKD_TEST_ABSENT", "FORKD_TEST_SHADOWED"};
    ExecPlan plan = build_exec_plan(config);
    std::vector<std::string> expected = {"A=1", "B=two words", "FORKD_TEST_SHADOWED=env value",
                                         "EMPTY=", "FORKD_TEST_PASSED=from daemon"};
    EXPECT_EQ(plan.base_env, expected);
}

TEST(ExecPlan, RejectsMalformedEnvAndPerConnectionNames) {
    Config config = exec_config();
    config.env = {"NOVALUE"};
    EXPECT_EQ(error_of(config), "option 'env': expected NAME=VALUE, got 'NOVALUE'");
    config.env = {"=x"};
    EXPECT_EQ(error_of(config), "option 'env': expected NAME=VALUE, got '=x'");
    config.env = {"TCPREMOTEIP=1.2.3.4"};
    EXPECT_EQ(error_of(config), "option 'env': TCPREMOTEIP is set by forkd for each connection");
    config.env = {};
    config.pass_env = {"A=B"};
    EXPECT_EQ(error_of(config), "option 'pass-env': invalid variable name 'A=B'");
}

TEST(ExecPlan, UserBringsItsPrimaryAndSupplementaryGroups) {
    Config config = exec_config();
    config.user = "root";
    ExecPlan plan = build_exec_plan(config);
    ASSERT_TRUE(plan.identity.has_value());
    EXPECT_EQ(plan.identity->uid, 0u);
    EXPECT_EQ(plan.identity->gid, 0u);
    ASSERT_FALSE(plan.identity->groups.empty());
    EXPECT_EQ(plan.identity->groups.front(), 0u);

    passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    config.user = "nobody";
    plan = build_exec_plan(config);
    EXPECT_EQ(plan.identity->uid, nobody->pw_uid);
    EXPECT_EQ(plan.identity->gid, nobody->pw_gid);
    EXPECT_NE(std::find(plan.identity->groups.begin(), plan.identity->groups.end(), nobody->pw_gid),
              plan.identity->groups.end());

    config.user = std::to_string(nobody->pw_uid);
    plan = build_exec_plan(config);
    EXPECT_EQ(plan.identity->uid, nobody->pw_uid) << "numeric user ids are accepted";
}

TEST(ExecPlan, UserWithGroupUsesThatGroupAsPrimary) {
    group* nogroup = ::getgrgid(65534);
    if (!nogroup) GTEST_SKIP() << "no group with gid 65534 on this system";
    Config config = exec_config();
    config.user = "root";
    config.group = nogroup->gr_name;
    ExecPlan plan = build_exec_plan(config);
    EXPECT_EQ(plan.identity->uid, 0u);
    EXPECT_EQ(plan.identity->gid, 65534u);
    EXPECT_EQ(plan.identity->groups.front(), 65534u);
}

TEST(ExecPlan, GroupAloneChangesOnlyTheGid) {
    group* nogroup = ::getgrgid(65534);
    if (!nogroup) GTEST_SKIP() << "no group with gid 65534 on this system";
    Config config = exec_config();
    config.group = nogroup->gr_name;
    ExecPlan plan = build_exec_plan(config);
    ASSERT_TRUE(plan.identity.has_value());
    EXPECT_EQ(plan.identity->uid, ::getuid());
    EXPECT_EQ(plan.identity->gid, 65534u);
    EXPECT_EQ(plan.identity->groups, std::vector<gid_t>{65534});
}

TEST(ExecPlan, UnknownUserOrGroupNamesTheOption) {
    Config config = exec_config();
    config.user = "forkd-no-such-user";
    EXPECT_EQ(error_of(config), "option 'user': no such user 'forkd-no-such-user'");
    config.user.reset();
    config.group = "forkd-no-such-group";
    EXPECT_EQ(error_of(config), "option 'group': no such group 'forkd-no-such-group'");
}

// What -t, the start and a reload all check: errors carry where the option was written.
TEST(ExecPlan, LoadTimeErrorsNameTheFileAndLine) {
    Config config = exec_config();
    config.config_file = "/etc/forkd/forkd.conf";
    config.origins = {{"user", "/etc/forkd/forkd.conf:7"}, {"chdir", "command line"}};
    config.user = "forkd-no-such-user";
    EXPECT_EQ(error_of(config), "/etc/forkd/forkd.conf:7: option 'user': no such user 'forkd-no-such-user'");
    config.user.reset();
    config.chdir = "/nonexistent-dir";
    EXPECT_EQ(error_of(config), "command line: option 'chdir': '/nonexistent-dir': No such file or directory");
    // Not written anywhere (a default): the file, without a line.
    config.chdir = "/";
    config.exec_argv = {"/nonexistent/prog"};
    EXPECT_EQ(error_of(config), "/etc/forkd/forkd.conf: option 'exec': /nonexistent/prog: No such file or directory");
}

TEST(ExecPlan, BuiltInHandlersResolveTheirIdentityToo) {
    Config config;
    config.handler = HandlerKind::echo;
    config.user = "forkd-no-such-user";
    EXPECT_EQ(error_of(config), "option 'user': no such user 'forkd-no-such-user'");
    config.user = "nobody";
    ExecPlan plan = build_exec_plan(config);
    ASSERT_TRUE(plan.identity.has_value());
    EXPECT_EQ(plan.identity->uid, ::getpwnam("nobody")->pw_uid);
    EXPECT_TRUE(plan.argv.empty());
}

TEST(ExecPlan, WorkingDirectoryMustBeADirectory) {
    Config config = exec_config();
    config.chdir = "/nonexistent-dir";
    EXPECT_EQ(error_of(config), "option 'chdir': '/nonexistent-dir': No such file or directory");
    config.chdir = "/etc/passwd";
    EXPECT_EQ(error_of(config), "option 'chdir': '/etc/passwd' is not a directory");
}

TEST(ExecPlan, MissingInterpreterOfAScriptIsNamed) {
    char path[] = "/tmp/forkd-script-XXXXXX";
    UniqueFd file(::mkstemp(path));
    ASSERT_TRUE(file.valid());
    const std::string text = "#! /nonexistent/interp -x\nexit 0\n";
    ASSERT_EQ(::write(file.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::fchmod(file.get(), 0755);
    EXPECT_EQ(error_of(exec_config({path})), std::string("option 'exec': ") + path +
                                                 ": interpreter '/nonexistent/interp' (its #! line): "
                                                 "No such file or directory");
    ::unlink(path);
    EXPECT_EQ(build_exec_plan(exec_config({"/bin/sh"})).interpreter, "") << "not a script";
}

TEST(ExecPlan, IdleTimeoutOnAUnixListenerWarnsForExec) {
    Config config = exec_config();
    config.origins = {{"idle-timeout", "f.conf:4"}};
    config.limits.idle_timeout_s = 5;
    config.listen = {TcpAddress{"127.0.0.1", 7, false}};
    EXPECT_TRUE(build_exec_plan(config).warnings.empty());
    config.listen.push_back(UnixAddress{"/run/x.sock"});
    const auto warnings = build_exec_plan(config).warnings;
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0], "f.conf:4: option 'idle-timeout': has no effect on exec'd handlers of UNIX listeners");
    config.handler = HandlerKind::echo;  // built-in handlers judge UNIX sockets themselves
    EXPECT_TRUE(build_exec_plan(config).warnings.empty());
}

// Runs in a death-test child: without root, only forkd's own identity can be taken.
[[noreturn]] void plan_other_identity_unprivileged() {
    passwd* nobody = ::getpwnam("nobody");
    if (::geteuid() == 0 && (!nobody || ::setgroups(1, &nobody->pw_gid) != 0 ||
                             ::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0))
        ::_exit(3);
    Config config = exec_config();
    config.user = "root";
    std::string error = error_of(config);
    std::fprintf(stderr, "%s\n", error.c_str());
    config.user = nobody->pw_name;  // itself: fine
    ::_exit(error_of(config).empty() ? 0 : 4);
}

TEST(ExecPlan, UnprivilegedDaemonRefusesAnotherIdentityAtLoad) {
    EXPECT_EXIT(plan_other_identity_unprivileged(), ::testing::ExitedWithCode(0),
                "option 'user': forkd runs as uid [0-9]+, not root, and cannot run handlers as 'root'");
}

} // namespace
} // namespace forkd
