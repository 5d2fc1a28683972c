// SPDX-License-Identifier: MIT
#include "daemon/admission/proxy_sources.hpp"

namespace forkd {

bool ProxySources::add(const Cidr& cidr) {
    if (count_ == entries_.size()) return false;
    entries_[count_++] = cidr;
    return true;
}

bool ProxySources::allows(const sockaddr* peer, socklen_t length) const {
    if (count_ == 0) return true;
    const auto address = IpAddress::of_sockaddr(peer, length);
    if (!address) return false;
    for (const Cidr& cidr : *this)
        if (cidr.contains(*address)) return true;
    return false;
}

} // namespace forkd
