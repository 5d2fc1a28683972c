// SPDX-License-Identifier: MIT
#include "daemon/worker/event_connection.hpp"

#include "common/base/monotonic_clock.hpp"
#include "daemon/handlers/builtin_handlers.hpp"
#include "daemon/proxy/read_more.hpp"
#include "daemon/worker/libevent_guard.hpp"

#include <event2/buffer.h>

#include <sys/wait.h>

#include <cerrno>
#include <ctime>
#include <new>
#include <string>

namespace forkd::worker {
namespace {

// Lines chargen adds per refill step: one evbuffer_add per block rather than per line.
constexpr int chargen_block_lines = 32;

std::int64_t now_ms() { return monotonic_ns() / 1000000; }

} // namespace

EventConnection::EventConnection(event_base* base, int fd, const ConnectionParams& params,
                                 ConnectionOwner& owner)
    : bev_(bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)), owner_(owner), params_(params),
      last_activity_ms_(now_ms()) {
    if (!bev_) throw std::bad_alloc();
    bufferevent_setcb(bev_, on_read, on_write, on_event, this);
    const std::size_t size = params_.buffer_size;
    // Reading pauses while buffer-size bytes wait in the input; the write callback comes when
    // the output has drained to half of buffer-size (where echo and chargen resume).
    bufferevent_setwatermark(bev_, EV_READ, 0, size);
    bufferevent_setwatermark(bev_, EV_WRITE, size / 2, 0);
}

EventConnection::~EventConnection() { bufferevent_free(bev_); }

void EventConnection::start() {
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
    if (params_.handler == HandlerKind::daytime) {
        const std::string text = daytime_text(std::time(nullptr));
        bufferevent_write(bev_, text.data(), text.size());
        added_ += text.size();
    } else if (params_.handler == HandlerKind::chargen) {
        fill_chargen();
    }
}

void EventConnection::on_read(bufferevent*, void* self) {
    guarded("read", [self] { static_cast<EventConnection*>(self)->readable(); });
}
void EventConnection::on_write(bufferevent*, void* self) {
    guarded("write", [self] { static_cast<EventConnection*>(self)->writable(); });
}
void EventConnection::on_event(bufferevent*, short what, void* self) {
    guarded("event", [self, what] { static_cast<EventConnection*>(self)->event(what); });
}

std::size_t EventConnection::output_length() const {
    return evbuffer_get_length(bufferevent_get_output(bev_));
}

void EventConnection::touch() { last_activity_ms_ = now_ms(); }

// What the socket took since the last call, and what was read, into the owner's counters.
void EventConnection::account() {
    const std::uint64_t out = added_ - output_length();
    owner_.connection_traffic(*this, 0, out - reported_out_);
    reported_out_ = out;
}

void EventConnection::readable() {
    evbuffer* input = bufferevent_get_input(bev_);
    // The bufferevent read 4 KiB at most (libevent 2.1): if it took that much, one larger read
    // takes what else waits, as far as buffer-size allows (read_more.hpp). An EOF found here
    // waits for the next read.
    const std::size_t waiting = evbuffer_get_length(input);
    const std::size_t queued = waiting + output_length();
    if (waiting >= bufferevent_single_read && queued < params_.buffer_size) {
        const ReadMore more = read_more(input, bufferevent_getfd(bev_), params_.buffer_size - queued);
        if (more.error) {
            errno = more.error;
            return event(BEV_EVENT_READING | BEV_EVENT_ERROR);
        }
    }
    const std::size_t n = evbuffer_get_length(input);
    if (n == 0) return;
    touch();
    in_ += n;
    owner_.connection_traffic(*this, n, 0);
    if (params_.handler == HandlerKind::echo) {
        evbuffer_add_buffer(bufferevent_get_output(bev_), input);
        added_ += n;
        if (output_length() >= params_.buffer_size) {
            bufferevent_disable(bev_, EV_READ);
            read_paused_ = true;
        }
    } else {
        evbuffer_drain(input, n);  // discard, and what daytime and chargen clients send
    }
    account();
}

void EventConnection::writable() {
    touch();
    account();
    switch (params_.handler) {
    case HandlerKind::echo:
        if (eof_ && output_length() == 0) return finish(W_EXITCODE(builtin_exit_ok, 0));
        if (read_paused_ && !eof_ && output_length() < params_.buffer_size) {
            read_paused_ = false;
            bufferevent_enable(bev_, EV_READ);
        }
        return;
    case HandlerKind::daytime:
        if (output_length() == 0) return finish(W_EXITCODE(builtin_exit_ok, 0));
        return;
    case HandlerKind::chargen: return fill_chargen();
    default: return;
    }
}

// Up to buffer-size bytes in the output; the write callback at half of it asks for more.
void EventConnection::fill_chargen() {
    evbuffer* output = bufferevent_get_output(bev_);
    char block[chargen_block_lines * chargen_line_size];
    while (evbuffer_get_length(output) < params_.buffer_size) {
        for (int i = 0; i < chargen_block_lines; ++i)
            chargen_line_into(chargen_line_++, block + std::size_t(i) * chargen_line_size);
        evbuffer_add(output, block, sizeof block);
        added_ += sizeof block;
    }
}

// The client's end of the stream, a reset, or an error. As the forked handlers end: a hangup
// is a clean end (echo first sends back what it still holds), any other error exits 1.
void EventConnection::event(short what) {
    if (what & BEV_EVENT_ERROR) {
        const int error = EVUTIL_SOCKET_ERROR();
        const bool hangup = error == ECONNRESET || error == EPIPE;
        account();
        return finish(W_EXITCODE(hangup ? builtin_exit_ok : builtin_exit_io_error, 0));
    }
    if (!(what & BEV_EVENT_EOF)) return;
    touch();
    if (params_.handler == HandlerKind::echo) {
        eof_ = true;
        bufferevent_disable(bev_, EV_READ);
        if (output_length() == 0) finish(W_EXITCODE(builtin_exit_ok, 0));
        return;
    }
    // daytime sends its line whatever the client does; discard and chargen end.
    if (params_.handler == HandlerKind::daytime) {
        bufferevent_disable(bev_, EV_READ);
        return;
    }
    finish(W_EXITCODE(builtin_exit_ok, 0));
}

void EventConnection::close_idle() { finish(W_EXITCODE(builtin_exit_idle, 0)); }

void EventConnection::finish(int wait_status) {
    account();
    owner_.connection_done(*this, wait_status);  // frees this
}

} // namespace forkd::worker
