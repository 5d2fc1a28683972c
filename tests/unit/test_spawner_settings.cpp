// SPDX-License-Identifier: MIT
// What the master tells forkd-spawner for a configuration: it accepts only for a built-in
// handler while the daemon runs, and carries the limits it admits by.
#include "daemon/master/spawner_supervisor.hpp"

#include <gtest/gtest.h>

namespace forkd {
namespace {

TEST(SpawnerSettings, ItAcceptsOnlyForABuiltInHandlerWhileTheDaemonRuns) {
    Config config;
    config.handler = HandlerKind::chargen;
    config.limits.max_connections = 5;
    config.limits.max_per_source = 2;
    config.limits.idle_timeout_s = 9;
    config.limits.overload = OverloadPolicy::reject;
    spawner::Request settings = spawner_settings(config, true);
    EXPECT_EQ(settings.kind, spawner::RequestKind::configure);
    EXPECT_EQ(settings.accepting, 1);
    EXPECT_EQ(settings.handler, HandlerKind::chargen);
    EXPECT_EQ(settings.max_connections, 5u);
    EXPECT_EQ(settings.max_per_source, 2u);
    EXPECT_EQ(settings.idle_timeout_s, 9u);
    EXPECT_EQ(settings.reject_at_limit, 1);

    EXPECT_EQ(spawner_settings(config, false).accepting, 0);  // draining or stopping

    config.handler = HandlerKind::exec;  // the master accepts; the spawner only serves what it has
    settings = spawner_settings(config, true);
    EXPECT_EQ(settings.accepting, 0);
    EXPECT_EQ(settings.handler, HandlerKind::echo);
}

} // namespace
} // namespace forkd
