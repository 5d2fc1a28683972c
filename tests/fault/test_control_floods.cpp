// SPDX-License-Identifier: MIT
// Floods on the control socket while clients are served: many idle connections, garbage,
// oversized and deeply nested requests, thousands of requests in a row. Every bad request gets
// an error, the service never falters, and afterwards the master holds the descriptors it held
// before and its RSS grew by at most a few MB (read from /proc).
#include "fault_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

using namespace forkd::fault;
using forkd::UniqueFd;

namespace {

const std::string kStatusRequest = "{\"version\":1,\"command\":\"status\"}\n";
constexpr std::size_t kRssGrowthLimitKb = 8 * 1024;

bool is_error_reply(const std::string& reply) {
    return reply.find("\"ok\":false") != std::string::npos;
}

// A request written by its own thread while the reply is read: forkd answers a request that is
// too large without reading the rest, and a single-threaded writer would never see the reply.
std::string oversized_request(const Daemon& d, const std::string& bytes) {
    UniqueFd fd = connect_unix(d.control_socket());
    if (!fd.valid()) return "";
    std::thread writer([&] { send_all(fd.get(), bytes); });
    std::string reply = read_until_eof(fd.get(), 5s);
    writer.join();
    return reply;
}

// Runs `flood` against a daemon serving an echo load; then checks the load never failed, the
// master's descriptors came back and its RSS stayed bounded.
template <class Flood>
void expect_flood_leaves_no_trace(Flood flood) {
    Daemon d;
    NotifyReader notify(d);
    for (int i = 0; i < 20; ++i) control_request(d, kStatusRequest);  // whatever is made lazily
    const auto before = footprint(d.pid());
    {
        EchoLoad load(d.port(), 2, 5s);
        flood(d);
        EXPECT_TRUE(load.progresses(20)) << "the service stalled during the flood\n" << d.log();
        load.stop();
        EXPECT_EQ(load.failed(), 0) << "clients failed during the control flood";
    }
    expect_fds_back(d.pid(), before.fds, "master");
    expect_rss_bounded(before, footprint(d.pid()), kRssGrowthLimitKb, "master");
    EXPECT_NE(control_request(d, kStatusRequest).find("\"ok\":true"), std::string::npos);
    EXPECT_TRUE(d.running());
}

} // namespace

// 200 connections that never send: beyond the 32 at once forkd turns them away at once, the
// rest time out after 5 s; a prompt client is served again afterwards.
TEST(FaultControl, ManyIdleConnectionsAreTurnedAwayOrTimedOut) {
    expect_flood_leaves_no_trace([](Daemon& d) {
        std::vector<UniqueFd> idle;
        for (int i = 0; i < 200; ++i) {
            idle.push_back(connect_unix(d.control_socket()));
            ASSERT_TRUE(idle.back().valid()) << "connection " << i;
        }
        for (auto& fd : idle) EXPECT_TRUE(wait_closed(fd.get(), 10s)) << "an idle client was kept";
        EXPECT_TRUE(eventually([&] {
            return control_request(d, kStatusRequest).find("\"ok\":true") != std::string::npos;
        }));
    });
}

// Garbage of every shape: random bytes, truncated JSON, wrong types, lines of 1 MB, and nesting
// far deeper than the 16 levels allowed (arrays and objects, just under the size limit).
TEST(FaultControl, GarbageOversizedAndDeeplyNestedRequestsGetErrors) {
    expect_flood_leaves_no_trace([](Daemon& d) {
        std::mt19937 rng(12);
        std::uniform_int_distribution<int> byte(0, 255), length(1, 2000);
        for (int i = 0; i < 500; ++i) {
            std::string junk(static_cast<std::size_t>(length(rng)), '\0');
            for (auto& c : junk) c = static_cast<char>(byte(rng));
            std::replace(junk.begin(), junk.end(), '\n', ' ');
            const auto reply = control_request(d, junk + "\n");
            ASSERT_TRUE(is_error_reply(reply)) << "garbage " << i << " got: " << reply.substr(0, 200);
        }
        for (const char* bad : {"{\"version\":1", "{\"version\":\"1\",\"command\":\"status\"}",
                                "{\"version\":1,\"command\":[]}", "[1,2,3]", "null", "\"\""}) {
            EXPECT_TRUE(is_error_reply(control_request(d, std::string(bad) + "\n"))) << bad;
        }
        for (int i = 0; i < 20; ++i) {
            const auto reply = oversized_request(d, std::string(1 << 20, 'x'));
            ASSERT_NE(reply.find("too large"), std::string::npos) << reply.substr(0, 200);
        }
        const std::string arrays = std::string(30000, '[') + std::string(30000, ']');
        std::string objects = "{\"version\":1,\"command\":\"status\",\"args\":";
        for (int i = 0; i < 5000; ++i) objects += "{\"a\":";
        objects += "1" + std::string(5001, '}');
        for (int i = 0; i < 20; ++i) {
            EXPECT_TRUE(is_error_reply(control_request(d, arrays + "\n")));
            EXPECT_TRUE(is_error_reply(control_request(d, objects + "\n")));
        }
    });
}

// 3000 status and list requests in a row, as fast as the socket takes them.
TEST(FaultControl, ThousandsOfRequestsInARow) {
    expect_flood_leaves_no_trace([](Daemon& d) {
        const std::string list = "{\"version\":1,\"command\":\"list\"}\n";
        for (int i = 0; i < 3000; ++i) {
            const auto reply = control_request(d, i % 2 ? kStatusRequest : list);
            ASSERT_NE(reply.find("\"ok\":true"), std::string::npos) << "request " << i << ": " << reply;
        }
    });
}
