// SPDX-License-Identifier: MIT
#pragma once
// Loopback clients and sockets: connecting, echo round trips, reading what the daemon sends,
// and listeners of the tests' own.
#include "common/base/unique_fd.hpp"
#include "harness/wait.hpp"

#include <cstdint>
#include <string>

namespace forkd::test {

class Daemon;

// timeout: for the handshake (a client whose SYN waits behind a full backlog needs longer).
UniqueFd connect_tcp(std::uint16_t port, const std::string& host = "127.0.0.1", Millis timeout = 5s);
UniqueFd connect_unix(const std::string& path);
// Connects from a chosen local address (e.g. 127.0.0.2, to be another source on loopback).
UniqueFd connect_tcp_from(std::uint16_t port, const std::string& host, const std::string& source);
// Sends payload and reads back exactly as many bytes; true when they are equal.
bool echo_roundtrip(int fd, const std::string& payload, Millis timeout = 5s);
// A client the daemon (an echo service on TCP) serves: connected and one echo round trip done;
// invalid if not.
UniqueFd served_client(const Daemon& daemon, const std::string& payload);
bool send_all(int fd, const std::string& data);
// Reads until EOF or timeout; what arrived so far either way.
std::string read_until_eof(int fd, Millis timeout = 5s);
// Reads at least n bytes (or until EOF/timeout).
std::string read_n(int fd, std::size_t n, Millis timeout = 5s);
// True when the peer closed (EOF or reset) within timeout.
bool wait_closed(int fd, Millis timeout = 5s);

// A TCP port on 127.0.0.1 that was free a moment ago (for daemon-mode tests that cannot read
// the log, and for "port in use" tests hold the returned socket instead: see listen_tcp()).
std::uint16_t free_tcp_port();
UniqueFd listen_tcp(std::uint16_t port = 0, const std::string& host = "127.0.0.1");
std::uint16_t local_port(int fd);
// The client's address as the daemon logs its peer: "IP:PORT".
std::string peer_of(const UniqueFd& client, const std::string& ip = "127.0.0.1");

} // namespace forkd::test
