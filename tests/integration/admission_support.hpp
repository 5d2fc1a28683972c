// SPDX-License-Identifier: MIT
#pragma once
// What the admission tests share (fork and event mode): clients from a chosen source address,
// status.refused, and the check that a client was refused for a reason.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace forkd::test {

inline UniqueFd from(const Daemon& d, const std::string& source) {
    return connect_tcp_from(d.port(), "127.0.0.1", source);
}

// status.refused.REASON, -1 if it cannot be read.
inline long refused(const Daemon& d, const std::string& reason) {
    auto status = status_json(d);
    if (!status.ok()) return -1;
    return status->value(nlohmann::json::json_pointer("/refused/" + reason), -1L);
}

inline std::string source_ip(const UniqueFd& fd) {
    sockaddr_in local{};
    socklen_t len = sizeof local;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len);
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &local.sin_addr, text, sizeof text);
    return text;
}

// The client is closed without a byte served and the refusal line names it, the reason and this.
inline void expect_refused(const Daemon& d, const UniqueFd& client, const std::string& reason,
                           const std::string& detail) {
    ASSERT_TRUE(client.valid());
    EXPECT_TRUE(wait_closed(client.get(), 3s)) << "the refused client was not closed";
    const std::string peer = peer_of(client, source_ip(client));
    ASSERT_TRUE(eventually([&] { return !d.refusal_line(peer).empty(); }, 3s))
        << "no event=refused line for " << peer << ":\n" << d.log();
    const std::string line = d.refusal_line(peer);
    EXPECT_NE(line.find("reason=" + reason), std::string::npos) << line;
    EXPECT_NE(line.find(detail), std::string::npos) << line;
}

} // namespace forkd::test
