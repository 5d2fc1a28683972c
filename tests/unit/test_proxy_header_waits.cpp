// SPDX-License-Identifier: MIT
// Connections waiting for their PROXY header, on real socket pairs: a header in pieces, data
// after it left in the socket, malformed and closed peers, deadlines in arrival order, and the
// oldest pushed out when every slot is taken.
#include "daemon/admission/proxy_header_waits.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace forkd {
namespace {

struct Pair {
    UniqueFd client, server;
};

Pair socket_pair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void send_text(const UniqueFd& fd, const std::string& text) {
    ASSERT_EQ(write(fd.get(), text.data(), text.size()), ssize_t(text.size()));
}

std::vector<ProxyWaitOutcome> run(ProxyHeaderWaits& waits, std::int64_t now_ms) {
    std::vector<ProxyWaitOutcome> done;
    waits.process(now_ms, [&](ProxyWaitOutcome o) { done.push_back(std::move(o)); });
    return done;
}

void add(ProxyHeaderWaits& waits, UniqueFd fd, std::uint32_t tag, std::int64_t now_ms,
         std::vector<ProxyWaitOutcome>* pushed = nullptr) {
    waits.add(std::move(fd), sockaddr_storage{}, 0, tag, now_ms, 5000, [&](ProxyWaitOutcome o) {
        if (pushed) pushed->push_back(std::move(o));
    });
}

TEST(ProxyHeaderWaits, AHeaderInPiecesCompletesAndLeavesTheDataAfterIt) {
    ProxyHeaderWaits waits(8);
    Pair pair = socket_pair();
    add(waits, std::move(pair.server), 7, 0);
    EXPECT_TRUE(run(waits, 0).empty());
    send_text(pair.client, "PROXY TCP4 192.0.2.1 ");
    EXPECT_TRUE(run(waits, 1).empty()) << "half a header waits";
    EXPECT_EQ(waits.size(), 1u);
    send_text(pair.client, "192.0.2.2 10 20\r\nhello");
    auto done = run(waits, 2);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_TRUE(done[0].ok) << done[0].reason;
    EXPECT_EQ(done[0].tag, 7u);
    EXPECT_EQ(done[0].header.source.ss_family, AF_INET);
    char rest[16] = {};
    EXPECT_EQ(read(done[0].fd.get(), rest, sizeof rest), 5);
    EXPECT_STREQ(rest, "hello") << "only the header was read away";
    EXPECT_EQ(waits.size(), 0u);
    EXPECT_EQ(waits.timeout_ms(2), -1);
}

TEST(ProxyHeaderWaits, MalformedAndClosedPeersAreRefusedWithAReason) {
    ProxyHeaderWaits waits(8);
    Pair bad = socket_pair(), gone = socket_pair();
    add(waits, std::move(bad.server), 1, 0);
    add(waits, std::move(gone.server), 2, 0);
    send_text(bad.client, "GET / HTTP/1.0\r\n");
    gone.client.reset();
    auto done = run(waits, 0);
    ASSERT_EQ(done.size(), 2u);
    for (const auto& o : done) {
        EXPECT_FALSE(o.ok);
        EXPECT_STREQ(o.reason, o.tag == 1 ? "not a PROXY protocol header" : "connection closed before its PROXY header");
    }
}

TEST(ProxyHeaderWaits, DeadlinesFallInArrivalOrder) {
    ProxyHeaderWaits waits(8);
    std::vector<Pair> pairs;
    for (std::uint32_t i = 0; i < 3; ++i) {
        pairs.push_back(socket_pair());
        add(waits, std::move(pairs.back().server), i, std::int64_t(i) * 1000);
    }
    EXPECT_EQ(waits.timeout_ms(0), 5000);
    EXPECT_TRUE(run(waits, 4999).empty());
    auto done = run(waits, 6000);
    ASSERT_EQ(done.size(), 2u) << "the first two are due by 6000 ms";
    EXPECT_EQ(done[0].tag, 0u);
    EXPECT_EQ(done[1].tag, 1u);
    EXPECT_STREQ(done[0].reason, "no whole PROXY header within proxy-header-timeout");
    EXPECT_EQ(waits.timeout_ms(6000), 1000);
}

TEST(ProxyHeaderWaits, AFullSetPushesTheOldestOut) {
    ProxyHeaderWaits waits(2);
    std::vector<Pair> pairs;
    std::vector<ProxyWaitOutcome> pushed;
    for (std::uint32_t i = 0; i < 3; ++i) {
        pairs.push_back(socket_pair());
        add(waits, std::move(pairs.back().server), i, i, &pushed);
    }
    ASSERT_EQ(pushed.size(), 1u);
    EXPECT_EQ(pushed[0].tag, 0u);
    EXPECT_STREQ(pushed[0].reason, "too many connections waiting for a PROXY header");
    EXPECT_EQ(waits.size(), 2u);
    send_text(pairs[2].client, "PROXY UNKNOWN\r\n");
    auto done = run(waits, 3);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].tag, 2u);
    EXPECT_TRUE(done[0].ok);
    waits.clear();
    EXPECT_EQ(waits.size(), 0u);
}

} // namespace
} // namespace forkd
