// SPDX-License-Identifier: MIT
// The command tables: the shared rows (name, privilege, arguments) and, for each, a daemon
// handler and a forkctl row (usage, printer, completion) — a command missing on one side fails
// here, not in front of a user.
#include "common/control/control_commands.hpp"
#include "common/control/control_protocol.hpp"
#include "ctl/command_line.hpp"
#include "ctl/completion.hpp"
#include "ctl/human_format.hpp"
#include "daemon/control/control_dispatch.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace forkd {
namespace {

using control::Command;
using Words = std::vector<std::string>;

// A request of COMMAND with every argument of its row filled with a valid value.
control::Request sample_request(const control::CommandRow& row) {
    control::Request request;
    request.command = row.command;
    for (const control::ArgSpec& arg : row.args) {
        if (arg.type == control::ArgType::word) request.*arg.text = std::string(arg.words().front());
        if (arg.type == control::ArgType::text) request.*arg.text = "7";
        if (arg.type == control::ArgType::count) request.*arg.number = 7;
    }
    return request;
}

Words complete(Words words) {
    ctl::Invocation invocation;
    invocation.socket = "/nonexistent/forkd-test.sock";
    invocation.complete_words = std::move(words);
    return ctl::completion_words(invocation);
}

TEST(CommandTable, PrivilegeIsTheContracts) {
    // interface.md: status, list and metrics are open to any peer, everything else needs privilege.
    for (const control::CommandRow& row : control::command_rows()) {
        bool open = row.name == "status" || row.name == "list" || row.name == "metrics";
        EXPECT_EQ(row.privileged, !open) << row.name;
        EXPECT_EQ(control::changes_state(row.command), row.privileged) << row.name;
    }
}

TEST(CommandTable, NamesAreUniqueAndEveryCommandHasARow) {
    std::set<std::string_view> names;
    for (const control::CommandRow& row : control::command_rows()) {
        EXPECT_TRUE(names.insert(row.name).second) << row.name;
        EXPECT_EQ(&control::command_row(row.command), &row);
        EXPECT_EQ(control::parse_command(row.name), row.command);
    }
    EXPECT_EQ(control::all_commands().size(), control::command_rows().size());
}

TEST(CommandTable, ArgumentsAreTypedAndLandSomewhere) {
    for (const control::CommandRow& row : control::command_rows())
        for (const control::ArgSpec& arg : row.args) {
            EXPECT_FALSE(arg.name.empty()) << row.name;
            if (arg.type == control::ArgType::count)
                EXPECT_NE(arg.number, nullptr) << row.name << " " << arg.name;
            else
                EXPECT_NE(arg.text, nullptr) << row.name << " " << arg.name;
            if (arg.type == control::ArgType::word) {
                ASSERT_NE(arg.words, nullptr) << row.name << " " << arg.name;
                EXPECT_FALSE(arg.words().empty());
            }
        }
}

TEST(CommandTable, EveryRequestRoundTripsThroughItsRow) {
    for (const control::CommandRow& row : control::command_rows()) {
        control::Request request = sample_request(row);
        auto parsed = control::parse_request(control::encode_request(request));
        ASSERT_TRUE(std::holds_alternative<control::Request>(parsed)) << row.name;
        EXPECT_EQ(std::get<control::Request>(parsed), request) << row.name;
    }
}

TEST(CommandTable, EveryCommandHasADaemonHandler) {
    ASSERT_EQ(command_handlers().size(), control::command_rows().size());
    for (const control::CommandRow& row : control::command_rows()) {
        const CommandHandler* handler = command_handler(row.command);
        ASSERT_NE(handler, nullptr) << row.name;
        // Exactly one way to call the daemon: now (call) or with a reply that comes later.
        EXPECT_NE(handler->call == nullptr, handler->call_later == nullptr) << row.name;
        EXPECT_EQ(handler->stop_after_reply, row.command == Command::stop) << row.name;
        // What the audit line shows of the arguments, for every command that has some.
        EXPECT_EQ(handler->audit_detail != nullptr, !row.args.empty()) << row.name;
    }
}

TEST(CommandTable, EveryCommandHasAForkctlRowInTheSameOrder) {
    auto rows = control::command_rows();
    auto specs = ctl::command_table();
    ASSERT_GE(specs.size(), rows.size());
    const std::string usage = ctl::usage_text();
    // forkctl's own commands (top) come after the control commands, each named.
    for (std::size_t i = rows.size(); i < specs.size(); ++i) {
        EXPECT_FALSE(specs[i].local_name.empty());
        EXPECT_NE(specs[i].run, nullptr) << specs[i].name();
        EXPECT_EQ(ctl::find_command_spec(specs[i].name()), &specs[i]);
        EXPECT_EQ(control::parse_command(specs[i].name()), std::nullopt) << "not a control command";
    }
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const ctl::CommandSpec& spec = specs[i];
        EXPECT_EQ(spec.command, rows[i].command) << rows[i].name;
        EXPECT_FALSE(spec.summary.empty()) << spec.name();
        EXPECT_NE(spec.print, nullptr) << spec.name();
        EXPECT_EQ(spec.parse_args != nullptr, !rows[i].args.empty()) << spec.name();
        EXPECT_EQ(&ctl::command_spec(spec.command), &spec);
        EXPECT_TRUE(spec.local_name.empty()) << spec.name();
        EXPECT_NE(usage.find("  " + std::string(spec.name()) + " " + std::string(spec.arguments)),
                  std::string::npos) << spec.name();
        EXPECT_NE(usage.find(spec.summary), std::string::npos) << spec.name();
    }
}

TEST(CommandTable, PrintersSayWhatWasDone) {
    control::Request set = sample_request(control::command_row(Command::set));
    EXPECT_EQ(ctl::command_spec(Command::set).print(set, nullptr), "max-connections set to 7\n");
    control::Request kill = sample_request(control::command_row(Command::kill));
    EXPECT_EQ(ctl::command_spec(Command::kill).print(kill, nullptr), "connection 7 killed\n");
    EXPECT_EQ(ctl::command_spec(Command::reload).print({}, nullptr), "configuration reloaded: nothing changed\n");
    const nlohmann::json reloaded = {
        {"changes", {{{"option", "max-connections"}, {"from", "5"}, {"to", "256"}}}},
        {"reverted_set", {"max-connections"}}};
    EXPECT_EQ(ctl::command_spec(Command::reload).print({}, reloaded),
              "configuration reloaded:\n  max-connections 5 -> 256\n"
              "note: max-connections had been set with forkctl set; the file's value replaces it\n");
    EXPECT_EQ(ctl::command_spec(Command::list).print({}, nlohmann::json::array()),
              ctl::format_list(nlohmann::json::array()));
}

TEST(Completion, CommandsThenTheirOptionsOrArguments) {
    EXPECT_EQ(complete({}), (Words{"status", "list", "set", "drain", "resume", "reload", "stop", "kill",
                                   "metrics", "upgrade", "top"}));
    EXPECT_EQ(complete({"top"}), (Words{"-d", "--once", "--json"}));
    EXPECT_EQ(complete({"status"}), (Words{"--json"}));
    EXPECT_EQ(complete({"reload", "--json"}), (Words{"--json"}));
    EXPECT_EQ(complete({"drain"}), (Words{"--wait", "--timeout", "--json"}));
    EXPECT_EQ(complete({"stop"}), (Words{"--timeout", "--json"}));
    auto keys = control::set_keys();
    EXPECT_EQ(complete({"set"}), Words(keys.begin(), keys.end()));
    EXPECT_EQ(complete({"set", "overload"}), (Words{"wait", "reject"}));
    EXPECT_EQ(complete({"set", "log-level"}), (Words{"debug", "info", "notice", "warning", "err"}));
    EXPECT_EQ(complete({"set", "max-connections"}), (Words{"0"}));
    EXPECT_TRUE(complete({"set", "overload", "wait"}).empty());
    EXPECT_TRUE(complete({"kill"}).empty()) << "no forkd to ask for ids";
    EXPECT_TRUE(complete({"bogus"}).empty());
}

TEST(Completion, IsAHiddenCommandWord) {
    ctl::Invocation invocation = ctl::parse_command_line({"-s", "/x.sock", "__complete", "set", "--json"});
    EXPECT_EQ(invocation.action, ctl::Invocation::Action::complete);
    EXPECT_EQ(invocation.socket, "/x.sock");
    EXPECT_EQ(invocation.complete_words, (Words{"set", "--json"}));
    EXPECT_EQ(ctl::usage_text().find("__complete"), std::string::npos);
}

} // namespace
} // namespace forkd
