// SPDX-License-Identifier: MIT
// A bounded soak: FORKD_SOAK_SECONDS (CI: 60; unset: 20) of short connections, held ones that
// come and go, control requests and reloads, with the master's and forkd-spawner's RSS and
// descriptor counts and the counters sampled every few seconds. Nothing may drift: the
// accounting adds up at every sample, descriptors come back, RSS stays flat after warm-up.
#include "fault_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>

using namespace forkd::fault;
using forkd::UniqueFd;

namespace {

Millis soak_duration() {
    const char* text = std::getenv("FORKD_SOAK_SECONDS");
    const long seconds = text && *text ? std::strtol(text, nullptr, 10) : 20;
    return Millis(std::max(5L, seconds) * 1000);
}

struct Sample {
    Footprint master, spawner;
    Counts counts;
};

Sample sample(const Daemon& d) { return {footprint(d.pid()), footprint(d.spawner_pid()), counts(d)}; }

std::string describe_sample(const Sample& s) {
    return "master " + describe(s.master) + "; spawner " + describe(s.spawner) + "; active " +
           std::to_string(s.counts.active) + ", accepted " + std::to_string(s.counts.accepted) +
           ", ended " + std::to_string(s.counts.ended());
}

} // namespace

TEST(FaultSoak, BoundedSoakShowsNoDriftInMemoryDescriptorsOrCounters) {
    const auto duration = soak_duration();
    const auto port = free_tcp_port();
    const auto lines = [port](int max_connections) {
        return std::vector<std::string>{"listen = 127.0.0.1:" + std::to_string(port), "overload = wait",
                                        "max-connections = " + std::to_string(max_connections)};
    };
    DaemonOptions o;
    o.config_lines = lines(64);
    Daemon d(o);
    NotifyReader notify(d);
    EchoLoad load(port, 4, 10s);
    ASSERT_TRUE(load.progresses(100)) << d.log();
    const auto baseline = sample(d);
    long held_served = 0;
    std::vector<Sample> samples;
    std::vector<UniqueFd> held;
    const auto start = Clock::now();
    for (int tick = 0; Clock::now() - start < duration; ++tick) {
        std::this_thread::sleep_for(2s);
        // Held connections come and go in waves; a reload now and then.
        if (tick % 2 == 0) {
            for (int i = 0; i < 8; ++i) {
                held.push_back(served_client(d, "held"));
                if (held.back().valid()) ++held_served;
            }
        } else {
            held.clear();
        }
        if (tick % 5 == 4) d.rewrite_config(lines(64 + tick % 2));
        samples.push_back(sample(d));
        const auto& s = samples.back();
        // Sampled while clients come and go: the scoreboard follows forkd-spawner, the totals
        // the master's reading of its reports, so the two may differ by what is in flight:
        // the churn, a wave of held connections arriving and one leaving, reports not read
        // yet. A leak would grow past that within seconds; accepted never goes back.
        EXPECT_GE(s.counts.accepted - s.counts.ended(), 0) << describe_sample(s);
        EXPECT_LE(s.counts.active, 4 + 2 * 8 + 8) << describe_sample(s);
        if (samples.size() > 1) {
            EXPECT_GE(s.counts.accepted, samples[samples.size() - 2].counts.accepted) << describe_sample(s);
        }
    }
    load.stop();
    held.clear();
    EXPECT_EQ(load.failed(), 0) << "clients failed during the soak";
    EXPECT_EQ(accounting_mismatch(d, 0), "");
    ASSERT_GE(samples.size(), 3u);
    const auto end = sample(d);
    EXPECT_EQ(end.counts.accepted, load.served() + held_served) << describe_sample(end);
    // From a third of the way in (warm-up done: caches, arenas, the first reload), RSS stays
    // flat and descriptors return.
    const auto& warm = samples[samples.size() / 3];
    expect_rss_bounded(warm.master, end.master, 2048, "the master");
    expect_rss_bounded(warm.spawner, end.spawner, 1024, "forkd-spawner");
    expect_fds_back(d.pid(), baseline.master.fds, "master");
    expect_fds_back(d.spawner_pid(), baseline.spawner.fds, "forkd-spawner");
    std::cout << "soak " << duration.count() / 1000 << " s: " << load.served() << " connections; first "
              << describe_sample(samples.front()) << "\nlast " << describe_sample(end) << "\n";
}
