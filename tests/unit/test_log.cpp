// SPDX-License-Identifier: MIT
// Log lines: the key=value format, level filtering, and the stderr sink (prefixes, one write per line).
#include "common/log.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

namespace forkd {
namespace {

// Points fd 2 at a pipe for the life of the object and returns what was logged.
class CapturedStderr {
public:
    CapturedStderr() {
        EXPECT_EQ(::pipe2(fds_, O_CLOEXEC), 0);
        saved_ = ::dup(STDERR_FILENO);
        ::dup2(fds_[1], STDERR_FILENO);
    }
    ~CapturedStderr() { restore(); }
    std::string take() {
        restore();
        std::string out;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fds_[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
        return out;
    }

private:
    void restore() {
        if (saved_ < 0) return;
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        ::close(fds_[1]);
        saved_ = -1;
    }
    int fds_[2] = {-1, -1};
    int saved_ = -1;
};

class LogTest : public ::testing::Test {
protected:
    void SetUp() override {
        ::unsetenv("JOURNAL_STREAM");
        log::use_stderr();
        log::set_level(log::Level::info);
    }
    void TearDown() override {
        ::unsetenv("JOURNAL_STREAM");
        log::use_stderr();
        log::set_level(log::Level::info);
    }
};

TEST(LogLevel, NamesRoundTrip) {
    for (auto level : {log::Level::err, log::Level::warning, log::Level::notice, log::Level::info,
                       log::Level::debug}) {
        auto parsed = log::parse_level(log::level_name(level));
        ASSERT_TRUE(parsed.has_value());
        EXPECT_EQ(*parsed, level);
    }
    EXPECT_EQ(log::level_name(log::Level::err), "err");
    EXPECT_EQ(log::level_name(log::Level::warning), "warning");
}

TEST(LogLevel, UnknownNamesRejected) {
    EXPECT_FALSE(log::parse_level("error"));
    EXPECT_FALSE(log::parse_level("INFO"));
    EXPECT_FALSE(log::parse_level(""));
    EXPECT_FALSE(log::parse_level("crit"));
}

TEST(LogLevel, NumericValuesAreSyslogPriorities) {
    EXPECT_EQ(static_cast<int>(log::Level::err), 3);
    EXPECT_EQ(static_cast<int>(log::Level::debug), 7);
}

TEST(LogFormat, PlainValuesStayBare) {
    EXPECT_EQ(log::format("listening", {{"address", "127.0.0.1:41234"}}),
              "event=listening address=127.0.0.1:41234");
    EXPECT_EQ(log::format("started", {}), "event=started");
}

TEST(LogFormat, ValuesNeedingQuotesAreQuoted) {
    EXPECT_EQ(log::format("e", {{"k", "a b"}}), "event=e k=\"a b\"");
    EXPECT_EQ(log::format("e", {{"k", ""}}), "event=e k=\"\"");
    EXPECT_EQ(log::format("e", {{"k", "a=b"}}), "event=e k=\"a=b\"");
    EXPECT_EQ(log::format("e", {{"k", "tab\there"}}), "event=e k=\"tab\\there\"");
}

TEST(LogFormat, QuotesBackslashesAndNewlinesAreEscaped) {
    EXPECT_EQ(log::format("e", {{"k", "say \"hi\""}}), "event=e k=\"say \\\"hi\\\"\"");
    EXPECT_EQ(log::format("e", {{"k", "C:\\dir"}}), "event=e k=\"C:\\\\dir\"");
    EXPECT_EQ(log::format("e", {{"k", "two\nlines"}}), "event=e k=\"two\\nlines\"");
    EXPECT_EQ(log::format("e", {{"k", std::string("nul\x01", 4)}}), "event=e k=\"nul\\x01\"");
}

TEST(LogFormat, NeverContainsARawNewline) {
    std::string line = log::format("e", {{"a", "x\ny"}, {"b", "\r\n"}});
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line.find('\r'), std::string::npos);
}

TEST(LogFormat, NumericFields) {
    EXPECT_EQ(log::format("e", {{"i", -3}, {"u", 7u}, {"l", 8L}, {"ul", 9UL}}), "event=e i=-3 u=7 l=8 ul=9");
    EXPECT_EQ(log::format("e", {{"i64", std::int64_t{-1}}, {"u64", std::uint64_t{18446744073709551615ULL}},
                                {"size", std::size_t{42}}}),
              "event=e i64=-1 u64=18446744073709551615 size=42");
    EXPECT_EQ(log::format("e", {{"d", 1.5}}), "event=e d=1.500");
}

TEST(LogFormat, NullCStringIsEmpty) {
    const char* nothing = nullptr;
    EXPECT_EQ(log::format("e", {{"k", nothing}}), "event=e k=\"\"");
}

TEST_F(LogTest, LevelFilter) {
    log::set_level(log::Level::notice);
    EXPECT_EQ(log::level(), log::Level::notice);
    EXPECT_TRUE(log::enabled(log::Level::err));
    EXPECT_TRUE(log::enabled(log::Level::notice));
    EXPECT_FALSE(log::enabled(log::Level::info));
    EXPECT_FALSE(log::enabled(log::Level::debug));
    CapturedStderr captured;
    log::info("hidden");
    log::warning("shown", {{"n", 1}});
    EXPECT_EQ(captured.take(), "event=shown n=1\n");
}

TEST_F(LogTest, PlainStderrHasNoPrefix) {
    CapturedStderr captured;
    log::info("listening", {{"address", "127.0.0.1:5"}});
    EXPECT_EQ(captured.take(), "event=listening address=127.0.0.1:5\n");
}

// JOURNAL_STREAM's "DEVICE:INODE" of what stderr is now.
std::string stream_of_stderr() {
    struct stat st {};
    EXPECT_EQ(::fstat(STDERR_FILENO, &st), 0);
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

TEST_F(LogTest, JournalStreamAddsPriorityPrefix) {
    CapturedStderr captured;
    ::setenv("JOURNAL_STREAM", stream_of_stderr().c_str(), 1);
    log::use_stderr();
    log::set_level(log::Level::debug);
    log::err("a");
    log::warning("b");
    log::notice("c");
    log::info("d");
    log::debug("e");
    EXPECT_EQ(captured.take(), "<3>event=a\n<4>event=b\n<5>event=c\n<6>event=d\n<7>event=e\n");
}

// As systemd.exec(5) says: the variable counts only while stderr is the stream it names.
TEST_F(LogTest, JournalStreamOfAnotherFileAddsNoPrefix) {
    for (const char* stream : {"8:12345", "garbage", "1:2:3", ""}) {
        CapturedStderr captured;
        ::setenv("JOURNAL_STREAM", stream, 1);
        EXPECT_FALSE(log::stderr_is_journal()) << stream;
        log::use_stderr();
        log::info("plain");
        EXPECT_EQ(captured.take(), "event=plain\n") << stream;
    }
}

TEST_F(LogTest, WritingPreservesErrno) {
    CapturedStderr captured;
    errno = ENOENT;
    log::info("x");
    EXPECT_EQ(errno, ENOENT);
    log::debug("filtered");
    EXPECT_EQ(errno, ENOENT);
}

// Several processes logging long lines into one pipe: each line must arrive whole.
TEST_F(LogTest, LinesFromSeveralProcessesNeverInterleave) {
    constexpr int kProcesses = 4, kLines = 200;
    const std::string padding(300, 'x');
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    std::vector<pid_t> children;
    for (int p = 0; p < kProcesses; ++p) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::dup2(fds[1], STDERR_FILENO);
            for (int i = 0; i < kLines; ++i) log::info("line", {{"p", p}, {"i", i}, {"pad", padding}});
            ::_exit(0);
        }
        children.push_back(pid);
    }
    ::close(fds[1]);
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    for (pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    std::set<std::string> seen;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        ASSERT_TRUE(line.starts_with("event=line p=")) << line;
        ASSERT_TRUE(line.ends_with(" pad=" + padding)) << line;
        seen.insert(line.substr(0, line.find(" pad=")));
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kProcesses * kLines));
}

} // namespace
} // namespace forkd
