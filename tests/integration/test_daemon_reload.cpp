// SPDX-License-Identifier: MIT
// SIGHUP reload: new settings for new connections, live ones untouched, bad files rejected,
// listeners added and removed. Listeners use fixed free ports so that the same line names the
// same listener before and after.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <signal.h>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

std::string listen_line(std::uint16_t port) {
    return "listen = 127.0.0.1:" + std::to_string(port);
}

DaemonOptions on_port(std::uint16_t port, std::vector<std::string> lines) {
    DaemonOptions o;
    o.config_lines = {listen_line(port)};
    o.config_lines.insert(o.config_lines.end(), lines.begin(), lines.end());
    return o;
}

std::vector<std::string> with_listen(std::uint16_t port, std::vector<std::string> lines) {
    lines.insert(lines.begin(), listen_line(port));
    return lines;
}

bool wait_reloads(const Daemon& d, const std::string& result, std::size_t count) {
    return eventually([&] { return d.count_log("event=reload result=" + result) >= count; });
}

} // namespace

TEST(Reload, NewLimitAppliesWhileALiveConnectionIsKept) {
    const auto port = free_tcp_port();
    Daemon d(on_port(port, {"max-connections = 3", "overload = reject"}));
    auto a = connect_tcp(port);
    ASSERT_TRUE(a.valid());
    ASSERT_TRUE(echo_roundtrip(a.get(), "a"));

    d.rewrite_config(with_listen(port, {"max-connections = 1", "overload = reject"}));
    ASSERT_TRUE(wait_reloads(d, "ok", 1)) << d.log();
    EXPECT_TRUE(echo_roundtrip(a.get(), "a survives the reload"));
    if (auto status = status_json(d)) {
        EXPECT_EQ(status->value("/limits/max_connections"_json_pointer, -1L), 1L) << status->dump();
    } else {
        ADD_FAILURE() << "[needs forkctl] " << status.error().message();
    }

    auto b = connect_tcp(port);
    ASSERT_TRUE(b.valid());
    EXPECT_TRUE(wait_closed(b.get(), 3s)) << "the new limit of 1 did not apply";
    ASSERT_TRUE(eventually([&] { return !d.refusal_line(peer_of(b)).empty(); }, 3s)) << d.log();
    EXPECT_NE(d.refusal_line(peer_of(b)).find("limit=1"), std::string::npos) << d.refusal_line(peer_of(b));

    a.reset();
    ASSERT_TRUE(eventually([&] { return d.children().empty(); }));
    auto c = connect_tcp(port);
    ASSERT_TRUE(c.valid());
    EXPECT_TRUE(echo_roundtrip(c.get(), "c"));
}

TEST(Reload, NotifiesReloadingThenReady) {
    Daemon d;
    ASSERT_EQ(d.count_notifications("READY=1"), 1u);
    d.rewrite_config({"listen = 127.0.0.1:0"});
    ASSERT_TRUE(wait_reloads(d, "ok", 1)) << d.log();
    EXPECT_TRUE(d.wait_notification("RELOADING=1"));
    EXPECT_TRUE(eventually([&] { return d.count_notifications("READY=1") >= 2; }))
        << "no READY=1 after the reload";
    // Order: RELOADING=1 comes before the second READY=1.
    auto all = d.notifications();
    int reloading_at = -1, ready_after = -1;
    for (int i = 0; i < int(all.size()); ++i) {
        if (all[i].find("RELOADING=1") != std::string::npos && reloading_at < 0) reloading_at = i;
        if (reloading_at >= 0 && i >= reloading_at && all[i].find("READY=1") != std::string::npos)
            ready_after = i;
    }
    EXPECT_GE(reloading_at, 0);
    EXPECT_GE(ready_after, reloading_at);
}

TEST(Reload, BadFileKeepsTheRunningConfiguration) {
    const auto port = free_tcp_port();
    Daemon d(on_port(port, {"max-connections = 1", "overload = reject"}));
    d.rewrite_config(with_listen(port, {"max-connections = banana", "overload = reject"}));
    ASSERT_TRUE(wait_reloads(d, "failed", 1)) << d.log();
    EXPECT_EQ(d.count_log("event=reload result=ok"), 0u);
    const auto failed = d.log_lines("event=reload result=failed");
    ASSERT_FALSE(failed.empty());
    // The error names the file and line (5: after the harness' three lines and listen).
    const std::string where = d.config_path() + ":5";
    EXPECT_NE(d.log().find(where), std::string::npos)
        << "expected '" << where << "' in the reload error:\n" << d.log();
    EXPECT_NE(d.log().find("max-connections"), std::string::npos) << d.log();
    EXPECT_TRUE(d.running());

    // The old listener serves, under the old limit.
    auto a = connect_tcp(port);
    ASSERT_TRUE(a.valid());
    EXPECT_TRUE(echo_roundtrip(a.get(), "still served"));
    auto b = connect_tcp(port);
    ASSERT_TRUE(b.valid());
    EXPECT_TRUE(wait_closed(b.get(), 3s)) << "the old limit of 1 no longer applies";
}

TEST(Reload, AddsAndRemovesListeners) {
    const auto p1 = free_tcp_port();
    auto p2 = free_tcp_port();
    for (int i = 0; p2 == p1 && i < 10; ++i) p2 = free_tcp_port();
    ASSERT_NE(p1, p2);
    Daemon d(on_port(p1, {}));
    auto on_p1 = connect_tcp(p1);
    ASSERT_TRUE(on_p1.valid());
    ASSERT_TRUE(echo_roundtrip(on_p1.get(), "p1"));

    d.rewrite_config({listen_line(p1), listen_line(p2)});
    ASSERT_TRUE(wait_reloads(d, "ok", 1)) << d.log();
    EXPECT_TRUE(d.wait_log("event=listening address=127.0.0.1:" + std::to_string(p2))) << d.log();
    {
        auto fd = connect_tcp(p2);
        ASSERT_TRUE(fd.valid()) << "added listener not bound";
        EXPECT_TRUE(echo_roundtrip(fd.get(), "p2"));
        auto again = connect_tcp(p1);
        ASSERT_TRUE(again.valid()) << "kept listener lost";
        EXPECT_TRUE(echo_roundtrip(again.get(), "p1 again"));
    }

    d.rewrite_config({listen_line(p2)});
    ASSERT_TRUE(wait_reloads(d, "ok", 2)) << d.log();
    EXPECT_TRUE(eventually([&] { return !connect_tcp(p1).valid(); }, 3s))
        << "removed listener still accepts";
    EXPECT_TRUE(echo_roundtrip(on_p1.get(), "p1 connection outlives its listener"));
    auto fd = connect_tcp(p2);
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "p2 still"));
}

TEST(Reload, NewHandlerForNewConnectionsOnly) {
    const auto port = free_tcp_port();
    Daemon d(on_port(port, {"handler = echo"}));
    auto old_conn = connect_tcp(port);
    ASSERT_TRUE(old_conn.valid());
    ASSERT_TRUE(echo_roundtrip(old_conn.get(), "echo"));

    d.rewrite_config(with_listen(port, {"handler = daytime"}));
    ASSERT_TRUE(wait_reloads(d, "ok", 1)) << d.log();
    auto fresh = connect_tcp(port);
    ASSERT_TRUE(fresh.valid());
    const std::string line = read_until_eof(fresh.get());
    EXPECT_TRUE(line.size() > 10 && line.ends_with("\r\n")) << "not a daytime answer: '" << line << "'";
    EXPECT_TRUE(echo_roundtrip(old_conn.get(), "old connection keeps echo"));
}

// A built-in handler's connections are the spawner's children, an exec'd handler's the
// master's: a reload that switches between them moves the accepting from one to the other.
TEST(Reload, SwitchingBetweenBuiltInAndExecMovesTheAccepting) {
    const auto port = free_tcp_port();
    const std::string exec_line =
        "exec = " + std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop";
    Daemon d(on_port(port, {"handler = echo"}));
    const auto served_by = [&](const char* text) -> pid_t {
        auto fd = served_client(d, text);
        if (!fd.valid()) return -1;
        const auto handlers = d.children();
        return handlers.size() == 1 ? proc_ppid(handlers.front()) : -1;
    };
    EXPECT_EQ(served_by("built-in"), d.spawner_pid()) << d.log();
    ASSERT_TRUE(eventually([&] { return d.children().empty(); }));

    d.rewrite_config(with_listen(port, {exec_line}));
    ASSERT_TRUE(wait_reloads(d, "ok", 1)) << d.log();
    EXPECT_EQ(served_by("exec"), d.pid()) << d.log();
    ASSERT_TRUE(eventually([&] { return d.children().empty(); }));

    d.rewrite_config(with_listen(port, {"handler = echo"}));
    ASSERT_TRUE(wait_reloads(d, "ok", 2)) << d.log();
    EXPECT_EQ(served_by("built-in again"), d.spawner_pid()) << d.log();
}

TEST(Reload, NewIdleTimeoutAppliesToNewConnections) {
    const auto port = free_tcp_port();
    Daemon d(on_port(port, {}));
    auto old_conn = connect_tcp(port);
    ASSERT_TRUE(old_conn.valid());
    ASSERT_TRUE(echo_roundtrip(old_conn.get(), "x"));

    d.rewrite_config(with_listen(port, {"idle-timeout = 1"}));
    ASSERT_TRUE(wait_reloads(d, "ok", 1)) << d.log();
    auto fresh = connect_tcp(port);
    ASSERT_TRUE(fresh.valid());
    ASSERT_TRUE(echo_roundtrip(fresh.get(), "y"));
    EXPECT_TRUE(wait_closed(fresh.get(), 5s)) << "the new idle-timeout did not apply";
    EXPECT_TRUE(echo_roundtrip(old_conn.get(), "old connection keeps its settings"));
}
