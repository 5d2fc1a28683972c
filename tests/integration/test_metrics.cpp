// SPDX-License-Identifier: MIT
// Metrics: `forkctl metrics` and the metrics-listen HTTP endpoint give the same Prometheus text,
// which Debian's promtool accepts and whose values agree with status --json; the endpoint
// answers 404/405/400/431 to what it does not serve and is not disturbed by huge headers, a
// slowloris or pipelined garbage while the service goes on serving; counters survive a reload.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <thread>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

constexpr const char* promtool = "/usr/bin/promtool";

// One request, the whole response (the server closes after it).
std::string http(std::uint16_t port, const std::string& request, Millis timeout = 5s) {
    UniqueFd fd = connect_tcp(port);
    if (!fd.valid() || !send_all(fd.get(), request)) return "";
    return read_until_eof(fd.get(), timeout);
}

std::string body_of(const std::string& response) {
    const auto end = response.find("\r\n\r\n");
    return end == std::string::npos ? "" : response.substr(end + 4);
}

CommandResult promtool_check(const TempDir& dir, const std::string& text) {
    const std::string path = dir.file("scrape.txt");
    write_file(path, text);
    return run({"/bin/sh", "-c", std::string(promtool) + " check metrics < " + path});
}

// The value of the sample line that starts with SERIES ("forkd_x" or "forkd_x{a=\"b\"}").
std::optional<double> value_of(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    return std::nullopt;
}

} // namespace

TEST(Metrics, ForkctlAndHttpGiveTextPromtoolAcceptsAndStatusAgrees) {
    Daemon d(config({"listen = 127.0.0.1:0", "metrics-listen = 127.0.0.1:0", "max-connections = 50"}));
    const std::uint16_t port = d.logged_port("metrics-listening");
    ASSERT_NE(port, 0);
    // A little load: finished connections, and two still open.
    for (int i = 0; i < 20; ++i) {
        UniqueFd fd = served_client(d, "hello\n");
        ASSERT_TRUE(fd.valid());
    }
    UniqueFd held1 = served_client(d, "a\n"), held2 = served_client(d, "b\n");
    ASSERT_TRUE(eventually([&] {
        auto s = status_json(d);
        return s && (*s)["totals"]["completed"] == 20 && (*s)["active"] == 2;
    }));

    const CommandResult ctl = forkctl(d, {"metrics"});
    ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
    const CommandResult ctl_check = promtool_check(d.dir(), ctl.out);
    EXPECT_EQ(ctl_check.exit_code, 0) << ctl_check.out << ctl_check.err << ctl.out;

    const std::string response = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response;
    EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
    const std::string scrape = body_of(response);
    const CommandResult http_check = promtool_check(d.dir(), scrape);
    EXPECT_EQ(http_check.exit_code, 0) << http_check.out << http_check.err << scrape;

    auto status = status_json(d);
    ASSERT_TRUE(status);
    for (const std::string& text : {ctl.out, scrape}) {
        EXPECT_EQ(value_of(text, "forkd_connections_active"), (*status)["active"].get<double>());
        EXPECT_EQ(value_of(text, "forkd_connections_max"), 50);
        EXPECT_EQ(value_of(text, "forkd_connections_accepted_total"), (*status)["totals"]["accepted"].get<double>());
        EXPECT_EQ(value_of(text, "forkd_connections_ended_total{outcome=\"completed\"}"),
                  (*status)["totals"]["completed"].get<double>());
        EXPECT_EQ(value_of(text, "forkd_connection_duration_seconds_count"), 20);
        EXPECT_EQ(value_of(text, "forkd_accepting"), 1);
        EXPECT_EQ(value_of(text, "forkd_state{state=\"running\"}"), 1);
        for (const auto& [reason, count] : (*status)["refused"].items())
            EXPECT_EQ(value_of(text, "forkd_refused_total{reason=\"" + reason + "\"}"), count.get<double>()) << reason;
        EXPECT_GE(*value_of(text, "forkd_bytes_total{direction=\"in\"}"), 20 * 6.0);
    }
}

TEST(Metrics, OtherPathsMethodsAndMalformedRequests) {
    Daemon d(config({"listen = 127.0.0.1:0", "metrics-listen = 127.0.0.1:0"}));
    const std::uint16_t port = d.logged_port("metrics-listening");
    EXPECT_TRUE(http(port, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    const std::string post = http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    EXPECT_TRUE(post.starts_with("HTTP/1.1 405 ")) << post;
    EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos);
    EXPECT_TRUE(http(port, "\x16\x03\x01\x00\x05hello").starts_with("HTTP/1.1 400 "));
    EXPECT_TRUE(http(port, "GET /metrics HTTP/1.1\r\nbroken header\r\n\r\n").starts_with("HTTP/1.1 400 "));
    const std::string head = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 200 ")) << head;
    EXPECT_EQ(body_of(head), "");
    // Huge headers: 431 once 8 KiB pass without an end of headers; the rest is never read.
    const std::string huge = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
    EXPECT_TRUE(http(port, huge).starts_with("HTTP/1.1 431 "));
    // Pipelined: the first request is answered, what follows it is ignored, the connection closed.
    const std::string pipelined = http(port, "GET /metrics HTTP/1.1\r\n\r\n\x01\x02garbage\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(pipelined.starts_with("HTTP/1.1 200 "));
    EXPECT_EQ(pipelined.find("HTTP/1.1", 1), std::string::npos) << "one response per connection";
    EXPECT_TRUE(d.running());
}

TEST(Metrics, SlowlorisAndFloodsDoNotDisturbTheServiceOrTheScrape) {
    Daemon d(config({"listen = 127.0.0.1:0", "metrics-listen = 127.0.0.1:0"}));
    const std::uint16_t port = d.logged_port("metrics-listening");
    // 30 slow clients (more than the endpoint's 16): each sends a byte now and then, never ending.
    std::vector<UniqueFd> slow;
    for (int i = 0; i < 30; ++i) {
        UniqueFd fd = connect_tcp(port);
        ASSERT_TRUE(fd.valid());
        ASSERT_TRUE(send_all(fd.get(), "G"));
        slow.push_back(std::move(fd));
    }
    for (int round = 0; round < 5; ++round) {
        for (auto& fd : slow) (void)send_all(fd.get(), "E");
        UniqueFd client = served_client(d, "still serving\n");
        EXPECT_TRUE(client.valid()) << "the echo service goes on";
    }
    // The endpoint held at most 16 of them; the rest were told 503 and closed.
    int refused = 0;
    for (auto& fd : slow)
        if (read_n(fd.get(), 12, 200ms).starts_with("HTTP/1.1 503")) ++refused;
    EXPECT_GE(refused, 14);
    // Slow clients are cut off at the 5 s bound, after which a scrape is answered again.
    EXPECT_TRUE(eventually([&] { return http(port, "GET /metrics HTTP/1.1\r\n\r\n", 2s).starts_with("HTTP/1.1 200"); }, 10s));
    int closed = 0;
    for (auto& fd : slow)
        if (wait_closed(fd.get(), 1s)) ++closed;
    EXPECT_EQ(closed, 30);
    EXPECT_TRUE(d.running());
}

TEST(Metrics, UnixEndpointAndCountersSurviveAReload) {
    TempDir dir;
    const std::string path = dir.file("metrics.sock");
    const std::string listen = "listen = 127.0.0.1:" + std::to_string(free_tcp_port());
    Daemon d(config({listen, "metrics-listen = unix:" + path}));
    ASSERT_TRUE(d.wait_log("event=metrics-listening"));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(served_client(d, "x\n").valid());
    ASSERT_TRUE(eventually([&] { auto s = status_json(d); return s && (*s)["totals"]["completed"] == 5; }));
    auto scrape_unix = [&] {
        UniqueFd fd = connect_unix(path);
        if (!fd.valid() || !send_all(fd.get(), "GET /metrics HTTP/1.0\r\n\r\n")) return std::string();
        return body_of(read_until_eof(fd.get()));
    };
    const std::string before = scrape_unix();
    EXPECT_EQ(value_of(before, "forkd_connections_accepted_total"), 5) << before;
    d.rewrite_config({listen, "metrics-listen = unix:" + path});
    ASSERT_TRUE(d.wait_log("event=reload result=ok")) << d.log();
    const std::string after = scrape_unix();
    EXPECT_EQ(value_of(after, "forkd_connections_accepted_total"), 5) << "counters never go backwards";
    EXPECT_EQ(value_of(after, "forkd_reloads_total{result=\"ok\"}"), 1);
    const CommandResult ctl = forkctl(d, {"metrics"});
    EXPECT_EQ(value_of(ctl.out, "forkd_reloads_total{result=\"ok\"}"), 1);
}

TEST(Metrics, ABadAddressIsAConfigErrorNamingTheOption) {
    TempDir dir;
    const std::string conf = dir.file("bad.conf");
    write_file(conf, "listen = 127.0.0.1:0\nmetrics-listen = systemd\n");
    const CommandResult check = run({FORKD_BINARY, "-t", "-c", conf});
    EXPECT_EQ(check.exit_code, 1);
    EXPECT_NE((check.out + check.err).find("metrics-listen"), std::string::npos) << check.out << check.err;
}
