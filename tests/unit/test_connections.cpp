// SPDX-License-Identifier: MIT
// The master's table of connections: how each one the master ends or loses is signalled,
// counted, and gives back its slot and per-source count. Spawner-served connections only, so
// that signals are recorded rather than sent; a real loop and scoreboard.
#include "daemon/master/connections.hpp"

#include "captured_log.hpp"
#include "common/base/monotonic_clock.hpp"
#include "test_loop.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <utility>
#include <vector>

namespace forkd {
namespace {

struct Sent {
    std::uint64_t id;
    int signo;
    bool operator==(const Sent&) const = default;
};

class ConnectionsTest : public ::testing::Test {
protected:
    ConnectionsTest() {
        connections_ = std::make_unique<Connections>(
            event_.get(), board_, totals_,
            [this](const Connection& c, int signo) { sent_.push_back({c.id, signo}); });
    }
    ~ConnectionsTest() override { connections_.reset(); }

    // A connection the spawner claimed a slot for and reported started.
    Connection& start(std::uint64_t id, unsigned timeout_s = 0) {
        ConnectionInfo info;
        info.id = id;
        const Scoreboard::Lock lock(board_);
        info.slot = *board_.claim(lock, id, "127.0.0.1:1", source_);
        info.peer_text = "127.0.0.1:1";
        info.source = "127.0.0.1";
        return connections_->add(info, monotonic_ns(), ServedBy::spawner, pid_t(1000 + id), timeout_s);
    }

    test::CapturedLog log_;
    EventPtr event_ = test::new_loop();
    Scoreboard board_{8};
    const SourceKey source_ = SourceKey::of_ip(*IpAddress::parse("127.0.0.1"));
    ConnectionTotals totals_;
    std::vector<Sent> sent_;
    std::unique_ptr<Connections> connections_;
};

TEST_F(ConnectionsTest, AKilledConnectionIsSignalledOnceAndCountedKilled) {
    Connection& c = start(7);
    EXPECT_EQ(totals_.accepted(), 1u);
    EXPECT_EQ(board_.from_source(source_), 1u);
    connections_->end(c, Ending::killed, SIGTERM);
    EXPECT_TRUE(c.term_sent);
    connections_->end_all(SIGTERM, Ending::shutdown);  // spares the one already sent SIGTERM
    EXPECT_EQ(sent_, (std::vector<Sent>{{7, SIGTERM}}));

    connections_->finish(c, 1007, W_EXITCODE(0, SIGTERM));
    EXPECT_TRUE(connections_->empty());
    EXPECT_EQ(totals_.killed(), 1u);
    EXPECT_EQ(board_.from_source(source_), 0u);
    EXPECT_EQ(board_.active(), 0u);
    ASSERT_EQ(log_.lines("event=connection-end").size(), 1u);
    EXPECT_NE(log_.lines("event=connection-end")[0].find("ended_by=killed"), std::string::npos);
}

TEST_F(ConnectionsTest, AHandlerThatDiedOfASignalNobodySentCrashed) {
    Connection& c = start(1);
    connections_->finish(c, 1001, W_EXITCODE(0, SIGSEGV));
    EXPECT_EQ(totals_.failed(), 1u);
    EXPECT_TRUE(sent_.empty());
}

TEST_F(ConnectionsTest, ConnectionTimeoutSendsSigtermWhenItPasses) {
    start(3, 1);
    const std::int64_t deadline = monotonic_ns() + 5'000'000'000;
    while (sent_.empty() && monotonic_ns() < deadline) sd_event_run(event_.get(), 100000);
    EXPECT_EQ(sent_, (std::vector<Sent>{{3, SIGTERM}}));
    ASSERT_NE(connections_->find(3), nullptr);
    EXPECT_EQ(connections_->find(3)->ended_by, Ending::timeout);
}

TEST_F(ConnectionsTest, LosingTheSpawnerEndsItsConnectionsAndFreesSlotsItNeverReported) {
    start(1);
    start(2);
    ASSERT_TRUE(board_.claim(3, ""));  // claimed, then the spawner died before reporting it
    EXPECT_EQ(board_.active(), 3u);
    EXPECT_EQ(connections_->lose_spawner_served(), 2u);
    EXPECT_TRUE(connections_->empty());
    EXPECT_EQ(board_.active(), 0u);
    EXPECT_EQ(totals_.accepted(), 3u);  // the one never reported had passed admission too
    EXPECT_EQ(totals_.failed(), 3u);    // two lost, one that never started
    EXPECT_EQ(log_.lines("event=connection-lost id=3").size(), 1u);
    EXPECT_EQ(board_.from_source(source_), 0u);
}

TEST_F(ConnectionsTest, OnlyTheMastersOwnChildrenAreReapedAsExec) {
    start(1);
    EXPECT_FALSE(connections_->exec_reaped(1001, 0));  // the spawner's child, not the master's
    EXPECT_NE(connections_->find(1), nullptr);
}

} // namespace
} // namespace forkd
