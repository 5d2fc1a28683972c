// SPDX-License-Identifier: MIT
#pragma once
// One proxied connection on a libevent event base: the client's socket and a non-blocking
// connection to the target, each a bufferevent, bytes copied both ways. libc + libevent only:
// forkd-spawner's proxy children (fork mode) and the event-mode workers both run it.
//
// - Back-pressure by watermarks, no buffering of our own: when one side's output buffer passes
//   buffer_size, reading from the other side stops until that buffer drains below half of it.
//   So a connection holds at most about 2 x buffer_size, whatever either peer does.
// - Half-close passed on: EOF from one side becomes shutdown(SHUT_WR) on the other once what
//   was read before it is flushed; the other direction keeps flowing. Both directions closed
//   (or either side reset) ends the session.
// - A target that refuses, is unreachable or does not answer within connect_timeout_s closes
//   the client: outcome failed, with the reason.
// - The completion callback is called exactly once, from the event loop (never from start()),
//   after both bufferevents are freed. The owner may destroy the session inside it. libevent 2.1
//   closes a freed bufferevent's socket in its finalizer, on the loop's next turn: keep the loop
//   running (a worker does; a fork-mode child exits, which closes them as well).
// - No C++ exception leaves a libevent callback: each is wrapped once (proxy_session.cpp).
// - The process must ignore SIGPIPE (run_proxy_child does): a peer that resets while we write is
//   then an EPIPE that ends the session, not a signal that ends the process.
#include "common/base/error.hpp"
#include "common/base/unique_fd.hpp"

#include <sys/socket.h>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

struct event_base;

namespace forkd {

// A resolved target (daemon/proxy/proxy_address.hpp turns a ProxyTarget into one).
struct ProxyEndpoint {
    sockaddr_storage address{};
    socklen_t length = 0;
};

struct ProxySessionOptions {
    std::size_t buffer_size = 65536;  // high watermark per direction; reading resumes below half
    unsigned connect_timeout_s = 10;  // 0: the kernel's own connect timeout
    unsigned idle_timeout_s = 0;      // 0: none; else no byte either way for that long ends it
    // Called with the bytes each time some moved (client->target read, target->client written),
    // e.g. to publish them in the scoreboard; may be empty.
    std::function<void(std::uint64_t in_delta, std::uint64_t out_delta)> on_traffic;
};

enum class ProxyOutcome {
    completed,  // both directions ended by EOF (or one side closed after the other's EOF)
    failed,     // the target could not be reached, or a socket error; see reason
    idle,       // idle_timeout_s passed without traffic
    killed,     // close() was called
};

struct ProxySessionResult {
    ProxyOutcome outcome = ProxyOutcome::completed;
    std::string reason;           // failed: "connect refused", "connect timeout", "unreachable", ...
    std::uint64_t bytes_in = 0;   // read from the client (and passed towards the target)
    std::uint64_t bytes_out = 0;  // written to the client's socket
};

std::string_view proxy_outcome_name(ProxyOutcome outcome);  // "completed", "failed", "idle", "killed"

class ProxySession {
public:
    using Done = std::function<void(const ProxySessionResult&)>;

    // Takes the client (any stream socket; made non-blocking here) and starts connecting to the
    // target. Fails only when the target's socket or the bufferevents cannot be made (the
    // client is then closed); every failure to reach the target comes through `done`.
    static Result<std::unique_ptr<ProxySession>> start(event_base* base, UniqueFd client,
                                                       const ProxyEndpoint& target,
                                                       ProxySessionOptions options, Done done);
    ~ProxySession();  // closes whatever is still open, without calling done
    ProxySession(const ProxySession&) = delete;
    ProxySession& operator=(const ProxySession&) = delete;

    // Exact counts so far: bytes read from the client, bytes written to the client's socket.
    std::uint64_t bytes_in() const;
    std::uint64_t bytes_out() const;
    bool connected() const;  // the target has answered
    bool finished() const;   // done has been called (or is being called)

    // forkctl kill: closes both sides now; done is called (outcome killed) before close returns,
    // unless it was called already.
    void close();

    struct State;  // proxy_session.cpp

private:
    explicit ProxySession(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

} // namespace forkd
