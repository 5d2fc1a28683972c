// SPDX-License-Identifier: MIT
// The master ↔ spawner datagrams: encoding, the checks on decoding, and fds over a real
// SOCK_SEQPACKET socketpair.
#include "daemon/spawner/spawner_protocol.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <vector>

namespace forkd::spawner {
namespace {

Request configure_request(std::uint64_t generation, std::uint16_t listeners) {
    Request r;
    r.kind = RequestKind::configure;
    r.generation = generation;
    r.handler = HandlerKind::chargen;
    r.idle_timeout_s = 30;
    r.max_connections = 100;
    r.max_per_source = 3;
    r.accepting = 1;
    r.reject_at_limit = 1;
    r.listeners = listeners;
    return r;
}

Request listener_request(std::uint32_t tag) {
    Request r;
    r.kind = RequestKind::listener;
    r.tag = tag;
    return r;
}

Request signal_request(std::uint64_t id, int signo) {
    Request r;
    r.kind = RequestKind::signal;
    r.id = id;
    r.signo = signo;
    return r;
}

std::vector<std::byte> bytes_of(const Encoded& e) { return {e.view().begin(), e.view().end()}; }

TEST(SpawnerProtocol, RequestsRoundTrip) {
    const std::vector<Request> sent = {configure_request(7, 2), listener_request(11),
                                       listener_request(12), signal_request(9, SIGTERM)};
    Records<Request> got;
    ASSERT_TRUE(decode_requests(encode_requests(sent).view(), got));
    ASSERT_EQ(got.count, 4u);
    EXPECT_EQ(got.items[0].kind, RequestKind::configure);
    EXPECT_EQ(got.items[0].generation, 7u);
    EXPECT_EQ(got.items[0].handler, HandlerKind::chargen);
    EXPECT_EQ(got.items[0].idle_timeout_s, 30u);
    EXPECT_EQ(got.items[0].max_connections, 100u);
    EXPECT_EQ(got.items[0].max_per_source, 3u);
    EXPECT_EQ(got.items[0].accepting, 1u);
    EXPECT_EQ(got.items[0].reject_at_limit, 1u);
    EXPECT_EQ(got.items[0].listeners, 2u);
    EXPECT_EQ(got.items[2].kind, RequestKind::listener);
    EXPECT_EQ(got.items[2].tag, 12u);
    EXPECT_EQ(got.items[3].kind, RequestKind::signal);
    EXPECT_EQ(got.items[3].id, 9u);
    EXPECT_EQ(got.items[3].signo, SIGTERM);
}

TEST(SpawnerProtocol, AProxyConfigureRoundTripsWithItsTarget) {
    Request proxy = configure_request(3, 0);
    proxy.handler = HandlerKind::proxy;
    proxy.buffer_size = 4096;
    proxy.proxy_connect_timeout_s = 2;
    std::strcpy(proxy.proxy_to, "unix:/run/app.sock");
    Records<Request> got;
    ASSERT_TRUE(decode_requests(encode_requests(std::vector<Request>{proxy}).view(), got));
    EXPECT_EQ(got.items[0].handler, HandlerKind::proxy);
    EXPECT_STREQ(got.items[0].proxy_to, "unix:/run/app.sock");
    EXPECT_EQ(got.items[0].buffer_size, 4096u);
    EXPECT_EQ(got.items[0].proxy_connect_timeout_s, 2u);
}

TEST(SpawnerProtocol, ReportsRoundTrip) {
    Report started = make_report(ReportKind::started, 5, 1234, 0);
    started.slot = 17;
    started.tag = 2;
    started.peer.address_len = 16;
    started.peer.address[0] = 2;
    Report unix_started = make_report(ReportKind::started, 6, 1235, 0);
    unix_started.peer.has_cred = 1;
    unix_started.peer.cred_uid = 1000;
    unix_started.peer.cred_pid = 77;
    Report refused = make_report(ReportKind::refused, 8, 0, EAGAIN);
    refused.refusal = RefusalKind::fork_failed;
    const std::vector<Report> sent = {make_report(ReportKind::hello, 0, 42, protocol_version), started,
                                      unix_started, make_report(ReportKind::exited, 5, 1234, 0x0900),
                                      refused, make_report(ReportKind::configured, 3, 0, 0)};
    Records<Report> got;
    ASSERT_TRUE(decode_reports(encode_reports(sent).view(), got));
    ASSERT_EQ(got.count, 6u);
    EXPECT_EQ(got.items[0].kind, ReportKind::hello);
    EXPECT_EQ(got.items[0].pid, 42);
    EXPECT_EQ(got.items[1].slot, 17u);
    EXPECT_EQ(got.items[1].tag, 2u);
    EXPECT_EQ(got.items[1].peer.address_len, 16u);
    EXPECT_EQ(got.items[1].peer.address[0], 2u);
    EXPECT_EQ(got.items[2].peer.cred_uid, 1000u);
    EXPECT_EQ(got.items[2].peer.cred_pid, 77);
    EXPECT_EQ(got.items[3].id, 5u);
    EXPECT_EQ(got.items[3].pid, 1234);
    EXPECT_EQ(got.items[3].value, 0x0900);
    EXPECT_EQ(got.items[4].refusal, RefusalKind::fork_failed);
    EXPECT_EQ(got.items[4].value, EAGAIN);
    EXPECT_EQ(got.items[5].kind, ReportKind::configured);
    EXPECT_EQ(got.items[5].id, 3u);
}

TEST(SpawnerProtocol, AFullDatagramHoldsMaxRecords) {
    std::vector<Request> sent;
    for (std::uint32_t i = 0; i < max_records + 5; ++i) sent.push_back(signal_request(i, SIGTERM));
    Records<Request> got;
    ASSERT_TRUE(decode_requests(encode_requests(sent).view(), got));
    EXPECT_EQ(got.count, max_records) << "the encoder takes at most max_records";
    EXPECT_EQ(got.items[max_records - 1].id, max_records - 1);
}

TEST(SpawnerProtocol, AConfigureIsFollowedByExactlyItsListeners) {
    Records<Request> out;
    auto decodes = [&](std::vector<Request> records) {
        return decode_requests(encode_requests(records).view(), out);
    };
    EXPECT_TRUE(decodes({configure_request(1, 0)}));
    EXPECT_TRUE(decodes({configure_request(1, 1), listener_request(1), signal_request(2, SIGKILL)}));
    EXPECT_FALSE(decodes({configure_request(1, 2), listener_request(1)})) << "one listener short";
    EXPECT_FALSE(decodes({configure_request(1, 1), signal_request(2, SIGKILL), listener_request(1)}))
        << "interrupted";
    EXPECT_FALSE(decodes({listener_request(1)})) << "a listener after nothing";
    EXPECT_FALSE(decodes({configure_request(1, 0), listener_request(1)})) << "one too many";
    EXPECT_FALSE(decodes({configure_request(1, max_listeners + 1)}));
    EXPECT_EQ(out.count, 0u);
}

TEST(SpawnerProtocol, ThePolicyRecordEndsTheConfigureThatAnnouncesIt) {
    Records<Request> out;
    auto decodes = [&](std::vector<Request> records) {
        return decode_requests(encode_requests(records).view(), out);
    };
    Request with_policy = configure_request(1, 1);
    with_policy.has_policy = 1;
    with_policy.rate_count = 10;
    with_policy.rate_seconds = 60;
    with_policy.source_prefix_v4 = 24;
    Request policy;
    policy.kind = RequestKind::policy;
    ASSERT_TRUE(decodes({with_policy, listener_request(1), policy}));
    EXPECT_EQ(out.items[0].rate_count, 10u);
    EXPECT_EQ(out.items[0].source_prefix_v4, 24);
    EXPECT_FALSE(decodes({with_policy, listener_request(1)})) << "the announced policy is missing";
    EXPECT_FALSE(decodes({with_policy, policy, listener_request(1)})) << "the policy comes last";
    EXPECT_FALSE(decodes({configure_request(1, 0), policy})) << "not announced";
    EXPECT_FALSE(decodes({policy})) << "a policy after nothing";
    Request bad_prefix = configure_request(1, 0);
    bad_prefix.source_prefix_v6 = 129;
    EXPECT_FALSE(decodes({bad_prefix}));
    Request no_seconds = configure_request(1, 0);
    no_seconds.rate_seconds = 0;
    EXPECT_FALSE(decodes({no_seconds}));
}

TEST(SpawnerProtocol, AConfigureCarriesTheHandlersIdentity) {
    Request configure = configure_request(1, 0);
    configure.has_identity = 1;
    configure.set_groups = 1;
    configure.uid = 65534;
    configure.gid = 65533;
    configure.group_count = 2;
    configure.groups[0] = 65533;
    configure.groups[1] = 4;
    Records<Request> out;
    ASSERT_TRUE(decode_requests(encode_requests(std::vector<Request>{configure}).view(), out));
    EXPECT_EQ(out.items[0].uid, 65534u);
    EXPECT_EQ(out.items[0].gid, 65533u);
    EXPECT_EQ(out.items[0].group_count, 2u);
    EXPECT_EQ(out.items[0].groups[1], 4u);
    EXPECT_EQ(out.items[0].has_identity, 1);
    configure.group_count = max_groups + 1;
    EXPECT_FALSE(decode_requests(encode_requests(std::vector<Request>{configure}).view(), out));
    configure.group_count = 0;
    configure.has_identity = 2;
    EXPECT_FALSE(decode_requests(encode_requests(std::vector<Request>{configure}).view(), out));
}

TEST(SpawnerProtocol, MalformedDatagramsAreRefusedWhole) {
    const auto good = bytes_of(encode_requests(std::vector<Request>{configure_request(1, 0)}));
    Records<Request> out;
    ASSERT_TRUE(decode_requests(good, out));

    auto refused = [&](std::vector<std::byte> bytes, const char* why) {
        EXPECT_FALSE(decode_requests(bytes, out)) << why;
        EXPECT_EQ(out.count, 0u) << why;
    };
    refused({}, "empty");
    refused({good.begin(), good.begin() + 5}, "shorter than the header");
    refused({good.begin(), good.end() - 1}, "a record cut short");
    auto longer = good;
    longer.push_back(std::byte{0});
    refused(longer, "a byte too many");
    auto magic = good;
    magic[0] ^= std::byte{0xff};
    refused(magic, "wrong magic");
    auto version = good;
    version[4] = std::byte{99};
    refused(version, "another protocol version");
    auto zero = good;
    zero[6] = zero[7] = std::byte{0};
    refused(std::vector<std::byte>(zero.begin(), zero.begin() + 8), "no record");

    Request bad_handler = configure_request(1, 0);
    bad_handler.handler = HandlerKind::exec;  // never the spawner's
    refused(bytes_of(encode_requests(std::vector<Request>{bad_handler})), "exec handler");
    Request proxy_without_target = configure_request(1, 0);
    proxy_without_target.handler = HandlerKind::proxy;
    proxy_without_target.buffer_size = 65536;
    refused(bytes_of(encode_requests(std::vector<Request>{proxy_without_target})), "proxy without proxy-to");
    Request unterminated = proxy_without_target;
    std::memset(unterminated.proxy_to, 'x', sizeof unterminated.proxy_to);
    refused(bytes_of(encode_requests(std::vector<Request>{unterminated})), "proxy-to not terminated");
    Request bad_flag = configure_request(1, 0);
    bad_flag.accepting = 2;
    refused(bytes_of(encode_requests(std::vector<Request>{bad_flag})), "accepting 2");
    Request bad_kind = configure_request(1, 0);
    bad_kind.kind = static_cast<RequestKind>(77);
    refused(bytes_of(encode_requests(std::vector<Request>{bad_kind})), "unknown kind");
    refused(bytes_of(encode_requests(std::vector<Request>{signal_request(1, 0)})), "signal 0");
    refused(bytes_of(encode_requests(std::vector<Request>{signal_request(1, 99)})), "signal 99");

    // Reports are requests' size-mismatched cousins: one never decodes as the other.
    Records<Report> reports;
    EXPECT_FALSE(decode_reports(good, reports));
    const Report wrong_hello = make_report(ReportKind::hello, 0, 42, protocol_version + 1);
    EXPECT_FALSE(decode_reports(encode_reports(std::vector<Report>{wrong_hello}).view(), reports));
    Report long_peer = make_report(ReportKind::started, 1, 2, 0);
    long_peer.peer.address_len = sizeof long_peer.peer.address + 1;
    EXPECT_FALSE(decode_reports(encode_reports(std::vector<Report>{long_peer}).view(), reports));
    Report bad_refusal = make_report(ReportKind::refused, 1, 0, 0);
    bad_refusal.refusal = static_cast<RefusalKind>(9);
    EXPECT_FALSE(decode_reports(encode_reports(std::vector<Report>{bad_refusal}).view(), reports));
    Report no_errno = make_report(ReportKind::refused, 1, 0, 0);
    no_errno.refusal = RefusalKind::fork_failed;
    EXPECT_FALSE(decode_reports(encode_reports(std::vector<Report>{no_errno}).view(), reports))
        << "fork_failed names its errno";
}

class SocketPair : public ::testing::Test {
protected:
    void SetUp() override {
        int ends[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, ends), 0);
        a_.reset(ends[0]);
        b_.reset(ends[1]);
    }
    UniqueFd a_, b_;
};

TEST_F(SocketPair, FdsTravelWithTheirRequestsAndArriveCloseOnExec) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    UniqueFd read_end(p[0]), write_end(p[1]);
    const std::vector<Request> sent = {configure_request(1, 2), listener_request(1), listener_request(2)};
    const int fds[] = {read_end.get(), write_end.get()};
    ASSERT_EQ(send_datagram(a_.get(), encode_requests(sent).view(), fds), 0);

    Datagram datagram;
    ASSERT_EQ(receive_datagram(b_.get(), datagram), ReceiveStatus::ok);
    Records<Request> got;
    ASSERT_TRUE(decode_requests(datagram.view(), got));
    EXPECT_EQ(got.count, 3u);
    ASSERT_EQ(datagram.fd_count, 2u);
    EXPECT_FALSE(datagram.fds_truncated);
    for (std::size_t i = 0; i < 2; ++i) EXPECT_EQ(fcntl(datagram.fds[i].get(), F_GETFD), FD_CLOEXEC);
    // They are the same pipe: what goes into the received write end comes out of the read end.
    ASSERT_EQ(write(datagram.fds[1].get(), "z", 1), 1);
    char c = 0;
    ASSERT_EQ(read(read_end.get(), &c, 1), 1);
    EXPECT_EQ(c, 'z');

    EXPECT_EQ(receive_datagram(b_.get(), datagram), ReceiveStatus::would_block);
    EXPECT_EQ(datagram.fd_count, 0u) << "the previous datagram's fds are closed on reuse";
    a_.reset();
    EXPECT_EQ(receive_datagram(b_.get(), datagram), ReceiveStatus::closed);
}

TEST_F(SocketPair, AFullSocketSaysEagainAndLosesNothing) {
    const auto datagram = encode_requests(std::vector<Request>{signal_request(1, SIGTERM)});
    int sent = 0;
    while (send_datagram(a_.get(), datagram.view()) == 0) ++sent;
    EXPECT_EQ(send_datagram(a_.get(), datagram.view()), -EAGAIN);
    ASSERT_GT(sent, 0);
    Datagram in;
    int received = 0;
    while (receive_datagram(b_.get(), in) == ReceiveStatus::ok) ++received;
    EXPECT_EQ(received, sent);
}

} // namespace
} // namespace forkd::spawner
