// SPDX-License-Identifier: MIT
#include "daemon/master/handler_stderr.hpp"

#include "common/log.hpp"
#include "daemon/event_loop/event_sources.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

namespace forkd {
namespace {

constexpr std::size_t kMaxLine = 4096;
// Reads per wake-up: a chatty handler must not starve the loop (the source is level-triggered,
// so whatever is left is read on the next turn).
constexpr int kReadsPerWakeup = 16;

} // namespace

struct HandlerStderr::State {
    UniqueFd fd;
    std::uint64_t id = 0;
    EventSourcePtr source;
    std::string partial;
    bool finished = false;

    void emit(std::string_view line) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        log::notice("handler-stderr", {{"id", id}, {"line", line}});
    }

    void consume(std::string_view data) {
        while (!data.empty()) {
            auto newline = data.find('\n');
            std::size_t take = newline == std::string_view::npos ? data.size() : newline;
            take = std::min(take, kMaxLine - partial.size());
            partial.append(data.substr(0, take));
            data.remove_prefix(take);
            bool at_newline = !data.empty() && data.front() == '\n';
            if (at_newline) data.remove_prefix(1);
            if (at_newline || partial.size() >= kMaxLine) {
                emit(partial);
                partial.clear();
            }
        }
    }

    // Reads what is there; returns false once the pipe is done (EOF or error).
    bool drain(int max_reads) {
        char buffer[4096];
        for (int i = 0; i < max_reads; ++i) {
            ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
            if (n > 0) {
                consume(std::string_view(buffer, static_cast<std::size_t>(n)));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return true;
            return false;
        }
        return true;
    }

    void finish() {
        if (finished) return;
        finished = true;
        if (!partial.empty()) emit(partial);
        partial.clear();
        source.reset();
        fd.reset();
    }

    void readable() {
        if (!drain(kReadsPerWakeup)) finish();
    }
};

HandlerStderr::HandlerStderr(sd_event* event, UniqueFd pipe_read, std::uint64_t connection_id)
    : state_(std::make_unique<State>()) {
    state_->fd = std::move(pipe_read);
    state_->id = connection_id;
    auto added = event_loop::add_io(event, state_->fd.get(), EPOLLIN, "handler-stderr",
                                    [state = state_.get()] { state->readable(); });
    if (!added) throw std::system_error(added.error().code, std::generic_category(),
                                        "sd_event_add_io handler stderr");
    state_->source = std::move(*added);
}

// Whatever the handler wrote before it was reaped is still logged, then the pipe is closed even
// if a grandchild holds the write end.
HandlerStderr::~HandlerStderr() {
    if (!state_->finished) {
        state_->drain(kReadsPerWakeup);
        state_->finish();
    }
}

bool HandlerStderr::finished() const { return state_->finished; }
int HandlerStderr::fd() const { return state_->fd.get(); }

} // namespace forkd
