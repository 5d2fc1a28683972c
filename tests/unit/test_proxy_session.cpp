// SPDX-License-Identifier: MIT
// ProxySession on a real event base and real sockets: the completion callback runs once, from
// the loop, with the outcome; close() ends it as killed; bytes are counted where they move.
#include "daemon/proxy/proxy_session.hpp"

#include "common/base/proxy_target.hpp"
#include "daemon/proxy/proxy_address.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>

namespace forkd {
namespace {

struct BaseFree {
    void operator()(event_base* base) const { event_base_free(base); }
};

class ProxySessionTest : public ::testing::Test {
protected:
    void SetUp() override {
        ::signal(SIGPIPE, SIG_IGN);
        base_.reset(event_base_new());
        ASSERT_TRUE(base_);
        int pair[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        client_.reset(pair[0]);
        server_side_.reset(pair[1]);
    }
    // A listening TCP socket on 127.0.0.1 and its endpoint.
    ProxyEndpoint listen_endpoint(UniqueFd& listener) {
        listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
        EXPECT_EQ(::listen(listener.get(), 4), 0);
        socklen_t len = sizeof sin;
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sin), &len);
        return *resolve_proxy_target(*parse_proxy_target("127.0.0.1:" + std::to_string(ntohs(sin.sin_port))));
    }
    std::unique_ptr<ProxySession> start(const ProxyEndpoint& target) {
        auto session = ProxySession::start(base_.get(), std::move(server_side_), target, {},
                                           [this](const ProxySessionResult& r) {
                                               ++calls_;
                                               result_ = r;
                                               event_base_loopbreak(base_.get());
                                           });
        EXPECT_TRUE(session) << session.error().message();
        return session ? std::move(*session) : nullptr;
    }
    void run_for(int ms) {
        const timeval after{ms / 1000, ms % 1000 * 1000};
        event_base_loopexit(base_.get(), &after);
        event_base_dispatch(base_.get());
        // libevent closes a freed bufferevent's socket in a finalizer on the next turn.
        event_base_loop(base_.get(), EVLOOP_NONBLOCK);
    }
    // Whether the client's end sees EOF now (without blocking).
    bool client_closed() {
        char byte;
        return ::recv(client_.get(), &byte, 1, MSG_DONTWAIT) == 0;
    }

    std::unique_ptr<event_base, BaseFree> base_;
    UniqueFd client_, server_side_;
    int calls_ = 0;
    std::optional<ProxySessionResult> result_;
};

TEST_F(ProxySessionTest, ARefusedTargetFailsOnceFromTheLoop) {
    UniqueFd listener;
    const ProxyEndpoint target = listen_endpoint(listener);
    listener.reset();  // nothing listens there any more
    auto session = start(target);
    ASSERT_TRUE(session);
    EXPECT_EQ(calls_, 0) << "done must not run inside start()";
    run_for(2000);
    EXPECT_EQ(calls_, 1);
    ASSERT_TRUE(result_);
    EXPECT_EQ(result_->outcome, ProxyOutcome::failed);
    EXPECT_EQ(result_->reason, "connect refused");
    EXPECT_TRUE(client_closed()) << "the client is closed";
}

TEST_F(ProxySessionTest, BytesMoveAndCloseEndsItAsKilled) {
    UniqueFd listener;
    auto session = start(listen_endpoint(listener));
    ASSERT_TRUE(session);
    ASSERT_EQ(::write(client_.get(), "ping", 4), 4);
    run_for(200);
    EXPECT_TRUE(session->connected());
    UniqueFd backend(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(backend.valid());
    char buf[16];
    EXPECT_EQ(::recv(backend.get(), buf, sizeof buf, MSG_DONTWAIT), 4);
    ASSERT_EQ(::write(backend.get(), "pong!", 5), 5);
    run_for(200);
    EXPECT_EQ(::recv(client_.get(), buf, sizeof buf, MSG_DONTWAIT), 5);
    EXPECT_EQ(session->bytes_in(), 4u);
    EXPECT_EQ(session->bytes_out(), 5u);
    session->close();
    EXPECT_EQ(calls_, 1);
    EXPECT_EQ(result_->outcome, ProxyOutcome::killed);
    EXPECT_EQ(result_->bytes_in, 4u);
    EXPECT_EQ(result_->bytes_out, 5u);
    EXPECT_TRUE(session->finished());
    session->close();  // once only
    EXPECT_EQ(calls_, 1);
    event_base_loop(base_.get(), EVLOOP_NONBLOCK);
    EXPECT_TRUE(client_closed());
}

TEST_F(ProxySessionTest, TheOwnerMayDestroyTheSessionInsideDone) {
    UniqueFd listener;
    const ProxyEndpoint target = listen_endpoint(listener);
    listener.reset();
    std::unique_ptr<ProxySession> session;
    auto started = ProxySession::start(base_.get(), std::move(server_side_), target, {},
                                       [&](const ProxySessionResult&) {
                                           ++calls_;
                                           session.reset();
                                       });
    ASSERT_TRUE(started);
    session = std::move(*started);
    run_for(500);
    EXPECT_EQ(calls_, 1);
    EXPECT_FALSE(session);
}

} // namespace
} // namespace forkd
