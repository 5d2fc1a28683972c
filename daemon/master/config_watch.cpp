// SPDX-License-Identifier: MIT
#include "daemon/master/config_watch.hpp"

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
    sd_event_source* source = nullptr;
    int rc = sd_event_add_io(event_, &source, inotify_.get(), EPOLLIN, on_inotify, this);
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), "sd_event_add_io");
    io_.reset(source);
}

int ConfigWatch::on_inotify(sd_event_source*, int fd, uint32_t, void* userdata) {
    auto* self = static_cast<ConfigWatch*>(userdata);
    alignas(inotify_event) char buf[4096];
    bool ours = false;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (char* p = buf; p < buf + n;) {
            auto* ev = reinterpret_cast<inotify_event*>(p);
            if (ev->len && self->name_ == ev->name) ours = true;
            p += sizeof(inotify_event) + ev->len;
        }
    }
    if (ours) self->file_touched();
    return 0;
}

void ConfigWatch::file_touched() {
    if (debounce_) {
        sd_event_source_set_time_relative(debounce_.get(), settle_usec);
        sd_event_source_set_enabled(debounce_.get(), SD_EVENT_ONESHOT);
        return;
    }
    sd_event_source* source = nullptr;
    if (sd_event_add_time_relative(event_, &source, CLOCK_MONOTONIC, settle_usec, 0, on_settled,
                                   this) >= 0)
        debounce_.reset(source);
}

int ConfigWatch::on_settled(sd_event_source*, uint64_t, void* userdata) {
    auto* self = static_cast<ConfigWatch*>(userdata);
    // The callback may reload and destroy this watch (watch-config turned off): copy first.
    auto callback = self->on_change_;
    callback();
    return 0;
}

} // namespace forkd
