// SPDX-License-Identifier: MIT
// Event mode keeps fork mode's promises: max-connections (wait, reject), max-per-source,
// idle-timeout and connection-timeout, drain and resume, reload (limits, handler, fork <-> event
// with running connections finishing under the old mode) and a graceful stop.
#include "event_mode_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>

#include <thread>

using namespace forkd::test;
using forkd::UniqueFd;

TEST(EventModeLimits, MaxConnectionsWaitHoldsTheNextClient) {
    Daemon d(event_config({"max-connections = 2", "overload = wait", "workers = 2"}));
    auto a = served_client(d, "a");
    auto b = served_client(d, "b");
    ASSERT_TRUE(a.valid() && b.valid()) << d.log();
    auto c = connect_tcp(d.port());
    ASSERT_TRUE(c.valid());
    ASSERT_TRUE(send_all(c.get(), "c"));
    EXPECT_EQ(read_n(c.get(), 1, 700ms), "") << "served beyond max-connections = 2";
    EXPECT_EQ(active_of(d), 2);
    EXPECT_EQ(d.count_log("event=refused"), 0u) << d.log();
    a.reset();
    EXPECT_EQ(read_n(c.get(), 1, 5s), "c") << "the waiting client was not served once a slot freed";
    EXPECT_TRUE(echo_roundtrip(b.get(), "still b"));
    EXPECT_TRUE(eventually([&] { return active_of(d) == 2; }));
}

TEST(EventModeLimits, MaxConnectionsRejectAndMaxPerSource) {
    Daemon d(event_config({"max-connections = 2", "overload = reject", "max-per-source = 1"}));
    auto a = served_client(d, "a");
    ASSERT_TRUE(a.valid()) << d.log();
    auto same = connect_tcp(d.port());
    EXPECT_TRUE(wait_closed(same.get(), 3s)) << "a second connection of one source was served";
    ASSERT_TRUE(eventually([&] { return !d.refusal_line(peer_of(same)).empty(); }, 3s)) << d.log();
    EXPECT_NE(d.refusal_line(peer_of(same)).find("reason=per_source"), std::string::npos);

    auto other = connect_tcp_from(d.port(), "127.0.0.1", "127.0.0.2");
    ASSERT_TRUE(echo_roundtrip(other.get(), "other source")) << d.log();
    auto third = connect_tcp_from(d.port(), "127.0.0.1", "127.0.0.3");
    EXPECT_TRUE(wait_closed(third.get(), 3s)) << "served beyond max-connections = 2";
    ASSERT_TRUE(eventually([&] { return !d.refusal_line(peer_of(third, "127.0.0.3")).empty(); }, 3s))
        << d.log();
    EXPECT_NE(d.refusal_line(peer_of(third, "127.0.0.3")).find("reason=limit"), std::string::npos);
    auto status = status_json(d);
    EXPECT_EQ((*status)["refused"]["limit"], 1) << status->dump();
    EXPECT_EQ((*status)["refused"]["per_source"], 1) << status->dump();
    a.reset();
    EXPECT_TRUE(eventually([&] { return active_of(d) == 1; }));
    auto again = connect_tcp(d.port());
    EXPECT_TRUE(echo_roundtrip(again.get(), "again")) << "the source's count was not given back";
}

TEST(EventModeTimeouts, IdleAndConnectionTimeouts) {
    Daemon d(event_config({"idle-timeout = 1"}));
    auto fd = connect_tcp(d.port());
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(echo_roundtrip(fd.get(), "tick")) << "closed while active (round " << i << ")";
        std::this_thread::sleep_for(300ms);
    }
    EXPECT_TRUE(wait_closed(fd.get(), 4s)) << "idle connection still open";
    ASSERT_TRUE(d.wait_log("ended_by=idle")) << d.log();

    d.rewrite_config({"listen = 127.0.0.1:0", "mode = event", "workers = 1", "connection-timeout = 1"});
    ASSERT_TRUE(d.wait_log("event=reload result=ok")) << d.log();
    auto busy = connect_tcp(d.port());
    const auto start = std::chrono::steady_clock::now();
    while (echo_roundtrip(busy.get(), "busy", 1s) && std::chrono::steady_clock::now() - start < 6s)
        std::this_thread::sleep_for(100ms);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 4s) << "connection-timeout did not end it";
    ASSERT_TRUE(d.wait_log("ended_by=timeout")) << d.log();
    EXPECT_TRUE(eventually([&] { return active_of(d) == 0; }));
}

TEST(EventModeLifecycle, DrainStopsAcceptingAndResumeRestarts) {
    Daemon d(event_config({"workers = 2"}));
    auto a = served_client(d, "a");
    ASSERT_EQ(forkctl(d, {"drain"}).exit_code, 0);
    ASSERT_TRUE(eventually([&] {
        auto s = status_json(d);
        return s.ok() && (*s)["state"] == "draining";
    }));
    auto waiting = connect_tcp(d.port());
    ASSERT_TRUE(send_all(waiting.get(), "w"));
    EXPECT_EQ(read_n(waiting.get(), 1, 700ms), "") << "served while draining";
    EXPECT_TRUE(echo_roundtrip(a.get(), "a still served"));
    ASSERT_EQ(forkctl(d, {"resume"}).exit_code, 0);
    EXPECT_EQ(read_n(waiting.get(), 1, 5s), "w") << "not served after resume";
}

// A reload's handler and limits apply to new connections; running ones keep theirs. Fork <->
// event: connections of the old mode finish there, new ones go the new way.
TEST(EventModeLifecycle, ReloadSwitchesModesAndRunningConnectionsFinish) {
    Daemon d(config({"handler = echo"}));
    auto forked = served_client(d, "forked");
    ASSERT_TRUE(forked.valid());
    ASSERT_EQ(d.children().size(), 1u);

    d.rewrite_config({"listen = 127.0.0.1:0", "mode = event", "workers = 1", "handler = echo"});
    ASSERT_TRUE(d.wait_log("event=reload result=ok")) << d.log();
    auto evented = served_client(d, "evented");
    ASSERT_TRUE(evented.valid()) << d.log();
    const auto rows = list_json(d);
    ASSERT_EQ(rows.size(), 2u) << rows.dump();
    const auto workers = worker_pids(d);
    ASSERT_EQ(workers.size(), 1u);
    EXPECT_TRUE(echo_roundtrip(forked.get(), "fork child still serves"));
    EXPECT_EQ(active_of(d), 2);

    // Back to fork mode with another handler: the event connection finishes in its worker.
    d.rewrite_config({"listen = 127.0.0.1:0", "mode = fork", "handler = discard"});
    ASSERT_TRUE(eventually([&] { return d.count_log("event=reload result=ok") == 2; })) << d.log();
    EXPECT_TRUE(echo_roundtrip(evented.get(), "worker still serves"));
    auto discarded = connect_tcp(d.port());
    ASSERT_TRUE(send_all(discarded.get(), "into the void"));
    EXPECT_EQ(read_n(discarded.get(), 1, 500ms), "") << "the new handler is discard";
    EXPECT_TRUE(eventually([&] { return active_of(d) == 3; }));
    evented.reset();
    // The worker no longer wanted goes once its last connection is over.
    EXPECT_TRUE(eventually([&] { return !process_alive(workers[0]); }, 5s)) << d.log();
    EXPECT_TRUE(eventually([&] { return active_of(d) == 2; }));
    auto status = status_json(d);
    EXPECT_EQ((*status)["mode"], "fork");
    EXPECT_EQ((*status)["totals"]["failed"], 0) << status->dump();
}

// A worker retired by a reload serves its connections until shutdown-timeout, no longer: then
// they are closed (ended_by=shutdown, as a stop would) and the worker goes, every count exact.
TEST(EventModeLifecycle, ARetiredWorkerEndsItsConnectionsAtShutdownTimeout) {
    Daemon d(event_config({"shutdown-timeout = 1", "handler = echo"}));
    auto held = served_client(d, "held");
    ASSERT_TRUE(held.valid()) << d.log();
    const auto workers = worker_pids(d);
    ASSERT_EQ(workers.size(), 1u);
    d.rewrite_config({"listen = 127.0.0.1:0", "mode = fork", "handler = echo", "shutdown-timeout = 1"});
    ASSERT_TRUE(d.wait_log("event=reload result=ok")) << d.log();
    EXPECT_TRUE(echo_roundtrip(held.get(), "served while retiring"));
    EXPECT_TRUE(wait_closed(held.get(), 4s)) << "not closed after shutdown-timeout\n" << d.log();
    EXPECT_TRUE(eventually([&] { return !process_alive(workers[0]); }, 5s)) << d.log();
    EXPECT_TRUE(d.wait_log("event=worker-retire-timeout pid=" + std::to_string(workers[0]) + " connections=1"))
        << d.log();
    EXPECT_TRUE(eventually([&] { return active_of(d) == 0; }));
    auto status = status_json(d);
    ASSERT_TRUE(status);
    EXPECT_EQ((*status)["totals"]["accepted"], 1);
    EXPECT_EQ((*status)["totals"]["killed"], 1) << status->dump();
    EXPECT_EQ((*status)["totals"]["failed"], 0) << status->dump();
    EXPECT_NE(d.log().find("ended_by=shutdown"), std::string::npos) << d.log();
    EXPECT_TRUE(served_client(d, "fork mode serves").valid());
}

TEST(EventModeLifecycle, StopLetsConnectionsFinishThenClosesThem) {
    Daemon d(event_config({"shutdown-timeout = 1", "workers = 2"}));
    auto a = served_client(d, "a");
    auto b = served_client(d, "b");
    const auto workers = worker_pids(d);
    const auto start = std::chrono::steady_clock::now();
    d.signal(SIGTERM);
    ASSERT_TRUE(d.wait_log("event=stopping")) << d.log();
    EXPECT_TRUE(echo_roundtrip(a.get(), "still served while stopping"));
    b.reset();
    EXPECT_TRUE(wait_closed(a.get(), 4s)) << "not closed after shutdown-timeout";
    auto status = d.wait_exit(5s);
    ASSERT_TRUE(status.has_value()) << d.log();
    EXPECT_EQ(*status, 0) << d.log();
    EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
    EXPECT_NE(d.log().find("ended_by=shutdown"), std::string::npos) << d.log();
    for (pid_t pid : workers) EXPECT_FALSE(process_alive(pid));
}
