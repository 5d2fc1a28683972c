// SPDX-License-Identifier: MIT
#pragma once
// The master's listening sockets: each with its tag (its name in forkd-spawner's reports) and
// its event source, opened at start-up, rebound on reload, polled only while the master itself
// accepts (an exec'd handler).
#include "common/address.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"
#include "daemon/master/listen_sockets.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace forkd {

struct Listener {
    std::uint32_t tag = 0;  // its name in the spawner's reports
    ListenSocket socket;
    EventSourcePtr source;
};

class Listeners {
public:
    // on_ready: a listener has a connection waiting (called through event_loop's guard).
    Listeners(sd_event* event, std::function<void(Listener&)> on_ready);
    ~Listeners();  // closes them all
    Listeners(const Listeners&) = delete;
    Listeners& operator=(const Listeners&) = delete;

    // Binds `address` and adds its sockets, polling off. Throws BindError.
    void open(const ListenAddress& address, int backlog);
    // Binds the addresses `wanted` names that are not open yet; only when all succeeded are the
    // ones it no longer names closed, so a failed rebind changes nothing. Returns the error.
    std::optional<std::string> rebind(const std::vector<ListenAddress>& wanted, int backlog);
    // A live upgrade's new image: a socket the old one had open, under the same tag.
    void adopt(ListenSocket socket, std::uint32_t tag);
    std::uint32_t next_tag() const { return next_tag_; }
    void set_next_tag(std::uint32_t tag) { next_tag_ = std::max(next_tag_, tag); }
    // Closes every listener for good (a stop): a UNIX socket's file goes with it.
    void close_all();
    // Whether the master's sources wake for connections.
    void set_polling(bool on);

    std::size_t size() const { return listeners_.size(); }
    std::vector<std::string> bound() const;
    // The address of the listener `tag` names; `gone` if a reload closed it since.
    std::string address_of(std::uint32_t tag, const char* gone) const;
    const std::vector<std::unique_ptr<Listener>>& all() const { return listeners_; }
    auto begin() const { return listeners_.begin(); }
    auto end() const { return listeners_.end(); }

private:
    void add(std::vector<ListenSocket> sockets, std::uint32_t tag = 0);  // 0: the next tag
    static void close(Listener& listener);

    sd_event* event_;
    std::function<void(Listener&)> on_ready_;
    std::uint32_t next_tag_ = 1;
    bool polling_ = false;
    std::vector<std::unique_ptr<Listener>> listeners_;
};

} // namespace forkd
