// SPDX-License-Identifier: MIT
// forkctl top driven in a real terminal (tmux, 80x24): the frame shows the connections, the
// sort keys change their order, k kills the selected one, q and forkd going away leave the
// terminal as it was. --once prints one frame without a terminal.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <string>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

// A tmux server of the test's own (its -L socket), killed by pid at the end.
class Tmux {
public:
    explicit Tmux(const std::string& command)
        : socket_("forkd-top-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++)) {
        result_ = tmux({"new-session", "-d", "-x", "80", "-y", "24", command});
        auto pid = tmux({"display-message", "-p", "#{pid}"});
        if (pid.exit_code == 0 && !pid.out.empty()) server_pid_ = std::stoi(pid.out);
    }
    ~Tmux() {
        (void)tmux({"kill-server"});
        if (server_pid_ > 0) ::kill(server_pid_, SIGKILL);
    }
    bool started() const { return result_.exit_code == 0 && server_pid_ > 0; }
    std::string screen() { return tmux({"capture-pane", "-p"}).out; }
    void keys(const std::string& keys) { (void)tmux({"send-keys", keys}); }
    bool wait_screen(const std::string& needle, Millis timeout = 10s) {
        return eventually([&] { return screen().find(needle) != std::string::npos; }, timeout);
    }

private:
    CommandResult tmux(std::vector<std::string> args) {
        args.insert(args.begin(), {"tmux", "-L", socket_, "-f", "/dev/null"});
        return run(args, 10s, {{"TERM", "xterm"}});
    }
    static inline int counter_ = 0;
    std::string socket_;
    CommandResult result_;
    pid_t server_pid_ = -1;
};

// The pane's command: top between two stty -g, then a marker that says how it ended.
std::string top_command(const Daemon& d) {
    std::string ctl;
    for (const std::string& word : forkctl_argv(d, {"top", "-d", "0.2"})) ctl += "'" + word + "' ";
    return "sh -c \"before=\\$(stty -g); " + ctl + "; rc=\\$?; after=\\$(stty -g); "
           "[ \\\"\\$before\\\" = \\\"\\$after\\\" ] && echo TTY-SAME; echo TOP-EXIT=\\$rc; sleep 60\"";
}

std::size_t row_of(const std::string& screen, const std::string& peer) { return screen.find(peer); }

} // namespace

TEST(ForkctlTop, ShowsSortsKillsAndQuitsCleanly) {
    Daemon d;
    UniqueFd small = served_client(d, "s\n");
    UniqueFd big = served_client(d, std::string(3000, 'b') + "\n");
    UniqueFd third = served_client(d, "t\n");
    ASSERT_TRUE(small.valid() && big.valid() && third.valid());
    const std::string small_peer = peer_of(small), big_peer = peer_of(big), third_peer = peer_of(third);

    Tmux tmux(top_command(d));
    ASSERT_TRUE(tmux.started());
    ASSERT_TRUE(tmux.wait_screen(third_peer)) << tmux.screen();
    std::string screen = tmux.screen();
    EXPECT_NE(screen.find(small_peer), std::string::npos) << screen;
    EXPECT_NE(screen.find(big_peer), std::string::npos) << screen;
    EXPECT_NE(screen.find("a age"), std::string::npos) << "the keys are on screen";
    EXPECT_NE(screen.find("load 3/"), std::string::npos) << screen;

    // By bytes: the big one first.
    tmux.keys("b");
    ASSERT_TRUE(tmux.wait_screen("now bytes")) << tmux.screen();
    ASSERT_TRUE(eventually([&] {
        screen = tmux.screen();
        return row_of(screen, big_peer) < row_of(screen, small_peer) &&
               row_of(screen, big_peer) < row_of(screen, third_peer);
    })) << screen;
    // By age (ties by id): the first connection first.
    tmux.keys("a");
    ASSERT_TRUE(eventually([&] {
        screen = tmux.screen();
        return screen.find("now age") != std::string::npos && row_of(screen, small_peer) < row_of(screen, big_peer);
    })) << screen;

    // k kills the selected (first) row: the oldest, `small`.
    tmux.keys("k");
    ASSERT_TRUE(tmux.wait_screen("killed")) << tmux.screen();
    EXPECT_TRUE(wait_closed(small.get(), 5s));
    ASSERT_TRUE(eventually([&] { return tmux.screen().find(small_peer) == std::string::npos; })) << tmux.screen();
    EXPECT_TRUE(echo_roundtrip(big.get(), "alive\n"));

    tmux.keys("q");
    ASSERT_TRUE(tmux.wait_screen("TOP-EXIT=0")) << tmux.screen();
    screen = tmux.screen();
    EXPECT_NE(screen.find("TTY-SAME"), std::string::npos) << screen;
    EXPECT_EQ(screen.find("q quit"), std::string::npos) << "the frame is gone with the alternate screen\n" << screen;
}

TEST(ForkctlTop, RestoresTheTerminalWhenForkdGoesAway) {
    auto d = std::make_unique<Daemon>();
    Tmux tmux(top_command(*d));
    ASSERT_TRUE(tmux.started());
    ASSERT_TRUE(tmux.wait_screen("q quit")) << tmux.screen();
    d.reset();  // stopped
    ASSERT_TRUE(tmux.wait_screen("TOP-EXIT=3")) << tmux.screen();
    const std::string screen = tmux.screen();
    EXPECT_NE(screen.find("TTY-SAME"), std::string::npos) << screen;
    EXPECT_NE(screen.find("forkd went away"), std::string::npos) << screen;
}

TEST(ForkctlTop, OnceIsOneFrameForScripts) {
    Daemon d;
    UniqueFd client = served_client(d, "x\n");
    ASSERT_TRUE(client.valid());
    const CommandResult once = forkctl(d, {"top", "--once"});
    ASSERT_EQ(once.exit_code, 0) << once.err;
    EXPECT_NE(once.out.find("running, accepting"), std::string::npos) << once.out;
    EXPECT_NE(once.out.find(peer_of(client)), std::string::npos) << once.out;
    EXPECT_EQ(once.out.find("\33["), std::string::npos) << "no escape codes";
    const CommandResult json = forkctl(d, {"top", "--once", "--json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    auto parsed = nlohmann::json::parse(json.out);
    EXPECT_EQ(parsed["connections"].size(), 1u);
    EXPECT_EQ(parsed["status"]["active"], 1);
}
