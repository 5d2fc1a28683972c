// SPDX-License-Identifier: MIT
// Control connections are bounded per uid, and root and the daemon's uid keep a reserve, so one
// local user flooding the control socket cannot crowd out the admin; refusals come in episodes.
#include "daemon/control/control_admission.hpp"
#include "common/runtime_paths.hpp"

#include <gtest/gtest.h>

namespace forkd {
namespace {

constexpr uid_t daemon_uid = 1234;
constexpr uid_t alice = 1000, bob = 1001;

ControlAdmission admission(std::size_t max_clients = 32, std::size_t per_uid = 8) {
    return ControlAdmission({max_clients, per_uid, 4}, daemon_uid);
}

TEST(ControlAdmission, OneUidGetsAtMostItsShareAndTheAdminStillGetsThrough) {
    auto policy = admission();
    for (int i = 0; i < 8; ++i) ASSERT_EQ(policy.admit(alice).verdict, ControlVerdict::admitted);
    const ControlDecision refused = policy.admit(alice);
    EXPECT_EQ(refused.verdict, ControlVerdict::too_many_from_uid);
    EXPECT_TRUE(refused.starts_episode);
    EXPECT_FALSE(policy.admit(alice).starts_episode) << "a flood is logged once, not per client";
    EXPECT_EQ(policy.admit(bob).verdict, ControlVerdict::admitted);
    EXPECT_EQ(policy.admit(0).verdict, ControlVerdict::admitted);
    EXPECT_EQ(policy.admit(daemon_uid).verdict, ControlVerdict::admitted);
}

TEST(ControlAdmission, ReleasingEndsTheEpisodeWithItsCount) {
    auto policy = admission();
    for (int i = 0; i < 8; ++i) ASSERT_EQ(policy.admit(alice).verdict, ControlVerdict::admitted);
    (void)policy.admit(alice);
    (void)policy.admit(alice);
    auto ended = policy.release(alice);
    ASSERT_TRUE(ended);
    EXPECT_EQ(ended->verdict, ControlVerdict::too_many_from_uid);
    EXPECT_EQ(ended->uid, alice);
    EXPECT_EQ(ended->refused, 2u);
    EXPECT_EQ(policy.admit(alice).verdict, ControlVerdict::admitted);
    EXPECT_FALSE(policy.release(alice)) << "no episode, nothing to report";
    EXPECT_EQ(policy.active_of(alice), 7u);
}

TEST(ControlAdmission, OtherUidsTogetherLeaveTheAdminsReserve) {
    auto policy = admission(32, 32);
    for (int i = 0; i < 28; ++i) ASSERT_EQ(policy.admit(alice + i % 4).verdict, ControlVerdict::admitted);
    EXPECT_EQ(policy.admit(bob + 10).verdict, ControlVerdict::too_many_clients);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(policy.admit(0).verdict, ControlVerdict::admitted);
    EXPECT_EQ(policy.admit(0).verdict, ControlVerdict::too_many_clients) << "max_clients is the hard cap";
    EXPECT_EQ(policy.active(), 32u);
}

TEST(ControlAdmission, RootIsNotBoundPerUid) {
    auto policy = admission(32, 2);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(policy.admit(0).verdict, ControlVerdict::admitted);
}

TEST(ControlAdmission, ASmallCapKeepsNoReserve) {
    auto policy = admission(2, 8);
    EXPECT_EQ(policy.limit_for_others(), 2u);
}

TEST(ReadOnlyControlSocket, SitsBesideTheControlSocket) {
    EXPECT_EQ(read_only_control_socket("/run/forkd/forkd.sock"), "/run/forkd/forkd.ro.sock");
    EXPECT_EQ(read_only_control_socket("/run/forkd/web.sock"), "/run/forkd/web.ro.sock");
    EXPECT_EQ(read_only_control_socket("/srv/x/control"), "/srv/x/control.ro");
}

} // namespace
} // namespace forkd
