// SPDX-License-Identifier: MIT
#pragma once
// The master ↔ spawner protocol, which forkd-worker (event mode) speaks too: datagrams on a SOCK_SEQPACKET socketpair. Each datagram is a
// header and up to max_records fixed-size records of one direction:
//   master → spawner: configure (what to serve and the limits), followed in the same datagram
//                     by one listener record per listening socket, each socket riding along as
//                     SCM_RIGHTS in record order; and signal (to the handler of a connection).
//   spawner → master: hello (once, after start), configured (a configure was applied),
//                     started, exited, refused, refusals_unlogged, accept_error and
//                     limit_wait (it stopped or resumed accepting for want of room).
// Both ends are the same build, but every datagram is still checked: a bad one is refused whole.
#include "common/base/handler_kind.hpp"
#include "common/base/runtime_limits.hpp"
#include "common/base/unique_fd.hpp"
#include "daemon/admission/admission.hpp"
#include "daemon/admission/proxy_sources.hpp"
#include "daemon/core/child_setup.hpp"

#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <array>
#include <span>

namespace forkd::spawner {

// 8: the scoreboard the master hands over holds the per-source tables every acceptor shares.
constexpr std::uint16_t protocol_version = 8;
// Records per datagram, and so fds per datagram (the kernel allows 253).
constexpr std::size_t max_records = 64;
// A configure datagram holds the configure record, one record per listening socket and the
// admission policy's record.
constexpr std::size_t max_listeners = max_records - 2;
// Supplementary groups a configure carries for the handlers' identity (user/group); a user in
// more is refused when the configuration loads.
constexpr std::size_t max_groups = max_builtin_groups;
// proxy-to's text in a configure, NUL-terminated: a 253-byte host name in brackets with a port
// fits, and so does any UNIX path.
constexpr std::size_t proxy_to_capacity = 264;
// Where the master puts the socket and the scoreboard's memfd before it runs the spawner.
constexpr int control_fd = 3;
constexpr int scoreboard_fd = 4;

// policy: the admission policy block (daemon/admission/policy_blob.hpp: allow/deny tables and
// busy-message) as a sealed memfd riding along as SCM_RIGHTS; it ends a configure datagram,
// after the listener records, and applies to the connections accepted from then on.
enum class RequestKind : std::uint8_t { configure = 1, listener = 2, signal = 3, policy = 4 };
// Why the spawner did not serve a connection (the master's Refusal, on the wire).
// proxy: value is the index of its reason in proxy_refusal_reasons() (proxy_header.hpp).
enum class RefusalKind : std::uint8_t {
    limit = 1, per_source = 2, fork_failed = 3, denied = 4, rate = 5, per_source_rate = 6, proxy = 7
};
// A refusal as the spawner and the workers report it (limit for one the wire has no name for).
RefusalKind refusal_kind(Refusal reason);

// Fields ordered so that no byte is padding: records are sent as they are in memory.
struct Request {
    std::uint64_t id = 0;                     // signal: the connection
    std::uint64_t generation = 0;             // configure: echoed back by configured
    std::uint64_t policy_generation = 0;      // configure: which policy block is in force
    std::uint32_t slot = 0;                   // signal: the connection's scoreboard slot
    std::uint32_t tag = 0;                    // listener: the master's name for it, in reports
    std::int32_t signo = 0;                   // signal
    std::uint32_t idle_timeout_s = 0;         // configure
    std::uint32_t max_connections = 0;        // configure: 0 = only the scoreboard's capacity
    std::uint32_t max_per_source = 0;         // configure: 0 = unlimited
    std::uint32_t uid = 0, gid = 0;           // configure, with has_identity: handlers run as
    std::uint32_t group_count = 0;            // configure: groups[0..group_count) are set
    std::uint32_t buffer_size = 0;            // configure, handler proxy and forkd-worker: the watermark
    std::uint32_t proxy_connect_timeout_s = 0;  // configure, handler proxy: 0 = the kernel's
    std::uint32_t groups[max_groups] = {};
    std::uint32_t rate_count = 0, rate_seconds = 1;                // configure: max-connection-rate
    std::uint32_t source_rate_count = 0, source_rate_seconds = 1;  // configure: max-per-source-rate
    std::uint32_t proxy_header_timeout_s = 0; // configure, with proxy_protocol
    std::uint32_t proxy_from_count = 0;       // configure: proxy_from[0..count); 0 = any peer
    HandlerKind handler = HandlerKind::echo;  // configure
    std::uint16_t listeners = 0;              // configure: listener records that follow it
    RequestKind kind = RequestKind::signal;
    std::uint8_t accepting = 0;               // configure: 0 = accept nothing
    std::uint8_t reject_at_limit = 0;         // configure: overload=reject (else wait)
    std::uint8_t has_identity = 0;            // configure: 0 = handlers keep the spawner's
    std::uint8_t set_groups = 0;              // configure: setgroups is needed (see ExecIdentity)
    std::uint8_t source_prefix_v4 = 32, source_prefix_v6 = 128;  // configure: source-prefix
    std::uint8_t has_policy = 0;              // configure: a policy record ends the datagram
    std::uint8_t proxy_protocol = 0;          // configure: TCP clients send a PROXY header first
    std::uint8_t reserved[5] = {};
    char proxy_to[proxy_to_capacity] = {};    // configure, handler proxy: proxy-to as written
    Cidr proxy_from[ProxySources::max_entries] = {};  // configure: proxy-from
};

// The limits a configure carries, as forkd-spawner and forkd-worker admit and time out by:
// admission's and idle-timeout (connection-timeout stays 0: the master keeps it).
RuntimeLimits limits_of(const Request& configure);

enum class ReportKind : std::uint8_t {
    hello = 1, configured = 2, started = 3, exited = 4, refused = 5, refusals_unlogged = 6,
    accept_error = 7, limit_wait = 8
};

// The client, as accept(2) gave it: an IP address and port, or on a UNIX socket its
// SO_PEERCRED (pid, uid).
struct Peer {
    std::uint8_t address[28] = {};  // sockaddr_in or sockaddr_in6; family 0 on UNIX sockets
    std::uint32_t address_len = 0;
    std::int32_t cred_pid = 0;
    std::uint32_t cred_uid = 0;
    std::uint8_t has_cred = 0;
    std::uint8_t reserved[3] = {};
};

// The spawner frees a built-in handler's slot itself when it reaps it (a stalled master must not
// hold it), so the slot may serve another connection by the time the master reads a report:
// what the master needs of the slot rides in the report.
struct Report {
    std::uint64_t id = 0;   // started, exited, refused; configured: the generation
    std::int64_t start_ns = 0;  // started: when the slot was claimed; limit_wait: when it changed
                                // (CLOCK_MONOTONIC)
    std::uint64_t bytes_in = 0, bytes_out = 0;  // exited: the slot's traffic at the reap
    pid_t pid = 0;          // started, exited; hello: the spawner's own pid
    std::int32_t value = 0; // exited: wait status; refused (fork_failed), accept_error: errno;
                            // refused (denied): the deciding rule's index, -1 for none;
                            // refusals_unlogged: how many; hello: protocol_version;
                            // limit_wait: 1 it began waiting for room, 0 it resumed
    std::uint32_t slot = 0; // started, exited
    std::uint32_t tag = 0;  // started, refused, accept_error: the listener
    Peer peer;              // started, refused
    ReportKind kind = ReportKind::exited;
    RefusalKind refusal = RefusalKind::limit;  // refused, refusals_unlogged
    std::uint8_t bytes_known = 0;              // exited: the handler counted its traffic
    std::uint8_t reserved[1] = {};
};

// A report of `kind` with these fields, the others zero.
inline Report make_report(ReportKind kind, std::uint64_t id = 0, pid_t pid = 0, std::int32_t value = 0) {
    Report r;
    r.kind = kind;
    r.id = id;
    r.pid = pid;
    r.value = value;
    return r;
}

// Nothing here allocates: the spawner forks between these calls, and every heap page it writes
// after a fork is a copy-on-write fault.

// One datagram's bytes.
struct Encoded {
    static constexpr std::size_t capacity = 8 + max_records * std::max(sizeof(Request), sizeof(Report));
    std::array<std::byte, capacity> bytes;
    std::size_t size = 0;
    std::span<const std::byte> view() const { return {bytes.data(), size}; }
};

// A datagram's records, decoded.
template <typename Record>
struct Records {
    std::array<Record, max_records> items;
    std::size_t count = 0;
    const Record* begin() const { return items.data(); }
    const Record* end() const { return items.data() + count; }
};

// Pure encoding (unit-tested). At most max_records records per datagram. The decoders return
// false for anything malformed: wrong magic or version, a size that is not header + count
// records, a count of 0 or above max_records, an unknown kind, handler or refusal, a configure
// not followed by exactly its listener records.
void encode_requests(std::span<const Request> requests, Encoded& out);
void encode_reports(std::span<const Report> reports, Encoded& out);
Encoded encode_requests(std::span<const Request> requests);
Encoded encode_reports(std::span<const Report> reports);
bool decode_requests(std::span<const std::byte> datagram, Records<Request>& out);
bool decode_reports(std::span<const std::byte> datagram, Records<Report>& out);

// Socket I/O on a SOCK_SEQPACKET socket, non-blocking, MSG_NOSIGNAL. Returns 0 or -errno
// (-EAGAIN when the socket is full).
int send_datagram(int socket, std::span<const std::byte> datagram, std::span<const int> fds = {});

struct Datagram {
    std::array<std::byte, Encoded::capacity> bytes;
    std::size_t size = 0;                        // 0 if it did not fit (then it fails to decode)
    std::array<UniqueFd, max_records> fds;       // O_CLOEXEC
    std::size_t fd_count = 0;
    bool fds_truncated = false;  // the kernel dropped some (the receiver ran out of fds)
    std::span<const std::byte> view() const { return {bytes.data(), size}; }
};
enum class ReceiveStatus { ok, would_block, closed, error };
// Receives one datagram into `out`, closing the fds it held before.
ReceiveStatus receive_datagram(int socket, Datagram& out);

} // namespace forkd::spawner
