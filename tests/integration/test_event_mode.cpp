// SPDX-License-Identifier: MIT
// Event mode (mode = event): the built-in handlers' bytes served by forkd-worker processes, the
// configuration check, status and list, kill, and what the workers' supervision promises.
#include "event_mode_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <signal.h>

#include <regex>
#include <thread>

using namespace forkd::test;
using forkd::UniqueFd;

TEST(EventMode, EchoRoundTripsAndLargePayload) {
    Daemon d(event_config({"handler = echo"}));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "hello event mode\r\n"));
    const std::string payload = test_pattern(4 << 20);  // far beyond buffer-size and the sockets'
    bool sent = false;
    std::thread sender([&] {
        sent = send_all(fd.get(), payload);
        ::shutdown(fd.get(), SHUT_WR);
    });
    const std::string got = read_until_eof(fd.get(), 30s);
    sender.join();
    EXPECT_TRUE(sent);
    ASSERT_EQ(got.size(), payload.size());
    EXPECT_TRUE(got == payload) << "echoed bytes differ from what was sent";
    ASSERT_TRUE(d.wait_log("event=connection-end")) << d.log();
    const std::string line = d.log_lines("event=connection-end").back();
    const std::string bytes = std::to_string(payload.size() + 18);
    EXPECT_NE(line.find("bytes_in=" + bytes), std::string::npos) << line;
    EXPECT_NE(line.find("bytes_out=" + bytes), std::string::npos) << line;
    EXPECT_NE(line.find("ended_by=handler"), std::string::npos) << line;
}

TEST(EventMode, DiscardDaytimeChargenSendTheForkModeBytes) {
    {
        Daemon d(event_config({"handler = discard"}));
        auto fd = connect_tcp(d.port());
        ASSERT_TRUE(send_all(fd.get(), test_pattern(2 << 20)));
        ::shutdown(fd.get(), SHUT_WR);
        EXPECT_EQ(read_until_eof(fd.get(), 10s), "");
        ASSERT_TRUE(d.wait_log("event=connection-end")) << d.log();
        EXPECT_NE(d.log_lines("event=connection-end").back().find("bytes_in=" + std::to_string(2 << 20)),
                  std::string::npos);
    }
    {
        Daemon d(event_config({"handler = daytime"}));
        auto fd = connect_tcp(d.port());
        const std::string text = read_until_eof(fd.get());
        static const std::regex shape(
            R"(^([A-Z][a-z]+day), ([A-Z][a-z]+) (\d{1,2}), (\d{4}) (\d{2}):(\d{2}):(\d{2})-?\S*\r\n$)");
        EXPECT_TRUE(std::regex_match(text, shape)) << "daytime sent: '" << text << "'";
    }
    {
        Daemon d(event_config({"handler = chargen"}));
        auto fd = connect_tcp(d.port());
        const std::size_t lines = 3000;  // beyond one buffer-size of output
        const std::string got = read_n(fd.get(), lines * 74);
        ASSERT_GE(got.size(), lines * 74);
        for (std::size_t n = 0; n < lines; ++n)
            ASSERT_EQ(got.substr(n * 74, 74), expected_chargen_line(n)) << "line " << n;
    }
}

TEST(EventMode, ExecHandlerIsAConfigErrorNamingBothOptions) {
    TempDir dir;
    const std::string conf = dir.file("forkd.conf");
    write_file(conf, "listen = 127.0.0.1:0\nmode = event\nexec = /bin/cat\n");
    const auto result = run({FORKD_BINARY, "-t", "-c", conf});
    EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
    EXPECT_NE(result.err.find("'mode'"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("handler"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(conf + ":2"), std::string::npos) << result.err;
}

TEST(EventMode, StatusShowsModeAndWorkersAndListShowsExactBytes) {
    Daemon d(event_config({"workers = 2"}));
    auto status = status_json(d);
    ASSERT_TRUE(status.ok()) << status.error().message();
    EXPECT_EQ((*status)["mode"], "event");
    ASSERT_EQ((*status)["workers"].size(), 2u) << status->dump();
    std::set<long> pids;
    for (const auto& w : (*status)["workers"]) {
        pids.insert(w["pid"].get<long>());
        EXPECT_TRUE(w.contains("active") && w.contains("accepted")) << w.dump();
    }
    EXPECT_EQ(pids.size(), 2u);
    EXPECT_TRUE(d.spawner_pid() > 0);

    auto a = connect_tcp(d.port());
    ASSERT_TRUE(echo_roundtrip(a.get(), "12345"));
    ASSERT_TRUE(echo_roundtrip(a.get(), "678"));
    const auto rows = list_json(d);
    ASSERT_EQ(rows.size(), 1u) << rows.dump();
    EXPECT_TRUE(pids.count(rows[0]["pid"].get<long>())) << rows.dump();
    EXPECT_EQ(rows[0]["bytes_in"], 8) << rows.dump();
    EXPECT_EQ(rows[0]["bytes_out"], 8) << rows.dump();
    EXPECT_EQ(rows[0]["state"], "running") << rows.dump();
    status = status_json(d);
    EXPECT_EQ((*status)["active"], 1);
    long active = 0, accepted = 0;
    for (const auto& w : (*status)["workers"]) {
        active += w["active"].get<long>();
        accepted += w["accepted"].get<long>();
    }
    EXPECT_EQ(active, 1);
    EXPECT_EQ(accepted, 1);
}

TEST(EventMode, KillClosesThatConnectionOnly) {
    Daemon d(event_config({}));
    auto a = served_client(d, "a");
    auto b = served_client(d, "b");
    ASSERT_TRUE(a.valid() && b.valid());
    const auto rows = list_json(d);
    ASSERT_EQ(rows.size(), 2u);
    const std::string peer_a = peer_of(a);
    std::string id;
    for (const auto& row : rows)
        if (row["peer"] == peer_a) id = std::to_string(row["id"].get<long>());
    ASSERT_FALSE(id.empty()) << rows.dump();
    EXPECT_EQ(forkctl(d, {"kill", id}).exit_code, 0);
    EXPECT_TRUE(wait_closed(a.get(), 3s));
    EXPECT_TRUE(echo_roundtrip(b.get(), "b still"));
    ASSERT_TRUE(d.wait_log("ended_by=killed")) << d.log();
    EXPECT_TRUE(eventually([&] { return active_of(d) == 1; }));
}

// A worker SIGKILLed while it serves: its connections are counted failed, a new worker starts,
// and the counter matches the connections still open.
TEST(EventMode, KilledWorkerIsCountedAndReplaced) {
    Daemon d(event_config({"workers = 2"}));
    std::vector<UniqueFd> clients;
    for (int i = 0; i < 40; ++i) {
        clients.push_back(served_client(d, "x"));
        ASSERT_TRUE(clients.back().valid()) << d.log();
    }
    const auto rows = list_json(d);
    ASSERT_EQ(rows.size(), 40u);
    const pid_t victim = pid_t(rows[0]["pid"].get<long>());
    long on_victim = 0;
    for (const auto& row : rows) on_victim += row["pid"].get<long>() == victim;
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    ASSERT_TRUE(d.wait_log("event=worker-exited pid=" + std::to_string(victim))) << d.log();
    EXPECT_NE(d.log_lines("event=worker-exited").back().find("connections_lost=" + std::to_string(on_victim)),
              std::string::npos)
        << d.log();
    ASSERT_TRUE(eventually([&] {
        auto s = status_json(d);
        if (!s.ok() || (*s)["workers"].size() != 2u) return false;
        for (const auto& w : (*s)["workers"])
            if (w["pid"].get<long>() == victim) return false;
        return true;
    })) << d.log();
    EXPECT_TRUE(eventually([&] { return active_of(d) == 40 - on_victim; }));
    auto status = status_json(d);
    EXPECT_EQ((*status)["totals"]["failed"], on_victim) << status->dump();
    // Under load once more: the survivors and newcomers are all served, and the count is exact.
    long open = 0;
    for (auto& c : clients) open += echo_roundtrip(c.get(), "y", 1s);
    EXPECT_EQ(open, 40 - on_victim);
    for (int i = 0; i < 20; ++i) clients.push_back(served_client(d, "z"));
    EXPECT_TRUE(eventually([&] { return active_of(d) == 60 - on_victim; }));
    clients.clear();
    EXPECT_TRUE(eventually([&] { return active_of(d) == 0; }));
}

TEST(EventMode, MasterSigkillLeavesNoWorker) {
    Daemon d(event_config({"workers = 2"}));
    auto a = served_client(d, "a");
    const auto workers = worker_pids(d);
    ASSERT_EQ(workers.size(), 2u);
    d.signal(SIGKILL);
    ASSERT_TRUE(d.wait_exit(5s).has_value());
    EXPECT_TRUE(eventually([&] {
        for (pid_t pid : workers)
            if (process_alive(pid)) return false;
        return true;
    }, 1500ms)) << "a worker outlived the master";
    EXPECT_TRUE(wait_closed(a.get(), 2s));
}
