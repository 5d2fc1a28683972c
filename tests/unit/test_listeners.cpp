// SPDX-License-Identifier: MIT
// The master's listeners: a reload's rebind opens what is new, closes what is gone, keeps what
// stays (its socket and tag), and when one address cannot be bound changes nothing.
#include "daemon/master/listeners.hpp"

#include "captured_log.hpp"
#include "test_loop.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace forkd {
namespace {

class ListenersTest : public ::testing::Test {
protected:
    ListenersTest() {
        listeners_ = std::make_unique<Listeners>(event_.get(), [](Listener&) {});
        char dir[] = "/tmp/forkd-listeners-XXXXXX";
        dir_ = mkdtemp(dir);
    }
    ~ListenersTest() override {
        listeners_.reset();
        rmdir(dir_.c_str());
    }

    std::vector<std::uint32_t> tags() const {
        std::vector<std::uint32_t> out;
        for (const auto& l : *listeners_) out.push_back(l->tag);
        return out;
    }

    test::CapturedLog log_;
    EventPtr event_ = test::new_loop();
    std::unique_ptr<Listeners> listeners_;
    std::string dir_;
};

TEST_F(ListenersTest, RebindKeepsWhatStaysAndClosesWhatIsGone) {
    const auto tcp = parse_listen_address("127.0.0.1:0");
    const auto unix_address = parse_listen_address("unix:" + dir_ + "/a.sock");
    listeners_->open(tcp, 16);
    ASSERT_EQ(tags(), (std::vector<std::uint32_t>{1}));
    const std::string tcp_bound = listeners_->bound()[0];

    ASSERT_EQ(listeners_->rebind({tcp, unix_address}, 16), std::nullopt);
    EXPECT_EQ(tags(), (std::vector<std::uint32_t>{1, 2}));
    EXPECT_EQ(listeners_->bound()[0], tcp_bound);
    EXPECT_EQ(listeners_->address_of(2, "gone"), "unix:" + dir_ + "/a.sock");

    ASSERT_EQ(listeners_->rebind({unix_address}, 16), std::nullopt);
    EXPECT_EQ(tags(), (std::vector<std::uint32_t>{2}));
    EXPECT_EQ(listeners_->address_of(1, "gone"), "gone");
    EXPECT_EQ(log_.lines("event=listener-closed").size(), 1u);

    listeners_->close_all();
    EXPECT_EQ(listeners_->size(), 0u);
    EXPECT_NE(access((dir_ + "/a.sock").c_str(), F_OK), 0);  // the socket file went with it
}

TEST_F(ListenersTest, AFailedRebindChangesNothing) {
    listeners_->open(parse_listen_address("127.0.0.1:0"), 16);
    const std::string taken = listeners_->bound()[0];  // a second bind to it fails
    const auto fresh = parse_listen_address("unix:" + dir_ + "/b.sock");
    const auto error = listeners_->rebind({fresh, parse_listen_address(taken)}, 16);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(tags(), (std::vector<std::uint32_t>{1}));
    EXPECT_NE(access((dir_ + "/b.sock").c_str(), F_OK), 0);  // the new one was not left behind
}

} // namespace
} // namespace forkd
