// SPDX-License-Identifier: MIT
#pragma once
// One client connection served inside forkd-worker: a libevent bufferevent and a built-in
// service on it (echo, discard, daytime, chargen), sending the same bytes as the forked handlers
// (daemon/handlers). Back-pressure by watermarks at buffer-size: echo stops reading while its
// output holds buffer-size bytes, chargen stops producing; both resume below half of it.
// Traffic is counted exactly: bytes read from the socket, and bytes the socket took.
#include "common/base/handler_kind.hpp"
#include "daemon/admission/source_counts.hpp"

#include <event2/bufferevent.h>

#include <cstdint>

namespace forkd::worker {

class EventConnection;

// Whoever holds the connections (the worker loop): told of traffic as it moves and of the end.
class ConnectionOwner {
public:
    virtual void connection_traffic(EventConnection& connection, std::uint64_t in, std::uint64_t out) = 0;
    // The connection is over (wait_status as a forked handler's would read). The owner frees it;
    // the connection touches nothing of itself after this call.
    virtual void connection_done(EventConnection& connection, int wait_status) = 0;

protected:
    ~ConnectionOwner() = default;
};

struct ConnectionParams {
    std::uint64_t id = 0;
    std::uint32_t slot = 0;
    SourceKey source;
    HandlerKind handler = HandlerKind::echo;
    std::uint32_t buffer_size = 65536;
};

class EventConnection {
public:
    // Takes `fd` (non-blocking). Throws std::bad_alloc if libevent cannot make the bufferevent.
    EventConnection(event_base* base, int fd, const ConnectionParams& params, ConnectionOwner& owner);
    ~EventConnection();
    EventConnection(const EventConnection&) = delete;
    EventConnection& operator=(const EventConnection&) = delete;

    // Starts serving (daytime writes its line here).
    void start();
    // The master ends it (kill, connection-timeout, stop): closed at once.
    void close_now(int signo) { finish(signo); }
    // idle-timeout: closed, ended as a forked handler ends when it idles out.
    void close_idle();

    std::uint64_t id() const { return params_.id; }
    std::uint32_t slot() const { return params_.slot; }
    const SourceKey& source() const { return params_.source; }
    std::uint64_t bytes_in() const { return in_; }
    std::uint64_t bytes_out() const { return reported_out_; }
    std::int64_t last_activity_ms() const { return last_activity_ms_; }

private:
    static void on_read(bufferevent* bev, void* self);
    static void on_write(bufferevent* bev, void* self);
    static void on_event(bufferevent* bev, short what, void* self);
    void readable();
    void writable();
    void event(short what);
    void fill_chargen();
    void account();
    void touch();
    std::size_t output_length() const;
    void finish(int wait_status);

    bufferevent* bev_;
    ConnectionOwner& owner_;
    ConnectionParams params_;
    std::uint64_t in_ = 0;            // read from the socket
    std::uint64_t added_ = 0;         // put into the output buffer
    std::uint64_t reported_out_ = 0;  // of those, taken by the socket (as last accounted)
    std::uint64_t chargen_line_ = 0;
    std::int64_t last_activity_ms_ = 0;
    bool eof_ = false;
    bool read_paused_ = false;
};

} // namespace forkd::worker
