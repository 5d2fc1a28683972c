// SPDX-License-Identifier: MIT
#include "daemon/admission/proxy_header_waits.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace forkd {
namespace {

constexpr int max_events = 64;

std::uint64_t event_key(std::uint32_t slot, std::uint32_t generation) {
    return (std::uint64_t(generation) << 32) | slot;
}

} // namespace

ProxyHeaderWaits::ProxyHeaderWaits(std::size_t capacity)
    : epoll_(epoll_create1(EPOLL_CLOEXEC)), slots_(std::max<std::size_t>(capacity, 1)) {
    if (!epoll_) throw std::system_error(errno, std::system_category(), "epoll_create1");
    free_.reserve(slots_.size());
    for (std::size_t i = slots_.size(); i-- > 0;) free_.push_back(std::uint32_t(i));
    finished_.reserve(max_events * 2);
}

ProxyHeaderWaits::~ProxyHeaderWaits() = default;

void ProxyHeaderWaits::insert(UniqueFd fd, const sockaddr_storage& peer, socklen_t peer_len,
                              std::uint32_t tag, std::int64_t deadline_ms) {
    const std::uint32_t index = free_.back();
    Slot& slot = slots_[index];
    epoll_event event{};
    // Edge-triggered: the header is peeked at, not read, until it is whole; a level-triggered
    // socket holding half of one would be reported ready without end.
    event.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    event.data.u64 = event_key(index, slot.generation);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &event) != 0) return;  // fd closes: dropped
    free_.pop_back();
    slot.fd = std::move(fd);
    slot.peer = peer;
    slot.peer_len = peer_len;
    slot.tag = tag;
    slot.deadline_ms = deadline_ms;
    slot.used = true;
    slot.older = newest_;
    slot.newer = none;
    if (newest_ != none) slots_[newest_].newer = index;
    newest_ = index;
    if (oldest_ == none) oldest_ = index;
    ++count_;
}

void ProxyHeaderWaits::unlink(std::uint32_t index) {
    Slot& slot = slots_[index];
    if (slot.older != none) slots_[slot.older].newer = slot.newer;
    else oldest_ = slot.newer;
    if (slot.newer != none) slots_[slot.newer].older = slot.older;
    else newest_ = slot.older;
    slot.older = slot.newer = none;
}

ProxyWaitOutcome ProxyHeaderWaits::take(std::uint32_t index, const char* reason) {
    Slot& slot = slots_[index];
    ProxyWaitOutcome outcome;
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, slot.fd.get(), nullptr);
    outcome.fd = std::move(slot.fd);
    outcome.peer = slot.peer;
    outcome.peer_len = slot.peer_len;
    outcome.tag = slot.tag;
    outcome.reason = reason;
    unlink(index);
    slot.used = false;
    ++slot.generation;
    free_.push_back(index);
    --count_;
    return outcome;
}

bool ProxyHeaderWaits::look(std::uint32_t index, ProxyWaitOutcome& outcome) {
    std::uint8_t bytes[proxy_header_max_size];
    const int fd = slots_[index].fd.get();
    ssize_t n;
    do n = recv(fd, bytes, sizeof bytes, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) return false;
    if (n < 0) {
        outcome = take(index, "connection failed before its PROXY header");
        return true;
    }
    if (n == 0) {
        outcome = take(index, "connection closed before its PROXY header");
        return true;
    }
    const ProxyHeader header = parse_proxy_header({bytes, std::size_t(n)});
    switch (header.status) {
    case ProxyParse::need_more: return false;  // the timeout, or an EOF seen as 0 next time, ends it
    case ProxyParse::malformed:
        outcome = take(index, header.reason);
        return true;
    case ProxyParse::done: break;
    }
    // The peeked header is in the socket: reading it away cannot wait.
    ssize_t got;
    do got = recv(fd, bytes, header.consumed, MSG_DONTWAIT);
    while (got < 0 && errno == EINTR);
    if (got != ssize_t(header.consumed)) {
        outcome = take(index, "connection failed while its PROXY header was read");
        return true;
    }
    outcome = take(index, "");
    outcome.ok = true;
    outcome.header = header;
    return true;
}

std::vector<ProxyWaitOutcome>& ProxyHeaderWaits::collect(std::int64_t now_ms, int budget) {
    finished_.clear();
    epoll_event events[max_events];
    const int n = epoll_wait(epoll_.get(), events, std::clamp(budget, 1, max_events), 0);
    for (int i = 0; i < n; ++i) {
        const auto index = std::uint32_t(events[i].data.u64 & 0xFFFFFFFFu);
        const auto generation = std::uint32_t(events[i].data.u64 >> 32);
        if (index >= slots_.size() || !slots_[index].used || slots_[index].generation != generation) continue;
        ProxyWaitOutcome outcome;
        if (look(index, outcome)) finished_.push_back(std::move(outcome));
    }
    // Deadlines fall in arrival order: the oldest first, each given a last look.
    while (oldest_ != none && slots_[oldest_].deadline_ms <= now_ms && int(finished_.size()) < budget) {
        ProxyWaitOutcome outcome;
        if (!look(oldest_, outcome)) outcome = take(oldest_, "no whole PROXY header within proxy-header-timeout");
        finished_.push_back(std::move(outcome));
    }
    return finished_;
}

int ProxyHeaderWaits::timeout_ms(std::int64_t now_ms) const {
    if (oldest_ == none) return -1;
    const std::int64_t left = slots_[oldest_].deadline_ms - now_ms;
    return int(std::clamp<std::int64_t>(left, 0, INT32_MAX));
}

void ProxyHeaderWaits::clear() {
    while (oldest_ != none) (void)take(oldest_, "");
}

} // namespace forkd
