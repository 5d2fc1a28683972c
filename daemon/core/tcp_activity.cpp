// SPDX-License-Identifier: MIT
#include "daemon/core/tcp_activity.hpp"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>

namespace forkd {
namespace {

// Connection states as tcpi_state reports them (the kernel's net/tcp_states.h, a stable ABI);
// <netinet/tcp.h> has them too but cannot be included beside <linux/tcp.h>.
enum : std::uint8_t {
    kTimeWait = 6,
    kCloseWait = 8,
    kLastAck = 9,
    kClosing = 11,
};

// tcpi_bytes_received follows rcv_nxt, in which the peer's FIN counts as one byte. In these
// states the FIN is known to have arrived. (Once fully closed, TCP_CLOSE cannot tell a FIN from
// a reset, so there the count may include it.)
bool peer_fin_counted(std::uint8_t state) {
    return state == kCloseWait || state == kLastAck || state == kClosing || state == kTimeWait;
}

template <class Field>
bool has(socklen_t len, std::size_t offset, const Field&) {
    return len >= offset + sizeof(Field);
}

} // namespace

std::optional<TcpActivity> read_tcp_activity(int fd) {
    tcp_info info{};
    socklen_t len = sizeof(info);
    // Fails with EOPNOTSUPP on UNIX sockets: no kernel view there.
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) return std::nullopt;
    if (!has(len, offsetof(tcp_info, tcpi_bytes_received), info.tcpi_bytes_received)) return std::nullopt;
    TcpActivity activity;
    activity.bytes_in = info.tcpi_bytes_received;
    if (peer_fin_counted(info.tcpi_state) && activity.bytes_in > 0) --activity.bytes_in;
    // Payload sent once (no FIN, no retransmissions); kernels before 4.19 only know "acked".
    if (has(len, offsetof(tcp_info, tcpi_bytes_retrans), info.tcpi_bytes_retrans))
        activity.bytes_out = info.tcpi_bytes_sent - info.tcpi_bytes_retrans;
    else
        activity.bytes_out = info.tcpi_bytes_acked;
    activity.idle_ms = std::min(info.tcpi_last_data_recv, info.tcpi_last_data_sent);
    return activity;
}

} // namespace forkd
