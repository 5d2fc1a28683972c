#include "daemon/builtin_handlers.hpp"

#include "daemon/scoreboard.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

namespace forkd {
namespace {

constexpr int exit_ok = 0;
constexpr int exit_io_error = 1;
constexpr int exit_idle = 2;

enum class Wait { ready, hangup, idle, error };

class Connection {
public:
    explicit Connection(const BuiltinContext& c) : c_(c) {}

    // Waits for `events` (POLLIN/POLLOUT) at most idle-timeout.
    Wait wait(short events) const {
        pollfd p{c_.fd, events, 0};
        const int timeout_ms = c_.idle_timeout_s ? int(c_.idle_timeout_s) * 1000 : -1;
        for (;;) {
            int n = poll(&p, 1, timeout_ms);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return Wait::error;
            if (n == 0) return Wait::idle;
            if (p.revents & events) return Wait::ready;
            return (p.revents & (POLLHUP | POLLERR)) ? Wait::hangup : Wait::ready;
        }
    }

    // Bytes read (0 at EOF), -1 on error.
    ssize_t read_some(char* buf, size_t len) const {
        ssize_t n;
        do n = read(c_.fd, buf, len); while (n < 0 && errno == EINTR);
        if (n > 0) account(std::uint64_t(n), 0);
        return n;
    }

    // Writes everything, waiting for room at most idle-timeout each time.
    Wait write_all(const char* data, size_t len) const {
        while (len > 0) {
            if (Wait w = wait(POLLOUT); w != Wait::ready) return w;
            ssize_t n = send(c_.fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n < 0) return Wait::hangup;
            account(0, std::uint64_t(n));
            data += n;
            len -= size_t(n);
        }
        return Wait::ready;
    }

private:
    void account(std::uint64_t in, std::uint64_t out) const {
        if (!c_.scoreboard) return;
        c_.scoreboard->add_bytes(c_.slot, in, out);
        c_.scoreboard->touch(c_.slot);
    }
    const BuiltinContext& c_;
};

int exit_for(Wait w) {
    switch (w) {
    case Wait::idle: return exit_idle;
    case Wait::error: return exit_io_error;
    default: return exit_ok;
    }
}

// echo and discard: read until EOF; echo sends every byte back.
int serve_stream(const Connection& conn, bool echo) {
    char buf[16384];
    for (;;) {
        if (Wait w = conn.wait(POLLIN); w == Wait::idle || w == Wait::error) return exit_for(w);
        ssize_t n = conn.read_some(buf, sizeof buf);
        if (n == 0) return exit_ok;
        if (n < 0) return (errno == ECONNRESET) ? exit_ok : exit_io_error;
        if (echo) {
            if (Wait w = conn.write_all(buf, size_t(n)); w != Wait::ready) return exit_for(w);
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
        if (Wait w = conn.write_all(block.data(), block.size()); w != Wait::ready)
            return exit_for(w);
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
