// SPDX-License-Identifier: MIT
// read_more: one larger read into a socket bufferevent's input, on a real socketpair. The
// bufferevent alone takes 4 KiB per callback (libevent 2.1); read_more takes what it is allowed,
// its bytes pass through the buffer's callbacks (where the proxy counts them), and an EOF or an
// error is reported, never lost.
#include "daemon/proxy/read_more.hpp"

#include "common/base/unique_fd.hpp"

#include <gtest/gtest.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace forkd {
namespace {

class ReadMoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        base_ = event_base_new();
        ASSERT_TRUE(base_);
        int pair[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), 0);
        writer_.reset(pair[0]);
        // A large send buffer: the whole test payload sits in the socket at once.
        const int size = 1 << 20;
        ::setsockopt(writer_.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        bev_ = bufferevent_socket_new(base_, pair[1], BEV_OPT_CLOSE_ON_FREE);
        ASSERT_TRUE(bev_);
        evbuffer_add_cb(input(), count_added, &added_);
    }
    void TearDown() override {
        if (bev_) bufferevent_free(bev_);
        if (base_) event_base_free(base_);
    }
    static void count_added(evbuffer*, const evbuffer_cb_info* info, void* added) {
        *static_cast<std::size_t*>(added) += info->n_added;
    }
    evbuffer* input() { return bufferevent_get_input(bev_); }
    int fd() { return bufferevent_getfd(bev_); }
    std::size_t send(std::size_t bytes) {
        const std::string data(bytes, 'x');
        const ssize_t n = ::send(writer_.get(), data.data(), data.size(), 0);
        return n < 0 ? 0 : static_cast<std::size_t>(n);
    }

    event_base* base_ = nullptr;
    bufferevent* bev_ = nullptr;
    UniqueFd writer_;
    std::size_t added_ = 0;
};

TEST_F(ReadMoreTest, TakesUpToItsLimitInOneReadAndTheBufferCallbacksSeeIt) {
    const std::size_t sent = send(100000);
    ASSERT_GT(sent, 80000u);
    const ReadMore first = read_more(input(), fd(), 65536);
    EXPECT_EQ(first.bytes, 65536u);
    EXPECT_EQ(first.error, 0);
    EXPECT_FALSE(first.eof);
    EXPECT_EQ(evbuffer_get_length(input()), 65536u);
    EXPECT_EQ(added_, 65536u);
    const ReadMore rest = read_more(input(), fd(), 65536);
    EXPECT_EQ(rest.bytes, sent - 65536);
    EXPECT_EQ(evbuffer_get_length(input()), sent);
}

TEST_F(ReadMoreTest, NothingWaitingIsNeitherAnErrorNorAnEof) {
    const ReadMore none = read_more(input(), fd(), 4096);
    EXPECT_EQ(none.bytes, 0u);
    EXPECT_EQ(none.error, 0);
    EXPECT_FALSE(none.eof);
    EXPECT_EQ(read_more(input(), fd(), 0).bytes, 0u);
}

TEST_F(ReadMoreTest, ThePeersEofIsReportedAndTheInputStaysFrozenForOthers) {
    send(10);
    writer_.reset();
    EXPECT_EQ(read_more(input(), fd(), 4096).bytes, 10u);
    EXPECT_TRUE(read_more(input(), fd(), 4096).eof);
    // The bufferevent's contract holds again: nobody else may add at the input's end.
    EXPECT_NE(evbuffer_add(input(), "y", 1), 0);
}

TEST_F(ReadMoreTest, AFailedReadReportsItsErrno) {
    const ReadMore failed = read_more(input(), /*not a socket*/ -1, 4096);
    EXPECT_EQ(failed.bytes, 0u);
    EXPECT_EQ(failed.error, EBADF);
    EXPECT_EQ(evbuffer_get_length(input()), 0u);
}

} // namespace
} // namespace forkd
