// SPDX-License-Identifier: MIT
#include "daemon/exec/exec_plan.hpp"

#include "common/base/error.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string_view>

namespace forkd {
namespace {

[[noreturn]] void fail(std::string_view option, const std::string& reason) {
    throw ConfigError("option '" + std::string(option) + "': " + reason);
}

// Variables forkd sets per connection: an admin's env= must not shadow them.
constexpr std::array<std::string_view, 9> kConnectionVariables = {
    "PROTO",         "TCPLOCALIP",    "TCPLOCALPORT",  "TCPREMOTEIP",         "TCPREMOTEPORT",
    "UNIXREMOTEUID", "UNIXREMOTEGID", "UNIXREMOTEPID", "FORKD_CONNECTION_ID"};

bool is_connection_variable(std::string_view name) {
    return std::find(kConnectionVariables.begin(), kConnectionVariables.end(), name) !=
           kConnectionVariables.end();
}

bool valid_variable_name(std::string_view name) {
    return !name.empty() && name.find('=') == std::string_view::npos &&
           name.find('\0') == std::string_view::npos;
}

template <class T>
std::optional<T> parse_id(const std::string& text) {
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

// getpw*_r/getgr*_r want a caller buffer; ERANGE means "bigger".
template <class Entry, class Lookup>
std::optional<Entry> lookup_entry(std::string_view option, const std::string& name,
                                  std::string& buffer, Lookup lookup) {
    Entry entry{};
    Entry* found = nullptr;
    for (std::size_t size = 1024; size <= (1u << 20); size *= 4) {
        buffer.resize(size);
        int rc = lookup(&entry, buffer.data(), buffer.size(), &found);
        if (rc == ERANGE) continue;
        if (rc != 0 && rc != ENOENT && rc != ESRCH) fail(option, "looking up '" + name + "': " + errno_text(rc));
        if (!found) return std::nullopt;
        return entry;
    }
    fail(option, "looking up '" + name + "': entry too large");
}

struct User {
    std::string name;
    uid_t uid;
    gid_t gid;
};

// By name, else (if it is a number) by id: getpwnam_r/getpwuid_r or getgrnam_r/getgrgid_r. The
// entry's strings live in `buffer`.
template <class Entry, class Id>
Entry find_entry(const char* what, const std::string& name, std::string& buffer,
                 int (*by_name)(const char*, Entry*, char*, std::size_t, Entry**),
                 int (*by_id)(Id, Entry*, char*, std::size_t, Entry**)) {
    auto entry = lookup_entry<Entry>(what, name, buffer, [&](Entry* e, char* buf, std::size_t len, Entry** out) {
        return by_name(name.c_str(), e, buf, len, out);
    });
    if (!entry) {
        if (auto id = parse_id<Id>(name)) {
            entry = lookup_entry<Entry>(what, name, buffer, [&](Entry* e, char* buf, std::size_t len, Entry** out) {
                return by_id(*id, e, buf, len, out);
            });
        }
    }
    if (!entry) fail(what, "no such " + std::string(what) + " '" + name + "'");
    return *entry;
}

User find_user(const std::string& name) {
    std::string buffer;
    const passwd entry = find_entry<passwd, uid_t>("user", name, buffer, getpwnam_r, getpwuid_r);
    return User{entry.pw_name, entry.pw_uid, entry.pw_gid};
}

gid_t find_group(const std::string& name) {
    std::string buffer;
    return find_entry<group, gid_t>("group", name, buffer, getgrnam_r, getgrgid_r).gr_gid;
}

// The user's supplementary groups with `primary` first, as initgroups(3) would set them.
std::vector<gid_t> groups_of(const User& user, gid_t primary) {
    std::vector<gid_t> groups(32);
    for (;;) {
        int count = static_cast<int>(groups.size());
        if (getgrouplist(user.name.c_str(), primary, groups.data(), &count) >= 0) {
            groups.resize(static_cast<std::size_t>(count));
            return groups;
        }
        if (count <= static_cast<int>(groups.size())) fail("user", "cannot list the groups of '" + user.name + "'");
        groups.resize(static_cast<std::size_t>(count));
    }
}

std::optional<ExecIdentity> build_identity(const Config& config) {
    if (!config.user && !config.group) return std::nullopt;
    if (!config.user) {
        gid_t gid = find_group(*config.group);
        return ExecIdentity{getuid(), gid, {gid}};
    }
    User user = find_user(*config.user);
    gid_t gid = config.group ? find_group(*config.group) : user.gid;
    return ExecIdentity{user.uid, gid, groups_of(user, gid)};
}

std::vector<std::string> build_argv(const Config& config) {
    if (config.exec_argv.empty()) fail("exec", "no program given");
    const std::string& program = config.exec_argv.front();
    if (program.empty() || program.front() != '/') fail("exec", "'" + program + "' is not an absolute path");
    struct stat st {};
    if (stat(program.c_str(), &st) != 0) fail("exec", program + ": " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) fail("exec", program + ": not a regular file");
    if (access(program.c_str(), X_OK) != 0) fail("exec", program + ": " + errno_text(errno));
    return config.exec_argv;
}

// env = NAME=VALUE entries, then pass-env = NAME values taken from forkd's own environment now.
// The first definition of a NAME wins: the configuration lists the command line's entries first,
// and an explicit env= beats pass-env.
std::vector<std::string> build_base_env(const Config& config) {
    std::vector<std::string> result;
    std::set<std::string, std::less<>> names;
    auto add = [&](std::string_view option, const std::string& name, std::string entry) {
        if (is_connection_variable(name)) fail(option, name + " is set by forkd for each connection");
        if (names.insert(name).second) result.push_back(std::move(entry));
    };
    for (const auto& entry : config.env) {
        auto eq = entry.find('=');
        if (eq == std::string::npos || !valid_variable_name(std::string_view(entry).substr(0, eq)))
            fail("env", "expected NAME=VALUE, got '" + entry + "'");
        add("env", entry.substr(0, eq), entry);
    }
    for (const auto& name : config.pass_env) {
        if (!valid_variable_name(name)) fail("pass-env", "invalid variable name '" + name + "'");
        if (const char* value = std::getenv(name.c_str())) add("pass-env", name, name + "=" + value);
    }
    return result;
}

} // namespace

ExecPlan build_exec_plan(const Config& config) {
    ExecPlan plan;
    plan.argv = build_argv(config);
    plan.base_env = build_base_env(config);
    plan.identity = build_identity(config);
    plan.umask = config.umask;
    plan.chdir = config.chdir.empty() ? "/" : config.chdir;
    plan.rlimits = config.rlimits;
    return plan;
}

} // namespace forkd
