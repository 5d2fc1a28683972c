// SPDX-License-Identifier: MIT
#include "common/base/proxy_target.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

namespace forkd {
namespace {

bool is_host_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

Result<std::uint16_t> parse_port(std::string_view text) {
    if (text.empty()) return failure("missing port");
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return failure("bad port " + quoted(text));
        value = value * 10 + static_cast<unsigned>(c - '0');
        if (value > 65535) return failure("port out of range");
    }
    if (value == 0) return failure("port 0 is not a destination");
    return static_cast<std::uint16_t>(value);
}

Result<ProxyTarget> parse_unix(std::string_view path) {
    if (path.empty()) return failure("missing UNIX socket path");
    if (path.front() != '/') return failure("UNIX socket path must be absolute");
    if (path.size() >= sizeof(sockaddr_un{}.sun_path))
        return failure("UNIX path too long (at most " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                       " bytes)");
    ProxyTarget target;
    target.path = std::string(path);
    return target;
}

Result<ProxyTarget> parse_tcp(std::string_view text) {
    ProxyTarget target;
    std::string_view port;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return failure("missing ']'");
        target.host = std::string(text.substr(1, close - 1));
        const std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') return failure("missing port");
        port = rest.substr(1);
        in6_addr address{};
        if (inet_pton(AF_INET6, target.host.c_str(), &address) != 1)
            return failure("bad IPv6 address " + quoted(target.host));
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return failure("missing port");
        const std::string_view host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return failure("IPv6 address must be in brackets: [ADDRESS]:PORT");
        if (host.empty()) return failure("missing host");
        if (host == "*") return failure("'*' is for listening; name the host to connect to");
        if (host.size() > 253) return failure("host name too long (at most 253 bytes)");
        for (char c : host)
            if (!is_host_name_char(c)) return failure("bad host " + quoted(host));
        target.host = std::string(host);
    }
    auto number = parse_port(port);
    if (!number) return number.error();
    target.port = *number;
    return target;
}

} // namespace

Result<ProxyTarget> parse_proxy_target(std::string_view text) {
    if (text.empty()) return failure("empty address (HOST:PORT, [V6]:PORT or unix:PATH)");
    if (text.starts_with("unix:")) return parse_unix(text.substr(5));
    return parse_tcp(text);
}

std::string proxy_target_text(const ProxyTarget& target) {
    if (target.is_unix()) return "unix:" + target.path;
    const bool v6 = target.host.find(':') != std::string::npos;
    return (v6 ? "[" + target.host + "]" : target.host) + ":" + std::to_string(target.port);
}

} // namespace forkd
