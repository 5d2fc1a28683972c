// SPDX-License-Identifier: MIT
// The run-directory check: only a directory owned by forkd's uid or root, and writable by
// neither group nor others, may hold run files; the pidfile in it is never a followed symlink.
#include "common/base/run_dir.hpp"
#include "daemon/pidfile.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace forkd {
namespace {

namespace fs = std::filesystem;

struct stat directory_stat(uid_t owner, mode_t mode) {
    struct stat st {};
    st.st_mode = S_IFDIR | mode;
    st.st_uid = owner;
    return st;
}

TEST(RunDirRefusal, OwnOrRootsDirectoryWritableOnlyByItsOwnerIsTrusted) {
    EXPECT_EQ(run_dir_refusal(directory_stat(1000, 0755), 1000), "");
    EXPECT_EQ(run_dir_refusal(directory_stat(1000, 0700), 1000), "");
    EXPECT_EQ(run_dir_refusal(directory_stat(0, 0755), 1000), "");
    EXPECT_EQ(run_dir_refusal(directory_stat(0, 0755), 0), "");
}

TEST(RunDirRefusal, SomeoneElsesDirectoryIsRefusedNamingItsOwner) {
    EXPECT_EQ(run_dir_refusal(directory_stat(65534, 0755), 0),
              "is owned by uid 65534, not by forkd's uid 0 or root");
    EXPECT_NE(run_dir_refusal(directory_stat(1001, 0700), 1000), "");
}

TEST(RunDirRefusal, GroupOrWorldWritableIsRefusedStickyToo) {
    EXPECT_EQ(run_dir_refusal(directory_stat(0, 0777), 0), "is writable by others (mode 0777)");
    EXPECT_EQ(run_dir_refusal(directory_stat(0, 01777), 0), "is writable by others (mode 1777)");
    EXPECT_EQ(run_dir_refusal(directory_stat(1000, 0775), 1000), "is writable by its group (mode 0775)");
}

TEST(RunDirRefusal, NotADirectory) {
    struct stat st {};
    st.st_mode = S_IFREG | 0644;
    EXPECT_EQ(run_dir_refusal(st, 0), "is not a directory");
}

class RunDirTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = "/tmp/forkd-rundir-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string dir_;
};

TEST_F(RunDirTest, OpensAPrivateDirectoryAndNamesTheFile) {
    auto run = open_run_path(dir_ + "/forkd.pid", CreateMissing::no);
    ASSERT_TRUE(run) << run.error().message();
    EXPECT_TRUE(run->dir);
    EXPECT_EQ(run->name, "forkd.pid");
    EXPECT_EQ(run->dir_path, dir_);
}

TEST_F(RunDirTest, CreatesMissingDirectories0755) {
    ::umask(077);
    auto run = open_run_path(dir_ + "/a/b/forkd.sock", CreateMissing::yes);
    ::umask(022);
    ASSERT_TRUE(run) << run.error().message();
    struct stat st {};
    ASSERT_EQ(::stat((dir_ + "/a/b").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(RunDirTest, AWorldWritableDirectoryIsRefused) {
    ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
    auto run = open_run_path(dir_ + "/forkd.pid", CreateMissing::yes);
    ASSERT_FALSE(run);
    EXPECT_EQ(run.error().message(), "run directory " + dir_ +
                                         " is writable by others (mode 0777): refusing to keep forkd.pid there");
}

TEST_F(RunDirTest, ASymlinkAsTheDirectoryIsRefused) {
    ASSERT_EQ(::mkdir((dir_ + "/real").c_str(), 0755), 0);
    ASSERT_EQ(::symlink((dir_ + "/real").c_str(), (dir_ + "/link").c_str()), 0);
    auto run = open_run_path(dir_ + "/link/forkd.pid", CreateMissing::yes);
    ASSERT_FALSE(run);
    EXPECT_TRUE(run.error().code == ELOOP || run.error().code == ENOTDIR) << run.error().message();
    EXPECT_NE(run.error().message().find("is a symbolic link"), std::string::npos) << run.error().message();
}

TEST_F(RunDirTest, ThePidfileIsNeverAFollowedSymlink) {
    const std::string victim = dir_ + "/victim";
    std::ofstream(victim) << "precious\n";
    ASSERT_EQ(::symlink(victim.c_str(), (dir_ + "/forkd.pid").c_str()), 0);
    try {
        Pidfile::acquire(dir_ + "/forkd.pid");
        FAIL() << "a symlinked pidfile was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("is a symbolic link"), std::string::npos) << e.what();
    }
    std::ifstream in(victim);
    std::string text;
    std::getline(in, text);
    EXPECT_EQ(text, "precious");
}

TEST_F(RunDirTest, ThePidfileIsCreated0644) {
    ::umask(0);
    Pidfile pidfile = Pidfile::acquire(dir_ + "/forkd.pid");
    ::umask(022);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ + "/forkd.pid").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
}

} // namespace
} // namespace forkd
