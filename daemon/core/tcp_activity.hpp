// SPDX-License-Identifier: MIT
#pragma once
// The kernel's view of a TCP connection (TCP_INFO): bytes each way and time since data last
// moved. idle-timeout and byte counts of both kinds of handler: the master reads it on its dup
// of an exec'd handler's connection, a built-in handler on its own. Progress is data that moved
// on the wire, not data a process wrote into its socket buffer.
#include <cstdint>
#include <optional>

namespace forkd {

struct TcpActivity {
    std::uint64_t bytes_in = 0;   // tcpi_bytes_received, less the FIN where known
    std::uint64_t bytes_out = 0;  // tcpi_bytes_sent - tcpi_bytes_retrans (payload, no FIN)
    std::uint32_t idle_ms = 0;    // min(last_data_recv, last_data_sent)
};

std::optional<TcpActivity> read_tcp_activity(int fd);

} // namespace forkd
