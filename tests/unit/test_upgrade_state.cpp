// SPDX-License-Identifier: MIT
// The live upgrade's state record: round trip, and every way a record can be wrong is refused
// with its reason (wrong magic, version, truncation anywhere, checksum, trailing bytes). And the
// check mode's command line, the memfd carrier and FD_CLOEXEC switching.
#include "daemon/upgrade/state_memfd.hpp"
#include "daemon/upgrade/upgrade_check.hpp"
#include "daemon/upgrade/upgrade_state.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

namespace forkd::upgrade {
namespace {

UpgradeState sample() {
    UpgradeState s;
    s.generation = 3;
    s.from_version = "0.1.0";
    s.binary = "/usr/sbin/forkd";
    s.argv = {"/usr/sbin/forkd", "-f", "-c", "/etc/forkd/forkd.conf"};
    s.started_ns = 123456789012345;
    s.state = 1;
    s.pidfile_fd = 5;
    s.pidfile_path = "/run/forkd/forkd.pid";
    s.scoreboard_fd = 6;
    s.spawner_pid = 4242;
    s.spawner_fd = 7;
    s.spawner_generation = 17;
    s.next_listener_tag = 4;
    s.listeners.push_back({8, 1, "127.0.0.1:0", "127.0.0.1:4000", false, {}});
    s.listeners.push_back({9, 3, "unix:/run/x.sock", "unix:/run/x.sock", true, {true, "/run/x.sock", 2049, 99}});
    s.control_sockets.push_back({10, {true, "/run/forkd/forkd.sock", 1, 2}});
    ConnectionState c;
    c.id = 77;
    c.slot = 12;
    c.pid = 5000;
    c.served_by = 1;
    c.peer = "192.0.2.1:5555";
    c.source = "192.0.2.1";
    c.started_ns = 99;
    c.deadline_ns = -1;  // any bit pattern survives
    c.term_sent = true;
    c.ended_by = 4;
    c.stderr_fd = 11;
    c.tcp_view_fd = 12;
    s.connections = {c, ConnectionState{}};
    s.totals = {{"accepted", 10}, {"completed", 7}, {"a_future_counter", ~0ull}};
    s.settings = {{"max-connections", "12"}, {"busy-message", "go \"away\"\n"}};
    s.workers = {{321, 13, 0, 40, 6}, {322, 14, 1, ~0ull, 1}};
    return s;
}

TEST(UpgradeState, RoundTripsEveryField) {
    const UpgradeState in = sample();
    auto out = decode_state(encode_state(in));
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(out->generation, 3u);
    EXPECT_EQ(out->from_version, "0.1.0");
    EXPECT_EQ(out->argv, in.argv);
    EXPECT_EQ(out->started_ns, in.started_ns);
    EXPECT_EQ(out->state, 1);
    EXPECT_EQ(out->pidfile_path, in.pidfile_path);
    EXPECT_EQ(out->spawner_pid, 4242);
    EXPECT_EQ(out->spawner_generation, 17u);
    ASSERT_EQ(out->listeners.size(), 2u);
    EXPECT_EQ(out->listeners[1].file.path, "/run/x.sock");
    EXPECT_EQ(out->listeners[1].file.ino, 99u);
    EXPECT_TRUE(out->listeners[1].is_unix);
    ASSERT_EQ(out->connections.size(), 2u);
    EXPECT_EQ(out->connections[0].id, 77u);
    EXPECT_EQ(out->connections[0].deadline_ns, -1);
    EXPECT_EQ(out->connections[0].ended_by, 4);
    EXPECT_EQ(out->connections[1].ended_by, -1);
    EXPECT_EQ(out->connections[1].stderr_fd, -1);
    EXPECT_EQ(out->totals, in.totals);
    EXPECT_EQ(out->settings, in.settings);
    ASSERT_EQ(out->workers.size(), 2u);
    EXPECT_EQ(out->workers[0].pid, 321);
    EXPECT_EQ(out->workers[0].fd, 13);
    EXPECT_EQ(out->workers[0].accepted, 40u);
    EXPECT_EQ(out->workers[0].generation, 6u);
    EXPECT_EQ(out->workers[1].index, 1u);
    EXPECT_EQ(out->workers[1].accepted, ~0ull);
}

// Version 1 (the workers section always empty, refused in event mode) is still read.
TEST(UpgradeState, ReadsAVersionOneRecord) {
    UpgradeState in = sample();
    in.workers.clear();
    std::string bytes = encode_state(in);
    bytes[8] = 1;
    auto out = decode_state(bytes);
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_TRUE(out->workers.empty());
    EXPECT_EQ(out->connections.size(), 2u);
}

// A version 1 or 2 daemon's scoreboard has no per-source tables: its record is read, but the
// new binary's check refuses to take it over.
TEST(UpgradeState, TakesOverOnlyADaemonOfTheCurrentScoreboardLayout) {
    EXPECT_TRUE(can_read(2));
    EXPECT_FALSE(can_take_over(1));
    EXPECT_FALSE(can_take_over(2));
    EXPECT_TRUE(can_take_over(state_version));
    EXPECT_FALSE(can_take_over(state_version + 1));
}

TEST(UpgradeState, NamesEveryDescriptorOnce) {
    auto fds = sample().descriptors();
    std::sort(fds.begin(), fds.end());
    EXPECT_EQ(fds, (std::vector<int>{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}));
}

TEST(UpgradeState, RefusesAnotherVersion) {
    std::string bytes = encode_state(sample());
    bytes[8] = char(state_version + 1);
    auto out = decode_state(bytes);
    ASSERT_FALSE(out);
    EXPECT_NE(out.error().message().find("version " + std::to_string(state_version + 1)), std::string::npos)
        << out.error().message();
    EXPECT_EQ(*state_version_of(bytes), state_version + 1);
}

TEST(UpgradeState, RefusesWhatIsNoRecord) {
    EXPECT_FALSE(decode_state(""));
    EXPECT_FALSE(decode_state("FORKDUPX\1\0\0\0\0\0\0\0\0\0\0\0"));
    EXPECT_FALSE(state_version_of("FORK"));
}

TEST(UpgradeState, RefusesEveryTruncation) {
    const std::string bytes = encode_state(sample());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        auto out = decode_state(std::string_view(bytes).substr(0, n));
        EXPECT_FALSE(out) << "accepted a record cut at " << n << " of " << bytes.size();
    }
    EXPECT_NE(decode_state(bytes.substr(0, bytes.size() - 1)).error().message().find("truncated"), std::string::npos);
}

TEST(UpgradeState, RefusesCorruptionAndTrailingBytes) {
    std::string bytes = encode_state(sample());
    std::string flipped = bytes;
    flipped[30] ^= 0x40;
    EXPECT_NE(decode_state(flipped).error().message().find("checksum"), std::string::npos);
    EXPECT_NE(decode_state(bytes + "x").error().message().find("after its end"), std::string::npos);
}

// A body whose inner count claims more items than there are bytes: refused, not allocated.
TEST(UpgradeState, RefusesAnInflatedCountWithoutAllocating) {
    UpgradeState s;
    std::string bytes = encode_state(s);
    // argv's count is the first u32 after generation (4), from_version (4) and binary (4).
    const std::size_t argv_count = 16 + 12;
    bytes[argv_count + 3] = char(0x7f);
    // Fix the checksum so that only the count is wrong.
    const std::string_view body = std::string_view(bytes).substr(16, bytes.size() - 20);
    std::uint32_t hash = 2166136261u;
    for (unsigned char c : body) hash = (hash ^ c) * 16777619u;
    for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + i] = char((hash >> (8 * i)) & 0xff);
    auto out = decode_state(bytes);
    ASSERT_FALSE(out);
    EXPECT_NE(out.error().message().find("truncated"), std::string::npos) << out.error().message();
}

TEST(StateMemfd, CarriesTheRecord) {
    auto fd = write_state_memfd(sample());
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_TRUE(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC);
    auto out = read_state_fd(fd->release());
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(out->connections.size(), 2u);
}

TEST(StateMemfd, SwitchesCloseOnExec) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    const std::vector<int> fds{p[0], p[1]};
    ASSERT_TRUE(set_inherited(fds, true));
    EXPECT_FALSE(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
    ASSERT_TRUE(set_inherited(fds, false));
    EXPECT_TRUE(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
    close(p[0]);
    close(p[1]);
    EXPECT_FALSE(set_inherited(fds, true));
}

TEST(StateMemfd, TakesTheDescriptorFromTheEnvironment) {
    setenv(state_environment, "17", 1);
    EXPECT_EQ(take_state_fd_from_environment(), 17);
    EXPECT_EQ(getenv(state_environment), nullptr);
    setenv(state_environment, "x", 1);
    EXPECT_EQ(take_state_fd_from_environment(), -1);
    EXPECT_EQ(take_state_fd_from_environment(), -1);
}

TEST(UpgradeCheck, ParsesItsCommandLine) {
    const char* argv[] = {"/usr/sbin/forkd", "--upgrade-check", "1", "-f", "-c", "x.conf"};
    auto mode = parse_check_mode(6, argv);
    ASSERT_TRUE(mode);
    EXPECT_EQ(mode->version, 1u);
    EXPECT_EQ(mode->argv, (std::vector<std::string>{"/usr/sbin/forkd", "-f", "-c", "x.conf"}));
    const char* bad[] = {"forkd", "--upgrade-check", "one"};
    EXPECT_EQ(parse_check_mode(3, bad)->version, 0u);
    EXPECT_FALSE(can_read(0));
    const char* normal[] = {"forkd", "-f"};
    EXPECT_FALSE(parse_check_mode(2, normal));
}

TEST(UpgradeCheck, RefusesAMissingOrBrokenBinary) {
    auto missing = run_upgrade_check("/nonexistent/forkd", {"forkd"}, state_version);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("/nonexistent/forkd"), std::string::npos);
    // /bin/false runs, and fails: its refusal has no words, so the exit status is the reason.
    auto refused = run_upgrade_check("/bin/false", {"forkd"}, state_version);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("exit status 1"), std::string::npos) << refused.error().message();
    // /bin/echo succeeds but is no forkd: it prints its arguments, not "forkd VERSION".
    auto impostor = run_upgrade_check("/bin/echo", {"forkd"}, state_version);
    ASSERT_FALSE(impostor);
    auto slow = run_upgrade_check("/bin/sleep", {"forkd"}, state_version, std::chrono::milliseconds(100));
    ASSERT_FALSE(slow);  // "sleep --upgrade-check" fails at once; either way it is refused
}

} // namespace
} // namespace forkd::upgrade
