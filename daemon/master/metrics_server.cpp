// SPDX-License-Identifier: MIT
#include "daemon/master/metrics_server.hpp"

#include "common/log.hpp"
#include "daemon/event_loop/event_sources.hpp"
#include "daemon/master/http_request.hpp"
#include "daemon/master/metrics_render.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace forkd {
namespace {

// Before the listeners and connection timers (priority 0): a scrape under load is answered first.
constexpr std::int64_t metrics_priority = SD_EVENT_PRIORITY_IMPORTANT;
constexpr int accepts_per_wakeup = 16;

void set_priority(const EventSourcePtr& source) { sd_event_source_set_priority(source.get(), metrics_priority); }

} // namespace

struct MetricsServer::Client {
    UniqueFd fd;
    std::string request;
    std::string reply;
    std::size_t sent = 0;
    EventSourcePtr io, deadline;
};

MetricsServer::MetricsServer(sd_event* event, const ListenAddress& address, std::function<std::string()> render,
                             MetricsServerLimits limits)
    : event_(event), render_(std::move(render)), limits_(limits) {
    sockets_ = open_listeners(address, 64);
    for (const ListenSocket& socket : sockets_) {
        const int fd = socket.fd.get();
        auto source = event_loop::value_or_throw(
            event_loop::add_io(event_, fd, EPOLLIN, "metrics-listener", [this, fd] { accept_clients(fd); }));
        set_priority(source);
        listener_sources_.push_back(std::move(source));
        log::notice("metrics-listening", {{"address", socket.bound}});
    }
}

MetricsServer::~MetricsServer() {
    clients_.clear();
    listener_sources_.clear();
    for (const ListenSocket& socket : sockets_) unlink_unix_socket(socket);
}

std::vector<std::string> MetricsServer::bound() const {
    std::vector<std::string> out;
    for (const ListenSocket& socket : sockets_) out.push_back(socket.bound);
    return out;
}

void MetricsServer::accept_clients(int listener) {
    for (int i = 0; i < accepts_per_wakeup; ++i) {
        UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log::warning("metrics-accept-failed", {{"error", std::strerror(errno)}});
            return;
        }
        if (clients_.size() >= limits_.max_clients) {
            // Best effort, never waiting: the socket buffer takes this short reply.
            static constexpr std::string_view busy =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            (void)!::send(fd.get(), busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            continue;
        }
        auto client = std::make_unique<Client>();
        Client* raw = client.get();
        client->fd = std::move(fd);
        auto io = event_loop::add_io(event_, raw->fd.get(), EPOLLIN, "metrics-client", [this, raw](std::uint32_t) {
            if (raw->reply.empty()) {
                char buffer[2048];
                const std::size_t room = limits_.max_request + 1 - std::min(raw->request.size(), limits_.max_request);
                const ssize_t n = ::recv(raw->fd.get(), buffer, std::min(sizeof buffer, room), 0);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
                if (n <= 0) return close_client(raw);  // gone before asking
                raw->request.append(buffer, static_cast<std::size_t>(n));
                const HttpRequestView view = parse_http_request(raw->request, limits_.max_request);
                if (view.verdict == HttpVerdict::incomplete) return;
                const std::string body = view.verdict == HttpVerdict::metrics ? render_() : std::string();
                raw->reply = http_response(view.verdict, view.head, body, metrics_content_type);
                raw->request.clear();
                sd_event_source_set_io_events(raw->io.get(), EPOLLOUT);
            }
            while (raw->sent < raw->reply.size()) {
                const ssize_t n = ::send(raw->fd.get(), raw->reply.data() + raw->sent, raw->reply.size() - raw->sent,
                                         MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
                if (n <= 0) return close_client(raw);
                raw->sent += static_cast<std::size_t>(n);
            }
            close_client(raw);
        });
        if (!io) continue;
        client->io = std::move(*io);
        set_priority(client->io);
        const auto usec = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(limits_.client_timeout).count());
        auto deadline = event_loop::add_timer(event_, usec, "metrics-client-timeout", [this, raw] { close_client(raw); });
        if (!deadline) continue;
        client->deadline = std::move(*deadline);
        clients_.push_back(std::move(client));
    }
}

void MetricsServer::close_client(Client* client) {
    // The source being dispatched may be the client's own: sd-event keeps it alive until the
    // callback returns (EventPtr unrefs), and the callable goes with it.
    std::erase_if(clients_, [client](const std::unique_ptr<Client>& c) { return c.get() == client; });
}

} // namespace forkd
