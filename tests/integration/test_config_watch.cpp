// SPDX-License-Identifier: MIT
// watch-config = yes: the daemon reloads by itself when its config file changes, whether the
// file is rewritten in place or replaced by rename (as editors and config managers do); a
// broken edit is logged and the running configuration kept.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <cstdio>

using namespace forkd::test;

namespace {

void replace_by_rename(const Daemon& d, const std::string& body) {
    const std::string tmp = d.dir().file("forkd.conf.new");
    write_file(tmp, d.harness_config_lines() + body);
    ASSERT_EQ(std::rename(tmp.c_str(), d.config_path().c_str()), 0);
}

std::size_t reloads(const Daemon& d, const std::string& result) {
    return d.count_log("event=reload result=" + result);
}

} // namespace

TEST(ConfigWatch, EditInPlaceAndRenameBothReload) {
    const auto port = free_tcp_port();
    const std::string listen = "listen = 127.0.0.1:" + std::to_string(port) + "\n";
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:" + std::to_string(port), "watch-config = yes",
                      "max-connections = 5"};
    Daemon d(o);

    write_file(d.config_path(), d.harness_config_lines() + listen + "watch-config = yes\nmax-connections = 7\n");
    ASSERT_TRUE(eventually([&] { return reloads(d, "ok") >= 1; })) << d.log();
    auto status = status_json(d);
    ASSERT_TRUE(status.ok()) << status.error().message();
    EXPECT_EQ((*status)["limits"]["max_connections"], 7) << status->dump();

    replace_by_rename(d, listen + "watch-config = yes\nmax-connections = 9\n");
    ASSERT_TRUE(eventually([&] { return reloads(d, "ok") >= 2; })) << d.log();
    status = status_json(d);
    ASSERT_TRUE(status.ok()) << status.error().message();
    EXPECT_EQ((*status)["limits"]["max_connections"], 9) << status->dump();
    auto client = connect_tcp(port);
    EXPECT_TRUE(echo_roundtrip(client.get(), "served after two reloads"));
}

TEST(ConfigWatch, BrokenEditIsLoggedAndTheRunningConfigKept) {
    const auto port = free_tcp_port();
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:" + std::to_string(port), "watch-config = yes",
                      "max-connections = 5"};
    Daemon d(o);
    replace_by_rename(d, "listen = 127.0.0.1:" + std::to_string(port) +
                             "\nwatch-config = yes\nmax-connections = lots\n");
    ASSERT_TRUE(eventually([&] { return reloads(d, "failed") >= 1; })) << d.log();
    EXPECT_NE(d.log().find("forkd.conf:6: option 'max-connections'"), std::string::npos) << d.log();
    auto status = status_json(d);
    ASSERT_TRUE(status.ok()) << status.error().message();
    EXPECT_EQ((*status)["limits"]["max_connections"], 5) << status->dump();
    auto client = connect_tcp(port);
    EXPECT_TRUE(echo_roundtrip(client.get(), "still serving"));
}

TEST(ConfigWatch, ABurstOfWritesGivesOneReload) {
    const auto port = free_tcp_port();
    const std::string listen = "listen = 127.0.0.1:" + std::to_string(port) + "\n";
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:" + std::to_string(port), "watch-config = yes"};
    Daemon d(o);
    for (int i = 0; i < 5; ++i)
        write_file(d.config_path(), d.harness_config_lines() + listen + "watch-config = yes\nmax-per-source = " +
                                        std::to_string(i + 1) + "\n");
    ASSERT_TRUE(eventually([&] { return reloads(d, "ok") >= 1; })) << d.log();
    auto status = status_json(d);
    ASSERT_TRUE(status.ok()) << status.error().message();
    EXPECT_EQ((*status)["limits"]["max_per_source"], 5) << status->dump();
    EXPECT_EQ(reloads(d, "ok"), 1u) << d.log();
}
