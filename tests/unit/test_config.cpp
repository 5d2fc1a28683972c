// SPDX-License-Identifier: MIT
// forkd's configuration: command line + file, line-numbered errors, validation, forkd -t output.
#include "common/config/config.hpp"

#include "common/config/config_file.hpp"
#include "common/runtime_paths.hpp"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace forkd {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/forkd-config-test.XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
        conf_ = dir_ + "/forkd.conf";
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write(const std::string& path, const std::string& text) {
        std::ofstream(path) << text;
    }
    // Writes the config file and loads it with these extra command-line arguments.
    Config load(const std::string& file_text, std::vector<std::string> args = {}) {
        write(conf_, file_text);
        args.insert(args.begin(), {"-c", conf_});
        return load_config(parse(args));
    }
    static CommandLine parse(const std::vector<std::string>& args) {
        std::vector<const char*> argv{"forkd"};
        for (const auto& arg : args) argv.push_back(arg.c_str());
        return parse_command_line(static_cast<int>(argv.size()), argv.data());
    }
    // The ConfigError message of a load that must fail ("" if it succeeded).
    std::string load_error(const std::string& file_text, std::vector<std::string> args = {}) {
        try {
            load(file_text, std::move(args));
        } catch (const ConfigError& error) {
            return error.what();
        }
        return "";
    }
    static std::string command_line_error(const std::vector<std::string>& args) {
        try {
            load_config(parse(args));
        } catch (const ConfigError& error) {
            return error.what();
        }
        return "";
    }
    std::string at(int line) const { return conf_ + ":" + std::to_string(line) + ": "; }
    std::string executable(const std::string& name, mode_t mode = 0755) {
        std::string path = dir_ + "/" + name;
        write(path, "#!/bin/sh\nexit 0\n");
        ::chmod(path.c_str(), mode);
        return path;
    }

    std::string dir_, conf_;
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// ---------------------------------------------------------------- command line

TEST_F(ConfigTest, Actions) {
    EXPECT_EQ(parse({}).action, CommandLine::Action::run);
    EXPECT_EQ(parse({"-t"}).action, CommandLine::Action::check_config);
    EXPECT_EQ(parse({"--check-config"}).action, CommandLine::Action::check_config);
    EXPECT_EQ(parse({"-V"}).action, CommandLine::Action::version);
    EXPECT_EQ(parse({"--version"}).action, CommandLine::Action::version);
    EXPECT_EQ(parse({"-h"}).action, CommandLine::Action::help);
    EXPECT_EQ(parse({"-t", "--help"}).action, CommandLine::Action::help);
}

TEST_F(ConfigTest, ShortOptions) {
    write(conf_, "listen = 127.0.0.1:0\n");
    Config config = load_config(parse({"-c", conf_, "-i", "web", "-f"}));
    EXPECT_EQ(config.config_file, conf_);
    EXPECT_EQ(config.instance, "web");
    EXPECT_TRUE(config.foreground);
    config = load_config(parse({"-fc", conf_}));  // grouped short options
    EXPECT_TRUE(config.foreground);
    EXPECT_EQ(config.config_file, conf_);
}

TEST_F(ConfigTest, OptionsKeptInOrderForReload) {
    CommandLine command_line = parse({"--listen", "127.0.0.1:0", "-f", "--listen=[::1]:0", "--env", "A=1"});
    std::vector<std::pair<std::string, std::string>> expected{
        {"listen", "127.0.0.1:0"}, {"foreground", "yes"}, {"listen", "[::1]:0"}, {"env", "A=1"}};
    EXPECT_EQ(command_line.options, expected);
}

TEST_F(ConfigTest, RelativeConfigPathBecomesAbsolute) {
    write(conf_, "listen = 127.0.0.1:0\n");
    const fs::path saved = fs::current_path();
    fs::current_path(dir_);
    CommandLine command_line = parse({"-c", "forkd.conf"});
    fs::current_path("/");  // as after daemonizing: a reload must still find the file
    Config config = load_config(command_line);
    fs::current_path(saved);
    EXPECT_EQ(config.config_file, conf_);
}

TEST_F(ConfigTest, CommandLineSyntaxErrors) {
    auto message = [](const std::vector<std::string>& args) {
        try {
            parse(args);
        } catch (const ConfigError& error) {
            return std::string(error.what());
        }
        return std::string();
    };
    EXPECT_EQ(message({"--bogus"}), "command line: unknown option '--bogus'");
    EXPECT_EQ(message({"--bogus=1"}), "command line: unknown option '--bogus'");
    EXPECT_EQ(message({"--list", "x"}), "command line: unknown option '--list'\n"
                                        "command line: unexpected argument 'x'");  // no guessing
    EXPECT_EQ(message({"stray"}), "command line: unexpected argument 'stray'");
    EXPECT_EQ(message({"--listen"}), "command line: option 'listen': missing value");
    EXPECT_EQ(message({"--foreground=no"}), "command line: option 'foreground': takes no value");
    EXPECT_EQ(message({"--backlog", "1", "--backlog", "2"}),
              "command line: option 'backlog': given more than once");
    EXPECT_EQ(message({"--listen", "*:1", "--listen", "*:2"}), "");  // repeatable
}

TEST_F(ConfigTest, HelpListsEveryOption) {
    const std::string help = parse({"-h"}).help_text;
    for (const char* name :
         {"--config", "--instance", "--foreground", "--check-config", "--version", "--help", "--pidfile",
          "--control-socket", "--control-group", "--listen", "--backlog", "--handler", "--exec", "--user",
          "--group", "--env", "--pass-env", "--max-connections", "--max-per-source", "--overload",
          "--connection-timeout", "--idle-timeout", "--shutdown-timeout", "--log-level", "--umask",
          "--chdir", "--rlimit-cpu", "--rlimit-as", "--rlimit-nofile", "--rlimit-nproc", "--rlimit-fsize",
          "--rlimit-core", "--watch-config"})
        EXPECT_NE(help.find(name), std::string::npos) << name;
    for (const char* short_name : {"-c, ", "-i, ", "-f, ", "-t, ", "-V, ", "-h, "})
        EXPECT_NE(help.find(short_name), std::string::npos) << short_name;
    for (const auto& line : lines_of(help))
        if (line.starts_with("  -")) {
            EXPECT_GT(line.size(), 30u) << "no description: " << line;
        }
}

// ---------------------------------------------------------------- defaults and merging

TEST_F(ConfigTest, ContractDefaults) {
    Config config = load("listen = 127.0.0.1:0\n");
    EXPECT_FALSE(config.foreground);
    EXPECT_FALSE(config.instance);
    EXPECT_EQ(config.pidfile, default_pidfile(std::nullopt));
    EXPECT_EQ(config.control_socket, default_control_socket(std::nullopt));
    EXPECT_FALSE(config.control_group);
    EXPECT_EQ(config.backlog, 0);
    EXPECT_EQ(config.handler, HandlerKind::echo);
    EXPECT_TRUE(config.exec_argv.empty());
    EXPECT_FALSE(config.user);
    EXPECT_FALSE(config.group);
    EXPECT_EQ(config.limits.max_connections, 256u);
    EXPECT_EQ(config.limits.max_per_source, 0u);
    EXPECT_EQ(config.limits.overload, OverloadPolicy::wait);
    EXPECT_EQ(config.limits.connection_timeout_s, 0u);
    EXPECT_EQ(config.limits.idle_timeout_s, 0u);
    EXPECT_EQ(config.shutdown_timeout_s, 10u);
    EXPECT_EQ(config.log_level, log::Level::info);
    EXPECT_EQ(config.umask, 022u);
    EXPECT_EQ(config.chdir, "/");
    EXPECT_FALSE(config.rlimits.cpu);
    EXPECT_FALSE(config.watch_config);
    EXPECT_FALSE(config.proxy_to);
    EXPECT_EQ(config.proxy_connect_timeout_s, 10u);
    EXPECT_EQ(config.buffer_size, 65536u);
}

TEST_F(ConfigTest, InstanceNamesDefaultPaths) {
    Config config = load("listen = 127.0.0.1:0\n", {"-i", "web"});
    EXPECT_EQ(config.pidfile, default_pidfile(std::string("web")));
    EXPECT_EQ(config.control_socket, default_control_socket(std::string("web")));
    EXPECT_TRUE(config.pidfile.ends_with("/web.pid"));
}

TEST_F(ConfigTest, EveryOptionFromTheFile) {
    const std::string prog = executable("handler");
    Config config = load(
        "foreground = yes\n"
        "pidfile = /tmp/x/forkd.pid\n"
        "control-socket = /tmp/x/forkd.sock\n"
        "control-group = root\n"
        "listen = 127.0.0.1:7007\n"
        "backlog = 4096\n"
        "exec = " + prog + " -v 'two words'\n"
        "user = nobody\n"
        "group = nogroup\n"
        "env = GREETING=hello world\n"
        "pass-env = PATH\n"
        "max-connections = 10\n"
        "max-per-source = 2\n"
        "overload = reject\n"
        "connection-timeout = 60\n"
        "idle-timeout = 5\n"
        "shutdown-timeout = 3\n"
        "log-level = debug\n"
        "umask = 027\n"
        "chdir = /srv\n"
        "rlimit-cpu = 10\n"
        "rlimit-as = unlimited\n"
        "rlimit-nofile = 1024\n"
        "rlimit-nproc = 50\n"
        "rlimit-fsize = 1048576\n"
        "rlimit-core = 0\n"
        "watch-config = true\n");
    EXPECT_TRUE(config.foreground);
    EXPECT_EQ(config.pidfile, "/tmp/x/forkd.pid");
    EXPECT_EQ(config.control_socket, "/tmp/x/forkd.sock");
    EXPECT_EQ(config.control_group, "root");
    ASSERT_EQ(config.listen.size(), 1u);
    EXPECT_EQ(to_string(config.listen[0]), "127.0.0.1:7007");
    EXPECT_EQ(config.backlog, 4096);
    EXPECT_EQ(config.handler, HandlerKind::exec);
    EXPECT_EQ(config.exec_argv, (std::vector<std::string>{prog, "-v", "two words"}));
    EXPECT_EQ(config.user, "nobody");
    EXPECT_EQ(config.group, "nogroup");
    EXPECT_EQ(config.env, std::vector<std::string>{"GREETING=hello world"});
    EXPECT_EQ(config.pass_env, std::vector<std::string>{"PATH"});
    EXPECT_EQ(config.limits.max_connections, 10u);
    EXPECT_EQ(config.limits.max_per_source, 2u);
    EXPECT_EQ(config.limits.overload, OverloadPolicy::reject);
    EXPECT_EQ(config.limits.connection_timeout_s, 60u);
    EXPECT_EQ(config.limits.idle_timeout_s, 5u);
    EXPECT_EQ(config.shutdown_timeout_s, 3u);
    EXPECT_EQ(config.log_level, log::Level::debug);
    EXPECT_EQ(config.umask, 027u);
    EXPECT_EQ(config.chdir, "/srv");
    EXPECT_EQ(config.rlimits.cpu, 10u);
    EXPECT_EQ(config.rlimits.as, static_cast<std::uint64_t>(RLIM_INFINITY));
    EXPECT_EQ(config.rlimits.nofile, 1024u);
    EXPECT_EQ(config.rlimits.nproc, 50u);
    EXPECT_EQ(config.rlimits.fsize, 1048576u);
    EXPECT_EQ(config.rlimits.core, 0u);
    EXPECT_TRUE(config.watch_config);
}

TEST_F(ConfigTest, CommandLineWinsOverTheFile) {
    Config config = load("listen = 127.0.0.1:0\nmax-connections = 5\noverload = reject\nlog-level = err\n",
                         {"--max-connections", "7", "--log-level", "debug"});
    EXPECT_EQ(config.limits.max_connections, 7u);
    EXPECT_EQ(config.log_level, log::Level::debug);
    EXPECT_EQ(config.limits.overload, OverloadPolicy::reject);  // only in the file
}

TEST_F(ConfigTest, ListenAccumulatesCommandLineFirst) {
    Config config = load("listen = 127.0.0.1:1001\nlisten = [::1]:1002\n", {"--listen", "unix:/tmp/a.sock"});
    ASSERT_EQ(config.listen.size(), 3u);
    EXPECT_EQ(to_string(config.listen[0]), "unix:/tmp/a.sock");
    EXPECT_EQ(to_string(config.listen[1]), "127.0.0.1:1001");
    EXPECT_EQ(to_string(config.listen[2]), "[::1]:1002");
}

TEST_F(ConfigTest, EnvAccumulatesAndTheCommandLineWinsPerName) {
    Config config = load("listen = 127.0.0.1:0\nenv = A=file\nenv = B=file\npass-env = HOME\npass-env = TERM\n",
                         {"--env", "A=cli", "--pass-env", "TERM"});
    EXPECT_EQ(config.env, (std::vector<std::string>{"A=cli", "B=file"}));
    EXPECT_EQ(config.pass_env, (std::vector<std::string>{"TERM", "HOME"}));
}

TEST_F(ConfigTest, ForegroundFromTheFile) {
    EXPECT_TRUE(load("listen = 127.0.0.1:0\nforeground = yes\n").foreground);
    EXPECT_FALSE(load("listen = 127.0.0.1:0\nforeground = no\n").foreground);
    EXPECT_TRUE(load("listen = 127.0.0.1:0\nforeground = no\n", {"-f"}).foreground);
}

TEST_F(ConfigTest, NoFileAtAll) {
    // Without -c and not root, there is no default file; listen from the command line is enough.
    if (::geteuid() == 0 && fs::exists("/etc/forkd/forkd.conf")) GTEST_SKIP() << "a real default config exists";
    Config config = load_config(parse({"--listen", "127.0.0.1:0"}));
    EXPECT_EQ(config.config_file, "");
    EXPECT_EQ(config.listen.size(), 1u);
}

TEST_F(ConfigTest, ReloadReappliesTheCommandLineOverTheNewFile) {
    write(conf_, "listen = 127.0.0.1:0\nmax-connections = 5\nidle-timeout = 1\n");
    CommandLine command_line = parse({"-c", conf_, "--max-connections", "9"});
    Config first = load_config(command_line);
    write(conf_, "listen = 127.0.0.1:0\nlisten = [::1]:0\nmax-connections = 6\nidle-timeout = 2\n");
    Config second = load_config(command_line);
    EXPECT_EQ(first.limits.max_connections, 9u);
    EXPECT_EQ(second.limits.max_connections, 9u);
    EXPECT_EQ(first.limits.idle_timeout_s, 1u);
    EXPECT_EQ(second.limits.idle_timeout_s, 2u);
    EXPECT_EQ(second.listen.size(), 2u);
}

// ---------------------------------------------------------------- file syntax

TEST_F(ConfigTest, CommentsAndBlankLines) {
    Config config = load(
        "# a comment\n"
        "\n"
        "   # indented comment\n"
        "listen = 127.0.0.1:0   # trailing comment\n"
        "\t idle-timeout   =   4 \r\n");
    EXPECT_EQ(config.listen.size(), 1u);
    EXPECT_EQ(config.limits.idle_timeout_s, 4u);
    // Without a blank before it, '#' belongs to the value.
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nmax-connections=3#x\n"),
              at(2) + "option 'max-connections': '3#x' is not a non-negative integer");
}

TEST_F(ConfigTest, HashInsideQuotesIsNotAComment) {
    Config config = load("listen = 127.0.0.1:0\nenv = \"TAG=a #1\"\nexec = /bin/echo 'x #2' \"y #3\" # real\n");
    EXPECT_EQ(config.env, std::vector<std::string>{"TAG=a #1"});
    EXPECT_EQ(config.exec_argv, (std::vector<std::string>{"/bin/echo", "x #2", "y #3"}));
}

TEST_F(ConfigTest, WholeValueInDoubleQuotesIsUnquoted) {
    Config config = load("listen = \"127.0.0.1:0\"\nexec = \"/bin/echo a 'b c'\"\nenv = \"Q=say \\\"hi\\\"\"\n");
    EXPECT_EQ(to_string(config.listen[0]), "127.0.0.1:0");
    EXPECT_EQ(config.exec_argv, (std::vector<std::string>{"/bin/echo", "a", "b c"}));
    EXPECT_EQ(config.env, std::vector<std::string>{"Q=say \"hi\""});
}

TEST_F(ConfigTest, SyntaxErrorsHaveLineNumbers) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\njust words\n"), at(2) + "syntax error: expected 'name = value'");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\n= 5\n"), at(2) + "syntax error: missing option name before '='");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\n[section]\n"), at(2) + "syntax error: expected 'name = value'");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nMax_Conn = 5\n"), at(2) + "syntax error: bad option name 'Max_Conn'");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nbacklog =\n"), at(2) + "option 'backlog': missing value");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nbacklog = # nothing\n"), at(2) + "option 'backlog': missing value");
}

TEST_F(ConfigTest, UnknownAndCommandLineOnlyOptionsInTheFile) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nlisten-address = x\n"), at(2) + "option 'listen-address': unknown option");
    for (const char* name : {"config", "instance", "check-config", "version", "help"})
        EXPECT_EQ(load_error(std::string("listen = 127.0.0.1:0\n") + name + " = x\n"),
                  at(2) + "option '" + name + "': only valid on the command line");
}

TEST_F(ConfigTest, SingleOptionTwiceInTheFile) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nbacklog = 1\n\nbacklog = 2\n"),
              at(4) + "option 'backlog': given more than once (first on line 2)");
}

TEST_F(ConfigTest, EveryErrorIsCollectedInLineOrder) {
    const std::string message = load_error(
        "listen = 127.0.0.1:99999\n"   // 1
        "max-connections = lots\n"     // 2
        "# fine\n"                     // 3
        "oops\n"                       // 4
        "overload = maybe\n"           // 5
        "nonsense = 1\n",              // 6
        {"--idle-timeout", "-1"});
    const auto lines = lines_of(message);
    ASSERT_EQ(lines.size(), 6u) << message;
    EXPECT_EQ(lines[0], "command line: option 'idle-timeout': '-1' is not a non-negative integer");
    EXPECT_EQ(lines[1], at(1) + "option 'listen': port out of range");
    EXPECT_EQ(lines[2], at(2) + "option 'max-connections': 'lots' is not a non-negative integer");
    EXPECT_EQ(lines[3], at(4) + "syntax error: expected 'name = value'");
    EXPECT_EQ(lines[4], at(5) + "option 'overload': 'maybe' is not one of wait, reject");
    EXPECT_EQ(lines[5], at(6) + "option 'nonsense': unknown option");
}

TEST_F(ConfigTest, OverriddenFileValuesAreStillChecked) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nmax-connections = lots\n", {"--max-connections", "3"}),
              at(2) + "option 'max-connections': 'lots' is not a non-negative integer");
}

TEST_F(ConfigTest, MissingNamedConfigFileIsAnError) {
    const std::string missing = dir_ + "/missing.conf";
    EXPECT_EQ(command_line_error({"-c", missing, "--listen", "127.0.0.1:0"}),
              missing + ": cannot read: No such file or directory");
}

TEST_F(ConfigTest, MissingConfigFileIsTheOnlyError) {
    // Its options are unknown, so none of them is reported as missing.
    const std::string missing = dir_ + "/missing.conf";
    EXPECT_EQ(command_line_error({"-c", missing}), missing + ": cannot read: No such file or directory");
}

TEST_F(ConfigTest, ConfigDirectorySaysItIsADirectory) {
    EXPECT_EQ(command_line_error({"-c", dir_}), dir_ + ": is a directory, not a config file");
}

TEST_F(ConfigTest, ByteOrderMarkIsSkipped) {
    Config config = load("\xEF\xBB\xBFlisten = 127.0.0.1:0\nbacklog = 5\n");
    EXPECT_EQ(config.listen.size(), 1u);
    EXPECT_EQ(config.backlog, 5);
}

TEST_F(ConfigTest, ErrorsQuoteAtMostAFewDozenBytesOfAValue) {
    const std::string huge(5 * 1024 * 1024, '7');
    const std::string error = load_error("listen = 127.0.0.1:0\nbacklog = x" + huge + "\n");
    EXPECT_EQ(error, at(2) + "option 'backlog': 'x" + std::string(39, '7') +
                         "...' (5242881 bytes) is not a non-negative integer");
    EXPECT_LT(load_error("listen = 127.0.0.1:0\nhandler = " + huge + "\n").size(), 200u);
    EXPECT_LT(load_error("listen = 127.0.0.1:" + huge + "\n").size(), 200u);
    EXPECT_LT(load_error("listen = 127.0.0.1:0\n" + std::string(100000, 'a') + " = 1\n").size(), 200u);
}

TEST_F(ConfigTest, OriginsSayWhereEachOptionWasWritten) {
    Config config = load("listen = 127.0.0.1:0\n\nuser = nobody\n", {"--chdir", "/tmp"});
    EXPECT_EQ(config.origin_of("user"), conf_ + ":3");
    EXPECT_EQ(config.origin_of("listen"), conf_ + ":1");
    EXPECT_EQ(config.origin_of("chdir"), "command line");
    EXPECT_EQ(config.origin_of("group"), conf_) << "not written: the file";
}

// ---------------------------------------------------------------- validation rules

TEST_F(ConfigTest, ListenIsRequired) {
    EXPECT_EQ(load_error("backlog = 5\n"),
              conf_ + ": option 'listen': required: at least one listen address");
    // A bad listen is reported as itself, not also as missing.
    EXPECT_EQ(load_error("listen = nowhere\n"), at(1) + "option 'listen': missing port");
}

TEST_F(ConfigTest, DuplicateListenAddresses) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:7007\nlisten = 127.0.0.1:7007\n"),
              at(2) + "option 'listen': duplicate address 127.0.0.1:7007 (also at " + conf_ + ":1)");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nlisten = 127.0.0.1:0\n"), "");  // two ephemeral ports
}

struct BadValue {
    const char* option;
    const char* value;
    const char* reason;
};

TEST_F(ConfigTest, EveryRuleRejectsBadValuesInTheFileAndOnTheCommandLine) {
    const std::string long_socket = "/" + std::string(120, 's');
    const std::string not_executable = executable("plain", 0644);
    const std::vector<BadValue> cases = {
        {"listen", "127.0.0.1:65536", "port out of range"},
        {"listen", "unix:rel", "UNIX socket path must be absolute"},
        {"backlog", "-5", "'-5' is not a non-negative integer"},
        {"backlog", "99999999999", "'99999999999' is out of range (at most 2147483647)"},
        {"handler", "telnet", "'telnet' is not one of echo, discard, daytime, chargen, exec, proxy"},
        {"proxy-to", "[::1]", "'[::1]': missing port"},
        {"proxy-to", "unix:sock", "'unix:sock': UNIX socket path must be absolute"},
        {"proxy-connect-timeout", "-1", "'-1' is not a non-negative integer"},
        {"buffer-size", "2147483648", "'2147483648' is out of range (at most 1073741824)"},
        {"buffer-size", "64k", "'64k' is not a non-negative integer"},
        {"exec", "cat", "program 'cat' is not an absolute path"},
        {"exec", "/nonexistent/prog", "program '/nonexistent/prog': No such file or directory"},
        {"exec", "/tmp", "program '/tmp' is not a regular file"},
        {"exec", "/bin/echo 'open", "unterminated single quote"},
        {"exec", "''", "program '' is not an absolute path"},
        {"max-connections", "1.5", "'1.5' is not a non-negative integer"},
        {"max-connections", "65537", "'65537' is out of range (at most 65536)"},
        {"max-per-source", "x", "'x' is not a non-negative integer"},
        {"overload", "drop", "'drop' is not one of wait, reject"},
        {"connection-timeout", "1s", "'1s' is not a non-negative integer"},
        {"idle-timeout", "+3", "'+3' is not a non-negative integer"},
        {"shutdown-timeout", "99999999999", "'99999999999' is out of range (at most 31536000)"},
        {"log-level", "verbose", "'verbose' is not one of debug, info, notice, warning, err"},
        {"env", "NOVALUE", "'NOVALUE' is not NAME=VALUE"},
        {"env", "1A=x", "'1A' is not a valid variable name"},
        {"env", "=x", "'' is not a valid variable name"},
        {"pass-env", "A-B", "'A-B' is not a valid variable name"},
        {"umask", "999", "'999' is not an octal mode such as 027"},
        {"umask", "07777", "'07777' is not an octal mode such as 027"},
        {"umask", "1777", "'1777' is out of range (at most 0777)"},
        {"chdir", "srv", "'srv' is not an absolute path"},
        {"pidfile", "forkd.pid", "'forkd.pid' is not an absolute path"},
        {"control-socket", "forkd.sock", "'forkd.sock' is not an absolute path"},
        {"control-socket", long_socket.c_str(), "UNIX socket path too long (at most 107 bytes)"},
        {"control-group", "no-such-group-forkd", "no such group 'no-such-group-forkd'"},
        {"user", "a:b", "'a:b' is not a valid user or group name"},
        {"group", "-g", "'-g' is not a valid user or group name"},
        {"rlimit-cpu", "lots", "'lots' is not a non-negative integer or 'unlimited'"},
        {"rlimit-as", "18446744073709551616", "'18446744073709551616' is out of range"},
        {"rlimit-nofile", "-1", "'-1' is not a non-negative integer or 'unlimited'"},
        {"rlimit-nproc", "1e3", "'1e3' is not a non-negative integer or 'unlimited'"},
        {"rlimit-fsize", "1M", "'1M' is not a non-negative integer or 'unlimited'"},
        {"rlimit-core", "none", "'none' is not a non-negative integer or 'unlimited'"},
        {"watch-config", "maybe", "'maybe' is not yes or no"},
        {"foreground", "sometimes", "'sometimes' is not yes or no"},
    };
    for (const auto& bad : cases) {
        std::string file = "listen = 127.0.0.1:0\n" + std::string(bad.option) + " = " + bad.value + "\n";
        if (std::string_view(bad.option) == "listen") file = std::string("listen = ") + bad.value + "\n";
        const int line = std::string_view(bad.option) == "listen" ? 1 : 2;
        EXPECT_EQ(load_error(file), at(line) + "option '" + bad.option + "': " + bad.reason) << bad.option;
        if (std::string_view(bad.option) == "foreground") continue;  // a flag on the command line
        EXPECT_EQ(command_line_error({"--listen", "127.0.0.1:1", std::string("--") + bad.option, bad.value}),
                  std::string("command line: option '") + bad.option + "': " + bad.reason)
            << bad.option;
    }
    EXPECT_EQ(command_line_error({"--listen", "127.0.0.1:1", std::string("--exec"), not_executable}),
              "command line: option 'exec': program '" + not_executable +
                  "' is not executable: Permission denied");
}

TEST_F(ConfigTest, GoodValuesAccepted) {
    Config config = load(
        "listen = *:0\nlisten = systemd\numask = 0\nrlimit-core = unlimited\nwatch-config = off\n"
        "control-group = 0\nenv = EMPTY=\nenv = _X1=a=b\n");
    EXPECT_EQ(config.umask, 0u);
    EXPECT_EQ(config.control_group, "0");
    EXPECT_EQ(config.env, (std::vector<std::string>{"EMPTY=", "_X1=a=b"}));
    EXPECT_FALSE(config.watch_config);
    EXPECT_TRUE(std::holds_alternative<SystemdSockets>(config.listen[1]));
}

TEST_F(ConfigTest, InvalidInstanceName) {
    EXPECT_EQ(command_line_error({"-i", "../etc", "--listen", "127.0.0.1:0"}),
              "command line: option 'instance': '../etc' is not a valid instance name (letters, digits, _ - . @)");
}

// ---------------------------------------------------------------- exec and handler

TEST_F(ConfigTest, ExecImpliesHandlerExec) {
    const std::string prog = executable("run me");  // a path with a space needs quoting
    Config config = load("listen = 127.0.0.1:0\nexec = '" + prog + "' --flag \"a b\" c\\ d\n");
    EXPECT_EQ(config.handler, HandlerKind::exec);
    EXPECT_EQ(config.exec_argv, (std::vector<std::string>{prog, "--flag", "a b", "c d"}));
}

TEST_F(ConfigTest, ExecFromTheCommandLine) {
    Config config = load("listen = 127.0.0.1:0\n", {"--exec", "/bin/sh -c 'echo $TCPREMOTEIP'"});
    EXPECT_EQ(config.handler, HandlerKind::exec);
    EXPECT_EQ(config.exec_argv, (std::vector<std::string>{"/bin/sh", "-c", "echo $TCPREMOTEIP"}));
}

TEST_F(ConfigTest, HandlerExecNeedsExec) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nhandler = exec\n"),
              at(2) + "option 'handler': exec needs the exec option (exec = PROG ARGS)");
}

TEST_F(ConfigTest, HandlerExecWithExecIsFine) {
    Config config = load("listen = 127.0.0.1:0\nhandler = exec\nexec = /bin/cat\n");
    EXPECT_EQ(config.handler, HandlerKind::exec);
}

TEST_F(ConfigTest, HandlerConflictingWithExecInOnePlace) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nhandler = echo\nexec = /bin/cat\n"),
              at(2) + "option 'handler': 'echo' conflicts with exec (at " + conf_ + ":3)");
}

TEST_F(ConfigTest, CommandLineHandlerBeatsFileExecAndViceVersa) {
    Config config = load("listen = 127.0.0.1:0\nexec = /bin/cat\n", {"--handler", "daytime"});
    EXPECT_EQ(config.handler, HandlerKind::daytime);
    EXPECT_TRUE(config.exec_argv.empty());
    config = load("listen = 127.0.0.1:0\nhandler = chargen\n", {"--exec", "/bin/cat"});
    EXPECT_EQ(config.handler, HandlerKind::exec);
    EXPECT_EQ(config.exec_argv, std::vector<std::string>{"/bin/cat"});
}

TEST_F(ConfigTest, HandlerProxyNeedsProxyToAndTheErrorNamesIt) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nhandler = proxy\n"),
              at(2) + "option 'proxy-to': required with handler = proxy (proxy-to = HOST:PORT, [V6]:PORT or "
                      "unix:PATH)");
}

TEST_F(ConfigTest, ProxyOptions) {
    Config config = load("listen = 127.0.0.1:0\nhandler = proxy\nproxy-to = [::1]:8080\n"
                         "proxy-connect-timeout = 3\nbuffer-size = 4096\n");
    EXPECT_EQ(config.handler, HandlerKind::proxy);
    ASSERT_TRUE(config.proxy_to);
    EXPECT_EQ(config.proxy_to->host, "::1");
    EXPECT_EQ(config.proxy_to->port, 8080);
    EXPECT_EQ(config.proxy_connect_timeout_s, 3u);
    EXPECT_EQ(config.buffer_size, 4096u);
    const std::string text = render_config(config);
    EXPECT_NE(text.find("\nproxy-to = [::1]:8080\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\nbuffer-size = 4096\n"), std::string::npos) << text;
    config = load("listen = 127.0.0.1:0\n", {"--handler", "proxy", "--proxy-to", "unix:/run/backend.sock"});
    EXPECT_EQ(config.proxy_to->path, "/run/backend.sock");
}

TEST_F(ConfigTest, BadProxyValuesNameTheOptionAndLine) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nhandler = proxy\nproxy-to = localhost\n"),
              at(3) + "option 'proxy-to': 'localhost': missing port");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nbuffer-size = 10\n"),
              at(2) + "option 'buffer-size': '10' is too small (at least 1024)");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nproxy-connect-timeout = soon\n"),
              at(2) + "option 'proxy-connect-timeout': 'soon' is not a non-negative integer");
}

// ---------------------------------------------------------------- forkd -t output

TEST_F(ConfigTest, RenderListsEveryKeyInAStableOrder) {
    const std::string text = render_config(load("listen = 127.0.0.1:0\n"));
    std::vector<std::string> keys;
    for (const auto& line : lines_of(text)) {
        std::string key = line.starts_with("# ") ? line.substr(2) : line;
        keys.push_back(key.substr(0, key.find(" = ")));
    }
    const std::vector<std::string> expected = {
        "config", "instance", "foreground", "pidfile", "control-socket", "control-group", "listen",
        "backlog", "handler", "mode", "workers", "exec", "proxy-to", "proxy-connect-timeout",
        "buffer-size", "user", "group", "env", "pass-env", "max-connections",
        "max-per-source", "overload", "allow", "deny", "source-prefix", "max-connection-rate",
        "max-per-source-rate", "busy-message", "connection-timeout", "idle-timeout", "shutdown-timeout",
        "log-level", "log-target", "umask", "chdir", "rlimit-cpu", "rlimit-as", "rlimit-nofile", "rlimit-nproc",
        "rlimit-fsize", "rlimit-core", "watch-config", "metrics-listen", "proxy-protocol", "proxy-from",
        "proxy-header-timeout", "agent-listen", "agent-drain-delay"};
    EXPECT_EQ(keys, expected);
    EXPECT_NE(text.find("\nmax-connections = 256\n"), std::string::npos);
    EXPECT_NE(text.find("\numask = 0022\n"), std::string::npos);
    EXPECT_NE(text.find("\n# user = (not set)\n"), std::string::npos);
    EXPECT_NE(text.find("# config = " + conf_ + "\n"), std::string::npos);
}

TEST_F(ConfigTest, LogTargetIsSyslogStderrOrAnAbsoluteFile) {
    EXPECT_EQ(load("listen = 127.0.0.1:0\n").log_target, std::nullopt);
    EXPECT_EQ(load("listen = 127.0.0.1:0\nlog-target = syslog\n").log_target, "syslog");
    EXPECT_EQ(load("listen = 127.0.0.1:0\nlog-target = stderr\n").log_target, "stderr");
    EXPECT_EQ(load("listen = 127.0.0.1:0\nlog-target = /var/log/forkd.log\n").log_target,
              "/var/log/forkd.log");
    const std::string error = load_error("listen = 127.0.0.1:0\nlog-target = forkd.log\n");
    EXPECT_NE(error.find(":2:"), std::string::npos) << error;
    EXPECT_NE(error.find("log-target"), std::string::npos) << error;
}

TEST_F(ConfigTest, RenderRoundTrips) {
    const std::string prog = executable("prog");
    Config original = load(
        "listen = 127.0.0.1:0\nlisten = [::1]:7007\nlisten = unix:/tmp/r.sock\n"
        "exec = " + prog + " 'a #b' \"it's\" '' \\\"q\\\"\n"
        "env = \"SPACED= leading and trailing \"\nenv = HASH=#1\nenv = QUOTE=\"x\"\npass-env = HOME\n"
        "user = nobody\nmax-connections = 12\noverload = reject\nlog-level = notice\numask = 077\n"
        "rlimit-nofile = 64\nrlimit-as = unlimited\nwatch-config = yes\ncontrol-group = root\n"
        "pidfile = /tmp/r/p.pid\ncontrol-socket = /tmp/r/c.sock\nshutdown-timeout = 1\n");
    const std::string rendered = render_config(original);

    const std::string copy = dir_ + "/copy.conf";
    write(copy, rendered);
    Config reloaded = load_config(parse({"-c", copy}));
    EXPECT_EQ(reloaded.exec_argv, original.exec_argv);
    EXPECT_EQ(reloaded.env, original.env);
    EXPECT_EQ(reloaded.env[0], "SPACED= leading and trailing ");
    EXPECT_EQ(reloaded.env[2], "QUOTE=\"x\"");
    EXPECT_EQ(reloaded.rlimits.as, original.rlimits.as);
    EXPECT_FALSE(reloaded.rlimits.cpu);

    // Everything but the config file's own name is the same.
    auto without_config_line = [](const std::string& text) {
        std::string out;
        for (const auto& line : lines_of(text))
            if (!line.starts_with("# config = ")) out += line + "\n";
        return out;
    };
    EXPECT_EQ(without_config_line(render_config(reloaded)), without_config_line(rendered));
}

// ---------------------------------------------------------------- the file reader alone

TEST(ConfigFileReader, KeepsLineNumbers) {
    ConfigFileContent content = parse_config_text("# c\n\nlisten = a\n  backlog=5  \nbad\n", "f");
    ASSERT_EQ(content.entries.size(), 2u);
    EXPECT_EQ(content.entries[0].name, "listen");
    EXPECT_EQ(content.entries[0].value, "a");
    EXPECT_EQ(content.entries[0].line, 3);
    EXPECT_EQ(content.entries[1].name, "backlog");
    EXPECT_EQ(content.entries[1].value, "5");
    EXPECT_EQ(content.entries[1].line, 4);
    ASSERT_EQ(content.errors.size(), 1u);
    EXPECT_EQ(content.errors[0].line, 5);
    EXPECT_EQ(content.errors[0].message, "f:5: syntax error: expected 'name = value'");
}

TEST(ConfigFileReader, ValueMayContainEquals) {
    ConfigFileContent content = parse_config_text("env = A=b=c\n", "f");
    ASSERT_EQ(content.entries.size(), 1u);
    EXPECT_EQ(content.entries[0].value, "A=b=c");
}

TEST(ConfigFileReader, QuoteValueRoundTrips) {
    for (std::string value : {"plain", "with space", " lead", "trail ", "#hash", "a # b", "\"q\"", "back\\slash",
                              "it's", "mixed 'quote\" # x"}) {
        ConfigFileContent content = parse_config_text("k = " + quote_config_value(value) + "\n", "f");
        ASSERT_EQ(content.entries.size(), 1u) << value;
        EXPECT_EQ(content.entries[0].value, value);
    }
}

// ---------------------------------------------------------------- event mode

TEST_F(ConfigTest, ModeAndWorkers) {
    const Config fork = load("listen = 127.0.0.1:0\n");
    EXPECT_EQ(fork.mode, ServeMode::fork);
    EXPECT_EQ(fork.workers, 0u);
    const Config event = load("listen = 127.0.0.1:0\nmode = event\nworkers = 3\nhandler = chargen\n");
    EXPECT_EQ(event.mode, ServeMode::event);
    EXPECT_EQ(event.workers, 3u);
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nmode = threads\n"),
              at(2) + "option 'mode': 'threads' is not one of fork, event");
    EXPECT_NE(load_error("listen = 127.0.0.1:0\nworkers = 1000\n").find(at(2) + "option 'workers'"), std::string::npos);
}

TEST_F(ConfigTest, EventModeRefusesAnExecHandlerNamingBothOptions) {
    const std::string error = load_error("listen = 127.0.0.1:0\nmode = event\nhandler = exec\nexec = /bin/cat\n");
    EXPECT_EQ(error, at(2) + "option 'mode': event cannot serve handler = exec (set at " + conf_ +
                         ":3): use mode = fork, or a built-in handler");
}

} // namespace
} // namespace forkd

// ---- admission control ------------------------------------------------------------------------

namespace forkd {
namespace {

class AdmissionConfigTest : public ConfigTest {};

TEST_F(AdmissionConfigTest, AllowAndDenyKeepTheirWrittenOrderAcrossBothKeysAndTheCommandLine) {
    const Config c = load("listen = 127.0.0.1:0\n"
                          "deny = 10.1.0.0/16\n"
                          "allow = 10.0.0.0/8\n"
                          "deny = 2001:db8::1\n"
                          "allow = ::ffff:192.0.2.0/120\n",
                          {"--deny", "192.0.2.9"});
    ASSERT_EQ(c.access_rules.size(), 5u);
    EXPECT_EQ(c.access_rules[0].to_string(), "deny 192.0.2.9/32") << "the command line's first";
    EXPECT_EQ(c.access_rules[1].to_string(), "deny 10.1.0.0/16");
    EXPECT_EQ(c.access_rules[2].to_string(), "allow 10.0.0.0/8");
    EXPECT_EQ(c.access_rules[3].to_string(), "deny 2001:db8::1/128");
    EXPECT_EQ(c.access_rules[4].to_string(), "allow 192.0.2.0/24");
    const std::string text = render_config(c);
    const std::string expected = "deny = 192.0.2.9/32\ndeny = 10.1.0.0/16\nallow = 10.0.0.0/8\n"
                                 "deny = 2001:db8::1/128\nallow = 192.0.2.0/24\n";
    EXPECT_NE(text.find(expected), std::string::npos) << "forkd -t shows them in order:\n" << text;
    EXPECT_EQ(text.find("# deny = (not set)"), std::string::npos) << text;
}

TEST_F(AdmissionConfigTest, RatesPrefixAndBusyMessageParseAndRender) {
    const Config c = load("listen = 127.0.0.1:0\n"
                          "source-prefix = 24/64\n"
                          "max-connection-rate = 100/10\n"
                          "max-per-source-rate = 10/60\n"
                          "busy-message = \"Busy, try later\\r\\n\"\n");
    EXPECT_EQ(c.limits.source_prefix, (SourcePrefix{24, 64}));
    EXPECT_EQ(c.limits.max_connection_rate, (Rate{100, 10}));
    EXPECT_EQ(c.limits.max_per_source_rate, (Rate{10, 60}));
    EXPECT_EQ(c.busy_message, "Busy, try later\r\n");
    const std::string text = render_config(c);
    EXPECT_NE(text.find("source-prefix = 24/64\n"), std::string::npos) << text;
    EXPECT_NE(text.find("max-connection-rate = 100/10\n"), std::string::npos) << text;
    EXPECT_NE(text.find("busy-message = Busy, try later\\r\\n\n"), std::string::npos) << text;
    const Config defaults = load("listen = 127.0.0.1:0\n");
    EXPECT_NE(render_config(defaults).find("source-prefix = 32/128\n"), std::string::npos);
    EXPECT_NE(render_config(defaults).find("max-connection-rate = 0\n"), std::string::npos);
    EXPECT_NE(render_config(defaults).find("# busy-message = (not set)\n"), std::string::npos);
}

TEST_F(AdmissionConfigTest, BadValuesNameTheLineAndWhatIsWrong) {
    const std::string e = load_error("listen = 127.0.0.1:0\n"
                                     "allow = 10.0.0.0/33\n"
                                     "deny = 10.1.2.3/8\n"
                                     "source-prefix = 33/64\n"
                                     "max-connection-rate = 10\n"
                                     "max-per-source-rate = 0/60\n"
                                     "busy-message = bad\\q\n");
    EXPECT_NE(e.find(at(2) + "option 'allow': '10.0.0.0/33' is not a CIDR network: prefix length 33 is out of range 0..32"),
              std::string::npos) << e;
    EXPECT_NE(e.find(at(3) + "option 'deny': '10.1.2.3/8' is not a CIDR network: host bits are set after /8"),
              std::string::npos) << e;
    EXPECT_NE(e.find(at(4) + "option 'source-prefix': '33/64': IPv4 prefix length 33 is out of range 0..32"),
              std::string::npos) << e;
    EXPECT_NE(e.find(at(5) + "option 'max-connection-rate': '10' is not N/S"), std::string::npos) << e;
    EXPECT_NE(e.find(at(6) + "option 'max-per-source-rate': '0/60': count 0 is out of range"), std::string::npos) << e;
    EXPECT_NE(e.find(at(7) + "option 'busy-message': 'bad\\q': unknown escape \\q"), std::string::npos) << e;
}

} // namespace
} // namespace forkd

namespace forkd {
namespace {

class LoadBalancerConfigTest : public ConfigTest {};

TEST_F(LoadBalancerConfigTest, ProxyAndAgentOptions) {
    Config defaults = load("listen = 127.0.0.1:0\n");
    EXPECT_FALSE(defaults.proxy_protocol);
    EXPECT_TRUE(defaults.proxy_from.empty());
    EXPECT_EQ(defaults.proxy_header_timeout_s, 5u);
    EXPECT_FALSE(defaults.agent_listen);
    EXPECT_EQ(defaults.agent_drain_delay_s, 6u);
    Config config = load(
        "listen = 127.0.0.1:0\nproxy-protocol = yes\nproxy-from = 10.0.0.0/8\nproxy-from = 2001:db8::1\n"
        "proxy-header-timeout = 2\nagent-listen = 127.0.0.1:7001\nagent-drain-delay = 3\n");
    EXPECT_TRUE(config.proxy_protocol);
    EXPECT_EQ(config.proxy_from, (std::vector<std::string>{"10.0.0.0/8", "2001:db8::1"}));
    EXPECT_EQ(config.proxy_header_timeout_s, 2u);
    ASSERT_TRUE(config.agent_listen);
    EXPECT_EQ(to_string(*config.agent_listen), "127.0.0.1:7001");
    EXPECT_EQ(config.agent_drain_delay_s, 3u);
    const std::string rendered = render_config(config);
    EXPECT_NE(rendered.find("proxy-from = 10.0.0.0/8\nproxy-from = 2001:db8::1\n"), std::string::npos) << rendered;
    EXPECT_NE(rendered.find("agent-listen = 127.0.0.1:7001\n"), std::string::npos) << rendered;
}

TEST_F(LoadBalancerConfigTest, BadValuesNameTheLineAndTheReason) {
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nproxy-from = 10.0.0.0/33\n"),
              at(2) + "option 'proxy-from': '10.0.0.0/33' is not a CIDR network: prefix length 33 is out of range 0..32");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nproxy-from = balancer\n"),
              at(2) + "option 'proxy-from': 'balancer' is not a CIDR network: 'balancer' is not an IPv4 or IPv6 address");
    EXPECT_EQ(load_error("listen = 127.0.0.1:0\nagent-listen = unix:/run/agent.sock\n"),
              at(2) + "option 'agent-listen': must be HOST:PORT, [V6ADDR]:PORT or *:PORT");
}

} // namespace
} // namespace forkd
