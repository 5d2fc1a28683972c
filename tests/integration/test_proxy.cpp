// SPDX-License-Identifier: MIT
// handler = proxy in fork mode, against real backends: another forkd (echo, chargen) over TCP,
// a forkd on a UNIX socket, and the tests' own sockets where a backend must misbehave (read
// nothing, stay silent, half-close). Bytes are checked by hash, memory from /proc.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <thread>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

constexpr std::size_t kBufferSize = 65536;

DaemonOptions backend(const std::string& handler, const std::string& listen = "127.0.0.1:0") {
    DaemonOptions o;
    o.config_lines = {"listen = " + listen, "handler = " + handler};
    return o;
}

std::vector<std::string> proxy_lines(const std::string& listen, const std::string& target,
                                     std::vector<std::string> more = {}) {
    std::vector<std::string> lines{"listen = " + listen, "handler = proxy", "proxy-to = " + target,
                                   "buffer-size = " + std::to_string(kBufferSize)};
    lines.insert(lines.end(), more.begin(), more.end());
    return lines;
}

DaemonOptions proxy_to(const std::string& target, std::vector<std::string> more = {}) {
    DaemonOptions o;
    o.config_lines = proxy_lines("127.0.0.1:0", target, std::move(more));
    return o;
}

std::string tcp_target(const Daemon& d) { return "127.0.0.1:" + std::to_string(d.port()); }

// A reproducible byte stream and a running hash of it (FNV-1a, 64 bits), so that 100 MiB are
// checked without holding them.
class Stream {
public:
    explicit Stream(std::uint64_t seed) : state_(seed | 1) {}
    void fill(char* out, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            state_ ^= state_ << 13;
            state_ ^= state_ >> 7;
            state_ ^= state_ << 17;
            out[i] = char(state_);
        }
    }

private:
    std::uint64_t state_;
};

struct Hash {
    std::uint64_t value = 14695981039346656037ull;
    void add(const char* data, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            value ^= std::uint8_t(data[i]);
            value *= 1099511628211ull;
        }
    }
};

// The one live forkd-proxy child of a proxy daemon (its spawner's child), -1 if none.
pid_t proxy_child(const Daemon& d) {
    const auto children = proc_children(d.spawner_pid());
    return children.size() == 1 ? children.front() : -1;
}

// The highest RSS (KiB) a process reaches while it is sampled for `span`.
std::size_t peak_rss_kb(pid_t pid, Millis span) {
    std::size_t peak = 0;
    const auto end = Clock::now() + span;
    while (Clock::now() < end) {
        peak = std::max(peak, proc_rss_kb(pid));
        std::this_thread::sleep_for(20ms);
    }
    return peak;
}

// A non-blocking connect that is not waited for (it may sit behind a full backlog).
UniqueFd start_connect(std::uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    return fd;
}

std::int64_t status_number(const Daemon& d, const char* pointer) {
    auto status = status_json(d);
    if (!status) return -1;
    return status->value(nlohmann::json::json_pointer(pointer), std::int64_t{-1});
}

// The connection-end line of the proxy daemon's connection `id`.
std::string end_line(const Daemon& d, int id) {
    const auto lines = d.log_lines("event=connection-end id=" + std::to_string(id) + " ");
    return lines.empty() ? "" : lines.front();
}

} // namespace

TEST(ProxyFork, ForwardsToAForkdEchoOverTcpWithExactBytes) {
    Daemon echo(backend("echo"));
    Daemon proxy(proxy_to(tcp_target(echo)));
    auto fd = connect_tcp(proxy.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "through the proxy\n"));
    EXPECT_TRUE(echo_roundtrip(fd.get(), std::string("\0\xff binary", 9)));
    ::shutdown(fd.get(), SHUT_WR);
    EXPECT_EQ(read_until_eof(fd.get()), "");
    ASSERT_TRUE(proxy.wait_log("event=connection-end id=1 ")) << proxy.log();
    const std::string line = end_line(proxy, 1);
    EXPECT_NE(line.find("bytes_in=27 bytes_out=27"), std::string::npos) << line;
    EXPECT_NE(line.find("ended_by=handler"), std::string::npos) << line;
    EXPECT_TRUE(eventually([&] { return status_number(proxy, "/totals/completed") == 1; })) << proxy.log();
}

TEST(ProxyFork, ForwardsToAUnixSocketBackend) {
    TempDir sockets;
    const std::string path = sockets.file("echo.sock");
    Daemon echo(backend("echo", "unix:" + path));
    Daemon proxy(proxy_to("unix:" + path));
    auto fd = connect_tcp(proxy.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "over a UNIX socket\n"));
    ::shutdown(fd.get(), SHUT_WR);
    EXPECT_EQ(read_until_eof(fd.get()), "");
    EXPECT_TRUE(echo.wait_log("event=connection-end id=1 ")) << "the UNIX backend served nothing";
}

// 100 MiB each way at once: the client sends while it reads the echo back; both hashed.
TEST(ProxyFork, HundredMiBBothWaysAtOnceArriveIntact) {
    Daemon echo(backend("echo"));
    Daemon proxy(proxy_to(tcp_target(echo)));
    auto fd = connect_tcp(proxy.port());
    ASSERT_TRUE(fd.valid());
    constexpr std::size_t total = 100u << 20;
    Hash sent, received;
    std::atomic<bool> send_ok{true};
    std::thread sender([&] {
        Stream stream(42);
        std::vector<char> block(1 << 16);
        for (std::size_t done = 0; done < total; done += block.size()) {
            stream.fill(block.data(), block.size());
            sent.add(block.data(), block.size());
            if (!send_all(fd.get(), std::string(block.data(), block.size()))) {
                send_ok = false;
                break;
            }
        }
        ::shutdown(fd.get(), SHUT_WR);
    });
    std::vector<char> buf(1 << 16);
    std::size_t got = 0;
    pollfd pfd{fd.get(), POLLIN, 0};
    while (got < total && ::poll(&pfd, 1, 10000) > 0) {
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n <= 0) break;
        received.add(buf.data(), std::size_t(n));
        got += std::size_t(n);
    }
    sender.join();
    ASSERT_TRUE(send_ok);
    ASSERT_EQ(got, total);
    EXPECT_EQ(received.value, sent.value) << "the bytes that came back differ from those sent";
    EXPECT_EQ(read_until_eof(fd.get()), "");
    ASSERT_TRUE(proxy.wait_log("event=connection-end id=1 ")) << proxy.log();
    EXPECT_NE(end_line(proxy, 1).find("bytes_in=104857600 bytes_out=104857600"), std::string::npos)
        << end_line(proxy, 1);
}

// A client that reads nothing while chargen streams: the proxy stops reading chargen once the
// client's buffer holds buffer-size, so its memory stays put.
TEST(ProxyFork, AClientThatStopsReadingKeepsTheProxySmall) {
    if (kSanitized) GTEST_SKIP() << "RSS bounds mean nothing under ASan (shadow memory, quarantine)";
    Daemon chargen(backend("chargen"));
    Daemon proxy(proxy_to(tcp_target(chargen)));
    auto fd = connect_tcp(proxy.port());
    ASSERT_TRUE(fd.valid());
    ASSERT_FALSE(read_n(fd.get(), 74).empty());  // it streams
    pid_t child = -1;
    ASSERT_TRUE(eventually([&] { return (child = proxy_child(proxy)) > 0; }));
    const std::size_t baseline_kb = proc_rss_kb(child);
    const std::size_t peak_kb = peak_rss_kb(child, 1500ms);
    // Two buffers of buffer-size at most (the client's output and one read), and slack for
    // the allocator's rounding.
    EXPECT_LE(peak_kb, baseline_kb + 2 * kBufferSize / 1024 + 512)
        << "baseline " << baseline_kb << " KiB, peak " << peak_kb << " KiB";
    // Still streaming once the client reads again.
    EXPECT_GE(read_n(fd.get(), 1 << 20, 10s).size(), std::size_t(1 << 20));
}

// A backend the test plays by hand (a bare listening socket), a proxy to it, a client connected
// through the proxy, and the backend's end of that connection (invalid if none came in 5 s).
struct HandPlayedBackend {
    UniqueFd listener = listen_tcp(0);
    Daemon proxy{proxy_to("127.0.0.1:" + std::to_string(local_port(listener.get())))};
    UniqueFd client = connect_tcp(proxy.port());
    UniqueFd backend = accept_backend();

    UniqueFd accept_backend() {
        pollfd ready{listener.get(), POLLIN, 0};
        if (!client.valid() || ::poll(&ready, 1, 5000) != 1) return UniqueFd();
        return UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    }
};

// A client that sends as fast as it can to a backend that reads nothing.
TEST(ProxyFork, ABackendThatReadsNothingKeepsTheProxySmall) {
    if (kSanitized) GTEST_SKIP() << "RSS bounds mean nothing under ASan (shadow memory, quarantine)";
    HandPlayedBackend pair;
    ASSERT_TRUE(pair.client.valid() && pair.backend.valid());  // the backend never reads
    Daemon& proxy = pair.proxy;
    UniqueFd& fd = pair.client;
    pid_t child = -1;
    ASSERT_TRUE(eventually([&] { return (child = proxy_child(proxy)) > 0; }));
    const std::size_t baseline_kb = proc_rss_kb(child);
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> sent{0};
    std::thread sender([&] {
        std::string block(1 << 16, 'x');
        ::fcntl(fd.get(), F_SETFL, O_NONBLOCK);
        while (!stop) {
            const ssize_t n = ::send(fd.get(), block.data(), block.size(), MSG_NOSIGNAL);
            if (n > 0) sent += std::size_t(n);
            else std::this_thread::sleep_for(5ms);
        }
    });
    const std::size_t peak_kb = peak_rss_kb(child, 1500ms);
    stop = true;
    sender.join();
    EXPECT_GT(sent.load(), 2 * kBufferSize) << "the client could not even fill the buffers";
    EXPECT_LE(peak_kb, baseline_kb + 2 * kBufferSize / 1024 + 512)
        << "baseline " << baseline_kb << " KiB, peak " << peak_kb << " KiB, client sent " << sent.load();
}

// The client's EOF reaches the backend as EOF, and the backend's answer still reaches the client.
TEST(ProxyFork, HalfCloseIsPassedOnAndTheOtherDirectionKeepsFlowing) {
    HandPlayedBackend pair;
    ASSERT_TRUE(pair.client.valid() && pair.backend.valid());
    Daemon& proxy = pair.proxy;
    UniqueFd& fd = pair.client;
    UniqueFd& server = pair.backend;
    ASSERT_TRUE(send_all(fd.get(), "question"));
    ::shutdown(fd.get(), SHUT_WR);
    EXPECT_EQ(read_until_eof(server.get()), "question") << "the backend did not see the client's EOF";
    ASSERT_TRUE(send_all(server.get(), "answer after your EOF"));
    EXPECT_EQ(read_n(fd.get(), 21), "answer after your EOF");
    ::shutdown(server.get(), SHUT_WR);
    EXPECT_EQ(read_until_eof(fd.get()), "");
    ASSERT_TRUE(proxy.wait_log("event=connection-end id=1 ")) << proxy.log();
    EXPECT_NE(end_line(proxy, 1).find("bytes_in=8 bytes_out=21 ended_by=handler"), std::string::npos)
        << end_line(proxy, 1);
}

TEST(ProxyFork, AnUnreachableBackendFailsWithTheReason) {
    const std::uint16_t closed = free_tcp_port();
    Daemon proxy(proxy_to("127.0.0.1:" + std::to_string(closed)));
    auto fd = connect_tcp(proxy.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(wait_closed(fd.get(), 5s));
    ASSERT_TRUE(proxy.wait_log("event=connection-end id=1 ")) << proxy.log();
    EXPECT_NE(end_line(proxy, 1).find("ended_by=backend reason=\"connect refused\""), std::string::npos)
        << end_line(proxy, 1);
    EXPECT_TRUE(eventually([&] { return status_number(proxy, "/totals/failed") == 1; })) << proxy.log();
    EXPECT_EQ(status_number(proxy, "/totals/completed"), 0);
}

TEST(ProxyFork, AMissingUnixBackendFailsWithTheReason) {
    TempDir sockets;
    Daemon proxy(proxy_to("unix:" + sockets.file("nobody.sock")));
    auto fd = connect_tcp(proxy.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(wait_closed(fd.get(), 5s));
    ASSERT_TRUE(proxy.wait_log("event=connection-end id=1 ")) << proxy.log();
    EXPECT_NE(end_line(proxy, 1).find("ended_by=backend reason=\"connect refused\""), std::string::npos)
        << end_line(proxy, 1);
}

// A backend whose accept queue is full drops the SYN: the connect hangs until
// proxy-connect-timeout, then the client is closed and the connection counted failed.
TEST(ProxyFork, ASilentBackendTimesOutWithinProxyConnectTimeout) {
    UniqueFd listener = listen_tcp(0);
    ASSERT_TRUE(listener.valid());
    ASSERT_EQ(::listen(listener.get(), 0), 0);
    const std::uint16_t port = local_port(listener.get());
    std::vector<UniqueFd> queued;
    for (int i = 0; i < 3; ++i) queued.push_back(start_connect(port));  // fill the queue
    std::this_thread::sleep_for(100ms);  // let the handshakes that fit complete
    Daemon proxy(proxy_to("127.0.0.1:" + std::to_string(port), {"proxy-connect-timeout = 1"}));
    const auto start = Clock::now();
    auto fd = connect_tcp(proxy.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(wait_closed(fd.get(), 5s));
    const auto waited = std::chrono::duration_cast<Millis>(Clock::now() - start);
    EXPECT_GE(waited, 900ms);
    EXPECT_LE(waited, 3s);
    ASSERT_TRUE(proxy.wait_log("event=connection-end id=1 ")) << proxy.log();
    EXPECT_NE(end_line(proxy, 1).find("ended_by=backend reason=\"connect timeout\""), std::string::npos)
        << end_line(proxy, 1);
    EXPECT_TRUE(eventually([&] { return status_number(proxy, "/totals/failed") == 1; })) << proxy.log();
}

// A reload to another proxy-to, and from proxy to echo, applies to new connections; one opened
// before keeps its backend.
TEST(ProxyFork, ReloadChangesProxyToForNewConnectionsOnly) {
    Daemon echo(backend("echo"));
    Daemon daytime(backend("daytime"));
    const std::string listen = "127.0.0.1:" + std::to_string(free_tcp_port());
    DaemonOptions options;
    options.config_lines = proxy_lines(listen, tcp_target(echo));
    Daemon proxy(options);
    auto before = connect_tcp(proxy.port());
    ASSERT_TRUE(echo_roundtrip(before.get(), "old\n"));
    proxy.rewrite_config(proxy_lines(listen, tcp_target(daytime)));
    ASSERT_TRUE(eventually([&] { return proxy.count_log("event=reload result=ok") >= 1; })) << proxy.log();
    auto after = connect_tcp(proxy.port());
    ASSERT_TRUE(after.valid());
    const std::string text = read_until_eof(after.get());
    EXPECT_TRUE(text.ends_with("\r\n") && text.find(", 20") != std::string::npos) << "not daytime: " << text;
    EXPECT_TRUE(echo_roundtrip(before.get(), "still the echo\n"));

    proxy.rewrite_config({"listen = " + listen, "handler = echo"});
    ASSERT_TRUE(eventually([&] { return proxy.count_log("event=reload result=ok") >= 2; })) << proxy.log();
    auto local = connect_tcp(proxy.port());
    // daytime is still proxy-to's last value: only the daemon's own echo answers this.
    EXPECT_TRUE(echo_roundtrip(local.get(), "served by the proxy daemon itself\n"));
}
