// SPDX-License-Identifier: MIT
// forkd behind Debian's haproxy, on loopback, with the haproxy.cfg of the man pages
// (examples/haproxy.cfg, its @NAME@ placeholders filled in): the client's address through
// send-proxy and send-proxy-v2, and a drain that moves the traffic to the other forkd with no
// failed connection, through agent-check.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

std::string helper(const std::string& name) {
    return std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_" + name;
}

nlohmann::json status_of(const Daemon& daemon) {
    auto status = status_json(daemon);
    return status ? *status : nlohmann::json::object();
}

// A forkd behind haproxy: exec'd remote_ip, PROXY headers only from haproxy (127.0.0.1).
DaemonOptions backend(std::vector<std::string> extra = {}) {
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0",
                            "exec = " + helper("remote_ip"),
                            "proxy-protocol = yes",
                            "proxy-from = 127.0.0.1/32",
                            "agent-listen = 127.0.0.1:0",
                            "agent-drain-delay = 2"};
    options.config_lines.insert(options.config_lines.end(), extra.begin(), extra.end());
    return options;
}

std::string haproxy_config(std::uint16_t front, const Daemon& one, const Daemon& two,
                           bool version1 = false) {
    std::string text = haproxy_config_from_example({
        {"FRONTEND_ADDRESS", "127.0.0.1:" + std::to_string(front)},
        {"CHECK_INTERVAL", "500ms"},
        {"AGENT_INTERVAL", "200ms"},
        {"FORKD1_ADDRESS", "127.0.0.1:" + std::to_string(one.port())},
        {"FORKD1_AGENT_PORT", std::to_string(one.logged_port("agent-listening"))},
        {"FORKD2_ADDRESS", "127.0.0.1:" + std::to_string(two.port())},
        {"FORKD2_AGENT_PORT", std::to_string(two.logged_port("agent-listening"))},
        {"HAPROXY_ADDRESS", "127.0.0.1"},
    });
    if (version1)
        for (std::size_t at; (at = text.find("send-proxy-v2")) != std::string::npos;)
            text.replace(at, 13, "send-proxy");
    return text;
}

// One connection through haproxy from SOURCE: the remote_ip handler's answer, "" on failure.
std::string through(std::uint16_t front, const std::string& source, const std::string& line) {
    // No source: an unbound client (bind-before-connect reuses ports still in TIME_WAIT).
    UniqueFd client = source.empty() ? connect_tcp(front) : connect_tcp_from(front, "127.0.0.1", source);
    if (!client || !send_all(client.get(), line + "\n")) return "";
    const std::string answer = read_until_eof(client.get(), 10s);
    return answer.find("line " + line + "\n") == std::string::npos ? "" : answer;
}

std::string field(const std::string& answer, const std::string& key) {
    std::istringstream in(answer);
    for (std::string l; std::getline(in, l);)
        if (l.starts_with(key + " ")) return l.substr(key.size() + 1);
    return "";
}

TEST(Haproxy, TheManPagesExampleIsTheOneTested) {
    const std::string example = source_file("examples/haproxy.cfg");
    ASSERT_FALSE(example.empty());
    for (const char* page : {"man/forkd.conf.5", "man/forkd.8"}) {
        const std::string man = source_file(page);
        std::istringstream lines(example);
        for (std::string line; std::getline(lines, line);)
            EXPECT_NE(man.find(line + "\n"), std::string::npos) << page << " lacks: " << line;
    }
}

TEST(Haproxy, SendProxyAndV2GiveTheClientsAddressAndPerSourceLimitsUseIt) {
    if (!Haproxy::available()) GTEST_SKIP() << "haproxy is not installed";
    for (bool version1 : {false, true}) {
        // Both servers of the example are the same forkd here.
        Daemon daemon(backend({"max-per-source = 1"}));
        const std::uint16_t front = free_tcp_port();
        Haproxy haproxy(haproxy_config(front, daemon, daemon, version1));
        ASSERT_TRUE(haproxy.ready()) << haproxy.log();
        ASSERT_TRUE(eventually([&] { return haproxy.server_status("forkd1") == "UP"; }, 10s))
            << haproxy.server_status("forkd1") << haproxy.log();

        const std::string two = through(front, "127.0.0.2", "from two");
        EXPECT_EQ(field(two, "remote").substr(0, 10), "127.0.0.2 ") << two;
        EXPECT_EQ(field(two, "proxy").substr(0, 10), "127.0.0.1 ") << "haproxy's address: " << two;
        const std::string three = through(front, "127.0.0.3", "from three");
        EXPECT_EQ(field(three, "remote").substr(0, 10), "127.0.0.3 ") << three;

        // max-per-source counts the header's address: 127.0.0.3 holds its one connection (the
        // handler waits for its line), a second from it is refused, 127.0.0.2 is still served.
        // (allow/deny rules come with the admission branch; they read the same peer.)
        UniqueFd holder = connect_tcp_from(front, "127.0.0.1", "127.0.0.3");
        ASSERT_TRUE(holder);
        ASSERT_TRUE(eventually([&] { return status_of(daemon)["active"] == 1; }, 5s));
        // The agent now says less than 100% ("up ready 99%", 1 of 256 in use): the example's weight keeps that
        // a positive weight (HAProxy's default weight 1 would round it down to 0, i.e. no traffic).
        EXPECT_TRUE(eventually([&] { return haproxy.server_field("forkd1", "weight") == "99"; }, 5s))
            << haproxy.command("show stat");
        EXPECT_EQ(haproxy.server_status("forkd1"), "UP");
        EXPECT_EQ(through(front, "127.0.0.3", "again"), "") << "refused per source";
        EXPECT_TRUE(daemon.wait_log("reason=per_source"));
        EXPECT_NE(through(front, "127.0.0.2", "still"), "");
    }
}

// Clients looping through haproxy; which forkd served each (its port) and every failure.
class Load {
public:
    Load(std::uint16_t front, int clients) {
        for (int i = 0; i < clients; ++i)
            threads_.emplace_back([this, front, i] {
                for (int n = 0; !stop_; ++n) {
                    const std::string answer = through(front, "", "c" + std::to_string(i) + "-" + std::to_string(n));
                    std::unique_lock lock(mutex_);
                    if (answer.empty() && !failed_++) first_failure_ = served_.size();
                    else {
                        const std::string local = field(answer, "local");  // "127.0.0.1 PORT"
                        served_.push_back(local.substr(local.find(' ') + 1));
                    }
                    lock.unlock();
                    // A steady load, not a flood: a few hundred connections a second in all.
                    std::this_thread::sleep_for(10ms);
                }
            });
    }
    ~Load() { finish(); }
    void finish() {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    std::size_t mark() {
        std::lock_guard lock(mutex_);
        return served_.size();
    }
    // Connections served by the forkd on PORT since mark `from`.
    std::size_t served_by(std::uint16_t port, std::size_t from) {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (std::size_t i = from; i < served_.size(); ++i) n += served_[i] == std::to_string(port);
        return n;
    }
    std::size_t failed() {
        std::lock_guard lock(mutex_);
        return failed_;
    }
    // How many had been served when the first failure happened.
    std::size_t first_failure() {
        std::lock_guard lock(mutex_);
        return first_failure_;
    }

private:
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<std::string> served_;  // the serving forkd's port, in order
    std::size_t failed_ = 0, first_failure_ = 0;
    std::vector<std::thread> threads_;
};

// The load keeps forkd2 below 100% ("up ready 99%"): with HAProxy's default weight 1 that was
// weight 0, so once forkd1 was drained haproxy had no server at all (<NOSRV>, SC) at every such
// agent reply; the example's "weight 100" keeps forkd2 in rotation.
TEST(Haproxy, DrainMovesTheTrafficWithNoFailedConnectionAndStopShowsDown) {
    if (!Haproxy::available()) GTEST_SKIP() << "haproxy is not installed";
    Daemon one(backend()), two(backend());
    const std::uint16_t front = free_tcp_port();
    Haproxy haproxy(haproxy_config(front, one, two));
    ASSERT_TRUE(haproxy.ready()) << haproxy.log();
    ASSERT_TRUE(eventually([&] {
        return haproxy.server_status("forkd1") == "UP" && haproxy.server_status("forkd2") == "UP";
    }, 10s)) << haproxy.command("show stat");

    Load load(front, 4);
    ASSERT_TRUE(eventually([&] { return load.served_by(one.port(), 0) > 5 && load.served_by(two.port(), 0) > 5; }, 10s));

    const std::size_t failed_before_drain = load.failed();
    ASSERT_EQ(forkctl(one, {"drain"}).exit_code, 0);
    // HAProxy learns it at its next agent check (agent-inter 200ms), well within the 2 s that
    // forkd keeps accepting (agent-drain-delay): nothing it sends meanwhile is stranded.
    ASSERT_TRUE(eventually([&] { return haproxy.server_status("forkd1").starts_with("DRAIN"); }, 3s))
        << haproxy.server_status("forkd1");
    // A connection already handed to forkd1 before haproxy saw the drain is still served.
    std::this_thread::sleep_for(300ms);  // let those in flight finish before counting afresh
    const std::size_t after_drain = load.mark();
    ASSERT_TRUE(eventually([&] { return load.served_by(two.port(), after_drain) > 20; }, 10s));
    EXPECT_EQ(load.served_by(one.port(), after_drain), 0u) << "all new connections go to forkd2";
    EXPECT_TRUE(eventually([&] { return status_of(one)["accepting"] == false; }, 5s)) << "the delay ends";
    EXPECT_TRUE(eventually([&] { return status_of(one)["active"] == 0; }, 5s)) << "its connections finished";

    const std::size_t failed_before_resume = load.failed();
    ASSERT_EQ(forkctl(one, {"resume"}).exit_code, 0);
    const std::size_t after_resume = load.mark();
    EXPECT_TRUE(eventually([&] { return load.served_by(one.port(), after_resume) > 5; }, 10s))
        << "back in rotation";
    load.finish();
    EXPECT_EQ(load.failed(), 0u) << "no client connection failed; the first after " << load.first_failure()
                                  << " of " << load.mark() << " served; failed before drain " << failed_before_drain
                                  << ", before resume " << failed_before_resume << "; forkd1 " << status_of(one).dump()
                                  << "\nforkd1 log: " << one.log_lines("refused").size() << " refusals, "
                                  << (one.log_lines("refused").empty() ? "" : one.log_lines("refused")[0]);
    EXPECT_EQ(status_of(one)["totals"]["failed"], 0);
    EXPECT_EQ(status_of(two)["totals"]["failed"], 0);

    two.signal(SIGTERM);
    ASSERT_TRUE(two.wait_exit(10s));
    EXPECT_TRUE(eventually([&] { return haproxy.server_status("forkd2").starts_with("DOWN"); }, 10s))
        << haproxy.server_status("forkd2");
    EXPECT_EQ(haproxy.server_status("forkd1"), "UP");
}

} // namespace
