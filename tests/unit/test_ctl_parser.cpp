// SPDX-License-Identifier: MIT
// forkctl's command line (global options, command table, per-command arguments) and its
// human formatters: pure, no daemon.
#include "ctl/command_line.hpp"
#include "ctl/human_format.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace forkd::ctl {
namespace {

using namespace std::chrono_literals;
using control::Command;

Invocation parse(std::vector<std::string> args) { return parse_command_line(args); }

std::string usage_error(std::vector<std::string> args) {
    try {
        parse_command_line(args);
    } catch (const UsageError& e) {
        return e.what();
    }
    ADD_FAILURE() << "accepted a bad command line";
    return "";
}

TEST(CtlParser, MatchesExactWordsAndUniquePrefixes) {
    constexpr std::array<std::string_view, 3> words = {"status", "stop", "set"};
    EXPECT_EQ(match_word("stop", words, "command"), "stop");
    EXPECT_EQ(match_word("sta", words, "command"), "status");
    EXPECT_EQ(match_word("se", words, "command"), "set");
    try {
        match_word("st", words, "command");
        FAIL();
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "ambiguous command 'st' (could be: status, stop)");
    }
    try {
        match_word("x", words, "command");
        FAIL();
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "unknown command 'x' (valid: status, stop, set)");
    }
    EXPECT_THROW(match_word("", words, "command"), UsageError);
}

// Whether forkctl adds "(see 'forkctl --help')" is the error's own data, not a guess from its
// text: a value the user typed with a parenthesis in it still gets the pointer.
bool lists_valid_choices(std::vector<std::string> args) {
    try {
        parse_command_line(args);
    } catch (const UsageError& e) {
        return e.lists_valid_choices();
    }
    ADD_FAILURE() << "accepted a bad command line";
    return false;
}

TEST(CtlParser, ErrorsSayWhetherTheyListTheValidChoices) {
    EXPECT_TRUE(lists_valid_choices({"bogus"}));
    EXPECT_TRUE(lists_valid_choices({}));
    EXPECT_TRUE(lists_valid_choices({"set"}));
    EXPECT_TRUE(lists_valid_choices({"kill", "x"}));
    EXPECT_FALSE(lists_valid_choices({"drain", "--wait", "--timeout", "(1)"}));
    EXPECT_FALSE(lists_valid_choices({"set", "max-connections", "1", "(2)"}));
}

TEST(CtlParser, EveryCommandByItsName) {
    for (const auto& spec : command_table()) {
        std::vector<std::string> args = {std::string(spec.name())};
        if (spec.command == Command::set) args = {"set", "overload", "reject"};
        if (spec.command == Command::kill) args = {"kill", "5"};
        EXPECT_EQ(parse(args).request.command, spec.command) << spec.name();
        EXPECT_EQ(parse(args).local_command, spec.local_name) << spec.name();
    }
    // Every control command, and forkctl's own (top).
    EXPECT_EQ(command_table().size(), control::all_commands().size() + 1);
    EXPECT_TRUE(parse({"top", "--once"}).once);
    EXPECT_EQ(parse({"top", "-d", "0.5"}).delay, std::chrono::milliseconds(500));
}

TEST(CtlParser, GlobalOptions) {
    Invocation inv = parse({"-s", "/tmp/x.sock", "--json", "--timeout", "2.5", "status"});
    EXPECT_EQ(inv.socket, "/tmp/x.sock");
    EXPECT_TRUE(inv.json);
    EXPECT_EQ(inv.timeout, 2500ms);
    EXPECT_EQ(inv.request.command, Command::status);
    inv = parse({"--socket=/a.sock", "list"});
    EXPECT_EQ(inv.socket, "/a.sock");
    inv = parse({"-i", "web", "status"});
    EXPECT_EQ(inv.instance, "web");
    EXPECT_FALSE(inv.socket);
    EXPECT_FALSE(inv.timeout);
    inv = parse({"status", "--json"});
    EXPECT_TRUE(inv.json) << "--json is also accepted after the command";
    inv = parse({"-s", "/x", "--", "status"});
    EXPECT_EQ(inv.request.command, Command::status);
}

TEST(CtlParser, HelpAndVersion) {
    EXPECT_EQ(parse({"--help"}).action, Invocation::Action::help);
    EXPECT_EQ(parse({"-h"}).action, Invocation::Action::help);
    EXPECT_EQ(parse({"-V"}).action, Invocation::Action::version);
    EXPECT_NE(usage_text().find("drain [--wait] [--timeout S]"), std::string::npos);
    EXPECT_NE(usage_text().find("max-connections"), std::string::npos);
}

TEST(CtlParser, UsageMistakesSayWhatIsWrong) {
    EXPECT_EQ(usage_error({}), "missing command (valid: status, list, set, drain, resume, reload, stop, kill, metrics, upgrade, top)");
    EXPECT_EQ(usage_error({"bogus"}), "unknown command 'bogus' (valid: status, list, set, drain, resume, reload, stop, kill, metrics, upgrade, top)");
    EXPECT_EQ(usage_error({"s"}), "ambiguous command 's' (could be: status, set, stop)");
    EXPECT_EQ(usage_error({"-s", "/a", "-i", "b", "status"}), "-s and -i cannot be used together");
    EXPECT_NE(usage_error({"--bogus", "status"}).find("--bogus"), std::string::npos);
    EXPECT_NE(usage_error({"-s"}).find("socket"), std::string::npos);
    EXPECT_EQ(usage_error({"--timeout", "0", "status"}), "--timeout: expected a positive number of seconds, got '0'");
    EXPECT_EQ(usage_error({"--timeout", "soon", "status"}), "--timeout: expected a positive number of seconds, got 'soon'");
    EXPECT_EQ(usage_error({"status", "now"}), "too many arguments for 'status': 'now'");
    EXPECT_NE(usage_error({"status", "--wait"}).find("--wait"), std::string::npos);
}

TEST(CtlParser, Set) {
    Invocation inv = parse({"set", "max-connections", "10"});
    EXPECT_EQ(inv.request.key, "max-connections");
    EXPECT_EQ(inv.request.value, "10");
    EXPECT_EQ(parse({"set", "max-connections", "3"}).request.key, "max-connections")
        << "a key that is also the start of another (max-connection-rate) is itself";
    EXPECT_EQ(parse({"set", "busy", "x"}).request.key, "busy-message");
    EXPECT_EQ(parse({"set", "max-per-source-r", "1/60"}).request.key, "max-per-source-rate");
    EXPECT_EQ(parse({"set", "log", "debug"}).request.key, "log-level");
    EXPECT_EQ(usage_error({"set"}),
              "missing argument: set KEY VALUE (valid keys: max-connections, max-per-source, "
              "connection-timeout, idle-timeout, overload, log-level, max-connection-rate, "
              "max-per-source-rate, busy-message)");
    EXPECT_EQ(usage_error({"set", "overload"}), "missing argument: set KEY VALUE (no value given for overload)");
    EXPECT_EQ(usage_error({"set", "max", "1"}),
              "ambiguous key 'max' (could be: max-connections, max-per-source, max-connection-rate, "
              "max-per-source-rate)");
    EXPECT_NE(usage_error({"set", "colour", "1"}).find("unknown key 'colour'"), std::string::npos);
    EXPECT_EQ(usage_error({"set", "overload", "wait", "now"}), "too many arguments for 'set': 'now'");
}

TEST(CtlParser, Kill) {
    EXPECT_EQ(parse({"kill", "42"}).request.id, 42u);
    EXPECT_EQ(usage_error({"kill"}), "missing argument: kill ID (a connection id from 'forkctl list')");
    EXPECT_NE(usage_error({"kill", "abc"}).find("got 'abc'"), std::string::npos);
    EXPECT_NE(usage_error({"kill", "4x"}).find("got '4x'"), std::string::npos);
    EXPECT_NE(usage_error({"kill", "1", "2"}).find("too many"), std::string::npos);
}

TEST(CtlParser, DrainAndStopOptions) {
    Invocation inv = parse({"drain"});
    EXPECT_FALSE(inv.wait);
    inv = parse({"drain", "--wait", "--timeout", "3"});
    EXPECT_TRUE(inv.wait);
    EXPECT_EQ(inv.wait_timeout, 3000ms);
    inv = parse({"--timeout", "1", "drain", "-w", "--timeout=0.25"});
    EXPECT_EQ(inv.timeout, 1000ms);
    EXPECT_EQ(inv.wait_timeout, 250ms);
    EXPECT_EQ(usage_error({"drain", "--timeout", "3"}), "drain: --timeout needs --wait");
    inv = parse({"stop", "--timeout", "20"});
    EXPECT_EQ(inv.request.command, Command::stop);
    EXPECT_EQ(inv.wait_timeout, 20000ms);
    EXPECT_NE(usage_error({"stop", "--wait"}).find("--wait"), std::string::npos);
    EXPECT_NE(usage_error({"resume", "--timeout", "1"}).find("--timeout"), std::string::npos);
}

TEST(CtlParser, SecondsAreRoundedUpToMilliseconds) {
    EXPECT_EQ(parse_seconds("0.0001", "--timeout"), 1ms);
    EXPECT_EQ(parse_seconds("60", "--timeout"), 60000ms);
    EXPECT_THROW(parse_seconds("-1", "--timeout"), UsageError);
    EXPECT_THROW(parse_seconds("inf", "--timeout"), UsageError);
    EXPECT_THROW(parse_seconds("nan", "--timeout"), UsageError);
    EXPECT_THROW(parse_seconds("", "--timeout"), UsageError);
}

TEST(CtlFormat, Durations) {
    EXPECT_EQ(format_duration(0), "0s");
    EXPECT_EQ(format_duration(59), "59s");
    EXPECT_EQ(format_duration(125), "2min 5s");
    EXPECT_EQ(format_duration(7260), "2h 1min");
    EXPECT_EQ(format_duration(3 * 86400 + 4 * 3600), "3d 4h");
}

TEST(CtlFormat, Bytes) {
    EXPECT_EQ(format_bytes(0), "0");
    EXPECT_EQ(format_bytes(1023), "1023");
    EXPECT_EQ(format_bytes(1536), "1.5K");
    EXPECT_EQ(format_bytes(5 * 1024 * 1024), "5.0M");
}

TEST(CtlFormat, StatusReadsLikeSystemctl) {
    auto status = nlohmann::json::parse(R"({"pid": 1234, "version": "0.1.0", "instance": null,
        "state": "draining", "accepting": false, "active": 3, "uptime_s": 120,
        "limits": {"max_connections": 256, "max_per_source": 0, "overload": "wait",
                   "connection_timeout": 30, "idle_timeout": 0},
        "listen": ["127.0.0.1:7007", "[::1]:7007"], "handler": "echo",
        "refused": {"limit": 2, "per_source": 1},
        "totals": {"accepted": 10, "completed": 7, "rejected": 3, "killed": 0, "failed": 0}})");
    std::string text = format_status(status);
    EXPECT_NE(text.find("forkd - draining\n"), std::string::npos) << text;
    EXPECT_NE(text.find("     State: draining (not accepting)\n"), std::string::npos) << text;
    EXPECT_NE(text.find("       PID: 1234\n"), std::string::npos) << text;
    EXPECT_NE(text.find("    Uptime: 2min 0s\n"), std::string::npos) << text;
    EXPECT_NE(text.find("    Listen: 127.0.0.1:7007\n            [::1]:7007\n"), std::string::npos) << text;
    EXPECT_NE(text.find("    Active: 3 of 256 (per source: unlimited, overload: wait)\n"), std::string::npos) << text;
    EXPECT_NE(text.find("  Timeouts: connection 30s, idle none\n"), std::string::npos) << text;
    EXPECT_NE(text.find("   Refused: 2 limit, 1 per_source\n"), std::string::npos) << text;
    EXPECT_NE(text.find("10 accepted"), std::string::npos) << text;
}

TEST(CtlFormat, StatusSurvivesMissingFields) {
    std::string text = format_status(nlohmann::json::object());
    EXPECT_NE(text.find("PID: -"), std::string::npos) << text;
    EXPECT_NO_THROW(format_status(nlohmann::json::array()));
}

TEST(CtlFormat, ListIsAnAlignedTable) {
    auto list = nlohmann::json::parse(R"([
        {"id": 7, "pid": 4242, "peer": "127.0.0.1:50000", "age_s": 5, "state": "running",
         "bytes_in": 10, "bytes_out": 2048},
        {"id": 12, "pid": 99, "peer": "[::1]:6", "age_s": 3700, "state": "closing"}])");
    std::string text = format_list(list);
    EXPECT_EQ(text,
              "ID   PID  PEER             AGE      STATE    IN   OUT\n"
              " 7  4242  127.0.0.1:50000  5s       running  10  2.0K\n"
              "12    99  [::1]:6          1h 1min  closing   -     -\n");
    EXPECT_EQ(format_list(nlohmann::json::array()), "no active connections\n");
}

} // namespace
} // namespace forkd::ctl
