// SPDX-License-Identifier: MIT
#pragma once
// proxy-from: which peers may send a PROXY protocol header. An empty list allows every peer.
// The networks are admission's (cidr.hpp): an IPv4-mapped IPv6 peer matches as IPv4. Pure and
// libc only; fixed size so that it rides in forkd-spawner's configure request.
#include "daemon/admission/cidr.hpp"

#include <sys/socket.h>

#include <array>
#include <cstddef>

namespace forkd {

class ProxySources {
public:
    static constexpr std::size_t max_entries = 32;
    // False when full (the config refuses more than max_entries).
    bool add(const Cidr& cidr);
    std::size_t size() const { return count_; }
    const Cidr* begin() const { return entries_.data(); }
    const Cidr* end() const { return entries_.data() + count_; }
    // Empty: every peer. Otherwise an AF_INET/AF_INET6 peer inside one of them.
    bool allows(const sockaddr* peer, socklen_t length) const;

private:
    std::array<Cidr, max_entries> entries_{};
    std::size_t count_ = 0;
};

} // namespace forkd
