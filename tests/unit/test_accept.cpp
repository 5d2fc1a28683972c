// SPDX-License-Identifier: MIT
// The one accept loop and its errno policy, on a real listening socket on loopback.
#include "daemon/core/accept.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace forkd {
namespace {

TEST(AcceptErrnoPolicy, ClassifiesEachErrnoOnce) {
    EXPECT_EQ(classify_accept_errno(EINTR), AcceptErrno::retry);
    EXPECT_EQ(classify_accept_errno(EAGAIN), AcceptErrno::drained);
    EXPECT_EQ(classify_accept_errno(EWOULDBLOCK), AcceptErrno::drained);
    for (int e : {ECONNABORTED, EPROTO, EPERM, ENETDOWN, ENETUNREACH, EHOSTUNREACH, ENONET})
        EXPECT_EQ(classify_accept_errno(e), AcceptErrno::skip) << e;
    for (int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM})
        EXPECT_EQ(classify_accept_errno(e), AcceptErrno::exhausted) << e;
    for (int e : {EBADF, EINVAL, ENOTSOCK, EFAULT})
        EXPECT_EQ(classify_accept_errno(e), AcceptErrno::fatal) << e;
}

// A non-blocking TCP listener on 127.0.0.1 and clients connected to it.
class AcceptBatch : public ::testing::Test {
protected:
    void SetUp() override {
        listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        ASSERT_TRUE(listener_.valid());
        address_.sin_family = AF_INET;
        address_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address_), sizeof address_), 0);
        socklen_t len = sizeof address_;
        ASSERT_EQ(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address_), &len), 0);
        ASSERT_EQ(::listen(listener_.get(), 64), 0);
    }

    void connect_clients(int n) {
        for (int i = 0; i < n; ++i) {
            UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&address_), sizeof address_), 0);
            clients_.push_back(std::move(client));
        }
    }

    // Accepts one batch, keeping what it took.
    AcceptOutcome accept_all(ConnectionMode mode = ConnectionMode::blocking) {
        return accept_batch(listener_.get(), mode, [] { return true; }, [this](AcceptedConnection c) {
            accepted_.push_back(std::move(c));
            return true;
        });
    }

    UniqueFd listener_;
    sockaddr_in address_{};
    std::vector<UniqueFd> clients_;
    std::vector<AcceptedConnection> accepted_;
};

TEST_F(AcceptBatch, TakesWhatWaitsThenReportsTheBacklogDrained) {
    connect_clients(3);
    const AcceptOutcome outcome = accept_all();
    EXPECT_EQ(outcome.end, AcceptEnd::drained);
    ASSERT_EQ(accepted_.size(), 3u);
    for (const auto& c : accepted_) {
        EXPECT_EQ(c.peer.ss_family, AF_INET);
        EXPECT_EQ(c.peer_len, sizeof(sockaddr_in));
        EXPECT_TRUE(::fcntl(c.fd.get(), F_GETFD) & FD_CLOEXEC);
        EXPECT_FALSE(::fcntl(c.fd.get(), F_GETFL) & O_NONBLOCK) << "a handler's stdio must block";
    }
}

TEST_F(AcceptBatch, TakesAtMostOneBatchPerWakeUp) {
    connect_clients(accepts_per_wakeup + 2);
    EXPECT_EQ(accept_all().end, AcceptEnd::batch_full);
    EXPECT_EQ(accepted_.size(), std::size_t(accepts_per_wakeup));
    EXPECT_EQ(accept_all().end, AcceptEnd::drained);
    EXPECT_EQ(accepted_.size(), std::size_t(accepts_per_wakeup) + 2);
}

TEST_F(AcceptBatch, NonblockingModeForTheLoopsOwnClients) {
    connect_clients(1);
    accept_all(ConnectionMode::nonblocking);
    ASSERT_EQ(accepted_.size(), 1u);
    EXPECT_TRUE(::fcntl(accepted_[0].fd.get(), F_GETFL) & O_NONBLOCK);
}

TEST_F(AcceptBatch, HeldWhileTheCallerHasNoRoomAndStoppedWhenServeSaysSo) {
    connect_clients(2);
    int served = 0;
    const auto held = accept_batch(listener_.get(), ConnectionMode::blocking,
                                   [&] { return served < 1; }, [&](AcceptedConnection) {
                                       ++served;
                                       return true;
                                   });
    EXPECT_EQ(held.end, AcceptEnd::held);
    EXPECT_EQ(served, 1);
    const auto stopped = accept_batch(listener_.get(), ConnectionMode::blocking, [] { return true; },
                                      [&](AcceptedConnection) { return false; });
    EXPECT_EQ(stopped.end, AcceptEnd::stopped);
}

TEST_F(AcceptBatch, FailsWithTheErrnoOfAnUnusableListener) {
    UniqueFd not_listening(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    const auto outcome = accept_batch(not_listening.get(), ConnectionMode::blocking,
                                      [] { return true; }, [](AcceptedConnection) { return true; });
    EXPECT_EQ(outcome.end, AcceptEnd::failed);
    EXPECT_EQ(outcome.error, EINVAL);
}

// Leaves this process no free descriptor (and no way to raise the limit again).
void use_up_descriptors() {
    const rlimit tight{64, 64};
    if (::setrlimit(RLIMIT_NOFILE, &tight) != 0) _exit(2);
    while (::dup(0) >= 0) {
    }
}

// Out of descriptors (in a child): the batch ends exhausted with EMFILE, and the client stays
// in the backlog.
TEST_F(AcceptBatch, OutOfDescriptorsEndsTheBatchExhausted) {
    connect_clients(1);
    EXPECT_EXIT(
        {
            use_up_descriptors();
            const AcceptOutcome outcome = accept_all();
            _exit(outcome.end == AcceptEnd::exhausted && outcome.error == EMFILE ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "");
    EXPECT_EQ(accept_all().end, AcceptEnd::drained);
    EXPECT_EQ(accepted_.size(), 1u);
}

// A caller that needs more descriptors per connection than are free (in a child, with only two
// left): the batch ends exhausted before accepting, and the client stays in the backlog.
TEST_F(AcceptBatch, TooFewDescriptorsForTheConnectionsNeedsEndsTheBatchBeforeAccepting) {
    connect_clients(1);
    EXPECT_EXIT(
        {
            use_up_descriptors();
            ::close(60);  // two free
            ::close(61);
            if (!descriptors_free(listener_.get(), 2) || descriptors_free(listener_.get(), 3)) _exit(2);
            const AcceptOutcome outcome = accept_batch(
                listener_.get(), ConnectionMode::blocking, [] { return true; },
                [](AcceptedConnection) { _exit(3); return true; }, 2);
            _exit(outcome.end == AcceptEnd::exhausted && outcome.error == EMFILE ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "");
    EXPECT_EQ(accept_all().end, AcceptEnd::drained);
    EXPECT_EQ(accepted_.size(), 1u);
}

TEST(DescriptorsFree, ProbesWithoutKeepingAnything) {
    const int before = ::dup(0);
    ::close(before);
    EXPECT_TRUE(descriptors_free(0, 8));
    const int after = ::dup(0);
    ::close(after);
    EXPECT_EQ(after, before);  // every probe was closed again
}

} // namespace
} // namespace forkd
