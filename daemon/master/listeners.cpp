// SPDX-License-Identifier: MIT
#include "daemon/master/listeners.hpp"

#include "common/log.hpp"
#include "daemon/event_loop/event_sources.hpp"

#include <unistd.h>

#include <set>

namespace forkd {

Listeners::Listeners(sd_event* event, std::function<void(Listener&)> on_ready)
    : event_(event), on_ready_(std::move(on_ready)) {}

Listeners::~Listeners() { close_all(); }

void Listeners::open(const ListenAddress& address, int backlog) {
    add(open_listeners(address, backlog));
}

void Listeners::adopt(ListenSocket socket, std::uint32_t tag) {
    std::vector<ListenSocket> one;
    one.push_back(std::move(socket));
    add(std::move(one), tag);
}

void Listeners::add(std::vector<ListenSocket> sockets, std::uint32_t tag) {
    for (auto& socket : sockets) {
        auto listener = std::make_unique<Listener>();
        listener->tag = tag ? tag : next_tag_++;
        listener->socket = std::move(socket);
        listener->source = event_loop::value_or_throw(event_loop::add_io(
            event_, listener->socket.fd.get(), EPOLLIN, "listener",
            [this, &ready = *listener] { on_ready_(ready); }));
        sd_event_source_set_enabled(listener->source.get(), polling_ ? SD_EVENT_ON : SD_EVENT_OFF);
        if (!tag) log::notice("listening", {{"address", listener->socket.bound}});
        listeners_.push_back(std::move(listener));
    }
}

std::optional<std::string> Listeners::rebind(const std::vector<ListenAddress>& wanted_addresses,
                                             int backlog) {
    std::set<std::string> wanted, present;
    for (const auto& address : wanted_addresses) wanted.insert(to_string(address));
    for (const auto& listener : listeners_) present.insert(listener->socket.configured);
    std::vector<ListenSocket> added;
    try {
        for (const auto& address : wanted_addresses) {
            const std::string key = to_string(address);
            if (present.count(key)) continue;
            present.insert(key);
            for (auto& socket : open_listeners(address, backlog)) added.push_back(std::move(socket));
        }
    } catch (const std::exception& e) {
        for (auto& socket : added) unlink_unix_socket(socket);
        return std::string(e.what());
    }
    for (auto& listener : listeners_) {
        if (wanted.count(listener->socket.configured)) continue;
        log::notice("listener-closed", {{"address", listener->socket.bound}});
        close(*listener);
    }
    std::erase_if(listeners_, [](const auto& l) { return !l->socket.fd; });
    add(std::move(added));
    return std::nullopt;
}

void Listeners::close(Listener& listener) {
    listener.source.reset();
    if (listener.socket.fd) unlink_unix_socket(listener.socket);
    listener.socket.fd.reset();
}

void Listeners::close_all() {
    for (auto& listener : listeners_) close(*listener);
    listeners_.clear();
}

void Listeners::set_polling(bool on) {
    polling_ = on;
    for (auto& listener : listeners_)
        sd_event_source_set_enabled(listener->source.get(), on ? SD_EVENT_ON : SD_EVENT_OFF);
}

std::vector<std::string> Listeners::bound() const {
    std::vector<std::string> addresses;
    for (const auto& listener : listeners_) addresses.push_back(listener->socket.bound);
    return addresses;
}

std::string Listeners::address_of(std::uint32_t tag, const char* gone) const {
    for (const auto& listener : listeners_)
        if (listener->tag == tag) return listener->socket.bound;
    return gone;
}

} // namespace forkd
