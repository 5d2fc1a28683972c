// SPDX-License-Identifier: MIT
// forkd's options in one table, in the order --help and forkd -t show them. A new option is a
// field in Config (config.hpp) and a row here; its man page line in man/forkd.8 and forkd.conf.5.
#include "common/config/config_options.hpp"

#include "common/config/option_value.hpp"
#include "common/config/shell_words.hpp"

#include <algorithm>
#include <array>
#include <climits>

namespace forkd {
namespace {

using namespace option_value;
using A = OptionSpec::Arity;
namespace cv = config_values;

constexpr bool kCommandLineOnly = true, kAlsoInFile = false;
constexpr unsigned kFixed = 0;  // set_position of the options forkctl set may not change
constexpr unsigned kMaxConnections = 65536;
constexpr unsigned kMaxSeconds = 365u * 24 * 3600;
constexpr char kHandlers[] = "echo, discard, daytime, chargen, exec, proxy";
constexpr unsigned kMinBufferSize = 1024, kMaxBufferSize = 1u << 30;
constexpr char kOverloads[] = "wait, reject";
constexpr char kModes[] = "fork, event";
constexpr unsigned kMaxWorkers = 256;
constexpr char kLevels[] = "debug, info, notice, warning, err";

// agent-listen: a TCP address only (HAProxy's agent-check speaks TCP).
ListenAddress parse_agent_address(std::string_view text) {
    ListenAddress address = parse_listen_address(text);
    if (!std::holds_alternative<TcpAddress>(address))
        throw std::invalid_argument("must be HOST:PORT, [V6ADDR]:PORT or *:PORT");
    return address;
}

// The kinds of value several rows share, named as systemd names its config_parse_* functions.
template <auto... Path>
constexpr ValueRule yes_no = scalar<cv::parse_bool, cv::format_bool, Path...>;
template <auto... Path>
constexpr ValueRule connections = scalar<count<unsigned, kMaxConnections>, decimal<unsigned>, Path...>;
template <auto... Path>
constexpr ValueRule seconds = scalar<count<unsigned, kMaxSeconds>, decimal<unsigned>, Path...>;
template <auto Limit>
constexpr ValueRule rlimit = optional<cv::parse_rlimit, cv::format_rlimit, &Config::rlimits, Limit>;

constexpr std::array kOptions{
    OptionSpec{"config", 'c', "FILE", A::single, kCommandLineOnly, kFixed,
               scalar<text, text, &Config::config_file>,
               "config file (default: /etc/forkd/forkd.conf for root, none otherwise)"},
    OptionSpec{"instance", 'i', "NAME", A::single, kCommandLineOnly, kFixed,
               optional<checked<cv::check_instance_name>, text, &Config::instance>,
               "instance name: config /etc/forkd/NAME.conf, RUNDIR/NAME.pid, RUNDIR/NAME.sock"},
    OptionSpec{"foreground", 'f', "", A::flag, kAlsoInFile, kFixed, yes_no<&Config::foreground>,
               "stay in the foreground and log to stderr (systemd Type=notify)"},
    OptionSpec{"check-config", 't', "", A::flag, kCommandLineOnly, kFixed, action,
               "validate the configuration, print it and exit (0 valid, 1 invalid)"},
    OptionSpec{"version", 'V', "", A::flag, kCommandLineOnly, kFixed, action, "print the version and exit"},
    OptionSpec{"help", 'h', "", A::flag, kCommandLineOnly, kFixed, action, "print this help and exit"},
    OptionSpec{"pidfile", 0, "PATH", A::single, kAlsoInFile, kFixed,
               scalar<checked<cv::check_absolute_path>, text, &Config::pidfile>,
               "locked pidfile (default: RUNDIR/forkd.pid)"},
    OptionSpec{"control-socket", 0, "PATH", A::single, kAlsoInFile, kFixed,
               scalar<checked<cv::check_unix_socket_path>, text, &Config::control_socket>,
               "UNIX control socket for forkctl (default: RUNDIR/forkd.sock)"},
    OptionSpec{"control-group", 0, "GROUP", A::single, kAlsoInFile, kFixed,
               optional<checked<cv::check_group_exists>, text, &Config::control_group>,
               "group allowed to change state through the control socket (default: forkd if it exists)"},
    OptionSpec{"listen", 0, "ADDR", A::repeatable, kAlsoInFile, kFixed,
               list<parse_listen_address, to_string, &Config::listen>,
               "HOST:PORT, [V6ADDR]:PORT, *:PORT, unix:PATH or systemd; repeatable, at least one"},
    OptionSpec{"backlog", 0, "N", A::single, kAlsoInFile, kFixed,
               scalar<count<int, INT_MAX>, decimal<int>, &Config::backlog>,
               "listen backlog (default 0: the kernel's maximum, net.core.somaxconn)"},
    OptionSpec{"handler", 0, "NAME", A::single, kAlsoInFile, kFixed,
               scalar<one_of<parse_handler, kHandlers>, handler_name, &Config::handler>,
               "echo, discard, daytime, chargen, exec or proxy (default: echo)"},
    OptionSpec{"mode", 0, "fork|event", A::single, kAlsoInFile, kFixed,
               scalar<one_of<parse_mode, kModes>, mode_name, &Config::mode>,
               "fork: a process per connection; event: connections served inside worker processes (libevent), not with exec (default: fork)"},
    OptionSpec{"workers", 0, "N", A::single, kAlsoInFile, kFixed,
               scalar<count<unsigned, kMaxWorkers>, decimal<unsigned>, &Config::workers>,
               "event mode: worker processes; 0 = one per online CPU (default: 0)"},
    OptionSpec{"exec", 0, "\"PROG ARGS\"", A::single, kAlsoInFile, kFixed,
               scalar<cv::parse_exec, join_shell_words, &Config::exec_argv>,
               "program run per connection, words split like a shell would; implies handler exec"},
    OptionSpec{"proxy-to", 0, "ADDR", A::single, kAlsoInFile, kFixed,
               optional<parse_proxy_to, proxy_target_text, &Config::proxy_to>,
               "handler proxy: forward to HOST:PORT, [V6ADDR]:PORT or unix:PATH (required with it)"},
    OptionSpec{"proxy-connect-timeout", 0, "S", A::single, kAlsoInFile, kFixed,
               seconds<&Config::proxy_connect_timeout_s>,
               "handler proxy: seconds to reach proxy-to, then the client is closed; 0 = the kernel's (default: 10)"},
    OptionSpec{"buffer-size", 0, "BYTES", A::single, kAlsoInFile, kFixed,
               scalar<bytes<kMinBufferSize, kMaxBufferSize>, decimal<unsigned>, &Config::buffer_size>,
               "proxy: bytes buffered per connection and direction before reading the other side pauses (default: 65536)"},
    OptionSpec{"user", 0, "USER", A::single, kAlsoInFile, kFixed,
               optional<checked<cv::check_account_name>, text, &Config::user>,
               "user the handler runs as (default: the daemon's)"},
    OptionSpec{"group", 0, "GROUP", A::single, kAlsoInFile, kFixed,
               optional<checked<cv::check_account_name>, text, &Config::group>,
               "group the handler runs as (default: the user's)"},
    OptionSpec{"env", 0, "NAME=VALUE", A::repeatable, kAlsoInFile, kFixed,
               list<checked<cv::check_env_assignment>, text, &Config::env>,
               "set a variable for the handler; repeatable"},
    OptionSpec{"pass-env", 0, "NAME", A::repeatable, kAlsoInFile, kFixed,
               list<checked<cv::check_variable_name>, text, &Config::pass_env>,
               "pass a variable of the daemon's environment to the handler; repeatable"},
    OptionSpec{"max-connections", 0, "N", A::single, kAlsoInFile, 1,
               connections<&Config::limits, &RuntimeLimits::max_connections>,
               "active connections at most; 0 = unlimited (default: 256)"},
    OptionSpec{"max-per-source", 0, "N", A::single, kAlsoInFile, 2,
               connections<&Config::limits, &RuntimeLimits::max_per_source>,
               "active connections from one client address; 0 = unlimited (default: 0)"},
    OptionSpec{"overload", 0, "wait|reject", A::single, kAlsoInFile, 5,
               scalar<one_of<parse_overload, kOverloads>, overload_name, &Config::limits,
                      &RuntimeLimits::overload>,
               "at the limit: stop accepting until a slot frees, or accept and close (default: wait)"},
    OptionSpec{"allow", 0, "CIDR", A::repeatable, kAlsoInFile, kFixed, access_rule<RuleAction::allow>,
               "admit clients from this network (IPv4 or IPv6, a bare address is one host); repeatable, the first matching allow/deny decides, and with any allow the others are denied"},
    OptionSpec{"deny", 0, "CIDR", A::repeatable, kAlsoInFile, kFixed, access_rule<RuleAction::deny>,
               "refuse clients from this network at once (no handler); repeatable, ordered with allow"},
    OptionSpec{"source-prefix", 0, "V4LEN/V6LEN", A::single, kAlsoInFile, kFixed,
               scalar<cv::parse_source_prefix, cv::format_source_prefix, &Config::limits, &RuntimeLimits::source_prefix>,
               "what counts as one source for max-per-source and max-per-source-rate (default: 32/128)"},
    OptionSpec{"max-connection-rate", 0, "N/S", A::single, kAlsoInFile, 7,
               scalar<cv::parse_rate, cv::format_rate, &Config::limits, &RuntimeLimits::max_connection_rate>,
               "new connections per S seconds over all listeners, burst N; beyond it overload applies; 0 = none (default: 0)"},
    OptionSpec{"max-per-source-rate", 0, "N/S", A::single, kAlsoInFile, 8,
               scalar<cv::parse_rate, cv::format_rate, &Config::limits, &RuntimeLimits::max_per_source_rate>,
               "new connections per S seconds from one source, burst N; beyond it refused; 0 = none (default: 0)"},
    OptionSpec{"busy-message", 0, "TEXT", A::single, kAlsoInFile, 9,
               scalar<cv::parse_escaped_text, cv::format_escaped_text, &Config::busy_message>,
               "written to a client refused by a limit or a rate before it is closed; \\r \\n \\t \\\\ escapes (default: none)"},
    OptionSpec{"connection-timeout", 0, "S", A::single, kAlsoInFile, 3,
               seconds<&Config::limits, &RuntimeLimits::connection_timeout_s>,
               "a connection's whole life at most, in seconds; 0 = none (default: 0)"},
    OptionSpec{"idle-timeout", 0, "S", A::single, kAlsoInFile, 4,
               seconds<&Config::limits, &RuntimeLimits::idle_timeout_s>,
               "close a connection after S seconds without traffic; 0 = none (default: 0)"},
    OptionSpec{"shutdown-timeout", 0, "S", A::single, kAlsoInFile, kFixed, seconds<&Config::shutdown_timeout_s>,
               "on stop, seconds children may finish before SIGTERM, then SIGKILL (default: 10)"},
    OptionSpec{"log-level", 0, "LEVEL", A::single, kAlsoInFile, 6,
               scalar<one_of<log::parse_level, kLevels>, log::level_name, &Config::log_level>,
               "debug, info, notice, warning or err (default: info)"},
    OptionSpec{"log-target", 0, "syslog|stderr|FILE", A::single, kAlsoInFile, kFixed,
               optional<checked<cv::check_log_target>, text, &Config::log_target>,
               "where the log goes; FILE: appended with timestamps, reopened on SIGUSR1 (default: stderr with -f, else syslog)"},
    OptionSpec{"umask", 0, "MODE", A::single, kAlsoInFile, kFixed,
               scalar<cv::parse_umask, cv::format_umask, &Config::umask>,
               "umask of exec'd handlers, octal (default: 022)"},
    OptionSpec{"chdir", 0, "DIR", A::single, kAlsoInFile, kFixed,
               scalar<checked<cv::check_absolute_path>, text, &Config::chdir>,
               "working directory of exec'd handlers, absolute (default: /)"},
    OptionSpec{"rlimit-cpu", 0, "N", A::single, kAlsoInFile, kFixed, rlimit<&ResourceLimits::cpu>,
               "exec'd handlers: RLIMIT_CPU in seconds, or unlimited"},
    OptionSpec{"rlimit-as", 0, "N", A::single, kAlsoInFile, kFixed, rlimit<&ResourceLimits::as>,
               "exec'd handlers: RLIMIT_AS in bytes, or unlimited"},
    OptionSpec{"rlimit-nofile", 0, "N", A::single, kAlsoInFile, kFixed, rlimit<&ResourceLimits::nofile>,
               "exec'd handlers: RLIMIT_NOFILE, or unlimited"},
    OptionSpec{"rlimit-nproc", 0, "N", A::single, kAlsoInFile, kFixed, rlimit<&ResourceLimits::nproc>,
               "exec'd handlers: RLIMIT_NPROC, or unlimited"},
    OptionSpec{"rlimit-fsize", 0, "N", A::single, kAlsoInFile, kFixed, rlimit<&ResourceLimits::fsize>,
               "exec'd handlers: RLIMIT_FSIZE in bytes, or unlimited"},
    OptionSpec{"rlimit-core", 0, "N", A::single, kAlsoInFile, kFixed, rlimit<&ResourceLimits::core>,
               "exec'd handlers: RLIMIT_CORE in bytes, or unlimited"},
    OptionSpec{"watch-config", 0, "yes|no", A::single, kAlsoInFile, kFixed, yes_no<&Config::watch_config>,
               "reload by itself when the config file changes (default: no)"},
    OptionSpec{"metrics-listen", 0, "ADDR", A::single, kAlsoInFile, kFixed,
               optional<cv::parse_metrics_address, to_string, &Config::metrics_listen>,
               "HTTP endpoint for Prometheus (GET /metrics): HOST:PORT or unix:PATH (default: none)"},
    OptionSpec{"proxy-protocol", 0, "yes|no", A::single, kAlsoInFile, kFixed, yes_no<&Config::proxy_protocol>,
               "TCP clients send a PROXY protocol header (v1 or v2) first: its source is the client (default: no)"},
    OptionSpec{"proxy-from", 0, "CIDR", A::repeatable, kAlsoInFile, kFixed,
               list<checked<cv::check_cidr>, text, &Config::proxy_from>,
               "peers allowed to send a PROXY header, others refused; repeatable (default: any)"},
    OptionSpec{"proxy-header-timeout", 0, "S", A::single, kAlsoInFile, kFixed,
               seconds<&Config::proxy_header_timeout_s>,
               "seconds a client has to send its whole PROXY header (default: 5)"},
    OptionSpec{"agent-listen", 0, "ADDR", A::single, kAlsoInFile, kFixed,
               optional<parse_agent_address, to_string, &Config::agent_listen>,
               "HOST:PORT of an HAProxy agent-check responder: up ready N%, drain or down (default: none)"},
    OptionSpec{"agent-drain-delay", 0, "S", A::single, kAlsoInFile, kFixed,
               seconds<&Config::agent_drain_delay_s>,
               "with agent-listen, drain accepts this long after the agent says drain (default: 6)"},
};

std::string option_column(const OptionSpec& spec) {
    std::string text = spec.short_name ? std::string("-") + spec.short_name + ", " : "    ";
    text += "--";
    text += spec.name;
    if (!spec.argument.empty()) {
        text += ' ';
        text += spec.argument;
    }
    return text;
}

} // namespace

std::span<const OptionSpec> option_specs() { return kOptions; }

const OptionSpec* find_option(std::string_view name) {
    auto it = std::find_if(kOptions.begin(), kOptions.end(),
                           [&](const OptionSpec& spec) { return spec.name == name; });
    return it == kOptions.end() ? nullptr : &*it;
}

std::vector<std::string_view> runtime_settable_options() {
    std::vector<const OptionSpec*> settable;
    for (const auto& spec : kOptions)
        if (spec.set_position != kFixed) settable.push_back(&spec);
    std::sort(settable.begin(), settable.end(),
              [](const OptionSpec* a, const OptionSpec* b) { return a->set_position < b->set_position; });
    std::vector<std::string_view> names;
    for (const OptionSpec* spec : settable) names.push_back(spec->name);
    return names;
}

std::string usage_text() {
    std::size_t width = 0;
    for (const auto& spec : kOptions) width = std::max(width, option_column(spec).size());
    std::string text =
        "Usage: forkd [OPTION]...\n"
        "Fork-per-connection super-server: one handler process per accepted connection.\n\n";
    for (const auto& spec : kOptions) {
        std::string column = option_column(spec);
        text += "  " + column + std::string(width - column.size() + 2, ' ');
        text += spec.help;
        text += '\n';
    }
    text +=
        "\nEvery option but -c, -i, -t, -V and -h may also be set in the config file as\n"
        "\"name = value\"; the command line wins, and listen, env and pass-env accumulate.\n"
        "RUNDIR is /run/forkd for root, else $XDG_RUNTIME_DIR/forkd or /tmp/forkd-UID.\n";
    return text;
}

} // namespace forkd
