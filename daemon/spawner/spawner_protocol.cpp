// SPDX-License-Identifier: MIT
#include "daemon/spawner/spawner_protocol.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <type_traits>

namespace forkd::spawner {

RefusalKind refusal_kind(Refusal reason) {
    switch (reason) {
    case Refusal::per_source: return RefusalKind::per_source;
    case Refusal::denied: return RefusalKind::denied;
    case Refusal::rate: return RefusalKind::rate;
    case Refusal::per_source_rate: return RefusalKind::per_source_rate;
    case Refusal::fork_failed: return RefusalKind::fork_failed;
    case Refusal::proxy: return RefusalKind::proxy;
    default: return RefusalKind::limit;
    }
}

RuntimeLimits limits_of(const Request& configure) {
    RuntimeLimits limits;
    limits.max_connections = configure.max_connections;
    limits.max_per_source = configure.max_per_source;
    limits.overload = configure.reject_at_limit ? OverloadPolicy::reject : OverloadPolicy::wait;
    limits.idle_timeout_s = configure.idle_timeout_s;
    limits.max_connection_rate = {configure.rate_count, configure.rate_seconds};
    limits.max_per_source_rate = {configure.source_rate_count, configure.source_rate_seconds};
    limits.source_prefix = {configure.source_prefix_v4, configure.source_prefix_v6};
    return limits;
}

namespace {

constexpr std::uint32_t magic = 0x666b7370;  // "fksp"

struct Header {
    std::uint32_t magic;
    std::uint16_t version;
    std::uint16_t count;
};

// On the wire, each record is its struct's bytes: both ends are the same binary build. The
// fields' values are checked on decode all the same.
static_assert(std::is_trivially_copyable_v<Request>);
static_assert(std::is_trivially_copyable_v<Report>);
static_assert(std::has_unique_object_representations_v<Request>, "no padding in a record");
static_assert(std::has_unique_object_representations_v<Report>, "no padding in a record");
static_assert(sizeof(Header) == 8);

template <typename Record>
void encode(std::span<const Record> records, Encoded& out) {
    const std::size_t count = std::min(records.size(), max_records);
    const Header header{magic, protocol_version, static_cast<std::uint16_t>(count)};
    std::memcpy(out.bytes.data(), &header, sizeof header);
    if (count) std::memcpy(out.bytes.data() + sizeof header, records.data(), count * sizeof(Record));
    out.size = sizeof header + count * sizeof(Record);
}

template <typename Record, typename Valid>
bool decode(std::span<const std::byte> datagram, Records<Record>& out, Valid valid) {
    out.count = 0;
    if (datagram.size() < sizeof(Header)) return false;
    Header header;
    std::memcpy(&header, datagram.data(), sizeof header);
    if (header.magic != magic || header.version != protocol_version) return false;
    if (header.count == 0 || header.count > max_records) return false;
    if (datagram.size() != sizeof header + header.count * sizeof(Record)) return false;
    std::memcpy(out.items.data(), datagram.data() + sizeof header, header.count * sizeof(Record));
    for (std::size_t i = 0; i < header.count; ++i)
        if (!valid(out.items[i])) return false;
    out.count = header.count;
    return true;
}

bool valid_handler(HandlerKind h) {
    return h == HandlerKind::echo || h == HandlerKind::discard || h == HandlerKind::daytime ||
           h == HandlerKind::chargen || h == HandlerKind::proxy;
}

// A proxy configure names its target (checked again where it is used) and a usable watermark.
bool valid_proxy(const Request& r) {
    if (r.handler != HandlerKind::proxy) return true;
    const void* end = std::memchr(r.proxy_to, 0, sizeof r.proxy_to);
    return end && end != r.proxy_to && r.buffer_size >= 2;
}

bool valid_request(const Request& r) {
    switch (r.kind) {
    case RequestKind::configure:
        return valid_handler(r.handler) && r.listeners <= max_listeners && r.accepting <= 1 &&
               r.reject_at_limit <= 1 && r.has_identity <= 1 && r.set_groups <= 1 &&
               r.group_count <= max_groups && r.has_policy <= 1 && r.source_prefix_v4 <= 32 &&
               r.source_prefix_v6 <= 128 && r.rate_seconds > 0 && r.source_rate_seconds > 0 &&
               r.proxy_protocol <= 1 && r.proxy_from_count <= ProxySources::max_entries && valid_proxy(r);
    case RequestKind::listener:
    case RequestKind::policy: return true;
    case RequestKind::signal: return r.signo > 0 && r.signo < 65;
    }
    return false;
}

// Each configure is followed by exactly its listener records and then, if it says so, its
// policy record; neither follows anything else.
bool valid_request_sequence(std::span<const Request> requests) {
    std::size_t listeners_due = 0;
    bool policy_due = false;
    for (const Request& r : requests) {
        if (r.kind == RequestKind::listener) {
            if (listeners_due == 0) return false;
            --listeners_due;
            continue;
        }
        if (listeners_due) return false;
        if (r.kind == RequestKind::policy) {
            if (!policy_due) return false;
            policy_due = false;
            continue;
        }
        if (policy_due) return false;
        if (r.kind == RequestKind::configure) {
            listeners_due = r.listeners;
            policy_due = r.has_policy != 0;
        }
    }
    return listeners_due == 0 && !policy_due;
}

bool valid_refusal(RefusalKind k) {
    return k == RefusalKind::limit || k == RefusalKind::per_source || k == RefusalKind::fork_failed ||
           k == RefusalKind::denied || k == RefusalKind::rate || k == RefusalKind::per_source_rate ||
           k == RefusalKind::proxy;
}

bool valid_peer(const Peer& p) {
    return p.address_len <= sizeof p.address && p.has_cred <= 1;
}

bool valid_report(const Report& r) {
    switch (r.kind) {
    case ReportKind::hello: return r.value == protocol_version && r.pid > 0;
    case ReportKind::configured: return true;
    case ReportKind::started: return r.pid > 0 && valid_peer(r.peer);
    case ReportKind::exited: return r.pid > 0;
    case ReportKind::refused:
        return valid_refusal(r.refusal) && valid_peer(r.peer) &&
               (r.refusal != RefusalKind::fork_failed || r.value > 0);
    case ReportKind::refusals_unlogged: return valid_refusal(r.refusal) && r.value > 0;
    case ReportKind::accept_error: return r.value > 0;
    case ReportKind::limit_wait: return r.value == 0 || r.value == 1;
    }
    return false;
}

} // namespace

void encode_requests(std::span<const Request> requests, Encoded& out) { encode(requests, out); }

void encode_reports(std::span<const Report> reports, Encoded& out) { encode(reports, out); }

Encoded encode_requests(std::span<const Request> requests) {
    Encoded out;
    encode(requests, out);
    return out;
}

Encoded encode_reports(std::span<const Report> reports) {
    Encoded out;
    encode(reports, out);
    return out;
}

bool decode_requests(std::span<const std::byte> datagram, Records<Request>& out) {
    if (!decode(datagram, out, valid_request)) return false;
    if (valid_request_sequence({out.items.data(), out.count})) return true;
    out.count = 0;
    return false;
}

bool decode_reports(std::span<const std::byte> datagram, Records<Report>& out) {
    return decode(datagram, out, valid_report);
}

int send_datagram(int socket, std::span<const std::byte> datagram, std::span<const int> fds) {
    iovec iov{const_cast<std::byte*>(datagram.data()), datagram.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_records)];
    if (!fds.empty()) {
        if (fds.size() > max_records) return -EINVAL;
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(fds.size_bytes());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(fds.size_bytes());
        std::memcpy(CMSG_DATA(c), fds.data(), fds.size_bytes());
    }
    for (;;) {
        if (sendmsg(socket, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

ReceiveStatus receive_datagram(int socket, Datagram& out) {
    for (std::size_t i = 0; i < out.fd_count; ++i) out.fds[i].reset();
    out.size = 0;
    out.fd_count = 0;
    out.fds_truncated = false;
    iovec iov{out.bytes.data(), out.bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_records)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? ReceiveStatus::would_block
                                                                : ReceiveStatus::error;
    // SOCK_SEQPACKET: 0 bytes is the peer's close (no valid datagram is empty).
    if (n == 0) return ReceiveStatus::closed;
    out.size = (msg.msg_flags & MSG_TRUNC) ? 0 : std::size_t(n);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            // More than max_records cannot fit the control buffer, but never trust a count.
            if (out.fd_count < max_records) out.fds[out.fd_count++].reset(fd);
            else close(fd);
        }
    }
    out.fds_truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
    return ReceiveStatus::ok;
}

} // namespace forkd::spawner
