// SPDX-License-Identifier: MIT
#pragma once
// The PROXY protocol header a load balancer sends before its client's data (HAProxy's
// send-proxy and send-proxy-v2; the format is haproxy's doc/proxy-protocol.txt), parsed from
// the first bytes of a connection. Pure: no syscalls, no allocation, libc only.
//
// The caller peeks at what has arrived (recv MSG_PEEK) and asks again with more until the
// answer is done or malformed; done says how many bytes the header took, which the caller then
// reads away, so whatever followed it in the same segment stays in the socket for the handler.
// Version 1 (text) and version 2 (binary) are told apart by their first bytes, as HAProxy's
// accept-proxy does. TCP4 and TCP6 give addresses; v1 UNKNOWN, v2 LOCAL and v2 families other
// than TCP over IPv4/IPv6 keep the connection's own (the balancer's health checks).
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace forkd {

// A v1 line is at most 107 bytes with its CRLF (the specification's limit). A v2 header may
// carry TLVs up to 64 KiB; forkd keeps its peek buffer small and refuses larger ones.
inline constexpr std::size_t proxy_v1_max_size = 107;
inline constexpr std::size_t proxy_v2_fixed_size = 16;
inline constexpr std::size_t proxy_header_max_size = 1024;

enum class ProxyParse {
    need_more,  // a valid beginning: wait for more bytes (or the timeout)
    done,       // a whole header: `consumed` bytes
    malformed,  // not a PROXY header, or a bad one: `reason` says why
};

enum class ProxyCommand {
    proxy,  // source and destination are the client's and the balancer's listener's
    local,  // v2 LOCAL or v1 UNKNOWN or an address family forkd does not use: keep the peer
};

struct ProxyHeader {
    ProxyParse status = ProxyParse::need_more;
    std::size_t consumed = 0;    // done: the header's length in bytes
    const char* reason = "";     // malformed: a short, static, one-line reason
    int version = 0;             // 1 or 2 once detected
    ProxyCommand command = ProxyCommand::local;
    sockaddr_storage source{};   // command proxy: AF_INET or AF_INET6, port set
    sockaddr_storage destination{};
    socklen_t address_length = 0;  // of source and of destination
};

// Parses what has arrived so far. Never reads past `bytes`.
ProxyHeader parse_proxy_header(std::span<const std::uint8_t> bytes);

// Every reason a connection is refused `proxy` for, this parser's and the waits' (and
// proxy-from's), so that forkd-spawner can name one to the master by its index.
inline constexpr const char* proxy_refusal_reasons[] = {
    "malformed PROXY protocol header",
    "not a PROXY protocol header",
    "v1 address is not an IPv4 address",
    "v1 address is not an IPv6 address",
    "v1 header does not have exactly 5 fields after PROXY",
    "v1 header line does not end in CRLF",
    "v1 header longer than 107 bytes",
    "v1 port is not a number from 0 to 65535",
    "v1 protocol is not TCP4, TCP6 or UNKNOWN",
    "v2 TLV runs past the header",
    "v2 address block too short",
    "v2 address family or protocol unknown",
    "v2 command is not LOCAL or PROXY",
    "v2 header longer than 1024 bytes",
    "v2 header version is not 2",
    "connection failed before its PROXY header",
    "connection closed before its PROXY header",
    "connection failed while its PROXY header was read",
    "no whole PROXY header within proxy-header-timeout",
    "too many connections waiting for a PROXY header",
    "peer not allowed by proxy-from",
};
// The index of REASON in proxy_refusal_reasons (0 if it is none of them), and back (0's text
// for an index out of range).
std::uint32_t proxy_reason_index(const char* reason);
const char* proxy_reason_text(std::uint32_t index);

// Whether a connection's first bytes could begin a PROXY header at all (either signature's
// prefix): false means malformed, whatever follows.
bool could_be_proxy_header(std::span<const std::uint8_t> bytes);

} // namespace forkd
