// SPDX-License-Identifier: MIT
// The stale-socket probe the unix: listeners and the control socket share: only a socket file
// nobody listens on is removed.
#include "common/base/stale_socket.hpp"
#include "common/base/unique_fd.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace forkd {
namespace {

class StaleSocket : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/forkd-stale-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
        path_ = dir_ + "/s.sock";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    // A socket bound at path_, listening or not.
    UniqueFd bind_socket(bool listening) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strcpy(address.sun_path, path_.c_str());
        EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        if (listening) {
            EXPECT_EQ(::listen(fd.get(), 1), 0);
        }
        return fd;
    }
    bool exists() const {
        struct stat st {};
        return ::lstat(path_.c_str(), &st) == 0;
    }

    // The probe on path_, in its checked directory.
    Status remove_stale() const {
        Result<RunPath> run = open_run_path(path_, CreateMissing::no);
        if (!run) return run.error();
        return remove_stale_socket(*run);
    }

    std::string dir_, path_;
};

TEST_F(StaleSocket, NothingThereIsFree) {
    EXPECT_TRUE(remove_stale().ok());
}

TEST_F(StaleSocket, ASocketNobodyListensOnIsRemoved) {
    { UniqueFd closed = bind_socket(true); }  // closed: the file stays behind
    ASSERT_TRUE(exists());
    EXPECT_TRUE(remove_stale().ok());
    EXPECT_FALSE(exists());

    UniqueFd bound_only = bind_socket(false);  // bound, never listening: refused as well
    EXPECT_TRUE(remove_stale().ok());
    EXPECT_FALSE(exists());
}

TEST_F(StaleSocket, ALiveServerKeepsItsPath) {
    UniqueFd live = bind_socket(true);
    const Status status = remove_stale();
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, EADDRINUSE);
    EXPECT_TRUE(exists());
}

TEST_F(StaleSocket, ALiveServerWithAFullBacklogKeepsItsPath) {
    UniqueFd live = bind_socket(true);
    std::vector<UniqueFd> queued;
    for (int i = 0; i < 8; ++i) {
        UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strcpy(address.sun_path, path_.c_str());
        (void)::connect(client.get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
        queued.push_back(std::move(client));
    }
    const Status status = remove_stale();
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, EADDRINUSE);
    EXPECT_TRUE(exists());
}

TEST_F(StaleSocket, AFileThatIsNotASocketIsLeftAlone) {
    std::ofstream(path_) << "data";
    const Status status = remove_stale();
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, EEXIST);
    EXPECT_TRUE(exists());
}

TEST_F(StaleSocket, ASymlinkIsLeftAloneAndNotFollowed) {
    const std::string target = dir_ + "/target";
    { UniqueFd closed = [&] { path_ = target; return bind_socket(true); }(); }  // a stale socket
    path_ = dir_ + "/s.sock";
    ASSERT_EQ(::symlink(target.c_str(), path_.c_str()), 0);
    const Status status = remove_stale();
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, EEXIST);
    struct stat st {};
    EXPECT_EQ(::lstat(target.c_str(), &st), 0) << "the symlink's target was removed";
}

} // namespace
} // namespace forkd
