// SPDX-License-Identifier: MIT
// Parsers for config values; reasons only, the caller knows the option and where it came from.
#include "common/config/config_values.hpp"

#include "common/base/error.hpp"
#include "common/config/config.hpp"
#include "common/config/shell_words.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace forkd::config_values {
namespace {

bool all_digits(std::string_view text) {
    if (text.empty()) return false;
    for (char c : text)
        if (c < '0' || c > '9') return false;
    return true;
}

[[noreturn]] void fail(const std::string& reason) { throw std::invalid_argument(reason); }

} // namespace

unsigned parse_count(std::string_view text, unsigned max) {
    if (!all_digits(text)) fail(quoted(text) + " is not a non-negative integer");
    std::uint64_t value = 0;
    for (char c : text) {
        value = value * 10 + static_cast<unsigned>(c - '0');
        if (value > max) fail(quoted(text) + " is out of range (at most " + std::to_string(max) + ")");
    }
    return static_cast<unsigned>(value);
}

unsigned parse_byte_count(std::string_view text, unsigned min, unsigned max) {
    const unsigned value = parse_count(text, max);
    if (value < min) fail(quoted(text) + " is too small (at least " + std::to_string(min) + ")");
    return value;
}

bool parse_bool(std::string_view text) {
    if (text == "yes" || text == "true" || text == "on" || text == "1") return true;
    if (text == "no" || text == "false" || text == "off" || text == "0") return false;
    fail(quoted(text) + " is not yes or no");
}

mode_t parse_umask(std::string_view text) {
    bool octal = !text.empty() && text.size() <= 4;
    for (char c : text) octal = octal && c >= '0' && c <= '7';
    if (!octal) fail(quoted(text) + " is not an octal mode such as 027");
    mode_t mask = 0;
    for (char c : text) mask = static_cast<mode_t>(mask * 8 + static_cast<mode_t>(c - '0'));
    if (mask > 0777) fail(quoted(text) + " is out of range (at most 0777)");
    return mask;
}

std::uint64_t parse_rlimit(std::string_view text) {
    if (text == "unlimited" || text == "infinity") return RLIM_INFINITY;
    if (!all_digits(text)) fail(quoted(text) + " is not a non-negative integer or 'unlimited'");
    std::uint64_t value = 0;
    for (char c : text) {
        auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (RLIM_INFINITY - 1 - digit) / 10) fail(quoted(text) + " is out of range");
        value = value * 10 + digit;
    }
    return value;
}

std::vector<std::string> parse_exec(std::string_view text) {
    std::vector<std::string> argv = split_shell_words(text);
    if (argv.empty()) fail("empty command");
    const std::string& program = argv.front();
    if (program.front() != '/') fail("program " + quoted(program) + " is not an absolute path");
    struct stat st {};
    if (::stat(program.c_str(), &st) != 0)
        fail("program " + quoted(program) + ": " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) fail("program " + quoted(program) + " is not a regular file");
    if (::access(program.c_str(), X_OK) != 0)
        fail("program " + quoted(program) + " is not executable: " + errno_text(errno));
    return argv;
}

void check_variable_name(std::string_view name) {
    bool valid = !name.empty() && !(name.front() >= '0' && name.front() <= '9');
    for (char c : name)
        valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_');
    if (!valid) fail(quoted(name) + " is not a valid variable name");
}

void check_env_assignment(std::string_view text) {
    auto equals = text.find('=');
    if (equals == std::string_view::npos) fail(quoted(text) + " is not NAME=VALUE");
    check_variable_name(text.substr(0, equals));
    if (text.find('\n') != std::string_view::npos) fail("value contains a newline");
}

void check_absolute_path(std::string_view path) {
    if (path.empty() || path.front() != '/') fail(quoted(path) + " is not an absolute path");
}

void check_unix_socket_path(std::string_view path) {
    check_absolute_path(path);
    constexpr std::size_t max = sizeof(sockaddr_un{}.sun_path) - 1;
    if (path.size() > max) fail("UNIX socket path too long (at most " + std::to_string(max) + " bytes)");
}

ListenAddress parse_metrics_address(std::string_view text) {
    ListenAddress address = parse_listen_address(text);
    if (std::holds_alternative<SystemdSockets>(address))
        fail("systemd sockets are for listen; metrics-listen binds its own (HOST:PORT or unix:PATH)");
    return address;
}

void check_log_target(std::string_view target) {
    if (target == "syslog" || target == "stderr") return;
    if (target.empty() || target.front() != '/')
        fail(quoted(target) + " is neither syslog, stderr nor an absolute file path");
}

// proxy-from: the same networks as allow/deny, the same reasons.
void check_cidr(std::string_view text) { (void)parse_network(text); }

void check_instance_name(std::string_view name) {
    bool valid = !name.empty() && name.front() != '.' && name.size() <= 64;
    for (char c : name)
        valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == '@');
    if (!valid) fail(quoted(name) + " is not a valid instance name (letters, digits, _ - . @)");
}

void check_account_name(std::string_view name) {
    bool valid = !name.empty() && name.front() != '-';
    for (char c : name) valid = valid && c > ' ' && c != ':' && c != '/' && c != 0x7f;
    if (!valid) fail(quoted(name) + " is not a valid user or group name");
}

void check_group_exists(std::string_view name) {
    check_account_name(name);
    const std::string text(name);
    if (::getgrnam(text.c_str()) != nullptr) return;
    if (all_digits(name)) return;  // a numeric gid needs no entry in the group database
    fail("no such group " + quoted(name));
}

namespace {

// Decimal min..max, naming `what` in the error.
unsigned bounded(std::string_view text, std::string_view whole, unsigned min, unsigned max, const char* what) {
    if (!all_digits(text) || text.size() > 7) fail(quoted(whole) + ": " + what + " " + quoted(text) + " is not a number");
    unsigned value = 0;
    for (char c : text) value = value * 10 + unsigned(c - '0');
    if (value < min || value > max)
        fail(quoted(whole) + ": " + what + " " + std::to_string(value) + " is out of range " +
             std::to_string(min) + ".." + std::to_string(max));
    return value;
}

constexpr unsigned kMaxRateCount = 1000000;
constexpr unsigned kMaxRateSeconds = 86400;
constexpr std::size_t kMaxBusyMessage = 1024;

} // namespace

Rate parse_rate(std::string_view text) {
    if (text == "0") return Rate{};
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) fail(quoted(text) + " is not N/S (connections per seconds) or 0");
    Rate rate;
    rate.count = bounded(text.substr(0, slash), text, 1, kMaxRateCount, "count");
    rate.seconds = bounded(text.substr(slash + 1), text, 1, kMaxRateSeconds, "seconds");
    return rate;
}

std::string format_rate(Rate rate) {
    return rate.limited() ? std::to_string(rate.count) + "/" + std::to_string(rate.seconds) : "0";
}

SourcePrefix parse_source_prefix(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) fail(quoted(text) + " is not V4LEN/V6LEN such as 24/64");
    SourcePrefix prefix;
    prefix.v4 = std::uint8_t(bounded(text.substr(0, slash), text, 0, 32, "IPv4 prefix length"));
    prefix.v6 = std::uint8_t(bounded(text.substr(slash + 1), text, 0, 128, "IPv6 prefix length"));
    return prefix;
}

std::string format_source_prefix(SourcePrefix prefix) {
    return std::to_string(prefix.v4) + "/" + std::to_string(prefix.v6);
}

std::string parse_escaped_text(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\\') {
            out += text[i];
            continue;
        }
        if (i + 1 == text.size()) fail(quoted(text) + " ends in a lone backslash (write \\\\ for one)");
        switch (text[++i]) {
        case 'r': out += '\r'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case '\\': out += '\\'; break;
        default:
            fail(quoted(text) + ": unknown escape \\" + std::string(1, text[i]) + " (\\r \\n \\t \\\\ only)");
        }
    }
    if (out.size() > kMaxBusyMessage)
        fail("too long: " + std::to_string(out.size()) + " bytes (at most " + std::to_string(kMaxBusyMessage) + ")");
    return out;
}

std::string format_escaped_text(std::string_view bytes) {
    std::string out;
    for (char c : bytes) {
        switch (c) {
        case '\r': out += "\\r"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\\': out += "\\\\"; break;
        default: out += c;
        }
    }
    return out;
}

Cidr parse_network(std::string_view text) {
    auto cidr = parse_cidr(text);
    if (!cidr) fail(cidr.error().context);
    return *cidr;
}

std::string format_umask(mode_t mask) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mask));
    return text;
}

std::string format_bool(bool value) { return value ? "yes" : "no"; }

std::string format_rlimit(std::uint64_t value) {
    return value == RLIM_INFINITY ? "unlimited" : std::to_string(value);
}

std::string_view mode_name(ServeMode mode) { return mode == ServeMode::event ? "event" : "fork"; }

std::optional<ServeMode> parse_mode(std::string_view name) {
    if (name == "fork") return ServeMode::fork;
    if (name == "event") return ServeMode::event;
    return std::nullopt;
}

} // namespace forkd::config_values

// The names of the enumerations options choose from (declared in config.hpp).
namespace forkd {

std::string_view handler_name(HandlerKind kind) {
    switch (kind) {
    case HandlerKind::echo: return "echo";
    case HandlerKind::discard: return "discard";
    case HandlerKind::daytime: return "daytime";
    case HandlerKind::chargen: return "chargen";
    case HandlerKind::exec: return "exec";
    case HandlerKind::proxy: return "proxy";
    }
    return "echo";
}

std::string_view overload_name(OverloadPolicy policy) {
    return policy == OverloadPolicy::reject ? "reject" : "wait";
}

std::optional<HandlerKind> parse_handler(std::string_view name) {
    for (auto kind : {HandlerKind::echo, HandlerKind::discard, HandlerKind::daytime, HandlerKind::chargen,
                      HandlerKind::exec, HandlerKind::proxy})
        if (handler_name(kind) == name) return kind;
    return std::nullopt;
}

ProxyTarget parse_proxy_to(std::string_view text) {
    auto target = parse_proxy_target(text);
    if (!target) throw std::invalid_argument(quoted(text) + ": " + target.error().context);
    return std::move(*target);
}

std::optional<OverloadPolicy> parse_overload(std::string_view name) {
    if (name == "wait") return OverloadPolicy::wait;
    if (name == "reject") return OverloadPolicy::reject;
    return std::nullopt;
}

std::string_view mode_name(ServeMode mode) { return mode == ServeMode::event ? "event" : "fork"; }

std::optional<ServeMode> parse_mode(std::string_view name) {
    if (name == "fork") return ServeMode::fork;
    if (name == "event") return ServeMode::event;
    return std::nullopt;
}

} // namespace forkd
