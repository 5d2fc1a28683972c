// SPDX-License-Identifier: MIT
#include "daemon/handlers/builtin_handlers.hpp"

#include "daemon/core/scoreboard.hpp"
#include "daemon/core/tcp_activity.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>
#include <optional>

namespace forkd {
namespace {

constexpr int exit_ok = builtin_exit_ok;
constexpr int exit_io_error = builtin_exit_io_error;
constexpr int exit_idle = builtin_exit_idle;

// How a read or write ended when it did not transfer anything.
enum class End { none, hangup, idle, error };

// The connection is a blocking socket. idle-timeout wakes on the kernel's socket timeouts
// (SO_RCVTIMEO and SO_SNDTIMEO: one setsockopt each per connection instead of a poll before
// every read and write), but the verdict is TCP_INFO's: a send buffer that still takes bytes is
// no progress when nothing reaches the client (it stopped reading), so when a timeout fires or
// cuts a send short, the connection is idle only if no data moved on the wire for the whole
// idle-timeout; otherwise the timeouts are re-armed with what is left of it. On a UNIX socket,
// with no kernel view, the timeout is the verdict.
class Connection {
public:
    explicit Connection(const BuiltinContext& c) : c_(c), idle_ms_(c.idle_timeout_s * 1000u) {
        if (idle_ms_) arm_timeouts(idle_ms_);
    }

    // Bytes read, or 0 with `end` set (hangup at EOF or reset, idle, error).
    size_t read_some(char* buf, size_t len, End& end) {
        for (;;) {
            const ssize_t n = read(c_.fd, buf, len);
            if (n > 0) {
                account(std::uint64_t(n), 0);
                return size_t(n);
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && timed_out() && !idle_by_kernel().value_or(true)) continue;
            end = ended_by(n);
            return 0;
        }
    }

    // Writes everything; End::none on success.
    End write_all(const char* data, size_t len) {
        while (len > 0) {
            const ssize_t n = send(c_.fd, data, len, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && timed_out() && !idle_by_kernel().value_or(true)) continue;
            if (n <= 0) return n == 0 ? End::hangup : ended_by(n);
            account(0, std::uint64_t(n));
            data += n;
            len -= size_t(n);
            // A blocking send returns short when its timeout fired after some bytes went into
            // the buffer: whether they went further is the kernel's to say.
            if (len > 0 && idle_ms_ && idle_by_kernel().value_or(false)) return End::idle;
        }
        return End::none;
    }

    // At the end: bytes_out as the kernel counts what left for the client (written bytes still
    // in the socket buffer never reached it), where it tells (TCP).
    void publish_final_traffic() const {
        if (!c_.scoreboard) return;
        if (const auto activity = read_tcp_activity(c_.fd))
            c_.scoreboard->set_bytes(c_.slot, in_, std::min(out_, activity->bytes_out));
    }

private:
    static bool timed_out() { return errno == EAGAIN || errno == EWOULDBLOCK; }
    static End ended_by(ssize_t n) {
        if (n == 0) return End::hangup;
        if (timed_out()) return End::idle;
        if (errno == ECONNRESET || errno == EPIPE) return End::hangup;
        return End::error;
    }
    // nullopt: no kernel view (not TCP). false: data moved within idle-timeout; the timeouts are
    // re-armed to fire when it would be over.
    std::optional<bool> idle_by_kernel() const {
        const int saved = errno;
        const auto activity = read_tcp_activity(c_.fd);
        errno = saved;
        if (!activity) return std::nullopt;
        if (activity->idle_ms >= idle_ms_) return true;
        arm_timeouts(idle_ms_ - activity->idle_ms);
        return false;
    }
    void arm_timeouts(unsigned ms) const {
        ms = std::max(ms, min_timeout_ms);  // a zero timeval would mean "wait forever"
        const timeval after{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
        setsockopt(c_.fd, SOL_SOCKET, SO_RCVTIMEO, &after, sizeof after);
        setsockopt(c_.fd, SOL_SOCKET, SO_SNDTIMEO, &after, sizeof after);
    }
    void account(std::uint64_t in, std::uint64_t out) {
        in_ += in;
        out_ += out;
        if (c_.scoreboard) c_.scoreboard->add_bytes(c_.slot, in, out);
    }
    static constexpr unsigned min_timeout_ms = 10;
    const BuiltinContext& c_;
    const unsigned idle_ms_;
    std::uint64_t in_ = 0, out_ = 0;
};

int exit_for(End end) {
    switch (end) {
    case End::idle: return exit_idle;
    case End::error: return exit_io_error;
    default: return exit_ok;
    }
}

// echo and discard: read until EOF; echo sends every byte back.
int serve_stream(Connection& conn, bool echo) {
    char buf[16384];
    for (;;) {
        End end = End::none;
        const size_t n = conn.read_some(buf, sizeof buf, end);
        if (n == 0) return exit_for(end);
        if (echo) {
            if (End e = conn.write_all(buf, n); e != End::none) return exit_for(e);
        }
    }
}

int serve_daytime(Connection& conn) {
    const std::string text = daytime_text(std::time(nullptr));
    return exit_for(conn.write_all(text.data(), text.size()));
}

// Sends the pattern until the client leaves; anything it sends is read and dropped.
int serve_chargen(Connection& conn, int fd) {
    std::string block;
    std::uint64_t line = 0;
    char sink[4096];
    for (;;) {
        block.clear();
        for (int i = 0; i < 64; ++i) block += chargen_line(line++);
        for (;;) {
            ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
            if (n == 0) return exit_ok;
            if (n < 0) break;
        }
        if (End e = conn.write_all(block.data(), block.size()); e != End::none) return exit_for(e);
    }
}

} // namespace

void chargen_line_into(std::uint64_t n, char* out) {
    constexpr int printable = 95;  // ' ' .. '~'
    constexpr int width = 72;
    for (int i = 0; i < width; ++i) out[i] = char(' ' + (n + std::uint64_t(i)) % printable);
    out[width] = '\r';
    out[width + 1] = '\n';
}

std::string chargen_line(std::uint64_t n) {
    std::string line(chargen_line_size, ' ');
    chargen_line_into(n, line.data());
    return line;
}

std::string daytime_text(std::int64_t unix_time) {
    std::time_t t = std::time_t(unix_time);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[128];
    size_t n = std::strftime(buf, sizeof buf, "%A, %B %d, %Y %H:%M:%S-%Z\r\n", &tm);
    return std::string(buf, n);
}

namespace {

int serve(HandlerKind kind, Connection& conn, int fd) {
    switch (kind) {
    case HandlerKind::echo: return serve_stream(conn, true);
    case HandlerKind::discard: return serve_stream(conn, false);
    case HandlerKind::daytime: return serve_daytime(conn);
    case HandlerKind::chargen: return serve_chargen(conn, fd);
    case HandlerKind::exec:
    case HandlerKind::proxy: break;  // not built-in copies: exec'd, or daemon/proxy
    }
    return exit_io_error;
}

} // namespace

int run_builtin_handler(HandlerKind kind, const BuiltinContext& context) {
    Connection conn(context);
    const int code = serve(kind, conn, context.fd);
    conn.publish_final_traffic();
    return code;
}

} // namespace forkd
