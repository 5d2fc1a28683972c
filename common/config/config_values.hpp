// SPDX-License-Identifier: MIT
#pragma once
// One parser per kind of config value. Each throws std::invalid_argument with the reason only
// ("must be a non-negative integer"); the caller adds "FILE:LINE: option 'NAME': ".
#include "common/base/runtime_limits.hpp"
#include "daemon/admission/cidr.hpp"
#include "common/address.hpp"

#include <sys/types.h>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forkd::config_values {

// Decimal digits only, 0..max.
unsigned parse_count(std::string_view text, unsigned max);
// yes/no, true/false, on/off, 1/0.
bool parse_bool(std::string_view text);
// Octal, 1 to 4 digits, at most 0777 ("027", "0027").
mode_t parse_umask(std::string_view text);
// A number or "unlimited" (returned as RLIM_INFINITY).
std::uint64_t parse_rlimit(std::string_view text);
// Decimal bytes, min..max (buffer-size).
unsigned parse_byte_count(std::string_view text, unsigned min, unsigned max);
// exec: shell words; argv[0] an absolute path to an executable regular file.
std::vector<std::string> parse_exec(std::string_view text);
// metrics-listen: HOST:PORT, [V6]:PORT, *:PORT or unix:PATH (not systemd).
ListenAddress parse_metrics_address(std::string_view text);

// A CIDR for proxy-from: ADDRESS or ADDRESS/PREFIX, IPv4 or IPv6.
void check_cidr(std::string_view text);

void check_variable_name(std::string_view name);   // [A-Za-z_][A-Za-z0-9_]*
void check_env_assignment(std::string_view text);  // NAME=VALUE
void check_absolute_path(std::string_view path);
void check_unix_socket_path(std::string_view path);  // absolute and fits sun_path
void check_log_target(std::string_view target);      // syslog, stderr or an absolute path
void check_instance_name(std::string_view name);     // usable in a file name
void check_account_name(std::string_view name);      // user or group: plausible name or number
void check_group_exists(std::string_view name);      // by name or numeric gid

// "N/S": N new connections per S seconds (1..1000000 per 1..86400 s), or "0" for none.
Rate parse_rate(std::string_view text);
std::string format_rate(Rate rate);  // "10/60" or "0"
// "V4LEN/V6LEN": 0..32 and 0..128.
SourcePrefix parse_source_prefix(std::string_view text);
std::string format_source_prefix(SourcePrefix prefix);  // "24/64"
// C-style escapes \r \n \t \\ and nothing else after a backslash; at most 1024 bytes.
std::string parse_escaped_text(std::string_view text);
std::string format_escaped_text(std::string_view bytes);
// allow/deny: a CIDR network or a bare address (parse_cidr's reasons).
Cidr parse_network(std::string_view text);

std::string format_umask(mode_t mask);   // "0022"
std::string format_bool(bool value);     // "yes" / "no"
std::string format_rlimit(std::uint64_t value);  // number or "unlimited"

} // namespace forkd::config_values
