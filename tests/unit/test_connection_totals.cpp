// SPDX-License-Identifier: MIT
// Connection accounting: each way a connection starts and ends moves the counters the status
// reply shows, and each ending has its log text.
#include "daemon/master/connection_totals.hpp"

#include "daemon/handlers/builtin_handlers.hpp"

#include "daemon/proxy/proxy_exit.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

namespace forkd {
namespace {

struct Counts {
    std::uint64_t accepted, completed, killed, failed, limit, per_source, fork;
    bool operator==(const Counts&) const = default;
};

Counts counts(const ConnectionTotals& t) {
    return {t.accepted(), t.completed(), t.killed(), t.failed(),
            t.refused_limit(), t.refused_per_source(), t.refused_fork()};
}

TEST(ConnectionTotals, AStartedConnectionIsAcceptedAndEndsOnce) {
    ConnectionTotals totals;
    totals.started();
    EXPECT_EQ(counts(totals), (Counts{1, 0, 0, 0, 0, 0, 0}));
    totals.ended(Ending::completed);
    EXPECT_EQ(counts(totals), (Counts{1, 1, 0, 0, 0, 0, 0}));
}

TEST(ConnectionTotals, WhatTheMasterEndedIsKilledAndWhatDiedByItselfFailed) {
    ConnectionTotals totals;
    for (Ending e : {Ending::timeout, Ending::idle, Ending::killed, Ending::shutdown}) {
        totals.started();
        totals.ended(e);
    }
    EXPECT_EQ(totals.killed(), 4u);
    for (Ending e : {Ending::crashed, Ending::spawner_exit}) {
        totals.started();
        totals.ended(e);
    }
    EXPECT_EQ(counts(totals), (Counts{6, 0, 4, 2, 0, 0, 0}));
}

TEST(ConnectionTotals, AdmissionRefusalsCountByReasonOnlyAndMakeUpRejected) {
    ConnectionTotals totals;
    totals.refused(Refusal::limit);
    totals.refused(Refusal::per_source, 3);
    EXPECT_EQ(counts(totals), (Counts{0, 0, 0, 0, 1, 3, 0}));
    EXPECT_EQ(totals.rejected(), 4u);
}

TEST(ConnectionTotals, AFailedForkIsAcceptedFailedAndRefusedButNotRejected) {
    ConnectionTotals totals;
    totals.refused(Refusal::fork_failed);
    totals.refused(Refusal::fork_failed, 2);  // the spawner's unlogged ones
    EXPECT_EQ(counts(totals), (Counts{3, 0, 0, 3, 0, 0, 3}));
    EXPECT_EQ(totals.rejected(), 0u);
}

TEST(ConnectionTotals, AStartThatFailedOtherwiseIsAcceptedAndFailed) {
    ConnectionTotals totals;
    totals.start_failed();
    EXPECT_EQ(counts(totals), (Counts{1, 0, 0, 1, 0, 0, 0}));
}

TEST(ConnectionTotals, NoRefusalLeavesEverythingAlone) {
    ConnectionTotals totals;
    totals.refused(Refusal::none);
    EXPECT_EQ(counts(totals), (Counts{0, 0, 0, 0, 0, 0, 0}));
}

TEST(ConnectionTotals, EachEndingHasTheEndedByTextOfTheLog) {
    EXPECT_EQ(ending_name(Ending::completed), "handler");
    EXPECT_EQ(ending_name(Ending::crashed), "handler");
    EXPECT_EQ(ending_name(Ending::timeout), "timeout");
    EXPECT_EQ(ending_name(Ending::idle), "idle");
    EXPECT_EQ(ending_name(Ending::killed), "killed");
    EXPECT_EQ(ending_name(Ending::shutdown), "shutdown");
    EXPECT_EQ(ending_name(Ending::spawner_exit), "spawner-exit");
}

} // namespace
} // namespace forkd

namespace forkd {
namespace {

// One rule for built-in and exec'd handlers: idle-timeout is an idle ending (killed) for both,
// a SIGPIPE is the client's going away (completed), another signal a crash (failed).
TEST(EndingOfExit, OneRuleForBuiltInAndExecHandlers) {
    const int idle_exit = W_EXITCODE(builtin_exit_idle, 0);
    EXPECT_EQ(ending_of_exit(ServedBy::spawner, idle_exit), Ending::idle);
    EXPECT_EQ(ending_of_exit(ServedBy::exec, idle_exit), Ending::completed);  // the program's own code
    EXPECT_EQ(ending_of_exit(ServedBy::spawner, W_EXITCODE(0, 0)), Ending::completed);
    EXPECT_EQ(ending_of_exit(ServedBy::exec, W_EXITCODE(1, 0)), Ending::completed);
    for (ServedBy by : {ServedBy::exec, ServedBy::spawner}) {
        EXPECT_EQ(ending_of_exit(by, W_EXITCODE(0, SIGPIPE)), Ending::client_gone);
        EXPECT_EQ(ending_of_exit(by, W_EXITCODE(0, SIGSEGV)), Ending::crashed);
    }
    EXPECT_EQ(ending_name(Ending::client_gone), "client");
    EXPECT_EQ(ending_name(Ending::idle), "idle");
    // A proxy child's failure codes are its backend's doing (failed); an exec'd program's are its own.
    EXPECT_EQ(ending_of_exit(ServedBy::spawner, W_EXITCODE(proxy_exit_refused, 0)), Ending::backend);
    EXPECT_EQ(ending_of_exit(ServedBy::spawner, W_EXITCODE(proxy_exit_transfer_error, 0)), Ending::backend);
    EXPECT_EQ(ending_of_exit(ServedBy::exec, W_EXITCODE(proxy_exit_refused, 0)), Ending::completed);
    EXPECT_EQ(ending_name(Ending::backend), "backend");
    EXPECT_EQ(proxy_failure_reason(proxy_exit_connect_timeout), "connect timeout");
    EXPECT_EQ(proxy_failure_reason(0), "");
    ConnectionTotals proxied;
    proxied.started();
    proxied.ended(Ending::backend);
    EXPECT_EQ(proxied.failed(), 1u);
    EXPECT_EQ(proxied.completed(), 0u);

    ConnectionTotals totals;
    for (Ending e : {Ending::client_gone, Ending::idle, Ending::crashed}) {
        totals.started();
        totals.ended(e);
    }
    EXPECT_EQ(totals.completed(), 1u);
    EXPECT_EQ(totals.killed(), 1u);
    EXPECT_EQ(totals.failed(), 1u);
}

} // namespace
} // namespace forkd
