// SPDX-License-Identifier: MIT
#include "daemon/master/config_watch.hpp"

#include "daemon/event_loop/event_sources.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace forkd {
namespace {

constexpr std::uint64_t settle_usec = 500 * 1000;

void check(int rc, const std::string& what) {
    if (rc < 0) throw std::system_error(errno, std::generic_category(), what);
}

} // namespace

ConfigWatch::ConfigWatch(sd_event* event, const std::string& path, std::function<void()> on_change)
    : event_(event), on_change_(std::move(on_change)) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    name_ = slash == std::string::npos ? path : path.substr(slash + 1);
    inotify_.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    check(inotify_.get(), "inotify_init1");
    check(inotify_add_watch(inotify_.get(), dir.c_str(),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB),
          "inotify_add_watch " + dir);
    io_ = event_loop::value_or_throw(
        event_loop::add_io(event_, inotify_.get(), EPOLLIN, "config-watch", [this] { read_events(); }));
}

void ConfigWatch::read_events() {
    alignas(inotify_event) char buf[4096];
    bool ours = false;
    for (;;) {
        ssize_t n = read(inotify_.get(), buf, sizeof buf);
        if (n <= 0) break;
        for (char* p = buf; p < buf + n;) {
            auto* ev = reinterpret_cast<inotify_event*>(p);
            if (ev->len && name_ == ev->name) ours = true;
            p += sizeof(inotify_event) + ev->len;
        }
    }
    if (ours) file_touched();
}

void ConfigWatch::file_touched() {
    if (debounce_) {
        (void)event_loop::rearm(debounce_.get(), settle_usec);
        return;
    }
    if (auto timer = event_loop::add_timer(event_, settle_usec, "config-settle", [this] { settled(); }))
        debounce_ = std::move(*timer);
}

void ConfigWatch::settled() {
    // The callback may reload and destroy this watch (watch-config turned off): copy first.
    auto callback = on_change_;
    callback();
}

} // namespace forkd
