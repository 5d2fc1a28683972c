// SPDX-License-Identifier: MIT
// `forkctl list` against the real process tree: each row's pid is the live handler serving that
// row's client (its fd 0 is the server side of that client's TCP connection), every handler has
// its row, for exec'd handlers (the master's children) and built-ins (forkd-spawner's), across
// reloads that switch between them. An admin who kills the pid `list` shows must kill that
// client's handler and no other.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace forkd::test;
using forkd::UniqueFd;
using nlohmann::json;

namespace {

constexpr int per_kind = 3;

std::string listen_on(std::uint16_t port) { return "listen = 127.0.0.1:" + std::to_string(port); }
std::string exec_line() { return "exec = " + std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop"; }

// The inode of the server side of each loopback connection to `port`, by the client's port
// (/proc/net/tcp: "sl local rem st ... uid timeout inode", addresses in hex).
std::map<std::uint16_t, std::string> server_sockets(std::uint16_t port) {
    std::map<std::uint16_t, std::string> by_client_port;
    std::ifstream in("/proc/net/tcp");
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
        fields >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
        const auto port_of = [](const std::string& address) {
            return std::uint16_t(std::stoul(address.substr(address.find(':') + 1), nullptr, 16));
        };
        if (local.empty() || remote.empty() || port_of(local) != port) continue;
        by_client_port[port_of(remote)] = "socket:[" + inode + "]";
    }
    return by_client_port;
}

std::string fd0_of(pid_t pid) {
    char target[128] = {};
    const std::string link = "/proc/" + std::to_string(pid) + "/fd/0";
    const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
    return n > 0 ? std::string(target, std::size_t(n)) : "";
}

// The list's rows, all of which must be running handlers with a pid, against the live handlers
// and the clients.
void expect_list_is_the_process_tree(const Daemon& d, std::uint16_t port,
                                     const std::vector<UniqueFd>& clients) {
    const auto r = forkctl(d, {"--json", "list"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json rows = json::parse(r.out);
    ASSERT_EQ(rows.size(), clients.size()) << rows.dump();
    const auto sockets = server_sockets(port);
    std::set<pid_t> listed;
    for (const auto& row : rows) {
        ASSERT_TRUE(row["pid"].is_number_integer()) << row.dump();
        EXPECT_EQ(row["state"], "running") << row.dump();
        const pid_t pid = row["pid"].get<pid_t>();
        listed.insert(pid);
        const std::string peer = row["peer"].get<std::string>();
        ASSERT_EQ(peer.rfind("127.0.0.1:", 0), 0u) << row.dump();
        const auto client_port = std::uint16_t(std::stoul(peer.substr(10)));
        ASSERT_TRUE(sockets.count(client_port)) << "no connection from " << peer;
        EXPECT_EQ(fd0_of(pid), sockets.at(client_port))
            << "pid " << pid << " in the row of " << peer << " serves another client";
    }
    const auto handlers = d.children();
    EXPECT_EQ(listed, std::set<pid_t>(handlers.begin(), handlers.end())) << rows.dump();
    std::set<std::string> peers;
    for (const auto& row : rows) peers.insert(row["peer"].get<std::string>());
    for (const auto& client : clients) EXPECT_TRUE(peers.count(peer_of(client))) << peer_of(client);
}

void add_clients(const Daemon& d, std::vector<UniqueFd>& clients, const char* payload) {
    for (int i = 0; i < per_kind; ++i) {
        clients.push_back(served_client(d, payload));
        ASSERT_TRUE(clients.back().valid()) << d.log();
    }
}

void reload_to(Daemon& d, std::uint16_t port, const std::string& handler_line, std::size_t reloads) {
    d.rewrite_config({listen_on(port), handler_line});
    ASSERT_TRUE(eventually([&] { return d.count_log("event=reload result=ok") >= reloads; })) << d.log();
}

TEST(ListMatchesProcesses, ExecdAndBuiltInHandlersAcrossReloads) {
    const auto port = free_tcp_port();
    DaemonOptions options;
    options.config_lines = {listen_on(port), exec_line()};
    Daemon d(options);
    std::vector<UniqueFd> clients;

    add_clients(d, clients, "exec'd");
    expect_list_is_the_process_tree(d, port, clients);

    reload_to(d, port, "handler = echo", 1);
    expect_list_is_the_process_tree(d, port, clients);
    add_clients(d, clients, "built-in");
    expect_list_is_the_process_tree(d, port, clients);

    reload_to(d, port, exec_line(), 2);
    add_clients(d, clients, "exec'd again");
    expect_list_is_the_process_tree(d, port, clients);
}

// The first moment a built-in connection is served, its row already names its peer and pid:
// the spawner writes both into the slot itself, before the master hears of the connection.
TEST(ListMatchesProcesses, ABuiltInConnectionIsListedCompleteAtOnce) {
    const auto port = free_tcp_port();
    DaemonOptions options;
    options.config_lines = {listen_on(port), "handler = echo"};
    Daemon d(options);
    for (int round = 0; round < 20; ++round) {
        std::vector<UniqueFd> clients;
        clients.push_back(served_client(d, "now"));
        ASSERT_TRUE(clients.back().valid());
        expect_list_is_the_process_tree(d, port, clients);
        clients.clear();
        ASSERT_TRUE(eventually([&] { return d.children().empty(); }));
        ASSERT_TRUE(eventually([&] { return json::parse(forkctl(d, {"--json", "list"}).out).empty(); }));
    }
}

} // namespace
