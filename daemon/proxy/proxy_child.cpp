// SPDX-License-Identifier: MIT
#include "daemon/proxy/proxy_child.hpp"

#include "daemon/core/scoreboard.hpp"
#include "daemon/proxy/proxy_address.hpp"
#include "daemon/proxy/proxy_exit.hpp"

#include <event2/event.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <optional>

namespace forkd {
namespace {

struct EventBaseFree {
    void operator()(event_base* base) const { event_base_free(base); }
};

int exit_for_reason(const std::string& reason) {
    if (reason.starts_with("connect refused")) return proxy_exit_refused;
    if (reason == "connect timeout") return proxy_exit_connect_timeout;
    if (reason == "unreachable") return proxy_exit_unreachable;
    if (reason.starts_with("connect")) return proxy_exit_connect_failed;
    return proxy_exit_transfer_error;
}

} // namespace

int proxy_exit_code(const ProxySessionResult& result) {
    switch (result.outcome) {
    case ProxyOutcome::completed:
    case ProxyOutcome::killed: return proxy_exit_completed;
    case ProxyOutcome::idle: return proxy_exit_idle;
    case ProxyOutcome::failed: return exit_for_reason(result.reason);
    }
    return proxy_exit_transfer_error;
}

int run_proxy_child(const ProxyChildContext& context) {
    // A peer that resets while we write must be an EPIPE for the session, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    UniqueFd client(context.fd);
    // The proxy counts every byte: even a connection that never reached its target shows 0s.
    if (context.scoreboard) context.scoreboard->add_bytes(context.slot, 0, 0);
    std::optional<ProxyEndpoint> endpoint;
    if (context.resolved) {
        endpoint = *context.resolved;
    } else {
        auto target = parse_proxy_target(context.proxy_to);
        if (!target) return proxy_exit_resolve_failed;
        auto found = resolve_proxy_target(*target);
        if (!found) {
            std::fprintf(stderr, "forkd-proxy: %s\n", found.error().message().c_str());
            return proxy_exit_resolve_failed;
        }
        endpoint = *found;
    }
    std::unique_ptr<event_base, EventBaseFree> base(event_base_new());
    if (!base) return proxy_exit_transfer_error;

    ProxySessionOptions options;
    options.buffer_size = context.buffer_size;
    options.connect_timeout_s = context.connect_timeout_s;
    options.idle_timeout_s = context.idle_timeout_s;
    if (Scoreboard* board = context.scoreboard) {
        const std::uint32_t slot = context.slot;
        options.on_traffic = [board, slot](std::uint64_t in, std::uint64_t out) { board->add_bytes(slot, in, out); };
    }
    ProxySessionResult result;
    result.outcome = ProxyOutcome::failed;
    result.reason = "transfer error";
    auto session = ProxySession::start(base.get(), std::move(client), *endpoint, std::move(options),
                                       [&](const ProxySessionResult& r) {
                                           result = r;
                                           event_base_loopbreak(base.get());
                                       });
    if (!session) return proxy_exit_transfer_error;
    event_base_dispatch(base.get());
    return proxy_exit_code(result);
}

} // namespace forkd
