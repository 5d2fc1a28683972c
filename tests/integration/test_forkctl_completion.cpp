// SPDX-License-Identifier: MIT
// The bash completion as installed (ctl/forkctl.bash-completion) with the real forkctl, whose
// command table it reads through `forkctl __complete`: commands, options, set keys and values,
// and the ids of a real forkd's connections.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <sstream>

using namespace forkd::test;

namespace {

using Words = std::vector<std::string>;

// What bash would offer for the last of WORDS (the word being completed) of a forkctl command
// line, without the bash-completion package. (_forkctl's own status is compgen's: 1 when
// nothing matches, as for any completion function.)
Words completions(const Words& words) {
    const std::string script =
        "source \"$0\" && COMP_WORDS=(forkctl \"$@\") && COMP_CWORD=$# && "
        "{ _forkctl \"$FORKCTL\" \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD - 1]}\"; } ; "
        "printf '%s\\n' \"${COMPREPLY[@]}\"";
    Words argv = {"bash", "-c", script, FORKCTL_COMPLETION};
    argv.insert(argv.end(), words.begin(), words.end());
    CommandResult r = run(argv, 20s, {{"FORKCTL", FORKCTL_BINARY}});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    Words out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

TEST(ForkctlCompletion, CommandsAndGlobalOptions) {
    EXPECT_EQ(completions({""}), (Words{"status", "list", "set", "drain", "resume", "reload", "stop", "kill",
                                        "metrics", "upgrade", "top"}));
    EXPECT_EQ(completions({"top", "--"}), (Words{"--once", "--json"}));
    EXPECT_EQ(completions({"s"}), (Words{"status", "set", "stop"}));
    EXPECT_EQ(completions({"--j"}), (Words{"--json"}));
    EXPECT_EQ(completions({"--timeout", "3", "re"}), (Words{"resume", "reload"}));
    EXPECT_TRUE(completions({"--timeout", ""}).empty());
}

TEST(ForkctlCompletion, CommandOptionsAndArguments) {
    EXPECT_EQ(completions({"status", ""}), (Words{"--json"}));
    EXPECT_EQ(completions({"drain", "--"}), (Words{"--wait", "--timeout", "--json"}));
    EXPECT_EQ(completions({"stop", ""}), (Words{"--timeout", "--json"}));
    EXPECT_EQ(completions({"set", "max-"}), (Words{"max-connections", "max-per-source", "max-connection-rate",
                                                   "max-per-source-rate"}));
    EXPECT_EQ(completions({"set", "busy"}), (Words{"busy-message"}));
    EXPECT_EQ(completions({"set", "overload", ""}), (Words{"wait", "reject"}));
    EXPECT_EQ(completions({"set", "log-level", "w"}), (Words{"warning"}));
    EXPECT_TRUE(completions({"set", "overload", "wait", ""}).empty());
}

TEST(ForkctlCompletion, KillOffersTheIdsOfTheNamedDaemon) {
    Daemon d;
    forkd::UniqueFd client = served_client(d, "ping");
    ASSERT_TRUE(client.valid());
    auto status = forkctl(d, {"--json", "list"});
    auto rows = nlohmann::json::parse(status.out);
    ASSERT_EQ(rows.size(), 1u) << status.out;
    const std::string id = std::to_string(rows[0]["id"].get<std::uint64_t>());
    EXPECT_EQ(completions({"-s", d.control_socket(), "kill", ""}), (Words{id}));
    EXPECT_TRUE(completions({"-s", d.dir().file("nothing.sock"), "kill", ""}).empty());
}

} // namespace
