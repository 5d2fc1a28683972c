// SPDX-License-Identifier: MIT
#include "daemon/handlers/builtin_handlers.hpp"

#include "daemon/core/scoreboard.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

namespace forkd {
namespace {

constexpr int exit_ok = 0;
constexpr int exit_io_error = 1;
constexpr int exit_idle = 2;

// How a read or write ended when it did not transfer anything.
enum class End { none, hangup, idle, error };

// The connection is a blocking socket. idle-timeout is the kernel's (SO_RCVTIMEO and
// SO_SNDTIMEO): a read or write that waits longer fails with EAGAIN. That costs one setsockopt
// per connection instead of a poll before every read and write.
class Connection {
public:
    explicit Connection(const BuiltinContext& c) : c_(c) {
        if (!c_.idle_timeout_s) return;
        const timeval idle{static_cast<time_t>(c_.idle_timeout_s), 0};
        setsockopt(c_.fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
        setsockopt(c_.fd, SOL_SOCKET, SO_SNDTIMEO, &idle, sizeof idle);
    }

    // Bytes read, or 0 with `end` set (hangup at EOF or reset, idle, error).
    size_t read_some(char* buf, size_t len, End& end) const {
        for (;;) {
            const ssize_t n = read(c_.fd, buf, len);
            if (n > 0) {
                account(std::uint64_t(n), 0);
                return size_t(n);
            }
            if (n < 0 && errno == EINTR) continue;
            end = ended_by(n);
            return 0;
        }
    }

    // Writes everything; End::none on success.
    End write_all(const char* data, size_t len) const {
        while (len > 0) {
            const ssize_t n = send(c_.fd, data, len, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return n == 0 ? End::hangup : ended_by(n);
            account(0, std::uint64_t(n));
            data += n;
            len -= size_t(n);
        }
        return End::none;
    }

private:
    static End ended_by(ssize_t n) {
        if (n == 0) return End::hangup;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return End::idle;
        if (errno == ECONNRESET || errno == EPIPE) return End::hangup;
        return End::error;
    }
    void account(std::uint64_t in, std::uint64_t out) const {
        if (c_.scoreboard) c_.scoreboard->add_bytes(c_.slot, in, out);
    }
    const BuiltinContext& c_;
};

int exit_for(End end) {
    switch (end) {
    case End::idle: return exit_idle;
    case End::error: return exit_io_error;
    default: return exit_ok;
    }
}

// echo and discard: read until EOF; echo sends every byte back.
int serve_stream(const Connection& conn, bool echo) {
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

int serve_daytime(const Connection& conn) {
    const std::string text = daytime_text(std::time(nullptr));
    return exit_for(conn.write_all(text.data(), text.size()));
}

// Sends the pattern until the client leaves; anything it sends is read and dropped.
int serve_chargen(const Connection& conn, int fd) {
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

std::string chargen_line(std::uint64_t n) {
    constexpr int printable = 95;  // ' ' .. '~'
    constexpr int width = 72;
    std::string line(width + 2, ' ');
    for (int i = 0; i < width; ++i) line[size_t(i)] = char(' ' + (n + std::uint64_t(i)) % printable);
    line[width] = '\r';
    line[width + 1] = '\n';
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

int run_builtin_handler(HandlerKind kind, const BuiltinContext& context) {
    Connection conn(context);
    switch (kind) {
    case HandlerKind::echo: return serve_stream(conn, true);
    case HandlerKind::discard: return serve_stream(conn, false);
    case HandlerKind::daytime: return serve_daytime(conn);
    case HandlerKind::chargen: return serve_chargen(conn, context.fd);
    case HandlerKind::exec: break;
    }
    return exit_io_error;
}

} // namespace forkd
