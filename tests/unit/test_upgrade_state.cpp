// SPDX-License-Identifier: MIT
// The live upgrade's state record: round trip, and every way a record can be wrong is refused
// with its reason (wrong magic, version, truncation anywhere, checksum, trailing bytes). And the
// check mode's command line, the memfd carrier and FD_CLOEXEC switching.
#include "common/base/reap.hpp"
#include "daemon/upgrade/state_memfd.hpp"
#include "daemon/upgrade/upgrade_check.hpp"
#include "daemon/upgrade/upgrade_state.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <string_view>

namespace forkd::upgrade {
namespace {

using namespace std::chrono_literals;

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
    s.workers = {{321, 13, 0, 40, 6, 0}, {322, 14, 1, ~0ull, 1, 987654321}};
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
    EXPECT_EQ(out->workers[0].retiring_since_ns, 0);
    EXPECT_EQ(out->workers[1].retiring_since_ns, 987654321);
}

// Every field, compared whole: a field the record forgot to carry, or carries into another
// field, fails here. sample() sets every field of every kind of entry.
TEST(UpgradeState, RoundTripsAFullyPopulatedStateExactly) {
    const UpgradeState in = sample();
    const std::string bytes = encode_state(in);
    auto out = decode_state(bytes);
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_TRUE(*out == in);
    EXPECT_EQ(encode_state(*out), bytes);
}

std::string from_hex(std::string_view hex) {
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) bytes.push_back(char(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return bytes;
}

std::string little_endian_u32(std::uint32_t v) {
    std::string out;
    for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
    return out;
}

std::uint32_t fnv1a(std::string_view bytes) {
    std::uint32_t hash = 2166136261u;
    for (unsigned char c : bytes) hash = (hash ^ c) * 16777619u;
    return hash;
}

// "FORKDUPG" | u32 version | u32 body length | body | u32 FNV-1a of the body
std::string framed(std::uint32_t version, std::string_view body) {
    return "FORKDUPG" + little_endian_u32(version) + little_endian_u32(std::uint32_t(body.size())) +
           std::string(body) + little_endian_u32(fnv1a(body));
}

// One entry of each kind, every field set: small enough to pin byte by byte.
UpgradeState small_state() {
    return {.generation = 2,
            .from_version = "0.1",
            .binary = "/f",
            .argv = {"f", "-f"},
            .started_ns = 0x0102030405060708,
            .state = 1,
            .pidfile_fd = 3,
            .pidfile_path = "/p",
            .scoreboard_fd = 4,
            .spawner_pid = 0x1234,
            .spawner_fd = 5,
            .spawner_generation = 6,
            .next_listener_tag = 7,
            .listeners = {{8, 9, "a", "b", true, {true, "/s", 10, 11}}},
            .control_sockets = {{12, {true, "/c", 13, 14}}},
            .connections = {{15, 16, 17, 2, "p", "s", 18, -2, true, -3, 19, 20}},
            .totals = {{"t", 21}},
            .settings = {{"k", "v"}},
            .workers = {{22, 23, 24, 25, 26, 27}}};
}

// The body of small_state() in version 3 (which also changed the scoreboard it names), field by
// field, little-endian; strings and lists carry a u32 length first.
constexpr std::string_view small_body_hex =
    "02000000"                                    // generation
    "03000000" "302e31"                           // from_version "0.1"
    "02000000" "2f66"                             // binary "/f"
    "02000000" "01000000" "66" "02000000" "2d66"  // argv {"f", "-f"}
    "0807060504030201"                            // started_ns
    "01"                                          // state
    "03000000"                                    // pidfile_fd
    "02000000" "2f70"                             // pidfile_path "/p"
    "04000000"                                    // scoreboard_fd
    "34120000"                                    // spawner_pid
    "05000000"                                    // spawner_fd
    "0600000000000000"                            // spawner_generation
    "07000000"                                    // next_listener_tag
    "01000000"                                    // listeners: 1
    "08000000" "09000000"                         //   fd, tag
    "01000000" "61" "01000000" "62"               //   configured "a", bound "b"
    "01"                                          //   is_unix
    "01" "02000000" "2f73"                        //   file: owned, path "/s"
    "0a00000000000000" "0b00000000000000"         //         dev, ino
    "01000000"                                    // control_sockets: 1
    "0c000000"                                    //   fd
    "01" "02000000" "2f63"                        //   file: owned, path "/c"
    "0d00000000000000" "0e00000000000000"         //         dev, ino
    "01000000"                                    // connections: 1
    "0f00000000000000" "10000000" "11000000"      //   id, slot, pid
    "02"                                          //   served_by
    "01000000" "70" "01000000" "73"               //   peer "p", source "s"
    "1200000000000000" "feffffffffffffff"         //   started_ns, deadline_ns -2
    "01" "fd"                                     //   term_sent, ended_by -3
    "13000000" "14000000"                         //   stderr_fd, tcp_view_fd
    "01000000" "01000000" "74" "1500000000000000" // totals {"t", 21}
    "01000000" "01000000" "6b" "01000000" "76"    // settings {"k", "v"}
    "01000000"                                    // workers: 1
    "16000000" "17000000" "18000000"              //   pid, fd, index
    "1900000000000000" "1a00000000000000"         //   accepted, generation (since version 2)
    "1b00000000000000";                           //   retiring_since_ns (since version 3)

// The record's form on the wire, pinned: a change of it must bump state_version (and say how
// an older record is read), never slip in.
TEST(UpgradeState, WritesThePinnedForm) {
    ASSERT_EQ(state_version, 3u) << "a new version: pin its form here, and keep reading the old one";
    const std::string expected = framed(3, from_hex(small_body_hex));
    EXPECT_EQ(encode_state(small_state()), expected);
    auto out = decode_state(expected);
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_TRUE(*out == small_state());
}

// An older version's form is the current one without the worker fields added since: each hex
// digit pair dropped from the end of small_body_hex is one byte of them.
UpgradeState decoded_older_form(std::uint32_t version, std::size_t hex_dropped) {
    const std::string body = from_hex(small_body_hex.substr(0, small_body_hex.size() - hex_dropped));
    auto out = decode_state(framed(version, body));
    EXPECT_TRUE(out) << out.error().message();
    return out ? *out : UpgradeState{};
}

// A version-2 worker entry has no retiring time; a version-1 one is pid, fd and index only.
TEST(UpgradeState, ReadsThePinnedVersionTwoForm) {
    UpgradeState expected = small_state();
    expected.workers[0].retiring_since_ns = 0;
    EXPECT_TRUE(decoded_older_form(2, 16) == expected);
}

TEST(UpgradeState, ReadsThePinnedVersionOneForm) {
    UpgradeState expected = small_state();
    expected.workers[0].accepted = 0;
    expected.workers[0].generation = 0;
    expected.workers[0].retiring_since_ns = 0;
    EXPECT_TRUE(decoded_older_form(1, 48) == expected);
}

// A body that runs out inside an entry (its checksum right) is refused naming the field.
TEST(UpgradeState, NamesTheFieldARecordRanOutIn) {
    std::string hex(small_body_hex);
    const std::string peer_and_source = "01000000" "70" "01000000" "73";
    const std::size_t at = hex.find(peer_and_source);
    ASSERT_NE(at, std::string::npos);
    ASSERT_EQ(hex.find(peer_and_source, at + 1), std::string::npos);
    hex.replace(at, 8, "ff000000");  // the peer's length: past the end of the body
    auto out = decode_state(framed(3, from_hex(hex)));
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().message(), "state record body truncated at connections.peer");
}

// Versions 1 (the workers section always empty, refused in event mode) and 2 are still read.
TEST(UpgradeState, ReadsAVersionOneRecord) {
    UpgradeState in = sample();
    in.workers.clear();
    std::string bytes = encode_state(in);
    for (char older : {1, 2}) {
        bytes[8] = older;
        auto out = decode_state(bytes);
        ASSERT_TRUE(out) << out.error().message();
        EXPECT_TRUE(out->workers.empty());
        EXPECT_EQ(out->connections.size(), 2u);
    }
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
    EXPECT_NE(out.error().message().find("at argv"), std::string::npos) << out.error().message();
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

// The master's steps, without its loop: start, read until both pipes close, reap, judge.
Result<std::string> check_blocking(const std::string& binary, std::chrono::milliseconds timeout = 5s) {
    auto child = start_upgrade_check(binary, {"forkd"}, state_version);
    if (!child) return child.error();
    std::string out, err;
    pollfd fds[2] = {{child->out.get(), POLLIN, 0}, {child->err.get(), POLLIN, 0}};
    bool timed_out = false;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        if (::poll(fds, 2, int(timeout.count())) == 0) {
            timed_out = true;
            ::kill(child->pid, SIGKILL);
            break;
        }
        for (int i = 0; i < 2; ++i)
            if (fds[i].fd >= 0 && fds[i].revents && !read_check_output(fds[i].fd, i == 0 ? out : err))
                fds[i].fd = -1;
    }
    const int status = reap(child->pid);
    if (timed_out) return check_timed_out(binary, timeout);
    return judge_upgrade_check(binary, status, out, err);
}

TEST(UpgradeCheck, RefusesAMissingOrBrokenBinary) {
    auto missing = check_blocking("/nonexistent/forkd");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("/nonexistent/forkd"), std::string::npos);
    // /bin/false runs, and fails: its refusal has no words, so the exit status is the reason.
    auto refused = check_blocking("/bin/false");
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("exit status 1"), std::string::npos) << refused.error().message();
    // /bin/echo succeeds but is no forkd: it prints its arguments, not "forkd VERSION".
    auto impostor = check_blocking("/bin/echo");
    ASSERT_FALSE(impostor);
    EXPECT_NE(impostor.error().message().find("no version"), std::string::npos) << impostor.error().message();
}

TEST(UpgradeCheck, JudgesWhatTheCheckPrintedAndHowItEnded) {
    EXPECT_EQ(*judge_upgrade_check("/x/forkd", 0, "forkd 0.2.0\n", ""), "0.2.0");
    auto refused = judge_upgrade_check("/x/forkd", 1 << 8, "", "forkd: /etc/forkd.conf:3: bad\nmore\n");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message(), "new binary /x/forkd refused: /etc/forkd.conf:3: bad");
    auto killed = judge_upgrade_check("/x/forkd", SIGSEGV, "", "");
    ASSERT_FALSE(killed);
    EXPECT_NE(killed.error().message().find("died of signal"), std::string::npos);
    EXPECT_NE(check_timed_out("/x/forkd", 10s).message().find("did not answer within 10 s"), std::string::npos);
}

} // namespace
} // namespace forkd::upgrade
