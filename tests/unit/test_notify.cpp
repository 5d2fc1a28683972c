// SPDX-License-Identifier: MIT
#include "daemon/master/notify.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

namespace fs = std::filesystem;
namespace notify = forkd::notify;

namespace {

// A stand-in for the service manager: a datagram socket named by NOTIFY_SOCKET.
class NotifyTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "forkd-notify-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        const std::string path = (dir_ / "notify.sock").string();

        sock_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(sock_, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        ASSERT_LT(path.size(), sizeof addr.sun_path);
        std::strcpy(addr.sun_path, path.c_str());
        ASSERT_EQ(::bind(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
        // The remembered status is process-wide: start every test from a text no test uses,
        // set while NOTIFY_SOCKET is still unset so that nothing is sent.
        ::unsetenv("NOTIFY_SOCKET");
        static int generation = 0;
        notify::status("reset " + std::to_string(++generation));
        ASSERT_EQ(::setenv("NOTIFY_SOCKET", path.c_str(), 1), 0);
    }
    void TearDown() override {
        ::unsetenv("NOTIFY_SOCKET");
        if (sock_ >= 0) ::close(sock_);
        fs::remove_all(dir_);
    }

    // The next datagram, or nothing if none arrives within timeout_ms.
    std::optional<std::string> receive(int timeout_ms = 2000) {
        pollfd pfd{sock_, POLLIN, 0};
        if (::poll(&pfd, 1, timeout_ms) != 1) return std::nullopt;
        char buf[4096];
        const ssize_t n = ::recv(sock_, buf, sizeof buf, 0);
        if (n < 0) return std::nullopt;
        return std::string(buf, static_cast<size_t>(n));
    }

    // Datagrams are delivered in order on a local socket, so a marker sent last proves that
    // nothing else was sent in between.
    void expect_nothing_before_marker() {
        notify::stopping();
        EXPECT_EQ(receive(), "STOPPING=1");
    }

    fs::path dir_;
    int sock_ = -1;
};

unsigned long long monotonic_usec() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL + ts.tv_nsec / 1000ULL;
}

} // namespace

TEST_F(NotifyTest, StoppingSendsStopping) {
    notify::stopping();
    EXPECT_EQ(receive(), "STOPPING=1");
}

TEST_F(NotifyTest, StatusIsSentAndDeduplicated) {
    notify::status("dedup test: 1 active");
    EXPECT_EQ(receive(), "STATUS=dedup test: 1 active");
    notify::status("dedup test: 1 active");
    expect_nothing_before_marker();
    notify::status("dedup test: 2 active");
    EXPECT_EQ(receive(), "STATUS=dedup test: 2 active");
}

TEST_F(NotifyTest, StatusCannotInjectFields) {
    notify::status("line one\nREADY=1");
    EXPECT_EQ(receive(), "STATUS=line one READY=1");
}

TEST_F(NotifyTest, ReadyCarriesCurrentStatus) {
    notify::status("ready test: serving");
    EXPECT_EQ(receive(), "STATUS=ready test: serving");
    notify::ready();
    EXPECT_EQ(receive(), "READY=1\nSTATUS=ready test: serving");
}

TEST_F(NotifyTest, ReloadingCarriesMonotonicTimestamp) {
    const unsigned long long before = monotonic_usec();
    notify::reloading();
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
    notify::reloading();
    ASSERT_TRUE(receive().value_or("").starts_with("RELOADING=1\n"));
    notify::ready();
    ASSERT_TRUE(receive().value_or("").starts_with("READY=1"));
}

TEST_F(NotifyTest, NothingIsSentWithoutNotifySocket) {
    const std::string socket_path = ::getenv("NOTIFY_SOCKET");
    ::unsetenv("NOTIFY_SOCKET");
    notify::ready();
    notify::reloading();
    notify::stopping();
    notify::status("no socket test");
    ASSERT_EQ(::setenv("NOTIFY_SOCKET", socket_path.c_str(), 1), 0);
    expect_nothing_before_marker();
}

TEST_F(NotifyTest, StatusRememberedWithoutSocketIsNotResent) {
    const std::string socket_path = ::getenv("NOTIFY_SOCKET");
    ::unsetenv("NOTIFY_SOCKET");
    notify::status("remembered status");
    ASSERT_EQ(::setenv("NOTIFY_SOCKET", socket_path.c_str(), 1), 0);
    notify::status("remembered status");
    notify::ready();
    EXPECT_EQ(receive(), "READY=1\nSTATUS=remembered status");
}
