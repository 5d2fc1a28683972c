// SPDX-License-Identifier: MIT
#pragma once
// proxy-to as a socket address. A literal address or unix:PATH needs no lookup; a host name
// is looked up with getaddrinfo(3), which blocks: call it where blocking is fine (a forked
// proxy child, a worker when it takes a new configuration), never in the master's loop.
#include "common/base/error.hpp"
#include "common/base/proxy_target.hpp"
#include "daemon/proxy/proxy_session.hpp"

namespace forkd {

// The first address the resolver offers (the system's order, gai.conf). Error context:
// "resolve backend.example:80: Name or service not known".
Result<ProxyEndpoint> resolve_proxy_target(const ProxyTarget& target);
// A literal IPv4 or IPv6 address: resolve_proxy_target will not look it up (nor block).
bool is_address_literal(const std::string& host);

} // namespace forkd
