// SPDX-License-Identifier: MIT
#pragma once
// metrics-listen: a minimal HTTP/1.1 responder in the master's sd-event loop that answers
// GET /metrics with the Prometheus text (and 404/405/400/431 otherwise; http_request.hpp).
// Non-blocking throughout; each client is bounded in request size, in time (a slowloris is
// cut off), and in number; its sources run before the connection work of the loop (a higher
// sd-event priority), so a scrape is not delayed by the connection load. One request per
// connection: the reply carries Connection: close.
#include "common/address.hpp"
#include "daemon/master/listen_sockets.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace forkd {

struct MetricsServerLimits {
    std::size_t max_clients = 16;               // more are answered 503 and closed
    std::size_t max_request = 8192;             // request line and headers
    std::chrono::milliseconds client_timeout{5000};  // from accept to the reply sent
};

class MetricsServer {
public:
    // Binds ADDRESS (TCP or unix:PATH). Throws BindError naming it.
    MetricsServer(sd_event* event, const ListenAddress& address, std::function<std::string()> render,
                  MetricsServerLimits limits = {});
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    std::vector<std::string> bound() const;  // "127.0.0.1:9100", "unix:/run/forkd/metrics.sock"
    std::size_t client_count() const { return clients_.size(); }

    struct Client;

private:
    void accept_clients(int listener);
    void close_client(Client* client);

    sd_event* event_;
    std::function<std::string()> render_;
    MetricsServerLimits limits_;
    std::vector<ListenSocket> sockets_;
    std::vector<EventSourcePtr> listener_sources_;
    std::list<std::unique_ptr<Client>> clients_;
};

} // namespace forkd
