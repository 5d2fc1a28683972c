// SPDX-License-Identifier: MIT
#pragma once
// forkd's configuration: command line and config file (Boost.ProgramOptions), merged with the
// command line winning, validated into one typed value. Errors read
//   "FILE:LINE: option 'NAME': REASON"   (or "command line: option 'NAME': REASON")
// and every error in the file is collected before the load fails.
#include "common/address.hpp"
#include "common/base/handler_kind.hpp"
#include "common/base/proxy_target.hpp"
#include "common/base/runtime_limits.hpp"
#include "common/log.hpp"
#include "daemon/admission/access_rules.hpp"

#include <sys/types.h>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace forkd {

std::string_view handler_name(HandlerKind kind);
std::string_view overload_name(OverloadPolicy policy);
std::optional<HandlerKind> parse_handler(std::string_view name);
std::optional<OverloadPolicy> parse_overload(std::string_view name);
// proxy-to: HOST:PORT, [V6]:PORT, unix:PATH; throws std::invalid_argument with the reason.
ProxyTarget parse_proxy_to(std::string_view text);

// How connections are served: a process each (fork), or inside event-loop workers (event).
enum class ServeMode { fork, event };
std::string_view mode_name(ServeMode mode);
std::optional<ServeMode> parse_mode(std::string_view name);

// One resource limit for exec'd handlers; nullopt = leave the daemon's.
struct ResourceLimits {
    std::optional<std::uint64_t> cpu, as, nofile, nproc, fsize, core;
};

struct Config {
    std::string config_file;                // "" when none
    std::optional<std::string> instance;
    bool foreground = false;
    std::string pidfile;                    // defaults resolved (see runtime_paths)
    std::string control_socket;
    std::optional<std::string> control_group;  // nullopt: "forkd" if it exists
    std::vector<ListenAddress> listen;      // at least one
    int backlog = 0;                        // 0 = the kernel's maximum (net.core.somaxconn)
    HandlerKind handler = HandlerKind::echo;
    std::vector<std::string> exec_argv;     // exec: argv[0] is an absolute, executable path
    std::optional<ProxyTarget> proxy_to;    // proxy: where to; required with handler = proxy
    unsigned proxy_connect_timeout_s = 10;  // proxy: seconds to reach proxy_to; 0 = the kernel's
    unsigned buffer_size = 65536;           // proxy (and event mode): per connection and direction
    std::optional<std::string> user, group;
    std::vector<std::string> env;           // NAME=VALUE
    std::vector<std::string> pass_env;      // NAME
    mode_t umask = 022;                     // of exec'd handlers
    std::string chdir = "/";                // of exec'd handlers
    ResourceLimits rlimits;
    ServeMode mode = ServeMode::fork;
    unsigned workers = 0;                   // event mode: worker processes; 0 = online CPUs
    RuntimeLimits limits;
    // allow and deny, interleaved in the order written (the command line's first).
    std::vector<AccessRule> access_rules;
    std::string busy_message;               // unescaped bytes; "" = none
    unsigned shutdown_timeout_s = 10;
    log::Level log_level = log::Level::info;
    std::optional<std::string> log_target;  // syslog, stderr or a file; nullopt: by -f
    bool watch_config = false;
    std::optional<ListenAddress> metrics_listen;  // the HTTP /metrics endpoint; none by default
    // Behind a load balancer (man forkd.conf, "Behind a load balancer").
    bool proxy_protocol = false;            // TCP clients send a PROXY v1/v2 header first
    std::vector<std::string> proxy_from;    // CIDRs allowed to send one; empty: any peer
    unsigned proxy_header_timeout_s = 5;
    std::optional<ListenAddress> agent_listen;  // HAProxy agent-check responder (TCP)
    unsigned agent_drain_delay_s = 6;       // drain: agent says drain, accepting goes on this long
    // Where each option given was written ("FILE:LINE" or "command line"), so that checks made
    // after the load (user, group, chdir: see daemon/exec/exec_plan) point at the line too.
    std::map<std::string, std::string, std::less<>> origins;

    // Where `option` was written; the config file ("" without one) when it was not.
    std::string origin_of(std::string_view option) const;
};

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What the command line asked for, kept so that a reload re-applies it over the new file.
struct CommandLine {
    enum class Action { run, check_config, version, help } action = Action::run;
    std::string help_text;
    // Opaque storage of the parsed command-line options (Boost variables); see config.cpp.
    std::vector<std::pair<std::string, std::string>> options;  // name, value in order given
};

// Parses argv. Throws ConfigError for unknown options or bad syntax.
CommandLine parse_command_line(int argc, const char* const* argv);
// Reads the config file the command line names (or the default one) and merges.
// Throws ConfigError with every problem found, one per line.
Config load_config(const CommandLine& command_line);
// Applies one option's value to a loaded configuration with the same checks the file gets
// (forkctl set). Throws std::invalid_argument with the reason ("'x' is not a non-negative
// integer"); an unknown name is refused the same way.
void apply_option(Config& config, std::string_view name, const std::string& value);
// "name = value" lines of the effective configuration, as `forkd -t` prints them.
std::string render_config(const Config& config);

} // namespace forkd
