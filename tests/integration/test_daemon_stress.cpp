// SPDX-License-Identifier: MIT
// The shared connection counter under pressure: hundreds of simultaneous closes, handlers
// SIGKILLed at any instant, and a burst of connects larger than the connection limit.
// The counter is checked two ways: through forkctl (marked "[needs forkctl]") and, without it,
// by filling the limit again under overload=reject: a counter off by one refuses someone.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstring>
#include <random>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

// Opens n connections and checks each is served by an echo round trip.
std::vector<UniqueFd> open_served(std::uint16_t port, int n, int* served) {
    std::vector<UniqueFd> fds;
    *served = 0;
    for (int i = 0; i < n; ++i) {
        auto fd = connect_tcp(port);
        if (fd.valid() && echo_roundtrip(fd.get(), "s", 5s)) ++*served;
        fds.push_back(std::move(fd));
    }
    return fds;
}

void close_abortively(UniqueFd& fd) {
    linger l{1, 0};  // RST instead of FIN
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    fd.reset();
}

// forkctl's view of the active count; nullopt (with a test message) if forkctl is not usable.
std::optional<long> active_via_forkctl(const Daemon& d) {
    auto j = status_json(d);
    if (!j || !j->contains("active")) {
        ADD_FAILURE() << "[needs forkctl] cannot read status.active: " << (j ? "" : j.error().message());
        return std::nullopt;
    }
    return (*j)["active"].get<long>();
}

} // namespace

TEST(Stress, FiveHundredSimultaneousClosesLeaveTheCounterAtZero) {
    constexpr int kConnections = 500;
    Daemon d(config({"max-connections = 500", "overload = reject"}));
    const auto port = d.port();

    for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        int served = 0;
        auto fds = open_served(port, kConnections, &served);
        // Round 1 proves the counter went back to exactly 0: all 500 fit under the limit again.
        ASSERT_EQ(served, kConnections) << d.count_log("event=refused") << " refused";
        EXPECT_EQ(d.children().size(), std::size_t(kConnections));
        if (auto active = active_via_forkctl(d)) {
            EXPECT_EQ(*active, kConnections);
        }

        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (i % 2) close_abortively(fds[i]);
            else fds[i].reset();
        }
        EXPECT_TRUE(eventually([&] { return d.children(true).empty(); }, 30s))
            << d.children().size() << " handlers alive, " << d.zombies().size() << " zombies";
        EXPECT_TRUE(d.zombies().empty());
        EXPECT_TRUE(eventually([&] {
            return d.count_log("event=connection-end") == std::size_t(kConnections * (round + 1));
        }, 10s)) << d.count_log("event=connection-end") << " connection-end lines";
        if (auto active = active_via_forkctl(d)) {
            EXPECT_EQ(*active, 0);
        }
    }
    EXPECT_EQ(d.count_log("event=refused"), 0u);
}

TEST(Stress, SigkilledHandlerIsReconciled) {
    Daemon d(config({"max-connections = 1", "overload = reject"}));
    auto a = connect_tcp(d.port());
    ASSERT_TRUE(a.valid());
    ASSERT_TRUE(echo_roundtrip(a.get(), "a"));
    auto handlers = d.children();
    ASSERT_EQ(handlers.size(), 1u);

    ASSERT_EQ(::kill(handlers[0], SIGKILL), 0);
    EXPECT_TRUE(wait_closed(a.get(), 3s));
    EXPECT_TRUE(eventually([&] { return d.children(true).empty(); })) << "not reaped";
    ASSERT_TRUE(d.wait_log("event=connection-end")) << d.log();
    const auto end = d.log_lines("event=connection-end");
    EXPECT_NE(end.back().find("exit="), std::string::npos) << end.back();
    EXPECT_NE(end.back().find("KILL"), std::string::npos)
        << "connection-end should say the handler was killed by SIGKILL: " << end.back();

    // With max-connections = 1, a newcomer is served only if the slot came back.
    auto b = connect_tcp(d.port());
    ASSERT_TRUE(b.valid());
    EXPECT_TRUE(echo_roundtrip(b.get(), "b")) << "the killed handler's slot was not reconciled:\n"
                                              << d.log();
    b.reset();
    ASSERT_TRUE(eventually([&] { return d.children(true).empty(); }));
    if (auto active = active_via_forkctl(d)) {
        EXPECT_EQ(*active, 0);
    }
}

// Busy handlers (traffic both ways, so often inside the scoreboard's critical section) are
// SIGKILLed at random instants. Afterwards the counter is exact and nothing is deadlocked.
TEST(Stress, HandlersKilledAtRandomInstantsKeepTheCounterExact) {
    constexpr int kConnections = 20;
    Daemon d(config({"max-connections = 20", "overload = reject"}));
    const auto port = d.port();
    std::mt19937 rng(12345);
    const std::string chunk(8192, 'k');
    char sink[65536];

    for (int round = 0; round < 5; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        int served = 0;
        auto fds = open_served(port, kConnections, &served);
        ASSERT_EQ(served, kConnections) << "counter drifted: " << d.count_log("event=refused")
                                        << " refusals so far";
        for (auto& fd : fds) ::fcntl(fd.get(), F_SETFL, O_NONBLOCK);
        auto victims = d.children();
        std::shuffle(victims.begin(), victims.end(), rng);
        for (pid_t victim : victims) {
            // Keep every connection busy for a random moment, then kill one handler.
            const int sweeps = std::uniform_int_distribution<int>(1, 6)(rng);
            for (int s = 0; s < sweeps; ++s) {
                for (auto& fd : fds) {
                    ::send(fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                    while (::recv(fd.get(), sink, sizeof(sink), MSG_DONTWAIT) > 0) {
                    }
                }
            }
            ::kill(victim, SIGKILL);
        }
        EXPECT_TRUE(eventually([&] { return d.children(true).empty(); }, 10s))
            << d.children().size() << " handlers left";
        fds.clear();
    }
    // A final full house proves the counter is exact and the mutex is not held by a dead pid.
    int served = 0;
    auto fds = open_served(port, kConnections, &served);
    EXPECT_EQ(served, kConnections);
    fds.clear();
    EXPECT_TRUE(eventually([&] { return d.children(true).empty(); }, 10s));
    if (auto active = active_via_forkctl(d)) {
        EXPECT_EQ(*active, 0);
    }
}

// A burst of connects far beyond max-connections under overload=wait: everyone waits in the
// backlog and is served in turn; nobody is refused or dropped.
TEST(Stress, BurstBeyondTheLimitIsServedInTurn) {
    constexpr int kClients = 400;
    Daemon d(config({"max-connections = 40", "overload = wait"}));
    const auto port = d.port();

    struct Client {
        UniqueFd fd;
        bool sent = false, done = false;
    };
    std::vector<Client> clients(kClients);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (auto& c : clients) {
        c.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        ASSERT_TRUE(c.fd.valid());
        int r = ::connect(c.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
        ASSERT_TRUE(r == 0 || errno == EINPROGRESS) << std::strerror(errno);
    }

    int done = 0, failed = 0;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (done + failed < kClients && std::chrono::steady_clock::now() < deadline) {
        std::vector<pollfd> pfds;
        std::vector<Client*> owners;
        for (auto& c : clients) {
            if (c.done || !c.fd) continue;
            pfds.push_back({c.fd.get(), short(c.sent ? POLLIN : POLLOUT), 0});
            owners.push_back(&c);
        }
        if (::poll(pfds.data(), pfds.size(), 1000) <= 0) continue;
        for (std::size_t i = 0; i < pfds.size(); ++i) {
            Client& c = *owners[i];
            if (!pfds[i].revents) continue;
            if (!c.sent) {
                c.sent = ::send(c.fd.get(), "b", 1, MSG_NOSIGNAL) == 1;
                if (!c.sent) { ++failed; c.fd.reset(); }
                continue;
            }
            char ch = 0;
            ssize_t n = ::recv(c.fd.get(), &ch, 1, 0);
            if (n == 1 && ch == 'b') { ++done; c.done = true; }
            else { ++failed; }
            c.fd.reset();  // frees the slot for the next one waiting
        }
    }
    EXPECT_EQ(done, kClients) << failed << " clients failed; "
                              << d.count_log("event=refused") << " refusals";
    EXPECT_EQ(d.count_log("event=refused"), 0u);
    EXPECT_TRUE(eventually([&] { return d.children(true).empty(); }, 15s));
}

// forkd-spawner, the parent of the built-in handlers, is SIGKILLed with connections open. Its
// handlers die with it; the master counts each of them as failed, frees their slots, starts a
// new spawner and serves again.
TEST(Stress, SigkilledSpawnerIsReplacedAndItsConnectionsAccounted) {
    Daemon d(config({"max-connections = 2", "overload = reject"}));
    std::vector<UniqueFd> clients;
    for (const char* text : {"a", "b"}) {
        clients.push_back(served_client(d, text));
        ASSERT_TRUE(clients.back().valid()) << d.log();
    }
    const auto handlers = d.children();
    ASSERT_EQ(handlers.size(), 2u);
    const pid_t spawner = d.spawner_pid();
    ASSERT_GT(spawner, 0);

    ASSERT_EQ(::kill(spawner, SIGKILL), 0);
    for (auto& c : clients) EXPECT_TRUE(wait_closed(c.get(), 3s)) << "a handler outlived its spawner";
    for (pid_t p : handlers)
        EXPECT_TRUE(eventually([&] { return !process_alive(p); }, 2s)) << "handler " << p << " alive";
    ASSERT_TRUE(d.wait_log("event=spawner-exited")) << d.log();
    EXPECT_NE(d.log_lines("event=spawner-exited").back().find("connections_lost=2"), std::string::npos)
        << d.log();
    ASSERT_TRUE(eventually([&] { return d.spawner_pid() > 0 && d.spawner_pid() != spawner; }))
        << "no new spawner:\n" << d.log();

    // Both slots came back (max-connections = 2 would refuse a third otherwise).
    std::vector<UniqueFd> again;
    for (const char* text : {"c", "d"}) {
        again.push_back(served_client(d, text));
        EXPECT_TRUE(again.back().valid()) << d.log();
    }
    auto status = status_json(d);
    ASSERT_TRUE(status.ok()) << "[needs forkctl] " << status.error().message();
    EXPECT_EQ(status->value("/totals/failed"_json_pointer, -1L), 2L) << status->dump();
    EXPECT_EQ(status->value("/active"_json_pointer, -1L), 2L) << status->dump();
    EXPECT_EQ(status->value("/spawner_pid"_json_pointer, -1L), long(d.spawner_pid())) << status->dump();
}
