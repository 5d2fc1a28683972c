// SPDX-License-Identifier: MIT
#include "daemon/exec/exec_plan.hpp"

#include "common/base/unique_fd.hpp"

#include <gtest/gtest.h>

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
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

} // namespace
} // namespace forkd
