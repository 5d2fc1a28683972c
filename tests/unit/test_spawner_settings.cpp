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

TEST(SpawnerSettings, AProxyCarriesItsTargetWatermarkAndConnectTimeout) {
    Config config;
    config.handler = HandlerKind::proxy;
    config.proxy_to = *parse_proxy_target("[::1]:8080");
    config.buffer_size = 4096;
    config.proxy_connect_timeout_s = 3;
    const spawner::Request settings = spawner_settings(config, true);
    EXPECT_EQ(settings.accepting, 1);
    EXPECT_EQ(settings.handler, HandlerKind::proxy);
    EXPECT_STREQ(settings.proxy_to, "[::1]:8080");
    EXPECT_EQ(settings.buffer_size, 4096u);
    EXPECT_EQ(settings.proxy_connect_timeout_s, 3u);
    // Another proxy-to is another configuration: the spawner is told (only changes go out).
    config.proxy_to = *parse_proxy_target("unix:/run/b.sock");
    EXPECT_STRNE(spawner_settings(config, true).proxy_to, settings.proxy_to);
}

// forkd-spawner and forkd-worker admit by the limits the master sent, each of them.
TEST(SpawnerSettings, TheLimitsArriveAsConfigured) {
    Config config;
    config.limits.max_connections = 5;
    config.limits.max_per_source = 2;
    config.limits.overload = OverloadPolicy::reject;
    config.limits.connection_timeout_s = 8;  // the master's own: not sent
    config.limits.idle_timeout_s = 9;
    config.limits.max_connection_rate = {100, 2};
    config.limits.max_per_source_rate = {7, 3};
    config.limits.source_prefix = {24, 64};
    const RuntimeLimits limits = spawner::limits_of(spawner_settings(config, true));
    EXPECT_EQ(limits.max_connections, 5u);
    EXPECT_EQ(limits.max_per_source, 2u);
    EXPECT_EQ(limits.overload, OverloadPolicy::reject);
    EXPECT_EQ(limits.connection_timeout_s, 0u);
    EXPECT_EQ(limits.idle_timeout_s, 9u);
    EXPECT_EQ(limits.max_connection_rate, (Rate{100, 2}));
    EXPECT_EQ(limits.max_per_source_rate, (Rate{7, 3}));
    EXPECT_EQ(limits.source_prefix, (SourcePrefix{24, 64}));
    config.limits.overload = OverloadPolicy::wait;
    EXPECT_EQ(spawner::limits_of(spawner_settings(config, true)).overload, OverloadPolicy::wait);
}

} // namespace
} // namespace forkd
