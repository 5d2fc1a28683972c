// SPDX-License-Identifier: MIT
// Debian's Prometheus server scrapes forkd's metrics-listen endpoint for real: a generated
// config (1 s scrape interval) on loopback, a temp storage dir, and forkd_connections_active read
// back through Prometheus's HTTP query API. The server is stopped by its pid.
#include "harness.hpp"
#include "harness/child_process.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <regex>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

constexpr const char* prometheus_binary = "/usr/bin/prometheus";

std::string http_get(std::uint16_t port, const std::string& target) {
    UniqueFd fd = connect_tcp(port);
    if (!fd.valid()) return "";
    if (!send_all(fd.get(), "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) return "";
    return read_until_eof(fd.get(), 5s);
}

// Stops the server by pid on every way out of the test.
struct Server {
    pid_t pid = -1;
    ~Server() {
        if (pid <= 0) return;
        ::kill(pid, SIGTERM);
        if (!reap_within(pid, 10s)) {
            ::kill(pid, SIGKILL);
            (void)reap_within(pid, 5s);
        }
    }
};

} // namespace

TEST(MetricsPrometheus, TheServerScrapesAndQueriesForkdConnectionsActive) {
    struct stat st {};
    if (::stat(prometheus_binary, &st) != 0) GTEST_SKIP() << "prometheus is not installed";
    Daemon d(config({"listen = 127.0.0.1:0", "metrics-listen = 127.0.0.1:0"}));
    const std::uint16_t target = d.logged_port("metrics-listening");
    ASSERT_NE(target, 0);
    UniqueFd a = served_client(d, "a\n"), b = served_client(d, "b\n"), c = served_client(d, "c\n");
    ASSERT_TRUE(a.valid() && b.valid() && c.valid());

    // Prometheus cannot bind port 0: a port that was free a moment ago.
    const std::uint16_t web = free_tcp_port();
    const TempDir& dir = d.dir();
    write_file(dir.file("prometheus.yml"),
               "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
               "scrape_configs:\n  - job_name: forkd\n    static_configs:\n"
               "      - targets: ['127.0.0.1:" + std::to_string(target) + "']\n");
    UniqueFd out = open_output(dir.file("prometheus.log"));
    Server server;
    server.pid = spawn(ExecPlan({prometheus_binary, "--config.file=" + dir.file("prometheus.yml"),
                                 "--storage.tsdb.path=" + dir.file("tsdb"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(web)},
                                build_env({})),
                       ChildIo{-1, out.get(), out.get()});
    ASSERT_GT(server.pid, 0);

    // Once it has scraped, the query gives the 3 connections held open.
    std::string answer;
    const bool scraped = eventually(
        [&] {
            answer = http_get(web, "/api/v1/query?query=forkd_connections_active");
            return answer.find("\"value\":[") != std::string::npos &&
                   answer.find("\"job\":\"forkd\"") != std::string::npos;
        },
        40s);
    ASSERT_TRUE(scraped) << answer << read_file(dir.file("prometheus.log"));
    std::smatch m;
    ASSERT_TRUE(std::regex_search(answer, m, std::regex(R"re("value":\[[0-9.]+,"([0-9]+)"\])re"))) << answer;
    EXPECT_EQ(m[1], "3") << answer;
    const std::string up = http_get(web, "/api/v1/query?query=up");
    EXPECT_NE(up.find("\"1\"]"), std::string::npos) << up;
}
