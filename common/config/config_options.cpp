// SPDX-License-Identifier: MIT
// forkd's options in one table, in the order --help and forkd -t show them.
#include "common/config/config_options.hpp"

#include <algorithm>
#include <array>

namespace forkd {
namespace {

using A = OptionSpec::Arity;

constexpr std::array kOptions{
    OptionSpec{"config", 'c', "FILE", A::single, true,
               "config file (default: /etc/forkd/forkd.conf for root, none otherwise)"},
    OptionSpec{"instance", 'i', "NAME", A::single, true,
               "instance name: config /etc/forkd/NAME.conf, RUNDIR/NAME.pid, RUNDIR/NAME.sock"},
    OptionSpec{"foreground", 'f', "", A::flag, false,
               "stay in the foreground and log to stderr (systemd Type=notify)"},
    OptionSpec{"check-config", 't', "", A::flag, true,
               "validate the configuration, print it and exit (0 valid, 1 invalid)"},
    OptionSpec{"version", 'V', "", A::flag, true, "print the version and exit"},
    OptionSpec{"help", 'h', "", A::flag, true, "print this help and exit"},
    OptionSpec{"pidfile", 0, "PATH", A::single, false, "locked pidfile (default: RUNDIR/forkd.pid)"},
    OptionSpec{"control-socket", 0, "PATH", A::single, false,
               "UNIX control socket for forkctl (default: RUNDIR/forkd.sock)"},
    OptionSpec{"control-group", 0, "GROUP", A::single, false,
               "group allowed to change state through the control socket (default: forkd if it exists)"},
    OptionSpec{"listen", 0, "ADDR", A::repeatable, false,
               "HOST:PORT, [V6ADDR]:PORT, *:PORT, unix:PATH or systemd; repeatable, at least one"},
    OptionSpec{"backlog", 0, "N", A::single, false,
               "listen backlog (default 0: the kernel's maximum, net.core.somaxconn)"},
    OptionSpec{"handler", 0, "NAME", A::single, false,
               "echo, discard, daytime, chargen or exec (default: echo)"},
    OptionSpec{"exec", 0, "\"PROG ARGS\"", A::single, false,
               "program run per connection, words split like a shell would; implies handler exec"},
    OptionSpec{"user", 0, "USER", A::single, false, "user the handler runs as (default: the daemon's)"},
    OptionSpec{"group", 0, "GROUP", A::single, false, "group the handler runs as (default: the user's)"},
    OptionSpec{"env", 0, "NAME=VALUE", A::repeatable, false, "set a variable for the handler; repeatable"},
    OptionSpec{"pass-env", 0, "NAME", A::repeatable, false,
               "pass a variable of the daemon's environment to the handler; repeatable"},
    OptionSpec{"max-connections", 0, "N", A::single, false,
               "active connections at most; 0 = unlimited (default: 256)"},
    OptionSpec{"max-per-source", 0, "N", A::single, false,
               "active connections from one client address; 0 = unlimited (default: 0)"},
    OptionSpec{"overload", 0, "wait|reject", A::single, false,
               "at the limit: stop accepting until a slot frees, or accept and close (default: wait)"},
    OptionSpec{"connection-timeout", 0, "S", A::single, false,
               "a connection's whole life at most, in seconds; 0 = none (default: 0)"},
    OptionSpec{"idle-timeout", 0, "S", A::single, false,
               "built-in handlers: close after S seconds without traffic; 0 = none (default: 0)"},
    OptionSpec{"shutdown-timeout", 0, "S", A::single, false,
               "on stop, seconds children may finish before SIGTERM, then SIGKILL (default: 10)"},
    OptionSpec{"log-level", 0, "LEVEL", A::single, false,
               "debug, info, notice, warning or err (default: info)"},
    OptionSpec{"umask", 0, "MODE", A::single, false, "umask of exec'd handlers, octal (default: 022)"},
    OptionSpec{"chdir", 0, "DIR", A::single, false,
               "working directory of exec'd handlers, absolute (default: /)"},
    OptionSpec{"rlimit-cpu", 0, "N", A::single, false, "exec'd handlers: RLIMIT_CPU in seconds, or unlimited"},
    OptionSpec{"rlimit-as", 0, "N", A::single, false, "exec'd handlers: RLIMIT_AS in bytes, or unlimited"},
    OptionSpec{"rlimit-nofile", 0, "N", A::single, false, "exec'd handlers: RLIMIT_NOFILE, or unlimited"},
    OptionSpec{"rlimit-nproc", 0, "N", A::single, false, "exec'd handlers: RLIMIT_NPROC, or unlimited"},
    OptionSpec{"rlimit-fsize", 0, "N", A::single, false,
               "exec'd handlers: RLIMIT_FSIZE in bytes, or unlimited"},
    OptionSpec{"rlimit-core", 0, "N", A::single, false,
               "exec'd handlers: RLIMIT_CORE in bytes, or unlimited"},
    OptionSpec{"watch-config", 0, "yes|no", A::single, false,
               "reload by itself when the config file changes (default: no)"},
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
