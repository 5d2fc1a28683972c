#include "daemon/tcp_activity.hpp"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>

namespace forkd {

std::optional<TcpActivity> read_tcp_activity(int fd) {
    tcp_info info{};
    socklen_t len = sizeof(info);
    // Fails with EOPNOTSUPP on UNIX sockets: no kernel view there.
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) return std::nullopt;
    // Older kernels return a shorter struct; the byte counters must be in it.
    if (len < offsetof(tcp_info, tcpi_bytes_received) + sizeof(info.tcpi_bytes_received))
        return std::nullopt;
    TcpActivity activity;
    activity.bytes_in = info.tcpi_bytes_received;
    activity.bytes_out = info.tcpi_bytes_acked;
    activity.idle_ms = std::min(info.tcpi_last_data_recv, info.tcpi_last_data_sent);
    return activity;
}

} // namespace forkd
