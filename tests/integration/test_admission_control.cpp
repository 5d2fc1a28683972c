// SPDX-License-Identifier: MIT
// Admission control against the real daemon on loopback: allow/deny in written order, sources
// grouped by source-prefix, max-connection-rate (wait serves everyone, reject refuses), the
// per-source rate, busy-message, forkctl set, and a flood of denied clients summarised in the
// log while others are served (more of event mode's in test_event_mode_admission.cpp). Clients
// bind 127.0.0.2, 127.0.0.3... to be different sources.
#include "admission_support.hpp"
#include "event_mode_support.hpp"
#include "harness/log_text.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

DaemonOptions exec_config(std::vector<std::string> lines) {
    lines.insert(lines.begin(), "exec = /bin/cat");
    return config(std::move(lines));
}

} // namespace

// Built-in (forkd-spawner), exec'd (the master) and event mode (forkd-worker) alike.
enum class Serving { builtin, exec, event };

class AdmissionRules : public ::testing::TestWithParam<Serving> {
protected:
    DaemonOptions options(std::vector<std::string> lines) const {
        if (GetParam() == Serving::exec) return exec_config(std::move(lines));
        if (GetParam() == Serving::event) return event_config(std::move(lines));
        return config(std::move(lines));
    }
    // The configuration lines that choose this way of serving.
    std::vector<std::string> serving_lines() const {
        if (GetParam() == Serving::exec) return {"exec = /bin/cat"};
        if (GetParam() == Serving::event) return {"handler = echo", "mode = event", "workers = 2"};
        return {"handler = echo"};
    }
};

TEST_P(AdmissionRules, TheFirstMatchingRuleDecidesAndDeniedClientsGetNoHandler) {
    Daemon d(options({"deny = 127.0.0.3", "allow = 127.0.0.0/29", "deny = 127.0.0.2"}));
    auto served = from(d, "127.0.0.2");
    ASSERT_TRUE(served.valid());
    EXPECT_TRUE(echo_roundtrip(served.get(), "allowed: the /29 is written before the deny"));

    auto denied = from(d, "127.0.0.3");
    expect_refused(d, denied, "denied", "rule=\"deny 127.0.0.3/32\"");
    auto outside = from(d, "127.0.0.9");
    expect_refused(d, outside, "denied", "rule=\"no allow rule matches\"");

    if (GetParam() != Serving::event) {
        EXPECT_EQ(d.children().size(), 1u) << "a denied client got a handler";
    }
    auto status = status_json(d);
    ASSERT_TRUE(status.ok());
    EXPECT_EQ((*status)["totals"]["accepted"], 1) << "a denied client was served";
    EXPECT_EQ(refused(d, "denied"), 2);
    EXPECT_EQ(refused(d, "rate"), 0) << "every key is there, 0 when none";
    EXPECT_EQ(refused(d, "per_source_rate"), 0);
    EXPECT_EQ(refused(d, "proxy"), 0);
}

TEST_P(AdmissionRules, ReloadAppliesNewRulesToNewConnectionsAtOnce) {
    std::vector<std::string> lines = serving_lines();
    lines.push_back("listen = 127.0.0.1:" + std::to_string(free_tcp_port()));
    DaemonOptions o;
    o.config_lines = lines;
    Daemon d(o);
    auto before = from(d, "127.0.0.4");
    ASSERT_TRUE(before.valid());
    EXPECT_TRUE(echo_roundtrip(before.get(), "before"));
    lines.push_back("deny = 127.0.0.4/32");
    d.rewrite_config(lines);
    ASSERT_TRUE(d.wait_log("event=reload result=ok")) << d.log();
    // Several: in event mode each worker must have the rule, whichever accepts.
    for (int i = 0; i < 4; ++i) {
        auto after = from(d, "127.0.0.4");
        expect_refused(d, after, "denied", "deny 127.0.0.4/32");
    }
    EXPECT_TRUE(echo_roundtrip(before.get(), "a connection already served stays"));
}

INSTANTIATE_TEST_SUITE_P(Admission, AdmissionRules,
                         ::testing::Values(Serving::builtin, Serving::exec, Serving::event),
                         [](const auto& info) {
                             switch (info.param) {
                             case Serving::exec: return "Exec";
                             case Serving::event: return "EventMode";
                             case Serving::builtin: break;
                             }
                             return "Builtin";
                         });

TEST(Admission, Ipv6PeersMatchIpv6Rules) {
    Daemon d(config({"listen = [::1]:0", "deny = ::1"}));
    const std::uint16_t port = port_of_address(d.listening().back());
    auto v6 = connect_tcp(port, "::1");
    ASSERT_TRUE(v6.valid());
    EXPECT_TRUE(wait_closed(v6.get(), 3s));
    ASSERT_TRUE(d.wait_log("rule=\"deny ::1/128\"")) << d.log();
    auto v4 = connect_tcp(d.port(), "127.0.0.1");
    ASSERT_TRUE(v4.valid());
    EXPECT_TRUE(echo_roundtrip(v4.get(), "IPv4 is not ::1"));
}

TEST(Admission, SourcePrefixGroupsAddressesOfOneNetwork) {
    Daemon d(config({"max-per-source = 1", "source-prefix = 24/64", "busy-message = one at a time\\r\\n"}));
    auto a = from(d, "127.0.0.2");
    ASSERT_TRUE(a.valid());
    ASSERT_TRUE(echo_roundtrip(a.get(), "a"));
    auto b = from(d, "127.0.0.3");
    ASSERT_TRUE(b.valid());
    EXPECT_EQ(read_until_eof(b.get(), 3s), "one at a time\r\n") << "the busy message";
    ASSERT_TRUE(eventually([&] { return refused(d, "per_source") == 1; }, 3s)) << d.log();
    auto other = from(d, "127.0.1.2");
    ASSERT_TRUE(other.valid());
    EXPECT_TRUE(echo_roundtrip(other.get(), "another /24 is another source"));
}

TEST_P(AdmissionRules, RateWithWaitServesABurstAboveItLaterAndRefusesNone) {
    Daemon d(options({"max-connection-rate = 3/1", "overload = wait"}));
    const auto start = std::chrono::steady_clock::now();
    std::vector<UniqueFd> clients;
    for (int i = 0; i < 7; ++i) {
        clients.push_back(connect_tcp(d.port()));
        ASSERT_TRUE(clients.back().valid());
        ASSERT_TRUE(send_all(clients.back().get(), "x"));
    }
    for (auto& c : clients) EXPECT_EQ(read_n(c.get(), 1, 8s), "x") << "a waiting client was not served";
    // 3 at once, then one each 1/3 s: the 7th at 4/3 s at the earliest.
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1200));
    EXPECT_EQ(d.count_log("event=refused"), 0u) << d.log();
    EXPECT_EQ(refused(d, "rate"), 0);
}

TEST_P(AdmissionRules, RateWithRejectRefusesTheExcessAndSaysSo) {
    Daemon d(options({"max-connection-rate = 2/60", "overload = reject", "busy-message = busy"}));
    auto a = connect_tcp(d.port());
    auto b = connect_tcp(d.port());
    ASSERT_TRUE(echo_roundtrip(a.get(), "a") && echo_roundtrip(b.get(), "b"));
    auto c = connect_tcp(d.port());
    ASSERT_TRUE(c.valid());
    EXPECT_EQ(read_until_eof(c.get(), 3s), "busy");
    expect_refused(d, c, "rate", "limit=2/60");
    EXPECT_EQ(refused(d, "rate"), 1);
    // forkctl set applies at once: a higher rate admits the next one.
    auto set = forkctl(d, {"set", "max-connection-rate", "10/60"});
    EXPECT_EQ(set.exit_code, 0) << set.err;
    auto e = connect_tcp(d.port());
    EXPECT_TRUE(echo_roundtrip(e.get(), "e")) << d.log();
}


TEST(Admission, PerSourceRateRefusesOnlyThatSource) {
    Daemon d(exec_config({"max-per-source-rate = 2/60"}));
    for (int i = 0; i < 2; ++i) {
        auto ok = from(d, "127.0.0.2");
        ASSERT_TRUE(ok.valid());
        EXPECT_TRUE(echo_roundtrip(ok.get(), "ok"));
    }
    auto third = from(d, "127.0.0.2");
    expect_refused(d, third, "per_source_rate", "limit=2/60");
    auto other = from(d, "127.0.0.3");
    ASSERT_TRUE(other.valid());
    EXPECT_TRUE(echo_roundtrip(other.get(), "another source"));
    EXPECT_EQ(refused(d, "per_source_rate"), 1);
    // forkctl set busy-message reaches the next refusal.
    EXPECT_EQ(forkctl(d, {"set", "busy-message", "slow down\\n"}).exit_code, 0);
    auto fourth = from(d, "127.0.0.2");
    ASSERT_TRUE(fourth.valid());
    EXPECT_EQ(read_until_eof(fourth.get(), 3s), "slow down\n");
}

TEST(Admission, BuiltinBusyMessageSetAtRuntimeReachesTheSpawner) {
    Daemon d(config({"max-per-source-rate = 1/60"}));
    auto first = from(d, "127.0.0.6");
    ASSERT_TRUE(echo_roundtrip(first.get(), "first"));
    EXPECT_EQ(forkctl(d, {"set", "busy-message", "try later\\r\\n"}).exit_code, 0);
    auto second = from(d, "127.0.0.6");
    ASSERT_TRUE(second.valid());
    EXPECT_EQ(read_until_eof(second.get(), 3s), "try later\r\n");
    // forkd-spawner closes the client before the master has read its report of the refusal.
    EXPECT_TRUE(eventually([&] { return refused(d, "per_source_rate") == 1; }, 3s))
        << refused(d, "per_source_rate") << " refusals counted";
}

// 20,000 denied connections, a few hundred in flight at a time: every one counted, the log
// summarised per second instead of a line each, and an allowed client served meanwhile.
TEST(Admission, ARefusalFloodIsSummarisedWhileOthersAreServed) {
    Daemon d(config({"deny = 127.0.0.5"}));
    constexpr int total = 20000, in_flight = 256;
    std::vector<UniqueFd> open;
    int started = 0, finished = 0;
    bool served_during_flood = false;
    sockaddr_in target{}, source{};
    target.sin_family = source.sin_family = AF_INET;
    target.sin_port = htons(d.port());
    inet_pton(AF_INET, "127.0.0.1", &target.sin_addr);
    inet_pton(AF_INET, "127.0.0.5", &source.sin_addr);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (finished < total && std::chrono::steady_clock::now() < deadline) {
        while (started < total && int(open.size()) < in_flight) {
            UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            ASSERT_TRUE(fd.valid());
            const int one = 1;
            setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            ASSERT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&source), sizeof source), 0) << strerror(errno);
            connect(fd.get(), reinterpret_cast<sockaddr*>(&target), sizeof target);
            open.push_back(std::move(fd));
            ++started;
        }
        std::vector<pollfd> fds;
        for (auto& fd : open) fds.push_back({fd.get(), POLLIN, 0});
        poll(fds.data(), fds.size(), 100);
        std::vector<UniqueFd> still;
        for (std::size_t i = 0; i < open.size(); ++i) {
            if (fds[i].revents) {
                ++finished;  // closed by the daemon (EOF or reset)
            } else {
                still.push_back(std::move(open[i]));
            }
        }
        open = std::move(still);
        if (!served_during_flood && started > total / 2) {
            auto ok = connect_tcp(d.port());
            served_during_flood = ok.valid() && echo_roundtrip(ok.get(), "served during the flood", 5s);
        }
    }
    ASSERT_EQ(finished, total) << "not every denied client was closed";
    EXPECT_TRUE(served_during_flood);
    ASSERT_TRUE(eventually([&] { return refused(d, "denied") == total; }, 10s)) << refused(d, "denied");
    ASSERT_TRUE(d.wait_log("event=refused-suppressed reason=denied", 5s)) << "no summary";
    const std::size_t lines = d.count_log("event=refused ");
    EXPECT_LT(lines, 200u) << "a line per refusal instead of a summary";
    std::uint64_t summarised = 0;
    for (const auto& line : d.log_lines("event=refused-suppressed reason=denied"))
        summarised += std::stoull(field_value(line, "count").value_or("0"));
    ASSERT_TRUE(eventually([&] {
        summarised = 0;
        for (const auto& line : d.log_lines("event=refused-suppressed reason=denied"))
            summarised += std::stoull(field_value(line, "count").value_or("0"));
        return summarised + d.count_log("event=refused ") >= std::uint64_t(total);
    }, 5s)) << "lines " << d.count_log("event=refused ") << " + summarised " << summarised;
}
