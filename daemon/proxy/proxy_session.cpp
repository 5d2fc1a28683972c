// SPDX-License-Identifier: MIT
// The proxy's copy engine on libevent bufferevents (see proxy_session.hpp for what it promises).
//
// Each direction is "source -> sink": what the source's bufferevent reads is moved (chains, not
// copies: evbuffer_add_buffer) into the sink's output buffer. The watermarks are le-proxy's:
// - sink output past buffer_size: stop reading the source, and ask for the sink's write
//   callback once its output has drained to half (its low write watermark);
// - source at EOF: ask for the sink's write callback at an empty output (low watermark 0),
//   then shutdown(SHUT_WR) the sink.
// The exact counts come from evbuffer callbacks on the client's two buffers: bytes added to its
// input were read from its socket, bytes removed from its output were written to it.
#include "daemon/proxy/proxy_session.hpp"

#include "common/base/monotonic_clock.hpp"
#include "daemon/proxy/read_more.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace forkd {

std::string_view proxy_outcome_name(ProxyOutcome outcome) {
    switch (outcome) {
    case ProxyOutcome::completed: return "completed";
    case ProxyOutcome::failed: return "failed";
    case ProxyOutcome::idle: return "idle";
    case ProxyOutcome::killed: return "killed";
    }
    return "failed";
}

namespace {

// The most one read takes from a socket: larger reads mean fewer callbacks on bulk transfers,
// and it stays within the 2 x buffer_size bound (a sink is at most buffer_size + one read).
constexpr std::size_t kMaxSingleIo = 256 * 1024;

std::string connect_reason(int err) {
    switch (err) {
    case ECONNREFUSED: return "connect refused";
    case ETIMEDOUT: return "connect timeout";
    case ENOENT: return "connect refused: no such socket";
    case EHOSTUNREACH:
    case ENETUNREACH: return "unreachable";
    default: return "connect failed: " + errno_text(err);
    }
}

bool is_hangup(int err) { return err == ECONNRESET || err == EPIPE || err == ENOTCONN; }

} // namespace

struct ProxySession::State {
    struct Side {
        bufferevent* bev = nullptr;
        bool eof = false;     // it sent EOF: nothing more to read from it
        bool shut = false;    // we sent it EOF (shutdown SHUT_WR) after flushing its output
        bool paused = false;  // reading from it stopped: its sink is full
        const char* name = "";
    };

    event_base* base = nullptr;
    ProxySessionOptions options;
    Done done;
    Side client, target;
    event* timer = nullptr;       // connect timeout, then idle timeout; also a deferred failure
    bool connected = false, finished = false;
    std::string pending_failure;  // a connect that failed at once, reported from the loop
    std::uint64_t in = 0, out = 0;
    std::int64_t last_activity_ms = 0;

    ~State() { release(); }

    void release() {
        // Our evbuffer callbacks go first: libevent may free a bufferevent later than this
        // call when we are inside one of its callbacks, and they must not run then.
        if (client.bev) {
            evbuffer_remove_cb(bufferevent_get_input(client.bev), client_input_cb, this);
            evbuffer_remove_cb(bufferevent_get_output(client.bev), client_output_cb, this);
        }
        if (client.bev) bufferevent_free(std::exchange(client.bev, nullptr));
        if (target.bev) bufferevent_free(std::exchange(target.bev, nullptr));
        if (timer) event_free(std::exchange(timer, nullptr));
    }

    Side& peer(Side& side) { return &side == &client ? target : client; }

    // ------------------------------------------------------------ the end
    void finish(ProxyOutcome outcome, std::string reason) {
        if (finished) return;
        finished = true;
        release();
        ProxySessionResult result{outcome, std::move(reason), in, out};
        Done callback = std::move(done);
        if (callback) callback(result);  // may destroy this State: nothing after it
    }

    void finish_if_both_closed() {
        if (client.eof && target.eof && client.shut && target.shut) finish(ProxyOutcome::completed, "");
    }

    // ------------------------------------------------------------ the copy
    // The source's bufferevent has read (4 KiB at most, see read_more.hpp): if it took all of
    // that, top its input up with one larger read, as far as the sink has room below buffer_size;
    // then forward it all.
    // A peer's EOF found here is left for the bufferevent's next read (the socket stays
    // readable); an error ends the session as the bufferevent's own would.
    void readable(Side& source) {
        Side& sink = peer(source);
        evbuffer* input = bufferevent_get_input(source.bev);
        const std::size_t waiting = evbuffer_get_length(input);
        const std::size_t queued = waiting + evbuffer_get_length(bufferevent_get_output(sink.bev));
        if (!sink.shut && waiting >= bufferevent_single_read && queued < options.buffer_size) {
            const std::size_t room = std::min(options.buffer_size - queued, kMaxSingleIo);
            const ReadMore more = read_more(input, bufferevent_getfd(source.bev), room);
            if (more.error) {
                errno = more.error;
                on_event(source, BEV_EVENT_READING | BEV_EVENT_ERROR);
                return;
            }
        }
        forward(source);
    }

    // What `source` has read goes to its peer; a full peer pauses the source.
    void forward(Side& source) {
        Side& sink = peer(source);
        evbuffer* input = bufferevent_get_input(source.bev);
        evbuffer* output = bufferevent_get_output(sink.bev);
        if (sink.shut) {  // cannot happen with a well-behaved source; drop rather than grow
            evbuffer_drain(input, evbuffer_get_length(input));
            return;
        }
        evbuffer_add_buffer(output, input);
        if (evbuffer_get_length(output) >= options.buffer_size && !source.paused) {
            source.paused = true;
            bufferevent_disable(source.bev, EV_READ);
            want_drain(sink);
        }
    }

    // The sink's write callback is wanted when its output falls to half (a paused source) or
    // to empty (a source at EOF: then the sink is shut).
    void want_drain(Side& sink) {
        Side& source = peer(sink);
        const std::size_t low = source.eof ? 0 : options.buffer_size / 2;
        bufferevent_setwatermark(sink.bev, EV_WRITE, low, 0);
        bufferevent_setcb(sink.bev, read_cb, write_cb, event_cb, this);
    }

    void drained(Side& sink) {
        Side& source = peer(sink);
        const std::size_t left = evbuffer_get_length(bufferevent_get_output(sink.bev));
        if (source.paused && left <= options.buffer_size / 2) {
            source.paused = false;
            bufferevent_enable(source.bev, EV_READ);
        }
        if (source.eof && left == 0 && !sink.shut) {
            sink.shut = true;
            ::shutdown(bufferevent_getfd(sink.bev), SHUT_WR);
            finish_if_both_closed();
            return;
        }
        if (!source.paused && !source.eof) bufferevent_setcb(sink.bev, read_cb, nullptr, event_cb, this);
    }

    void source_ended(Side& source) {
        if (source.eof) return;
        if (evbuffer_get_length(bufferevent_get_input(source.bev)) > 0) forward(source);
        source.eof = true;
        source.paused = false;
        Side& sink = peer(source);
        want_drain(sink);
        drained(sink);  // already empty: shut it now
    }

    // ------------------------------------------------------------ events
    void on_event(Side& side, short what) {
        if (&side == &target && !connected) {
            on_connect_event(what);
            return;
        }
        if (what & BEV_EVENT_EOF) {
            source_ended(side);
            return;
        }
        if (what & BEV_EVENT_ERROR) {
            const int err = EVUTIL_SOCKET_ERROR();
            if (is_hangup(err))
                finish(ProxyOutcome::completed, std::string(side.name) + " reset");
            else
                finish(ProxyOutcome::failed, std::string(side.name) + ": " + errno_text(err));
        }
    }

    void on_connect_event(short what) {
        if (what & BEV_EVENT_CONNECTED) {
            connected = true;
            touch();
            arm_idle_timer();
            bufferevent_enable(client.bev, EV_READ);
            bufferevent_enable(target.bev, EV_READ);
            return;
        }
        const int err = (what & BEV_EVENT_ERROR) ? EVUTIL_SOCKET_ERROR() : ETIMEDOUT;
        finish(ProxyOutcome::failed, connect_reason(err));
    }

    void on_timer() {
        if (!pending_failure.empty()) {
            finish(ProxyOutcome::failed, std::move(pending_failure));
            return;
        }
        if (!connected) {
            finish(ProxyOutcome::failed, "connect timeout");
            return;
        }
        const std::int64_t idle_ms = std::int64_t(options.idle_timeout_s) * 1000;
        const std::int64_t quiet = monotonic_ms() - last_activity_ms;
        if (quiet >= idle_ms) {
            finish(ProxyOutcome::idle, "idle");
            return;
        }
        arm_timer_ms(idle_ms - quiet);
    }

    void arm_timer_ms(std::int64_t ms) {
        const timeval after{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
        evtimer_add(timer, &after);
    }
    void arm_idle_timer() {
        evtimer_del(timer);
        if (options.idle_timeout_s) arm_timer_ms(std::int64_t(options.idle_timeout_s) * 1000);
    }
    void touch() {
        if (options.idle_timeout_s) last_activity_ms = monotonic_ms();
    }
    static std::int64_t monotonic_ms() { return monotonic_ns() / 1000000; }

    void counted(std::uint64_t in_delta, std::uint64_t out_delta) {
        in += in_delta;
        out += out_delta;
        touch();
        if (options.on_traffic) options.on_traffic(in_delta, out_delta);
    }

    // ------------------------------------------------------------ libevent's entry points
    // Each one wraps its work once: no exception leaves for C code; one that would ends the
    // session as failed.
    template <class F>
    static void guarded(void* arg, F&& body) noexcept {
        auto* state = static_cast<State*>(arg);
        try {
            body(*state);
        } catch (...) {
            try {
                state->finish(ProxyOutcome::failed, "internal error");
            } catch (...) {
            }
        }
    }
    Side& side_of(bufferevent* bev) { return bev == client.bev ? client : target; }

    static void read_cb(bufferevent* bev, void* arg) {
        guarded(arg, [bev](State& s) { s.readable(s.side_of(bev)); });
    }
    static void write_cb(bufferevent* bev, void* arg) {
        guarded(arg, [bev](State& s) { s.drained(s.side_of(bev)); });
    }
    static void event_cb(bufferevent* bev, short what, void* arg) {
        guarded(arg, [bev, what](State& s) { s.on_event(s.side_of(bev), what); });
    }
    static void timer_cb(evutil_socket_t, short, void* arg) {
        guarded(arg, [](State& s) { s.on_timer(); });
    }
    static void client_input_cb(evbuffer*, const evbuffer_cb_info* info, void* arg) {
        guarded(arg, [info](State& s) {
            if (info->n_added) s.counted(info->n_added, 0);
        });
    }
    static void client_output_cb(evbuffer*, const evbuffer_cb_info* info, void* arg) {
        guarded(arg, [info](State& s) {
            if (info->n_deleted) s.counted(0, info->n_deleted);
        });
    }

    // ------------------------------------------------------------ start
    Status open(UniqueFd client_fd, const ProxyEndpoint& endpoint) {
        if (evutil_make_socket_nonblocking(client_fd.get()) < 0) return system_error("proxy: client O_NONBLOCK");
        timer = evtimer_new(base, timer_cb, this);
        if (!timer) return failure("proxy: evtimer_new failed");
        client.name = "client";
        target.name = "target";
        client.bev = bufferevent_socket_new(base, client_fd.get(), BEV_OPT_CLOSE_ON_FREE);
        if (!client.bev) return failure("proxy: bufferevent_socket_new failed");
        client_fd.release();

        UniqueFd target_fd(::socket(endpoint.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!target_fd) return system_error("proxy: socket");
        const int r = ::connect(target_fd.get(), reinterpret_cast<const sockaddr*>(&endpoint.address),
                                endpoint.length);
        // A connect that fails at once (refused UNIX socket, no route) is reported from the
        // loop like a later failure, so that done never runs inside start().
        if (r < 0 && errno != EINPROGRESS) pending_failure = connect_reason(errno);
        target.bev = bufferevent_socket_new(base, target_fd.get(), BEV_OPT_CLOSE_ON_FREE);
        if (!target.bev) return failure("proxy: bufferevent_socket_new failed");
        target_fd.release();

        for (Side* side : {&client, &target}) {
            bufferevent_setcb(side->bev, read_cb, nullptr, event_cb, this);
            bufferevent_set_max_single_read(side->bev, std::min(options.buffer_size, kMaxSingleIo));
            bufferevent_set_max_single_write(side->bev, std::min(options.buffer_size, kMaxSingleIo));
        }
        evbuffer_add_cb(bufferevent_get_input(client.bev), client_input_cb, this);
        evbuffer_add_cb(bufferevent_get_output(client.bev), client_output_cb, this);

        if (!pending_failure.empty()) {
            event_active(timer, EV_TIMEOUT, 1);
            return {};
        }
        // An fd already connecting: libevent waits for it to be writable and reports
        // BEV_EVENT_CONNECTED or the error (SO_ERROR).
        if (bufferevent_socket_connect(target.bev, nullptr, 0) < 0) {
            pending_failure = connect_reason(errno ? errno : ECONNREFUSED);
            event_active(timer, EV_TIMEOUT, 1);
            return {};
        }
        if (options.connect_timeout_s) arm_timer_ms(std::int64_t(options.connect_timeout_s) * 1000);
        return {};
    }
};

ProxySession::ProxySession(std::unique_ptr<State> state) : state_(std::move(state)) {}
ProxySession::~ProxySession() = default;

Result<std::unique_ptr<ProxySession>> ProxySession::start(event_base* base, UniqueFd client,
                                                          const ProxyEndpoint& target,
                                                          ProxySessionOptions options, Done done) {
    auto state = std::make_unique<State>();
    state->base = base;
    state->options = std::move(options);
    state->options.buffer_size = std::max<std::size_t>(state->options.buffer_size, 2);
    state->done = std::move(done);
    if (Status opened = state->open(std::move(client), target); !opened) return opened.error();
    return std::unique_ptr<ProxySession>(new ProxySession(std::move(state)));
}

std::uint64_t ProxySession::bytes_in() const { return state_->in; }
std::uint64_t ProxySession::bytes_out() const { return state_->out; }
bool ProxySession::connected() const { return state_->connected; }
bool ProxySession::finished() const { return state_->finished; }
void ProxySession::close() { state_->finish(ProxyOutcome::killed, "killed"); }

} // namespace forkd
