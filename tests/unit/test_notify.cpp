// SPDX-License-Identifier: MIT
// The Notifier against a real datagram socket standing in for the service manager, on a real
// sd-event loop: what it sends, that STATUS= is coalesced and rate-limited, and that a reader
// which falls behind (a full queue) never blocks it and loses no state change.
#include "daemon/master/notify.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using forkd::Notifier;
using forkd::NotifyAddress;
using forkd::parse_notify_address;
using namespace std::chrono_literals;

namespace {

constexpr auto test_status_interval = 200ms;

class NotifyTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "forkd-notify-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        path_ = (dir_ / "notify.sock").string();
        sock_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(sock_, 0);
        auto address = parse_notify_address(path_);
        ASSERT_TRUE(address);
        ASSERT_EQ(::bind(sock_, reinterpret_cast<const sockaddr*>(&address->address), address->length), 0)
            << std::strerror(errno);
        sd_event* event = nullptr;
        ASSERT_GE(sd_event_new(&event), 0);
        event_.reset(event);
        notifier_ = std::make_unique<Notifier>(event_.get(), address, 0, test_status_interval);
    }
    void TearDown() override {
        notifier_.reset();
        if (sock_ >= 0) ::close(sock_);
        fs::remove_all(dir_);
    }

    // Runs the loop (the Notifier's retry and rate-limit timers) for about `for_how_long`.
    void pump(std::chrono::milliseconds for_how_long) {
        const auto end = std::chrono::steady_clock::now() + for_how_long;
        while (std::chrono::steady_clock::now() < end)
            (void)sd_event_run(event_.get(), 10000);
    }

    // The next datagram, running the loop meanwhile; nothing if none arrives within timeout.
    std::optional<std::string> receive(std::chrono::milliseconds timeout = 2000ms) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        do {
            char buf[4096];
            const ssize_t n = ::recv(sock_, buf, sizeof buf, MSG_DONTWAIT);
            if (n >= 0) return std::string(buf, static_cast<size_t>(n));
            (void)sd_event_run(event_.get(), 10000);
        } while (std::chrono::steady_clock::now() < end);
        return std::nullopt;
    }

    // Datagrams are delivered in order on a local socket, so a marker sent last proves that
    // nothing else was sent in between.
    void expect_nothing_before_marker() {
        notifier_->stopping();
        EXPECT_EQ(receive(), "STOPPING=1");
    }

    // Fills the manager's queue from another socket until a send would block; returns how many.
    int fill_queue() {
        int filler = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        auto address = parse_notify_address(path_);
        int sent = 0;
        while (::sendto(filler, "x", 1, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&address->address),
                        address->length) == 1)
            ++sent;
        EXPECT_EQ(errno, EAGAIN);
        ::close(filler);
        return sent;
    }
    void drain_filler(int count) {
        for (int i = 0; i < count; ++i) ASSERT_EQ(receive(), "x");
    }

    fs::path dir_;
    std::string path_;
    int sock_ = -1;
    forkd::EventPtr event_;
    std::unique_ptr<Notifier> notifier_;
};

unsigned long long monotonic_usec() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL + ts.tv_nsec / 1000ULL;
}

} // namespace

TEST_F(NotifyTest, StoppingSendsStopping) {
    notifier_->stopping();
    EXPECT_EQ(receive(), "STOPPING=1");
}

TEST_F(NotifyTest, StatusIsSentAndDeduplicated) {
    notifier_->status("dedup test: 1 active");
    EXPECT_EQ(receive(), "STATUS=dedup test: 1 active");
    notifier_->status("dedup test: 1 active");
    expect_nothing_before_marker();
    notifier_->status("dedup test: 2 active");
    EXPECT_EQ(receive(), "STATUS=dedup test: 2 active");
}

TEST_F(NotifyTest, StatusCannotInjectFields) {
    notifier_->status("line one\nREADY=1");
    EXPECT_EQ(receive(), "STATUS=line one READY=1");
}

TEST_F(NotifyTest, ReadyCarriesCurrentStatus) {
    notifier_->status("ready test: serving");
    EXPECT_EQ(receive(), "STATUS=ready test: serving");
    notifier_->ready();
    EXPECT_EQ(receive(), "READY=1\nSTATUS=ready test: serving");
}

TEST_F(NotifyTest, ReloadingCarriesMonotonicTimestamp) {
    const unsigned long long before = monotonic_usec();
    notifier_->reloading();
    const unsigned long long after = monotonic_usec();
    const auto message = receive();
    ASSERT_TRUE(message.has_value());
    const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
    ASSERT_EQ(message->substr(0, prefix.size()), prefix) << *message;
    const std::string digits = message->substr(prefix.size());
    ASSERT_FALSE(digits.empty());
    ASSERT_EQ(digits.find_first_not_of("0123456789"), std::string::npos) << digits;
    const unsigned long long stamp = std::stoull(digits);
    EXPECT_GE(stamp, before);
    EXPECT_LE(stamp, after);
}

TEST_F(NotifyTest, ReloadSequence) {
    notifier_->reloading();
    ASSERT_TRUE(receive().value_or("").starts_with("RELOADING=1\n"));
    notifier_->ready();
    ASSERT_TRUE(receive().value_or("").starts_with("READY=1"));
}

TEST_F(NotifyTest, NothingIsSentWithoutNotifySocket) {
    Notifier silent(event_.get(), std::nullopt);
    silent.ready();
    silent.reloading();
    silent.stopping();
    silent.status("no socket test");
    EXPECT_EQ(silent.pending(), 0u);
    expect_nothing_before_marker();
}

TEST_F(NotifyTest, StatusUpdatesAreCoalescedToTheLatestAndRateLimited) {
    notifier_->status("coalesce: 1");
    EXPECT_EQ(receive(), "STATUS=coalesce: 1");
    const auto first = std::chrono::steady_clock::now();
    notifier_->status("coalesce: 2");
    notifier_->status("coalesce: 3");
    EXPECT_EQ(receive(), "STATUS=coalesce: 3");
    EXPECT_GE(std::chrono::steady_clock::now() - first, test_status_interval - 20ms);
    EXPECT_EQ(receive(test_status_interval * 2), std::nullopt);
}

TEST_F(NotifyTest, FullQueueNeitherBlocksNorLosesStateChangesAndKeepsTheirOrder) {
    const int filled = fill_queue();
    ASSERT_GT(filled, 0);
    const auto before = std::chrono::steady_clock::now();
    notifier_->status("blocked: 1");
    notifier_->ready();
    notifier_->status("blocked: 2");
    notifier_->stopping();
    EXPECT_LT(std::chrono::steady_clock::now() - before, 100ms);  // nothing waited
    EXPECT_EQ(notifier_->pending(), 3u);
    pump(3 * Notifier::retry_interval);  // retries that would block again stay pending
    EXPECT_EQ(notifier_->pending(), 3u);

    drain_filler(filled);
    EXPECT_EQ(receive(), "READY=1\nSTATUS=blocked: 2");
    EXPECT_EQ(receive(), "STOPPING=1");
    EXPECT_EQ(receive(test_status_interval * 2), std::nullopt);  // STATUS went out with READY
    EXPECT_EQ(notifier_->pending(), 0u);
}

TEST_F(NotifyTest, PendingStateChangesCollapseToTheLatestOfEachKindInOrder) {
    const int filled = fill_queue();
    notifier_->ready();
    notifier_->reloading();
    notifier_->ready();
    notifier_->reloading();
    EXPECT_EQ(notifier_->pending(), 2u);
    drain_filler(filled);
    EXPECT_EQ(receive(), "READY=1");
    EXPECT_TRUE(receive().value_or("").starts_with("RELOADING=1\n"));
}

TEST(NotifyAddressTest, PathAndAbstractNames) {
    auto path = parse_notify_address("/run/systemd/notify");
    ASSERT_TRUE(path);
    EXPECT_STREQ(path->address.sun_path, "/run/systemd/notify");
    auto abstract = parse_notify_address("@forkd-test");
    ASSERT_TRUE(abstract);
    EXPECT_EQ(abstract->address.sun_path[0], '\0');
    EXPECT_EQ(std::string(abstract->address.sun_path + 1, 10), "forkd-test");
    EXPECT_EQ(abstract->length, offsetof(sockaddr_un, sun_path) + 11);
    EXPECT_FALSE(parse_notify_address("relative"));
    EXPECT_FALSE(parse_notify_address(""));
    EXPECT_FALSE(parse_notify_address("/" + std::string(200, 'x')));
}

TEST(NotifyEnvironmentTest, ChildrenDoNotInheritTheNotifySocket) {
    sd_event* event = nullptr;
    ASSERT_GE(sd_event_new(&event), 0);
    forkd::EventPtr owned(event);
    ASSERT_EQ(::setenv("NOTIFY_SOCKET", "@forkd-test-unused", 1), 0);
    auto notifier = Notifier::from_environment(event);
    EXPECT_EQ(::getenv("NOTIFY_SOCKET"), nullptr);
}
