// SPDX-License-Identifier: MIT
// Listen addresses (as admins write them) and socket addresses (as logs print them).
#include "common/address.hpp"

#include "common/base/peer_text.hpp"
#include "common/base/error.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <cstddef>
#include <stdexcept>

namespace forkd {
namespace {

template <class... Ts> struct Overloaded : Ts... { using Ts::operator()...; };
template <class... Ts> Overloaded(Ts...) -> Overloaded<Ts...>;  // clang 14 does not deduce it

std::uint16_t parse_port(std::string_view text) {
    if (text.empty()) throw std::invalid_argument("missing port");
    unsigned long value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') throw std::invalid_argument("bad port " + quoted(text));
        value = value * 10 + static_cast<unsigned>(c - '0');
        if (value > 65535) throw std::invalid_argument("port out of range");
    }
    return static_cast<std::uint16_t>(value);
}

bool is_ipv6_literal(const std::string& host) {
    // A zone ("fe80::1%eth0") is resolved at bind time; only the address part is checked here.
    std::string address = host.substr(0, host.find('%'));
    in6_addr out{};
    return inet_pton(AF_INET6, address.c_str(), &out) == 1;
}

bool is_host_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

UnixAddress parse_unix(std::string_view path) {
    if (path.empty()) throw std::invalid_argument("missing UNIX socket path");
    // Relative paths would change meaning once the daemon runs in "/".
    if (path.front() != '/') throw std::invalid_argument("UNIX socket path must be absolute");
    if (path.size() >= sizeof(sockaddr_un{}.sun_path))
        throw std::invalid_argument("UNIX path too long (at most " +
                                    std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes)");
    return UnixAddress{std::string(path)};
}

TcpAddress parse_tcp(std::string_view text) {
    TcpAddress address;
    std::string_view port;
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("missing ']'");
        address.host = std::string(text.substr(1, close - 1));
        std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') throw std::invalid_argument("missing port");
        port = rest.substr(1);
        if (!is_ipv6_literal(address.host))
            throw std::invalid_argument("bad IPv6 address " + quoted(address.host));
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) throw std::invalid_argument("missing port");
        std::string_view host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            throw std::invalid_argument("IPv6 address must be in brackets: [ADDRESS]:PORT");
        if (host.empty()) throw std::invalid_argument("missing host (use *:PORT for all addresses)");
        if (host == "*") {
            address.any = true;
        } else {
            for (char c : host)
                if (!is_host_name_char(c))
                    throw std::invalid_argument("bad host " + quoted(host));
            address.host = std::string(host);
        }
    }
    address.port = parse_port(port);
    return address;
}

} // namespace

ListenAddress parse_listen_address(std::string_view text) {
    if (text.empty()) throw std::invalid_argument("empty address");
    if (text == "systemd") return SystemdSockets{};
    if (text.starts_with("unix:")) return parse_unix(text.substr(5));
    return parse_tcp(text);
}

std::string to_string(const ListenAddress& address) {
    return std::visit(
        Overloaded{
            [](const TcpAddress& tcp) {
                std::string port = std::to_string(tcp.port);
                if (tcp.any) return "*:" + port;
                if (tcp.host.find(':') != std::string::npos) return "[" + tcp.host + "]:" + port;
                return tcp.host + ":" + port;
            },
            [](const UnixAddress& unix_address) { return "unix:" + unix_address.path; },
            [](const SystemdSockets&) { return std::string("systemd"); },
        },
        address);
}

std::string host_of(const sockaddr* sa, socklen_t len) {
    if (!sa) return "";
    char text[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    } else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], text, sizeof text);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    }
    return text;
}

std::uint16_t port_of(const sockaddr* sa, socklen_t len) {
    if (!sa) return 0;
    if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in)))
        return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
    if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6)))
        return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
    return 0;
}

std::string format_sockaddr(const sockaddr* sa, socklen_t len) {
    char text[peer_text_size];
    return std::string(text, format_sockaddr_to(text, sizeof text, sa, len));
}

} // namespace forkd
