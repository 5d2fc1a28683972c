// SPDX-License-Identifier: MIT
// The built-in handlers' bytes on the wire, over every kind of listener.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <regex>
#include <thread>

using namespace forkd::test;

namespace {

DaemonOptions with_handler(const std::string& handler) {
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:0", "handler = " + handler};
    return o;
}

// RFC 864: 95 printable characters (' ' .. '~') in a ring; line n holds ring[n .. n+71], CRLF.
std::string expected_chargen_line(int n) {
    std::string line;
    for (int i = 0; i < 72; ++i) line += char(' ' + (n + i) % 95);
    return line + "\r\n";
}

std::string pattern(std::size_t size) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i) s[i] = char((i * 7 + i / 251) & 0xff);
    return s;
}

bool ipv6_loopback_available() {
    return listen_tcp(0, "::1").valid();
}

} // namespace

TEST(Handlers, EchoRoundTrip) {
    Daemon d(with_handler("echo"));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "hello forkd\r\n"));
    EXPECT_TRUE(echo_roundtrip(fd.get(), std::string("\0binary\xff", 8)));
    ::shutdown(fd.get(), SHUT_WR);
    EXPECT_EQ(read_until_eof(fd.get()), "") << "echo must close after the client's EOF";
}

TEST(Handlers, EchoLargePayload) {
    Daemon d(with_handler("echo"));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    const std::string payload = pattern(4 << 20);  // far beyond both socket buffers
    bool sent = false;
    std::thread sender([&] {
        sent = send_all(fd.get(), payload);
        ::shutdown(fd.get(), SHUT_WR);
    });
    std::string got = read_until_eof(fd.get(), 30s);
    sender.join();
    EXPECT_TRUE(sent);
    ASSERT_EQ(got.size(), payload.size());
    EXPECT_TRUE(got == payload) << "echoed bytes differ from what was sent";
}

TEST(Handlers, DiscardReadsAndSendsNothing) {
    Daemon d(with_handler("discard"));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    // More than the socket buffers hold: only a reader lets this complete.
    EXPECT_TRUE(send_all(fd.get(), pattern(2 << 20)));
    ::shutdown(fd.get(), SHUT_WR);
    EXPECT_EQ(read_until_eof(fd.get(), 10s), "");
    EXPECT_TRUE(d.wait_log("event=connection-end"));
}

TEST(Handlers, DaytimeSendsOneDateLineAndCloses) {
    Daemon d(with_handler("daytime"));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    const std::time_t before = std::time(nullptr);
    std::string text = read_until_eof(fd.get());
    // e.g. "Sunday, November 22, 2026 05:30:00-UTC\r\n"
    static const std::regex shape(
        R"(^([A-Z][a-z]+day), ([A-Z][a-z]+) (\d{1,2}), (\d{4}) (\d{2}):(\d{2}):(\d{2})-?\S*\r\n$)");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(text, m, shape)) << "daytime sent: '" << text << "'";
    // The date must be today's (compare with our own local time, same timezone).
    std::tm tm{};
    ASSERT_NE(strptime(text.c_str(), "%A, %B %d, %Y %H:%M:%S", &tm), nullptr) << text;
    tm.tm_isdst = -1;
    const std::time_t sent_time = std::mktime(&tm);
    EXPECT_LE(std::abs(static_cast<long>(sent_time - before)), 120L)
        << "daytime says '" << text << "', far from now";
}

TEST(Handlers, ChargenSendsTheRfc864Pattern) {
    Daemon d(with_handler("chargen"));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    const std::size_t lines = 200;  // more than the 95-line period
    std::string got = read_n(fd.get(), lines * 74);
    ASSERT_GE(got.size(), lines * 74);
    EXPECT_EQ(got.substr(0, 74),
              " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n");
    EXPECT_EQ(got.substr(74, 74),
              "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n");
    for (std::size_t n = 0; n < lines; ++n)
        ASSERT_EQ(got.substr(n * 74, 74), expected_chargen_line(int(n))) << "line " << n;
    // Input is ignored, and the stream ends when the client leaves.
    EXPECT_TRUE(send_all(fd.get(), "ignored\r\n"));
    fd.reset();
    EXPECT_TRUE(eventually([&] { return d.children().empty(); }))
        << "chargen child still alive after the client closed";
}

TEST(Listeners, UnixSocketEcho) {
    TempDir sockets;
    const std::string path = sockets.file("echo.sock");
    DaemonOptions o;
    o.config_lines = {"listen = unix:" + path};
    Daemon d(o);
    EXPECT_TRUE(d.wait_log("event=listening address=unix:" + path)) << d.log();
    auto fd = connect_unix(path);
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "over a unix socket\n"));
}

TEST(Listeners, StaleUnixSocketFileIsReplaced) {
    TempDir sockets;
    const std::string path = sockets.file("stale.sock");
    {
        // A socket file whose listener is gone: nothing answers on it any more.
        auto old = forkd::UniqueFd(::socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
        ASSERT_EQ(::bind(old.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
        ASSERT_EQ(::listen(old.get(), 1), 0);
    }
    ASSERT_FALSE(connect_unix(path).valid()) << "precondition: the old socket is dead";
    DaemonOptions o;
    o.config_lines = {"listen = unix:" + path};
    Daemon d(o);
    auto fd = connect_unix(path);
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "replaced\n"));
}

TEST(Listeners, LiveUnixSocketIsNotStolen) {
    TempDir sockets;
    const std::string path = sockets.file("live.sock");
    auto live = forkd::UniqueFd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
    ASSERT_EQ(::bind(live.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    ASSERT_EQ(::listen(live.get(), 4), 0);

    DaemonOptions o;
    o.config_lines = {"listen = unix:" + path};
    o.expect_ready = false;
    Daemon d(o);
    auto status = d.wait_exit();
    ASSERT_TRUE(status.has_value()) << "forkd kept running over a live socket:\n" << d.log();
    EXPECT_EQ(*status, 3) << d.log();
    EXPECT_NE(d.log().find(path), std::string::npos) << "the error should name the path:\n" << d.log();
    EXPECT_TRUE(connect_unix(path).valid()) << "the live listener's socket file was removed";
}

TEST(Listeners, Ipv6Loopback) {
    if (!ipv6_loopback_available()) GTEST_SKIP() << "::1 is not available on this machine";
    DaemonOptions o;
    o.config_lines = {"listen = [::1]:0"};
    Daemon d(o);
    auto addrs = d.listening();
    ASSERT_EQ(addrs.size(), 1u) << d.log();
    EXPECT_EQ(addrs[0].rfind("[::1]:", 0), 0u) << "listening address: " << addrs[0];
    auto fd = connect_tcp(d.port(), "::1");
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "v6\n"));
}

TEST(Listeners, WildcardIsDualStack) {
    DaemonOptions o;
    o.config_lines = {"listen = *:0"};
    Daemon d(o);
    const auto port = d.port();
    auto v4 = connect_tcp(port, "127.0.0.1");
    ASSERT_TRUE(v4.valid()) << d.log();
    EXPECT_TRUE(echo_roundtrip(v4.get(), "over v4\n"));
    if (!ipv6_loopback_available()) GTEST_SKIP() << "::1 is not available: only v4 checked";
    auto v6 = connect_tcp(port, "::1");
    ASSERT_TRUE(v6.valid()) << d.log();
    EXPECT_TRUE(echo_roundtrip(v6.get(), "over v6\n"));
}

TEST(Listeners, SeveralListenersServeTogether) {
    TempDir sockets;
    const std::string path = sockets.file("s.sock");
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:0", "listen = 127.0.0.1:0", "listen = unix:" + path};
    Daemon d(o);
    ASSERT_EQ(d.listening().size(), 3u) << d.log();
    auto a = connect_tcp(d.port(0));
    auto b = connect_tcp(d.port(1));
    auto c = connect_unix(path);
    ASSERT_TRUE(a.valid() && b.valid() && c.valid());
    EXPECT_NE(d.port(0), d.port(1));
    EXPECT_TRUE(echo_roundtrip(a.get(), "a"));
    EXPECT_TRUE(echo_roundtrip(b.get(), "b"));
    EXPECT_TRUE(echo_roundtrip(c.get(), "c"));
}

TEST(Logs, ConnectionStartAndEndCarryIdPeerDuration) {
    Daemon d;
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "x"));
    const std::string peer = "127.0.0.1:" + std::to_string(local_port(fd.get()));
    fd.reset();
    ASSERT_TRUE(d.wait_log("event=connection-end")) << d.log();
    auto starts = d.log_lines("event=connection-start");
    auto ends = d.log_lines("event=connection-end");
    ASSERT_EQ(starts.size(), 1u) << d.log();
    ASSERT_EQ(ends.size(), 1u) << d.log();
    for (const auto& line : {starts[0], ends[0]}) {
        EXPECT_NE(line.find(" id="), std::string::npos) << line;
        EXPECT_NE(line.find("peer=" + peer), std::string::npos) << line;
    }
    EXPECT_NE(ends[0].find("duration_ms="), std::string::npos) << ends[0];
    EXPECT_NE(ends[0].find("exit="), std::string::npos) << ends[0];
}

// The handler holds its connection and stdio, and none of the master's own descriptors
// (listeners, control socket, event loop, signalfd, pidfile).
TEST(Handlers, ChildHoldsNoneOfTheMastersDescriptors) {
    namespace fs = std::filesystem;
    TempDir sockets;
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:0", "listen = unix:" + sockets.file("u.sock")};
    Daemon d(o);
    auto targets_of = [](pid_t pid, int from_fd) {
        std::map<int, std::string> out;
        const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
        for (const auto& e : fs::directory_iterator(dir)) {
            const int fd = std::stoi(e.path().filename().string());
            std::error_code ec;
            if (fd >= from_fd) out[fd] = fs::read_symlink(e.path(), ec).string();
        }
        return out;
    };
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(echo_roundtrip(fd.get(), "x"));
    auto handlers = d.children();
    ASSERT_EQ(handlers.size(), 1u);

    std::set<std::string> master;
    for (const auto& [n, target] : targets_of(d.pid(), 3)) master.insert(target);
    ASSERT_FALSE(master.empty());
    int sockets_held = 0;
    for (const auto& [n, target] : targets_of(handlers[0], 0)) {
        if (n <= 2 && target == "/dev/null") continue;
        EXPECT_EQ(master.count(target), 0u) << "handler holds the master's fd " << n << " -> " << target;
        if (target.rfind("socket:", 0) == 0) ++sockets_held;
    }
    EXPECT_LE(sockets_held, 2) << "more sockets than the connection (and a stderr)";
}
