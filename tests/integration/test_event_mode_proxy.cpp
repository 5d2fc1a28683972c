// SPDX-License-Identifier: MIT
// handler = proxy in event mode: the worker runs the proxy session (daemon/proxy) for each
// client, against real backends (another forkd over TCP and over a UNIX socket), with exact
// bytes, a refused backend counted failed with its reason, kill, and bounded memory when the
// client reads nothing from a streaming backend.
#include "event_mode_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <algorithm>
#include <thread>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

DaemonOptions event_proxy(const std::string& target, std::vector<std::string> more = {}) {
    more.insert(more.begin(), {"handler = proxy", "proxy-to = " + target, "buffer-size = 65536"});
    return event_config(std::move(more));
}

std::string tcp_target(const Daemon& d) { return "127.0.0.1:" + std::to_string(d.port()); }

// Sends `payload` and reads back as many bytes at once (a thread sends): true if equal.
bool echoed_whole(int fd, const std::string& payload) {
    bool sent = false;
    std::thread sender([&] { sent = send_all(fd, payload); });
    const std::string got = read_n(fd, payload.size(), 30s);
    sender.join();
    return sent && got == payload;
}

} // namespace

TEST(EventModeProxy, CopiesBothWaysToATcpBackendWithExactBytes) {
    Daemon backend(config({"handler = echo"}));
    Daemon proxy(event_proxy(tcp_target(backend), {"workers = 2"}));
    auto client = connect_tcp(proxy.port());
    ASSERT_TRUE(client.valid());
    const std::string payload = test_pattern(8 << 20);
    EXPECT_TRUE(echoed_whole(client.get(), payload)) << proxy.log();
    const auto rows = list_json(proxy);
    ASSERT_EQ(rows.size(), 1u) << rows.dump();
    const auto workers = worker_pids(proxy);
    EXPECT_TRUE(std::find(workers.begin(), workers.end(), pid_t(rows[0]["pid"].get<long>())) != workers.end());
    EXPECT_EQ(rows[0]["bytes_in"], payload.size()) << rows.dump();
    EXPECT_EQ(rows[0]["bytes_out"], payload.size()) << rows.dump();
    ::shutdown(client.get(), SHUT_WR);  // the half-close reaches the echo backend, which closes
    EXPECT_EQ(read_until_eof(client.get(), 5s), "");
    ASSERT_TRUE(proxy.wait_log("event=connection-end")) << proxy.log();
    const std::string line = proxy.log_lines("event=connection-end").back();
    EXPECT_NE(line.find("bytes_in=" + std::to_string(payload.size())), std::string::npos) << line;
    EXPECT_NE(line.find("bytes_out=" + std::to_string(payload.size())), std::string::npos) << line;
    EXPECT_NE(line.find("ended_by=handler"), std::string::npos) << line;
}

TEST(EventModeProxy, UnixBackendAndKill) {
    TempDir sockets;
    const std::string path = sockets.file("backend.sock");
    DaemonOptions unix_backend;
    unix_backend.config_lines = {"listen = unix:" + path, "handler = echo"};
    Daemon backend(unix_backend);
    Daemon proxy(event_proxy("unix:" + path));
    auto client = connect_tcp(proxy.port());
    ASSERT_TRUE(echo_roundtrip(client.get(), "through a unix backend")) << proxy.log();
    const auto rows = list_json(proxy);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(forkctl(proxy, {"kill", std::to_string(rows[0]["id"].get<long>())}).exit_code, 0);
    EXPECT_TRUE(wait_closed(client.get(), 3s));
    ASSERT_TRUE(proxy.wait_log("ended_by=killed")) << proxy.log();
    EXPECT_TRUE(eventually([&] { return active_of(proxy) == 0; }));
}

TEST(EventModeProxy, RefusedBackendClosesTheClientCountedFailed) {
    const std::uint16_t nobody = free_tcp_port();
    Daemon proxy(event_proxy("127.0.0.1:" + std::to_string(nobody)));
    auto client = connect_tcp(proxy.port());
    EXPECT_TRUE(wait_closed(client.get(), 5s));
    ASSERT_TRUE(proxy.wait_log("event=connection-end")) << proxy.log();
    const std::string line = proxy.log_lines("event=connection-end").back();
    EXPECT_NE(line.find("ended_by=backend"), std::string::npos) << line;
    EXPECT_NE(line.find("connect refused"), std::string::npos) << line;
    EXPECT_TRUE(eventually([&] {
        auto s = status_json(proxy);
        return s.ok() && (*s)["totals"]["failed"] == 1;
    })) << proxy.log();
}

// A chargen backend streams as fast as it can, the client reads nothing: the worker stops
// reading the backend at buffer-size, so its memory stays bounded.
TEST(EventModeProxy, NonReadingClientKeepsTheWorkersMemoryBounded) {
    if (kSanitized) GTEST_SKIP() << "RSS bounds mean nothing under ASan (shadow memory, quarantine)";
    Daemon backend(config({"handler = chargen"}));
    Daemon proxy(event_proxy(tcp_target(backend)));
    const auto workers = worker_pids(proxy);
    ASSERT_EQ(workers.size(), 1u);
    auto client = connect_tcp(proxy.port());
    int small = 4096;
    ::setsockopt(client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ASSERT_TRUE(eventually([&] { return active_of(proxy) == 1; }));
    const std::size_t before = proc_rss_kb(workers[0]);
    std::this_thread::sleep_for(1500ms);
    const std::size_t after = proc_rss_kb(workers[0]);
    // 2 x buffer-size is 128 KiB; allow the allocator its slack, but not a stream's worth.
    EXPECT_LT(after, before + 1024) << "worker RSS grew from " << before << " to " << after << " kB";
    EXPECT_EQ(read_n(client.get(), 74).substr(0, 72), expected_chargen_line(0).substr(0, 72));
}
