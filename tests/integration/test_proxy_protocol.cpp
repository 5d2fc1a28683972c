// SPDX-License-Identifier: MIT
// proxy-protocol, proxy-from, proxy-header-timeout and the agent-check responder through the
// real forkd, with PROXY headers written by hand (haproxy itself: test_haproxy.cpp).
#include "harness.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <string>
#include <thread>
#include <vector>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

std::string helper(const std::string& name) {
    return std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_" + name;
}

DaemonOptions proxied(std::vector<std::string> extra, const std::string& handler_line) {
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0", handler_line, "proxy-protocol = yes"};
    options.config_lines.insert(options.config_lines.end(), extra.begin(), extra.end());
    return options;
}

DaemonOptions exec_proxied(std::vector<std::string> extra = {}) {
    return proxied(std::move(extra), "exec = " + helper("remote_ip"));
}

std::string v2_header(std::uint8_t ver_cmd, std::uint8_t family, const std::string& block) {
    std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
    h += char(ver_cmd);
    h += char(family);
    h += char(block.size() >> 8);
    h += char(block.size() & 0xFF);
    return h + block;
}

std::string v2_tcp6(const char* source, const char* destination, std::uint16_t sport, std::uint16_t dport) {
    std::string block(36, '\0');
    inet_pton(AF_INET6, source, block.data());
    inet_pton(AF_INET6, destination, block.data() + 16);
    block[32] = char(sport >> 8), block[33] = char(sport & 0xFF);
    block[34] = char(dport >> 8), block[35] = char(dport & 0xFF);
    block += std::string("\x04\x00\x02xx", 5);  // a NOOP TLV, skipped
    return v2_header(0x21, 0x21, block);
}

// Sends everything in one write (header and data in one segment), reads the handler's answer.
std::string send_and_read(const Daemon& daemon, const std::string& bytes, UniqueFd* keep = nullptr) {
    UniqueFd client = connect_tcp(daemon.port());
    if (!client || !send_all(client.get(), bytes)) return "<no connection>";
    std::string answer = read_until_eof(client.get());
    if (keep) *keep = std::move(client);
    return answer;
}

nlohmann::json status_of(const Daemon& daemon) {
    auto status = status_json(daemon);
    return status ? *status : nlohmann::json::object();
}

std::uint64_t refused_proxy(const Daemon& daemon) {
    auto status = status_json(daemon);
    if (!status) return ~0ull;
    return (*status)["refused"].value("proxy", ~0ull);
}

std::string ask_agent(const Daemon& daemon) {
    UniqueFd agent = connect_tcp(daemon.logged_port("agent-listening"));
    if (!agent) return "<no connection>";
    return read_until_eof(agent.get());
}

// With proxy-from allowing 127.0.0.2 only: a client from 127.0.0.1 is refused `proxy`, and one
// from 127.0.0.2 has sent its header (source 192.0.2.8:1) and `data` (invalid fd on failure).
UniqueFd refused_then_allowed(const Daemon& daemon, const std::string& data) {
    EXPECT_EQ(send_and_read(daemon, "PROXY TCP4 192.0.2.7 127.0.0.1 1 2\r\n" + data), "");
    EXPECT_TRUE(eventually([&] { return refused_proxy(daemon) == 1; }));
    EXPECT_TRUE(daemon.wait_log("peer not allowed by proxy-from"));
    UniqueFd allowed = connect_tcp_from(daemon.port(), "127.0.0.1", "127.0.0.2");
    if (allowed && !send_all(allowed.get(), "PROXY TCP4 192.0.2.8 127.0.0.1 1 2\r\n" + data)) return {};
    return allowed;
}

TEST(ProxyProtocol, V1SourceIsTheClientAndTheDataAfterItReachesTheHandler) {
    Daemon daemon(exec_proxied());
    const std::string answer =
        send_and_read(daemon, "PROXY TCP4 192.0.2.7 127.0.0.1 4242 80\r\nhello after the header\n");
    EXPECT_NE(answer.find("remote 192.0.2.7 4242\n"), std::string::npos) << answer;
    EXPECT_NE(answer.find("proxy 127.0.0.1 "), std::string::npos) << "the balancer's address: " << answer;
    EXPECT_NE(answer.find("line hello after the header\n"), std::string::npos)
        << "the header never reaches the handler, what follows it does: " << answer;
    EXPECT_TRUE(daemon.wait_log("peer=192.0.2.7:4242")) << "the log names the client";
}

TEST(ProxyProtocol, V2Tcp6WithTlvsAndAHeaderSentInPieces) {
    Daemon daemon(exec_proxied());
    const std::string header = v2_tcp6("2001:db8::7", "2001:db8::1", 5555, 80);
    UniqueFd client = connect_tcp(daemon.port());
    ASSERT_TRUE(client);
    ASSERT_TRUE(send_all(client.get(), header.substr(0, 5)));
    std::this_thread::sleep_for(50ms);  // a real gap between the pieces: they arrive apart
    ASSERT_TRUE(send_all(client.get(), header.substr(5) + "v2 data\n"));
    const std::string answer = read_until_eof(client.get());
    EXPECT_NE(answer.find("remote 2001:db8::7 5555\n"), std::string::npos) << answer;
    EXPECT_NE(answer.find("line v2 data\n"), std::string::npos) << answer;
}

TEST(ProxyProtocol, LocalAndUnknownKeepTheBalancersAddress) {
    Daemon daemon(exec_proxied());
    for (const std::string& header : {v2_header(0x20, 0x00, ""), std::string("PROXY UNKNOWN\r\n")}) {
        const std::string answer = send_and_read(daemon, header + "check\n");
        EXPECT_NE(answer.find("remote 127.0.0.1 "), std::string::npos) << answer;
        EXPECT_NE(answer.find("line check\n"), std::string::npos) << answer;
    }
}

TEST(ProxyProtocol, BuiltInHandlersGetTheDataWithoutTheHeader) {
    Daemon daemon(proxied({}, "handler = echo"));
    UniqueFd client = connect_tcp(daemon.port());
    ASSERT_TRUE(client);
    ASSERT_TRUE(send_all(client.get(), "PROXY TCP4 192.0.2.9 127.0.0.1 1000 7\r\nping"));
    EXPECT_EQ(read_n(client.get(), 4), "ping");
    EXPECT_TRUE(daemon.wait_log("peer=192.0.2.9:1000")) << "the spawner's client is the header's";
}

TEST(ProxyProtocol, AMalformedHeaderIsRefusedProxyWithItsReason) {
    for (const char* handler : {"handler = echo", "exec"}) {
        Daemon daemon(std::string(handler) == "exec" ? exec_proxied() : proxied({}, handler));
        const std::string answer = send_and_read(daemon, "GET / HTTP/1.0\r\n\r\n");
        EXPECT_EQ(answer, "") << handler << ": closed without an answer";
        EXPECT_TRUE(eventually([&] { return refused_proxy(daemon) == 1; })) << handler;
        EXPECT_TRUE(daemon.wait_log("reason=proxy")) << handler;
        EXPECT_TRUE(daemon.wait_log("not a PROXY protocol header")) << handler;
    }
}

TEST(ProxyProtocol, ProxyFromRefusesOtherPeers) {
    Daemon daemon(exec_proxied({"proxy-from = 10.0.0.0/8", "proxy-from = 127.0.0.2/32"}));
    UniqueFd allowed = refused_then_allowed(daemon, "x\n");
    ASSERT_TRUE(allowed);
    EXPECT_NE(read_until_eof(allowed.get()).find("remote 192.0.2.8 1\n"), std::string::npos);
}

// Many silent clients and one that stops half-way wait in the accepting process's poll set:
// nobody else waits behind them, and each is refused once proxy-header-timeout has passed.
TEST(ProxyProtocol, SilentClientsDelayNobodyAndAreRefusedAfterTheTimeout) {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    const std::size_t silent_count = std::min<std::size_t>(1000, limit.rlim_cur > 200 ? limit.rlim_cur - 100 : 100);
    for (const char* handler : {"exec", "handler = echo"}) {
        const bool exec = std::string(handler) == "exec";
        DaemonOptions options = exec ? exec_proxied({"proxy-header-timeout = 2"})
                                     : proxied({"proxy-header-timeout = 2"}, handler);
        options.rlimit_nofile = 4096;
        Daemon daemon(options);
        std::vector<UniqueFd> silent;
        for (std::size_t i = 0; i < silent_count; ++i) {
            silent.push_back(connect_tcp(daemon.port()));
            ASSERT_TRUE(silent.back()) << handler << ": client " << i;
        }
        UniqueFd half = connect_tcp(daemon.port());
        ASSERT_TRUE(send_all(half.get(), "PROXY TCP4 192.0.2.1 "));
        const auto begun = std::chrono::steady_clock::now();
        if (exec) {
            const std::string answer = send_and_read(daemon, "PROXY TCP4 192.0.2.2 127.0.0.1 7 8\r\nquick\n");
            EXPECT_NE(answer.find("line quick"), std::string::npos) << answer;
        } else {  // echo answers without closing: one round trip
            UniqueFd echo = connect_tcp(daemon.port());
            ASSERT_TRUE(send_all(echo.get(), "PROXY TCP4 192.0.2.2 127.0.0.1 7 8\r\nok"));
            EXPECT_EQ(read_n(echo.get(), 2), "ok") << handler;
        }
        EXPECT_LT(std::chrono::steady_clock::now() - begun, 1500ms)
            << handler << ": served before the silent clients timed out";
        EXPECT_TRUE(wait_closed(half.get(), 10s)) << handler;
        for (auto& client : silent) EXPECT_TRUE(wait_closed(client.get(), 10s)) << handler;
        EXPECT_TRUE(eventually([&] { return refused_proxy(daemon) == silent_count + 1; }, 10s))
            << handler << ": " << refused_proxy(daemon);
        EXPECT_TRUE(daemon.wait_log("no whole PROXY header within proxy-header-timeout")) << handler;
    }
}

// A built-in handler served by forkd-spawner (fork mode) or by forkd-worker (event mode): the
// accepting process reads the header either way.
class ProxyProtocolModes : public ::testing::TestWithParam<const char*> {
protected:
    DaemonOptions options(std::vector<std::string> extra = {}) const {
        extra.push_back(std::string("mode = ") + GetParam());
        if (std::string(GetParam()) == "event") extra.push_back("workers = 2");
        return proxied(std::move(extra), "handler = echo");
    }
};

// The header is never echoed, what follows it is, and the header's source is the peer forkctl lists.
void expect_echoed_as(const Daemon& daemon, const std::string& header, const std::string& peer) {
    UniqueFd client = connect_tcp(daemon.port());
    ASSERT_TRUE(client);
    ASSERT_TRUE(send_all(client.get(), header + "ping"));
    EXPECT_EQ(read_n(client.get(), 4), "ping");
    ASSERT_TRUE(send_all(client.get(), "pong"));
    EXPECT_EQ(read_n(client.get(), 4), "pong") << "the header was echoed";
    const CommandResult list = forkctl(daemon, {"list"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    EXPECT_NE(list.out.find(peer), std::string::npos) << list.out;
}

TEST_P(ProxyProtocolModes, V1HeaderIsNotEchoedAndItsSourceIsThePeer) {
    Daemon daemon(options());
    expect_echoed_as(daemon, "PROXY TCP4 192.0.2.9 127.0.0.1 1000 7\r\n", "192.0.2.9:1000");
}

TEST_P(ProxyProtocolModes, V2HeaderIsNotEchoedAndItsSourceIsThePeer) {
    Daemon daemon(options());
    expect_echoed_as(daemon, v2_tcp6("2001:db8::7", "2001:db8::1", 5555, 80), "[2001:db8::7]:5555");
}

TEST_P(ProxyProtocolModes, LocalKeepsTheBalancersAddress) {
    Daemon daemon(options());
    expect_echoed_as(daemon, v2_header(0x20, 0x00, ""), "127.0.0.1:");
}

TEST_P(ProxyProtocolModes, ASilentClientIsRefusedAfterTheTimeoutWhileAnotherIsServed) {
    Daemon daemon(options({"proxy-header-timeout = 1"}));
    UniqueFd silent = connect_tcp(daemon.port());
    ASSERT_TRUE(silent);
    UniqueFd talker = connect_tcp(daemon.port());
    ASSERT_TRUE(send_all(talker.get(), "PROXY TCP4 192.0.2.2 127.0.0.1 7 8\r\nok"));
    EXPECT_EQ(read_n(talker.get(), 2), "ok") << "served while the silent client waits";
    EXPECT_TRUE(wait_closed(silent.get(), 10s));
    EXPECT_TRUE(eventually([&] { return refused_proxy(daemon) == 1; }, 5s)) << refused_proxy(daemon);
    EXPECT_TRUE(daemon.wait_log("no whole PROXY header within proxy-header-timeout"));
    EXPECT_TRUE(send_all(talker.get(), "still"));
    EXPECT_EQ(read_n(talker.get(), 5), "still");
}

TEST_P(ProxyProtocolModes, ProxyFromRefusesAPeerNotAllowed) {
    Daemon daemon(options({"proxy-from = 127.0.0.2/32"}));
    UniqueFd allowed = refused_then_allowed(daemon, "ok");
    ASSERT_TRUE(allowed);
    EXPECT_EQ(read_n(allowed.get(), 2), "ok");
}

INSTANTIATE_TEST_SUITE_P(Modes, ProxyProtocolModes, ::testing::Values("fork", "event"),
                         [](const auto& info) { return std::string(info.param); });

TEST(AgentCheck, WeightFollowsTheLoadAndStatusShowsTheSameLine) {
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0", "exec = " + helper("sleeper") + " 30",
                            "agent-listen = 127.0.0.1:0", "max-connections = 4"};
    Daemon daemon(options);
    ASSERT_NE(daemon.logged_port("agent-listening"), 0);
    EXPECT_EQ(ask_agent(daemon), "up ready 100%\n");
    UniqueFd a = connect_tcp(daemon.port()), b = connect_tcp(daemon.port()), c = connect_tcp(daemon.port());
    ASSERT_TRUE(eventually([&] { return status_of(daemon)["active"] == 3; }));
    EXPECT_EQ(ask_agent(daemon), "up ready 25%\n");
    auto status = status_json(daemon);
    ASSERT_TRUE(status);
    EXPECT_EQ((*status)["agent"], "up ready 25%");
}

TEST(AgentCheck, DrainSaysDrainWhileStillServingForTheDelayThenStopsAccepting) {
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0", "handler = echo", "agent-listen = 127.0.0.1:0",
                            "agent-drain-delay = 2"};
    Daemon daemon(options);
    ASSERT_EQ(forkctl(daemon, {"drain"}).exit_code, 0);
    EXPECT_EQ(ask_agent(daemon), "drain\n");
    EXPECT_TRUE(served_client(daemon, "still served")) << "within agent-drain-delay";
    EXPECT_EQ(status_of(daemon)["agent"], "drain");
    EXPECT_TRUE(eventually([&] { return status_of(daemon)["accepting"] == false; }, 5s));
    EXPECT_TRUE(daemon.wait_log("event=drain-accepting-ended"));
    ASSERT_EQ(forkctl(daemon, {"resume"}).exit_code, 0);
    EXPECT_EQ(ask_agent(daemon), "up ready 100%\n");
    EXPECT_TRUE(served_client(daemon, "back"));
}

TEST(AgentCheck, StoppingSaysDown) {
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0", "exec = " + helper("sleeper") + " 30",
                            "agent-listen = 127.0.0.1:0", "shutdown-timeout = 5"};
    Daemon daemon(options);
    UniqueFd busy = connect_tcp(daemon.port());
    ASSERT_TRUE(eventually([&] { return status_of(daemon)["active"] == 1; }));
    daemon.signal(SIGTERM);  // waits for the sleeper up to shutdown-timeout: the agent says down
    EXPECT_TRUE(eventually([&] { return ask_agent(daemon) == "down\n"; }, 4s));
}

} // namespace
