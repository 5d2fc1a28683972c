// SPDX-License-Identifier: MIT
#include "daemon/proxy/proxy_address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace forkd {
namespace {

ProxyEndpoint unix_endpoint(const std::string& path) {
    ProxyEndpoint endpoint;
    auto* sun = reinterpret_cast<sockaddr_un*>(&endpoint.address);
    sun->sun_family = AF_UNIX;
    std::memcpy(sun->sun_path, path.data(), std::min(path.size(), sizeof sun->sun_path - 1));
    endpoint.length = socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return endpoint;
}

} // namespace

bool is_address_literal(const std::string& host) {
    in6_addr v6{};
    in_addr v4{};
    return inet_pton(AF_INET6, host.c_str(), &v6) == 1 || inet_pton(AF_INET, host.c_str(), &v4) == 1;
}

Result<ProxyEndpoint> resolve_proxy_target(const ProxyTarget& target) {
    if (target.is_unix()) return unix_endpoint(target.path);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    const std::string port = std::to_string(target.port);
    addrinfo* found = nullptr;
    // A literal needs no lookup: AI_NUMERICHOST keeps it from touching nsswitch.
    if (is_address_literal(target.host)) hints.ai_flags = AI_NUMERICHOST;
    const int rc = ::getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0) {
        const int err = rc == EAI_SYSTEM ? errno : 0;
        return Error{err, "resolve " + proxy_target_text(target) + ": " + ::gai_strerror(rc)};
    }
    ProxyEndpoint endpoint;
    std::memcpy(&endpoint.address, found->ai_addr, found->ai_addrlen);
    endpoint.length = found->ai_addrlen;
    ::freeaddrinfo(found);
    return endpoint;
}

} // namespace forkd
