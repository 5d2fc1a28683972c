#pragma once
// The master ↔ spawner protocol: datagrams on a SOCK_SEQPACKET socketpair. Each datagram is a
// header and up to max_records fixed-size records of one direction:
//   master → spawner: spawn (the connection rides along as SCM_RIGHTS, one fd per spawn record,
//                     in record order) and signal (to the handler of a connection id);
//   spawner → master: hello (once, after start), exited (wait status) and spawn_failed (errno).
// Both ends are the same build, but every datagram is still checked: a bad one is refused whole.
#include "common/handler_kind.hpp"
#include "common/unique_fd.hpp"

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <array>
#include <span>

namespace forkd::spawner {

constexpr std::uint16_t protocol_version = 1;
// Records per datagram, and so fds per datagram (the kernel allows 253).
constexpr std::size_t max_records = 64;
// Where the master puts the socket and the scoreboard's memfd before it runs the spawner.
constexpr int control_fd = 3;
constexpr int scoreboard_fd = 4;

enum class RequestKind : std::uint8_t { spawn = 1, signal = 2 };

// Fields ordered so that no byte is padding: records are sent as they are in memory.
struct Request {
    std::uint64_t id = 0;                     // the connection
    std::uint32_t slot = 0;                   // the connection's scoreboard slot
    std::uint32_t idle_timeout_s = 0;         // spawn
    std::int32_t signo = 0;                   // signal
    HandlerKind handler = HandlerKind::echo;  // spawn
    RequestKind kind = RequestKind::spawn;
    std::uint8_t reserved[7] = {};
};

enum class ReportKind : std::uint8_t { hello = 1, exited = 2, spawn_failed = 3 };

struct Report {
    std::uint64_t id = 0;   // exited, spawn_failed
    pid_t pid = 0;          // exited; hello: the spawner's own pid
    std::int32_t value = 0; // exited: wait status; spawn_failed: errno; hello: protocol_version
    ReportKind kind = ReportKind::exited;
    std::uint8_t reserved[7] = {};
};

// Nothing here allocates: the spawner forks between these calls, and every heap page it writes
// after a fork is a copy-on-write fault.

// One datagram's bytes.
struct Encoded {
    static constexpr std::size_t capacity = 8 + max_records * sizeof(Request);
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
// records, a count of 0 or above max_records, an unknown kind or handler.
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
