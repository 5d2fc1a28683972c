// SPDX-License-Identifier: MIT
// Log lines as journal fields: the contract's names, the peer split into address and port, the
// duration in microseconds, and the line itself as MESSAGE.
#include "daemon/master/journal_fields.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace forkd {
namespace {

using Fields = std::vector<std::string>;

bool has(const Fields& fields, const std::string& entry) {
    return std::find(fields.begin(), fields.end(), entry) != fields.end();
}

Fields of(std::string_view event, std::initializer_list<log::Field> fields) {
    std::span<const log::Field> span(fields.begin(), fields.size());
    return journal_fields(log::Level::info, event, span, log::format(event, span));
}

TEST(JournalFields, AConnectionEndCarriesItsStory) {
    Fields f = of("connection-end", {{"id", 17}, {"peer", "127.0.0.1:5555"}, {"pid", 42},
                                     {"duration_ms", 12}, {"exit", "0"}, {"bytes_in", 5}, {"bytes_out", 6},
                                     {"ended_by", "handler"}});
    EXPECT_TRUE(has(f, "MESSAGE=event=connection-end id=17 peer=127.0.0.1:5555 pid=42 duration_ms=12 exit=0 "
                       "bytes_in=5 bytes_out=6 ended_by=handler"));
    EXPECT_TRUE(has(f, "PRIORITY=6"));
    EXPECT_TRUE(has(f, "FORKD_EVENT=connection-end"));
    EXPECT_TRUE(has(f, "FORKD_CONN_ID=17"));
    EXPECT_TRUE(has(f, "REMOTE_ADDR=127.0.0.1"));
    EXPECT_TRUE(has(f, "REMOTE_PORT=5555"));
    EXPECT_TRUE(has(f, "FORKD_DURATION_USEC=12000"));
    EXPECT_TRUE(has(f, "FORKD_EXIT=0"));
    EXPECT_TRUE(has(f, "FORKD_BYTES_IN=5"));
    EXPECT_TRUE(has(f, "FORKD_BYTES_OUT=6"));
}

TEST(JournalFields, PeersOfEveryKind) {
    Fields v6 = of("connection-start", {{"peer", "[::1]:7"}});
    EXPECT_TRUE(has(v6, "REMOTE_ADDR=::1"));
    EXPECT_TRUE(has(v6, "REMOTE_PORT=7"));
    Fields unix_peer = of("connection-start", {{"peer", "unix:/run/x.sock"}});
    EXPECT_TRUE(has(unix_peer, "REMOTE_ADDR=unix:/run/x.sock"));
    EXPECT_EQ(std::count_if(unix_peer.begin(), unix_peer.end(),
                            [](const std::string& e) { return e.starts_with("REMOTE_PORT="); }), 0);
}

TEST(JournalFields, RefusalsHaveTheirReasonAndHandlerStderrItsConnection) {
    Fields refused = of("refused", {{"id", 3}, {"peer", "10.0.0.1:9"}, {"reason", "limit"}});
    EXPECT_TRUE(has(refused, "FORKD_REFUSE_REASON=limit"));
    EXPECT_TRUE(has(refused, "PRIORITY=6"));
    Fields line = of("handler-stderr", {{"id", 9}, {"line", "oops"}});
    EXPECT_TRUE(has(line, "FORKD_CONN_ID=9"));
    EXPECT_TRUE(has(line, "FORKD_EVENT=handler-stderr"));
    Fields other = of("reload", {{"result", "failed"}, {"reason", "x"}});
    EXPECT_FALSE(has(other, "FORKD_REFUSE_REASON=x")) << "only refusals have a refuse reason";
}

} // namespace
} // namespace forkd
