// SPDX-License-Identifier: MIT
// Live upgrade (forkctl upgrade, SIGUSR2): forkd is started from a copy of its binary in a temp
// dir, the copy is swapped for another file, and the master re-executes it in place: same pid,
// every connection carried over and counted exactly, timeouts kept. A refused upgrade changes
// nothing; a SIGKILLed master leaves no handler behind.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <set>
#include <thread>

using namespace forkd::test;
using forkd::UniqueFd;
namespace fs = std::filesystem;

namespace {

const std::string echo_program = std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop";

// forkd and forkd-spawner copied into a directory of their own, as a package would install them.
class BinaryCopy {
public:
    BinaryCopy() {
        const fs::path build = fs::path(FORKD_BINARY).parent_path();
        fs::copy_file(FORKD_BINARY, forkd());
        fs::copy_file(build / "forkd-spawner", dir_.file("forkd-spawner"));
        fs::copy_file(build / "forkd-worker", dir_.file("forkd-worker"));
    }
    std::string forkd() const { return dir_.file("forkd"); }
    // What a package update does: a new file renamed over the old name (the running image keeps
    // its deleted inode).
    void swap_in(const std::string& content_from = FORKD_BINARY) const {
        const std::string next = dir_.file("forkd.new");
        fs::copy_file(content_from, next, fs::copy_options::overwrite_existing);
        fs::rename(next, forkd());
    }
    void replace_with_text(const std::string& text) const {
        const std::string next = dir_.file("forkd.new");
        write_file(next, text);
        ::chmod(next.c_str(), 0755);
        fs::rename(next, forkd());
    }
    // A "new binary" whose check waits for the test: it writes its pid to check-started, then
    // waits (at most 10 s) for the file go before it runs the real check; started normally, it is
    // the real forkd at once.
    void swap_in_slow_check() const {
        replace_with_text("#!/bin/sh\nif [ \"$1\" = --upgrade-check ]; then\n  echo $$ > " + dir_.file("check-started") +
                          "\n  i=0\n  while [ ! -e " + dir_.file("go") + " ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n"
                          "fi\nexec " + std::string(FORKD_BINARY) + " \"$@\"\n");
    }
    std::optional<pid_t> check_started() const {
        const std::string text = read_file(dir_.file("check-started"));
        if (text.empty() || text.back() != '\n') return std::nullopt;
        return pid_t(std::stol(text));
    }
    void let_check_go() const { write_file(dir_.file("go"), ""); }
    // Runs the copy instead of FORKD_BINARY (argv[0] is the copy's absolute path).
    std::vector<std::string> launch_prefix() const {
        return {"/bin/sh", "-c", "shift; exec " + forkd() + " \"$@\"", "sh"};
    }

private:
    TempDir dir_;
};

DaemonOptions options_for(const BinaryCopy& copy, std::vector<std::string> lines) {
    DaemonOptions o;
    o.config_lines = std::move(lines);  // the tests' own listen line, not the default's beside it
    o.launch_prefix = copy.launch_prefix();
    return o;
}

nlohmann::json status_of(const Daemon& d) {
    auto s = status_json(d);
    EXPECT_TRUE(s) << (s ? "" : s.error().message());
    return s ? *s : nlohmann::json::object();
}

std::uint64_t total(const nlohmann::json& status, const char* key) {
    return status["totals"][key].get<std::uint64_t>();
}

std::vector<UniqueFd> open_served(const Daemon& d, std::size_t n, const std::string& tag) {
    std::vector<UniqueFd> clients;
    for (std::size_t i = 0; i < n; ++i) {
        UniqueFd fd = served_client(d, tag + std::to_string(i) + "\n");
        if (!fd) {
            ADD_FAILURE() << "client " << i << " not served; the log:\n" << d.log();
            break;
        }
        clients.push_back(std::move(fd));
    }
    return clients;
}

bool all_echo(const std::vector<UniqueFd>& clients, const std::string& payload) {
    for (const auto& c : clients)
        if (!echo_roundtrip(c.get(), payload)) return false;
    return true;
}

bool upgraded(const Daemon& d, std::uint32_t generation) {
    return eventually([&] {
        auto s = status_json(d);
        return s && (*s)["generation"] == generation;
    });
}

} // namespace

// The scenario: 50 exec'd and 50 built-in connections (a reload switches the handler in
// between, so both kinds are live at once) survive an upgrade to a swapped binary.
TEST(LiveUpgrade, CarriesExecAndBuiltInConnectionsOver) {
    BinaryCopy copy;
    const auto port = free_tcp_port();
    const std::string listen = "listen = 127.0.0.1:" + std::to_string(port);
    Daemon d(options_for(copy, {listen, "handler = exec", "exec = " + echo_program, "max-connections = 300"}));
    auto exec_clients = open_served(d, 50, "exec");
    d.rewrite_config({listen, "handler = echo", "max-connections = 300"});
    ASSERT_TRUE(d.wait_log("event=reload result=ok"));
    auto builtin_clients = open_served(d, 50, "builtin");
    ASSERT_TRUE(eventually([&] { return status_of(d)["active"] == 100; }));
    std::set<int> exec_pids;  // every handler's, exec'd and built-in
    for (const auto& row : nlohmann::json::parse(forkctl(d, {"--json", "list"}).out))
        exec_pids.insert(row["pid"].is_number() ? row["pid"].get<int>() : 0);
    ASSERT_EQ(exec_pids.size(), 100u);

    copy.swap_in();
    const auto result = forkctl(d, {"upgrade"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.out.find("upgraded in place"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("100 connections carried over"), std::string::npos) << result.out;

    const auto after = status_of(d);
    EXPECT_EQ(after["pid"], d.pid());
    EXPECT_EQ(after["generation"], 1);
    EXPECT_EQ(after["active"], 100);
    EXPECT_EQ(total(after, "accepted"), 100u);
    EXPECT_EQ(total(after, "completed"), 0u);
    EXPECT_EQ(total(after, "failed"), 0u);
    EXPECT_TRUE(all_echo(exec_clients, "after\n"));
    EXPECT_TRUE(all_echo(builtin_clients, "after\n"));
    EXPECT_TRUE(d.wait_log("event=upgraded"));
    EXPECT_NE(d.log().find("connections=100"), std::string::npos);

    // list: the same connections with the same pids, each a live process.
    const auto listed = nlohmann::json::parse(forkctl(d, {"--json", "list"}).out);
    ASSERT_EQ(listed.size(), 100u);
    std::set<int> listed_pids;
    for (const auto& row : listed) {
        const int pid = row["pid"].get<int>();
        listed_pids.insert(pid);
        EXPECT_EQ(::kill(pid, 0), 0) << "pid " << pid << " listed but not alive";
    }
    EXPECT_EQ(listed_pids, exec_pids);

    // New connections are served, by the new image.
    UniqueFd fresh = served_client(d, "fresh\n");
    EXPECT_TRUE(fresh);

    // Every held connection ends counted completed, the exec'd ones reaped by the new image.
    exec_clients.clear();
    builtin_clients.clear();
    fresh.reset();
    ASSERT_TRUE(eventually([&] { return status_of(d)["active"] == 0; }));
    const auto end = status_of(d);
    EXPECT_EQ(total(end, "accepted"), 101u);
    EXPECT_EQ(total(end, "completed"), 101u);
    EXPECT_EQ(total(end, "failed"), 0u);
    EXPECT_TRUE(d.zombies().empty());
}

// Readiness around it, runtime set values, draining, and a second upgrade by SIGUSR2.
TEST(LiveUpgrade, KeepsSettingsStateAndNotifiesAroundIt) {
    BinaryCopy copy;
    Daemon d(options_for(copy, {"listen = 127.0.0.1:0", "max-connections = 50"}));
    ASSERT_EQ(forkctl(d, {"set", "max-connections", "7"}).exit_code, 0);
    ASSERT_EQ(forkctl(d, {"drain"}).exit_code, 0);
    ASSERT_EQ(forkctl(d, {"upgrade"}).exit_code, 0);
    auto s = status_of(d);
    EXPECT_EQ(s["limits"]["max_connections"], 7);
    EXPECT_EQ(s["state"], "draining");
    EXPECT_TRUE(d.wait_notification("RELOADING=1"));
    EXPECT_GE(d.count_notifications("READY=1"), 2u);
    ASSERT_EQ(forkctl(d, {"resume"}).exit_code, 0);
    EXPECT_TRUE(served_client(d, "hi\n"));

    copy.swap_in();
    d.signal(SIGUSR2);
    ASSERT_TRUE(upgraded(d, 2));
    EXPECT_EQ(status_of(d)["pid"], d.pid());
    EXPECT_TRUE(served_client(d, "again\n"));
    EXPECT_TRUE(d.wait_log("event=upgraded"));
    EXPECT_EQ(d.count_log("event=upgraded"), 2u);
}

// A connection-timeout armed before the upgrade fires when it was due, not later.
TEST(LiveUpgrade, ArmedConnectionTimeoutFiresOnTime) {
    BinaryCopy copy;
    Daemon d(options_for(copy, {"listen = 127.0.0.1:0", "handler = exec", "exec = " + echo_program,
                                "connection-timeout = 3"}));
    const auto opened = std::chrono::steady_clock::now();
    UniqueFd client = served_client(d, "x\n");
    ASSERT_TRUE(client);
    std::this_thread::sleep_for(1s);  // the timer runs down a third of its time in the old image
    copy.swap_in();
    ASSERT_EQ(forkctl(d, {"upgrade"}).exit_code, 0);
    ASSERT_TRUE(wait_closed(client.get(), 6s));
    const auto lived = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - opened);
    EXPECT_GE(lived.count(), 2800);
    EXPECT_LE(lived.count(), 4500);  // a timer restarted from scratch would make it 4 s or more after 1 s
    ASSERT_TRUE(eventually([&] { return total(status_of(d), "killed") + total(status_of(d), "completed") == 1; }));
    EXPECT_TRUE(d.wait_log("ended_by=timeout"));
}

std::set<pid_t> worker_set(const nlohmann::json& status) {
    std::set<pid_t> pids;
    for (const auto& w : status["workers"]) pids.insert(pid_t(w["pid"].get<long>()));
    return pids;
}

// Event mode: the old image's forkd-workers pass to the new one through their sockets and the
// state record, retire (accept nothing, finish their connections, then go), and new workers
// from the new binary take over accepting. Every count stays exact.
TEST(LiveUpgrade, CarriesEventModeWorkersOver) {
    BinaryCopy copy;
    const auto port = free_tcp_port();
    Daemon d(options_for(copy, {"listen = 127.0.0.1:" + std::to_string(port), "mode = event", "workers = 2",
                                "handler = echo", "max-connections = 100"}));
    ASSERT_TRUE(eventually([&] { return worker_set(status_of(d)).size() == 2; }));
    const std::set<pid_t> old_workers = worker_set(status_of(d));
    auto held = open_served(d, 20, "held");
    ASSERT_EQ(held.size(), 20u);
    ASSERT_TRUE(eventually([&] { return status_of(d)["active"] == 20; }));

    copy.swap_in();
    const auto result = forkctl(d, {"upgrade"});
    ASSERT_EQ(result.exit_code, 0) << result.err << d.log();
    EXPECT_NE(result.out.find("20 connections carried over"), std::string::npos) << result.out;
    ASSERT_TRUE(upgraded(d, 1)) << d.log();
    ASSERT_TRUE(d.wait_log("event=upgraded"));

    // Two new workers beside the two retiring ones, which still serve the held connections.
    std::set<pid_t> new_workers;
    ASSERT_TRUE(eventually([&] {
        new_workers.clear();
        for (pid_t pid : worker_set(status_of(d)))
            if (!old_workers.count(pid)) new_workers.insert(pid);
        return new_workers.size() == 2;
    })) << d.log();
    auto after = status_of(d);
    EXPECT_EQ(after["pid"], d.pid());
    EXPECT_EQ(after["active"], 20);
    EXPECT_EQ(total(after, "accepted"), 20u);
    EXPECT_TRUE(all_echo(held, "after\n"));
    for (const auto& row : nlohmann::json::parse(forkctl(d, {"--json", "list"}).out))
        EXPECT_TRUE(old_workers.count(pid_t(row["pid"].get<long>()))) << row.dump();

    // New connections go to the new workers only.
    auto fresh = open_served(d, 6, "fresh");
    ASSERT_EQ(fresh.size(), 6u);
    ASSERT_TRUE(eventually([&] { return status_of(d)["active"] == 26; }));
    std::uint64_t accepted_by_new = 0;
    const auto with_fresh = status_of(d);
    for (const auto& w : with_fresh["workers"])
        if (new_workers.count(pid_t(w["pid"].get<long>()))) accepted_by_new += w["accepted"].get<std::uint64_t>();
    EXPECT_EQ(accepted_by_new, 6u) << with_fresh["workers"].dump();
    for (const auto& row : nlohmann::json::parse(forkctl(d, {"--json", "list"}).out)) {
        const pid_t pid = pid_t(row["pid"].get<long>());
        EXPECT_TRUE(old_workers.count(pid) || new_workers.count(pid)) << row.dump();
    }

    // The old workers go once their connections are over; the new ones stay.
    held.clear();
    EXPECT_TRUE(eventually([&] { return worker_set(status_of(d)) == new_workers; })) << d.log();
    EXPECT_TRUE(eventually([&] {
        for (pid_t pid : old_workers)
            if (::kill(pid, 0) == 0) return false;
        return true;
    }));
    EXPECT_TRUE(all_echo(fresh, "still\n"));
    fresh.clear();
    ASSERT_TRUE(eventually([&] { return status_of(d)["active"] == 0; }));
    after = status_of(d);
    EXPECT_EQ(total(after, "accepted"), 26u);
    EXPECT_EQ(total(after, "completed"), 26u);
    EXPECT_EQ(total(after, "failed"), 0u);
    EXPECT_EQ(d.count_log("event=worker-exited"), 0u) << d.log();
}

// forkctl upgrade to a binary whose check waits for let_check_go(), once that check runs.
std::future<CommandResult> upgrade_with_slow_check(const BinaryCopy& copy, const Daemon& d) {
    copy.swap_in_slow_check();
    auto upgrading = std::async(std::launch::async, [&d] { return forkctl(d, {"upgrade"}); });
    (void)eventually([&] { return bool(copy.check_started()); });
    return upgrading;
}

// The new binary's check runs beside the master's loop: while it is slow, status answers, clients
// are served and a second upgrade is refused; the upgrade's reply waits for the check's end.
TEST(LiveUpgrade, ASlowCheckDoesNotStopTheLoop) {
    BinaryCopy copy;
    Daemon d(options_for(copy, {"listen = 127.0.0.1:0"}));
    auto upgrading = upgrade_with_slow_check(copy, d);
    ASSERT_TRUE(copy.check_started()) << d.log();

    const auto started = std::chrono::steady_clock::now();
    const auto status = forkctl(d, {"status"});
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_TRUE(served_client(d, "during the check\n"));
    const auto second = forkctl(d, {"upgrade"});
    EXPECT_EQ(second.exit_code, 1);
    EXPECT_NE(second.err.find("an upgrade is already under way"), std::string::npos) << second.err;
    EXPECT_EQ(upgrading.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
        << "the reply waits for the check";
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));  // not the check's 10 s

    copy.let_check_go();
    const auto result = upgrading.get();
    ASSERT_EQ(result.exit_code, 0) << result.err << d.log();
    EXPECT_EQ(status_of(d)["generation"], 1);
    EXPECT_EQ(status_of(d)["pid"], d.pid());
    EXPECT_TRUE(served_client(d, "after\n"));
}

// A stop while the check runs cancels it: the check is killed and reaped, the upgrade's request
// is answered with the reason, and the daemon stops as usual.
TEST(LiveUpgrade, AStopCancelsTheCheck) {
    BinaryCopy copy;
    Daemon d(options_for(copy, {"listen = 127.0.0.1:0"}));
    auto upgrading = upgrade_with_slow_check(copy, d);
    ASSERT_TRUE(copy.check_started()) << d.log();
    const pid_t check = *copy.check_started();
    d.signal(SIGTERM);
    const auto result = upgrading.get();
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("upgrade cancelled: forkd is stopping"), std::string::npos) << result.err;
    ASSERT_TRUE(d.wait_exit());
    EXPECT_NE(::kill(check, 0), 0) << "the check outlived the stop";
    EXPECT_NE(d.log().find("event=upgrade result=cancelled"), std::string::npos) << d.log();
}

// Each refusal names its reason, exits 1, and leaves pid, generation and connections as they were.
TEST(LiveUpgrade, RefusedUpgradesChangeNothing) {
    BinaryCopy copy;
    const auto port = free_tcp_port();
    const std::string listen = "listen = 127.0.0.1:" + std::to_string(port);
    Daemon d(options_for(copy, {listen, "handler = exec", "exec = " + echo_program}));
    UniqueFd held = served_client(d, "held\n");
    ASSERT_TRUE(held);
    auto expect_refused = [&](const std::string& why, const std::string& needle) {
        const auto r = forkctl(d, {"upgrade"});
        EXPECT_EQ(r.exit_code, 1) << why << ": " << r.out;
        EXPECT_NE(r.err.find(needle), std::string::npos) << why << ": " << r.err;
        const auto s = status_of(d);
        EXPECT_EQ(s["pid"], d.pid()) << why;
        EXPECT_EQ(s["generation"], 0) << why;
        EXPECT_EQ(s["active"], 1) << why;
        EXPECT_TRUE(echo_roundtrip(held.get(), "still\n")) << why;
    };

    fs::remove(copy.forkd());
    expect_refused("binary removed", "No such file or directory");
    copy.replace_with_text("this is not a program\n");
    expect_refused("corrupt binary", "Exec format error");
    copy.replace_with_text("#!/bin/sh\nexit 0\n");
    expect_refused("a binary that says nothing", "no version");
    copy.swap_in();
    write_file(d.config_path(), d.harness_config_lines() + listen + "\nno-such-option = 1\n");
    expect_refused("config rejected by the new image", "no-such-option");
    EXPECT_GE(d.count_log("event=upgrade result=refused"), 4u);

    // With all put right, the same daemon upgrades.
    write_file(d.config_path(), d.harness_config_lines() + listen + "\nhandler = exec\nexec = " + echo_program + "\n");
    ASSERT_EQ(forkctl(d, {"upgrade"}).exit_code, 0);
    EXPECT_TRUE(echo_roundtrip(held.get(), "upgraded\n"));
}

// A state record the new image cannot read is a logged restart in place, never a silent one.
TEST(LiveUpgrade, UnreadableStateRecordRestartsLoudly) {
    DaemonOptions o = config({"listen = 127.0.0.1:0"});
    o.env["FORKD_UPGRADE_STATE"] = "63";  // no such descriptor
    Daemon d(o);
    EXPECT_TRUE(d.wait_log("event=upgrade-state-rejected"));
    EXPECT_TRUE(d.wait_log("action=restart"));
    EXPECT_TRUE(served_client(d, "fresh start\n"));
    EXPECT_EQ(status_of(d)["generation"], 0);
}

// SIGKILL of the master while it re-executes itself: every handler dies with it, as always.
TEST(LiveUpgrade, MasterKilledMidUpgradeLeavesNoHandler) {
    BinaryCopy copy;
    Daemon d(options_for(copy, {"listen = 127.0.0.1:0", "handler = exec", "exec = " + echo_program}));
    auto clients = open_served(d, 5, "k");
    std::vector<pid_t> handlers = d.children();
    ASSERT_EQ(handlers.size(), 5u);
    const pid_t spawner = d.spawner_pid();
    copy.swap_in();
    d.signal(SIGUSR2);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    d.signal(SIGKILL);
    ASSERT_TRUE(d.wait_exit());
    handlers.push_back(spawner);
    EXPECT_TRUE(eventually([&] {
        for (pid_t pid : handlers)
            if (::kill(pid, 0) == 0 && read_file("/proc/" + std::to_string(pid) + "/stat").find(") Z") == std::string::npos)
                return false;
        return true;
    }, 2s));
}
