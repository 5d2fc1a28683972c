// SPDX-License-Identifier: MIT
// The status and list replies rendered from plain facts: every field of the interface contract,
// nulls where a value is unknown, rows sorted by id.
#include "daemon/master/status_render.hpp"
#include "common/version.hpp"

#include <gtest/gtest.h>

namespace forkd {
namespace {

StatusFacts sample_facts() {
    StatusFacts facts;
    facts.pid = 1234;
    facts.state = "draining";
    facts.accepting = false;
    facts.active = 2;
    facts.uptime_s = 61;
    facts.limits.max_connections = 10;
    facts.limits.max_per_source = 3;
    facts.limits.connection_timeout_s = 30;
    facts.listen = {"127.0.0.1:7000", "unix:/run/x.sock"};
    facts.handler = HandlerKind::echo;
    facts.config_file = "/etc/forkd.conf";
    facts.user = "nobody";
    facts.capacity = 4096;
    facts.totals.started();
    facts.totals.ended(Ending::killed);
    facts.totals.refused(Refusal::limit, 2);
    facts.totals.refused(Refusal::per_source);
    facts.totals.refused(Refusal::fork_failed);
    facts.totals.refused(Refusal::proxy, 4);
    facts.limit_waits = {3, 1500};
    facts.agent = "drain";
    return facts;
}

TEST(StatusRender, StatusHasEveryContractField) {
    const auto status = render_status(sample_facts());
    EXPECT_EQ(status["pid"], 1234);
    EXPECT_EQ(status["version"], forkd_version());
    EXPECT_TRUE(status["instance"].is_null());
    EXPECT_EQ(status["state"], "draining");
    EXPECT_EQ(status["accepting"], false);
    EXPECT_EQ(status["active"], 2);
    EXPECT_EQ(status["uptime_s"], 61);
    EXPECT_EQ(status["limits"]["max_connections"], 10);
    EXPECT_EQ(status["limits"]["max_per_source"], 3);
    EXPECT_EQ(status["limits"]["connection_timeout"], 30);
    EXPECT_EQ(status["limits"]["idle_timeout"], 0);
    EXPECT_TRUE(status["limits"]["overload"].is_string());
    EXPECT_EQ(status["listen"], nlohmann::json({"127.0.0.1:7000", "unix:/run/x.sock"}));
    EXPECT_EQ(status["handler"], "echo");
    EXPECT_EQ(status["config_file"], "/etc/forkd.conf");
    EXPECT_EQ(status["user"], "nobody");
    EXPECT_TRUE(status["group"].is_null());
    EXPECT_TRUE(status["exec"].is_null()) << "a built-in handler has no program";
    EXPECT_EQ(status["capacity"], 4096);
    EXPECT_TRUE(status["spawner_pid"].is_null());
    EXPECT_EQ(status["totals"], nlohmann::json({{"accepted", 2}, {"completed", 0}, {"rejected", 7},
                                                {"killed", 1}, {"failed", 1}}));
    EXPECT_EQ(status["refused"], nlohmann::json({{"limit", 2}, {"per_source", 1}, {"fork_failed", 1},
                                                 {"denied", 0}, {"rate", 0}, {"per_source_rate", 0},
                                                 {"proxy", 4}}));
    EXPECT_EQ(status["limit_waits"], nlohmann::json({{"episodes", 3}, {"waited_ms", 1500}}));
    EXPECT_EQ(status["agent"], "drain") << "what the agent-check responder answers";
    EXPECT_EQ(status["mode"], "fork");
    EXPECT_EQ(status["workers"], nlohmann::json::array());
    EXPECT_EQ(status["generation"], 0);
    EXPECT_FALSE(status.contains("upgrade_error")) << "only after an execve failed";
    EXPECT_EQ(status.size(), 23u);
}

TEST(StatusRender, EventModeShowsEachWorker) {
    StatusFacts facts;
    facts.mode = forkd::ServeMode::event;
    facts.workers = {{101, 3, 40}, {102, 0, 7}};
    const auto status = render_status(facts);
    EXPECT_EQ(status["mode"], "event");
    EXPECT_EQ(status["workers"], nlohmann::json::parse(
                                     R"([{"pid":101,"active":3,"accepted":40},{"pid":102,"active":0,"accepted":7}])"));
}

TEST(StatusRender, GenerationAndAFailedUpgradesReason) {
    StatusFacts facts;
    facts.generation = 2;
    facts.upgrade_error = "execve /usr/sbin/forkd: Exec format error";
    const auto status = render_status(facts);
    EXPECT_EQ(status["generation"], 2);
    EXPECT_EQ(status["upgrade_error"], "execve /usr/sbin/forkd: Exec format error");
}

TEST(StatusRender, InstanceAndSpawnerPidWhenKnownAndAnEmptyListenArray) {
    StatusFacts facts;
    facts.instance = "web";
    facts.spawner_pid = 99;
    const auto status = render_status(facts);
    EXPECT_EQ(status["instance"], "web");
    EXPECT_EQ(status["spawner_pid"], 99);
    EXPECT_EQ(status["state"], "running");
    EXPECT_TRUE(status["listen"].is_array());
    EXPECT_TRUE(status["listen"].empty());
}

SlotView slot(std::uint64_t id, pid_t pid, std::int64_t start_ns) {
    SlotView view;
    view.id = id;
    view.pid = pid;
    view.peer = "127.0.0.1:" + std::to_string(40000 + id);
    view.start_monotonic_ns = start_ns;
    view.state = SlotState::running;
    return view;
}

TEST(StatusRender, ListRowsAreSortedByIdWithAgesAndStates) {
    std::vector<SlotView> slots = {slot(7, 700, 0), slot(3, 0, 5'000'000'000)};
    slots[0].state = SlotState::closing;
    slots[0].bytes_known = true;
    slots[0].bytes_in = 10;
    slots[0].bytes_out = 20;
    const auto rows = render_list(slots, 12'500'000'000);
    ASSERT_EQ(rows.size(), 2u);
    // Not forked yet: no pid, "starting", no byte counts.
    EXPECT_EQ(rows[0], nlohmann::json({{"id", 3}, {"pid", nullptr}, {"peer", "127.0.0.1:40003"},
                                       {"age_s", 7}, {"state", "starting"}}));
    EXPECT_EQ(rows[1], nlohmann::json({{"id", 7}, {"pid", 700}, {"peer", "127.0.0.1:40007"},
                                       {"age_s", 12}, {"state", "closing"},
                                       {"bytes_in", 10}, {"bytes_out", 20}}));
}

TEST(StatusRender, AnEmptyListIsAnArray) {
    const auto rows = render_list({}, 0);
    EXPECT_TRUE(rows.is_array());
    EXPECT_TRUE(rows.empty());
}

} // namespace
} // namespace forkd
