// SPDX-License-Identifier: MIT
// The log sinks. Every line leaves in one write() (stderr) or one syslog() call, so lines from
// the master and its children never interleave.
#include "common/log.hpp"

#include "common/base/write_all.hpp"

#include "common/base/unique_fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace forkd::log {
namespace {

Sink g_sink = Sink::stderr_plain;
Level g_level = Level::info;
std::string g_syslog_ident;  // openlog() keeps the pointer: it must outlive the log
std::string g_file_path;
UniqueFd g_file;
StructuredSink g_structured = nullptr;

Result<UniqueFd> open_log_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
    if (!fd) return system_error("log-target " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return system_error("log-target " + path);
    // Not a device, FIFO or someone else's file (or a hard link to one) that forkd, as root,
    // would append to.
    if (!S_ISREG(st.st_mode)) return failure("log-target " + path + ": not a regular file");
    if (st.st_uid != ::geteuid() || st.st_nlink != 1)
        return failure("log-target " + path + ": owned by another user or hard-linked");
    return fd;
}

bool needs_quotes(std::string_view value) {
    if (value.empty()) return true;
    for (unsigned char c : value)
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
    return false;
}

void append_quoted(std::string& out, std::string_view value) {
    out += '"';
    for (unsigned char c : value) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < ' ' || c == 0x7f) {
                char hex[8];
                std::snprintf(hex, sizeof hex, "\\x%02x", c);
                out += hex;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += '"';
}

void append_value(std::string& out, std::string_view value) {
    if (needs_quotes(value))
        append_quoted(out, value);
    else
        out += value;
}


} // namespace

Field::Field(std::string_view k, double v) : key(k) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    value = buf;
}

std::optional<Level> parse_level(std::string_view name) {
    if (name == "debug") return Level::debug;
    if (name == "info") return Level::info;
    if (name == "notice") return Level::notice;
    if (name == "warning") return Level::warning;
    if (name == "err") return Level::err;
    return std::nullopt;
}

std::string_view level_name(Level level) {
    switch (level) {
    case Level::err: return "err";
    case Level::warning: return "warning";
    case Level::notice: return "notice";
    case Level::info: return "info";
    case Level::debug: return "debug";
    }
    return "info";
}

bool stderr_is_journal() {
    const char* journal = std::getenv("JOURNAL_STREAM");
    if (!journal || !*journal) return false;
    // "DEVICE:INODE" of the journal's stream: only when stderr is still that stream (not a
    // terminal or file a child of the service redirected it to) do <N> prefixes belong there.
    unsigned long long device = 0, inode = 0;
    char end = 0;
    if (std::sscanf(journal, "%llu:%llu%c", &device, &inode, &end) != 2) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == device &&
           static_cast<unsigned long long>(st.st_ino) == inode;
}

void use_stderr() {
    if (g_sink == Sink::syslog) closelog();
    g_file.reset();
    g_sink = stderr_is_journal() ? Sink::stderr_journal : Sink::stderr_plain;
}

void set_structured_sink(StructuredSink sink) { g_structured = sink; }

void use_syslog(const char* ident) {
    g_syslog_ident = ident ? ident : "forkd";
    openlog(g_syslog_ident.c_str(), LOG_PID | LOG_NDELAY, LOG_DAEMON);
    g_sink = Sink::syslog;
}

Status use_file(const std::string& path) {
    auto opened = open_log_file(path);
    if (!opened) return opened.error();
    if (g_sink == Sink::syslog) closelog();
    g_file = std::move(opened.value());
    g_file_path = path;
    g_sink = Sink::file;
    return {};
}

Status reopen_file() {
    if (g_sink != Sink::file) return {};
    auto opened = open_log_file(g_file_path);
    if (!opened) return opened.error();
    g_file = std::move(opened.value());
    return {};
}

bool syslog_reachable() {
    const char* override_path = std::getenv("FORKD_TEST_SYSLOG_PATH");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s",
                  override_path ? override_path : "/dev/log");
    // glibc's syslog() tries a datagram socket, then a stream one.
    for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
        UniqueFd probe(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
        if (probe && ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address),
                               sizeof address) == 0)
            return true;
    }
    return false;
}

std::string rfc3339_now() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    tm local{};
    localtime_r(&now.tv_sec, &local);
    char stamp[40];
    const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &local);
    const long offset_min = local.tm_gmtoff / 60;
    std::snprintf(stamp + n, sizeof stamp - n, ".%03ld%c%02ld:%02ld", now.tv_nsec / 1000000,
                  offset_min < 0 ? '-' : '+', std::labs(offset_min) / 60, std::labs(offset_min) % 60);
    return stamp;
}

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }
bool enabled(Level level) { return static_cast<int>(level) <= static_cast<int>(g_level); }

std::string format(std::string_view event, std::span<const Field> fields) {
    std::string out;
    out.reserve(64);
    out += "event=";
    append_value(out, event);
    for (const Field& field : fields) {
        out += ' ';
        out += field.key;
        out += '=';
        append_value(out, field.value);
    }
    return out;
}

void write(Level level, std::string_view event, std::span<const Field> fields) {
    if (!enabled(level)) return;
    const int saved_errno = errno;  // callers log and then still look at errno
    std::string line = format(event, fields);
    switch (g_sink) {
    case Sink::syslog:
        syslog(static_cast<int>(level), "%s", line.c_str());
        break;
    case Sink::file:
        line = rfc3339_now() + " forkd[" + std::to_string(::getpid()) + "] " +
               std::string(level_name(level)) + ": " + line + '\n';
        (void)write_all(g_file.get(), line);
        break;
    case Sink::stderr_journal:
        if (g_structured && g_structured(level, event, fields, line)) break;
        // "<N>" built in place: GCC 12 warns falsely (-Wrestrict) on "<" + std::string&&.
        line.insert(0, 1, '>');
        line.insert(0, std::to_string(static_cast<int>(level)));
        line.insert(0, 1, '<');
        [[fallthrough]];
    case Sink::stderr_plain:
        line += '\n';
        // A line shorter than PIPE_BUF goes out in one write(); a failing log has nowhere left
        // to be reported.
        (void)write_all(STDERR_FILENO, line);
        break;
    }
    errno = saved_errno;
}

} // namespace forkd::log
