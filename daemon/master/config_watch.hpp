// SPDX-License-Identifier: MIT
#pragma once
// watch-config: calls back once the config file has changed and settled. Watches the file's
// directory (editors and config managers replace files by rename) through inotify in the loop,
// and debounces: a burst of events gives one callback after 500 ms of quiet.
#include "common/base/unique_fd.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"

#include <functional>
#include <string>

namespace forkd {

class ConfigWatch {
public:
    // Throws std::system_error if inotify or the loop refuses.
    ConfigWatch(sd_event* event, const std::string& path, std::function<void()> on_change);
    ConfigWatch(const ConfigWatch&) = delete;
    ConfigWatch& operator=(const ConfigWatch&) = delete;

private:
    void read_events();
    void settled();
    void file_touched();

    sd_event* event_;
    std::string name_;  // the file's name inside its directory
    std::function<void()> on_change_;
    UniqueFd inotify_;
    EventSourcePtr io_;
    EventSourcePtr debounce_;
};

} // namespace forkd
