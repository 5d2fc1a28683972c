// SPDX-License-Identifier: MIT
#pragma once
// One parser per kind of config value. Each throws std::invalid_argument with the reason only
// ("must be a non-negative integer"); the caller adds "FILE:LINE: option 'NAME': ".
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
// exec: shell words; argv[0] an absolute path to an executable regular file.
std::vector<std::string> parse_exec(std::string_view text);

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

std::string format_umask(mode_t mask);   // "0022"
std::string format_bool(bool value);     // "yes" / "no"
std::string format_rlimit(std::uint64_t value);  // number or "unlimited"

} // namespace forkd::config_values
