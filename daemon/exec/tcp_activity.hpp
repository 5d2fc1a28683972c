// SPDX-License-Identifier: MIT
#pragma once
// The kernel's view of a TCP connection (TCP_INFO), read on the master's dup of it: bytes each
// way and time since data last moved. Used for exec'd handlers' idle timeout and accounting.
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
