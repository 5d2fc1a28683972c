// SPDX-License-Identifier: MIT
#include "daemon/exec/exec_plan.hpp"

#include "common/base/error.hpp"
#include "common/base/unique_fd.hpp"
#include "daemon/core/child_setup.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>

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

// What the helpers throw; build_exec_plan adds where the option was written.
struct OptionProblem {
    std::string_view option;
    std::string reason;
};

[[noreturn]] void fail(std::string_view option, const std::string& reason) {
    throw OptionProblem{option, reason};
}

// "FILE:LINE: " where the option was written, or "" when the Config does not know.
std::string where(const Config& config, std::string_view option) {
    const std::string origin = config.origin_of(option);
    return origin.empty() ? "" : origin + ": ";
}

// Variables forkd sets per connection: an admin's env= must not shadow them.
constexpr std::array<std::string_view, 11> kConnectionVariables = {
    "PROTO",         "TCPLOCALIP",    "TCPLOCALPORT",  "TCPREMOTEIP",         "TCPREMOTEPORT",
    "UNIXREMOTEUID", "UNIXREMOTEGID", "UNIXREMOTEPID", "FORKD_CONNECTION_ID", "FORKD_PROXY_IP",
    "FORKD_PROXY_PORT"};

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
        if (rc != 0 && rc != ENOENT && rc != ESRCH) fail(option, "looking up " + quoted(name) + ": " + errno_text(rc));
        if (!found) return std::nullopt;
        return entry;
    }
    fail(option, "looking up " + quoted(name) + ": entry too large");
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
    if (!entry) fail(what, "no such " + std::string(what) + " " + quoted(name));
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
        if (count <= static_cast<int>(groups.size())) fail("user", "cannot list the groups of " + quoted(user.name));
        groups.resize(static_cast<std::size_t>(count));
    }
}

// Whether the daemon holds `capability` in its effective set.
bool has_capability(int capability) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) != 0) return false;
    return (data[capability / 32].effective >> (capability % 32)) & 1u;
}

// Without root (or CAP_SETUID and CAP_SETGID) only the daemon's own identity can be taken:
// anything else would fail in every connection's setgroups/setgid/setuid, so it is refused
// when the configuration loads.
void check_identity_possible(const ExecIdentity& identity, std::string_view option, const std::string& name) {
    if (geteuid() == 0) return;
    const bool set_groups = groups_need_setting(identity.gid, identity.groups.data(), identity.groups.size());
    const bool uid_ok = identity.uid == geteuid() || has_capability(CAP_SETUID);
    const bool gid_ok = (identity.gid == getegid() && !set_groups) || has_capability(CAP_SETGID);
    if (uid_ok && gid_ok) return;
    fail(option, "forkd runs as uid " + std::to_string(geteuid()) + ", not root, and cannot run handlers as " +
                     quoted(name) + " (uid " + std::to_string(identity.uid) + ", gid " +
                     std::to_string(identity.gid) + ", " + std::to_string(identity.groups.size()) + " groups)");
}

std::optional<ExecIdentity> build_identity(const Config& config) {
    if (!config.user && !config.group) return std::nullopt;
    ExecIdentity identity{};
    if (!config.user) {
        gid_t gid = find_group(*config.group);
        identity = ExecIdentity{getuid(), gid, {gid}};
        check_identity_possible(identity, "group", *config.group);
        return identity;
    }
    User user = find_user(*config.user);
    gid_t gid = config.group ? find_group(*config.group) : user.gid;
    identity = ExecIdentity{user.uid, gid, groups_of(user, gid)};
    check_identity_possible(identity, "user", *config.user);
    return identity;
}

// The program named by a "#!" first line, which execve needs as much as the script itself;
// nullopt when the file has none (or cannot be read: then execve will say why).
std::optional<std::string> interpreter_of(const std::string& program) {
    UniqueFd fd(::open(program.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) return std::nullopt;
    char head[256];
    const ssize_t got = ::read(fd.get(), head, sizeof head);
    if (got < 2 || head[0] != '#' || head[1] != '!') return std::nullopt;
    std::string_view line(head + 2, static_cast<std::size_t>(got) - 2);
    line = line.substr(0, line.find('\n'));
    line.remove_prefix(std::min(line.find_first_not_of(" \t"), line.size()));
    return std::string(line.substr(0, line.find_first_of(" \t")));
}

void check_interpreter(const std::string& program, const std::string& interpreter) {
    const std::string what = program + ": interpreter " + quoted(interpreter) + " (its #! line)";
    if (interpreter.empty()) fail("exec", program + ": empty #! line");
    if (interpreter.front() != '/') fail("exec", what + " is not an absolute path");
    if (access(interpreter.c_str(), X_OK) != 0) fail("exec", what + ": " + errno_text(errno));
}

void check_chdir(const std::string& directory) {
    struct stat st {};
    if (stat(directory.c_str(), &st) != 0) fail("chdir", quoted(directory) + ": " + errno_text(errno));
    if (!S_ISDIR(st.st_mode)) fail("chdir", quoted(directory) + " is not a directory");
}

std::vector<std::string> build_argv(const Config& config) {
    if (config.exec_argv.empty()) fail("exec", "no program given");
    const std::string& program = config.exec_argv.front();
    if (program.empty() || program.front() != '/') fail("exec", quoted(program) + " is not an absolute path");
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
            fail("env", "expected NAME=VALUE, got " + quoted(entry));
        add("env", entry.substr(0, eq), entry);
    }
    for (const auto& name : config.pass_env) {
        if (!valid_variable_name(name)) fail("pass-env", "invalid variable name " + quoted(name));
        if (const char* value = std::getenv(name.c_str())) add("pass-env", name, name + "=" + value);
    }
    return result;
}

bool has_unix_listener(const Config& config) {
    return std::any_of(config.listen.begin(), config.listen.end(),
                       [](const ListenAddress& a) { return std::holds_alternative<UnixAddress>(a); });
}

ExecPlan plan_exec(const Config& config) {
    ExecPlan plan;
    plan.argv = build_argv(config);
    if (auto interpreter = interpreter_of(plan.argv.front())) {
        check_interpreter(plan.argv.front(), *interpreter);
        plan.interpreter = std::move(*interpreter);
    }
    plan.base_env = build_base_env(config);
    plan.umask = config.umask;
    plan.chdir = config.chdir.empty() ? "/" : config.chdir;
    check_chdir(plan.chdir);
    plan.rlimits = config.rlimits;
    // Exec'd handlers' idleness is judged from TCP_INFO, which a UNIX socket has not.
    if (config.limits.idle_timeout_s > 0 && has_unix_listener(config))
        plan.warnings.push_back(where(config, "idle-timeout") +
                                "option 'idle-timeout': has no effect on exec'd handlers of UNIX listeners");
    return plan;
}

} // namespace

ExecPlan build_exec_plan(const Config& config) {
    try {
        ExecPlan plan;
        if (config.handler == HandlerKind::exec) plan = plan_exec(config);
        plan.identity = build_identity(config);
        if (config.handler != HandlerKind::exec && plan.identity &&
            plan.identity->groups.size() > max_builtin_groups)
            fail(config.user ? "user" : "group",
                 "built-in handlers run with at most " + std::to_string(max_builtin_groups) +
                     " supplementary groups, and the user has " + std::to_string(plan.identity->groups.size()));
        return plan;
    } catch (const OptionProblem& problem) {
        throw ConfigError(where(config, problem.option) + "option '" + std::string(problem.option) +
                          "': " + problem.reason);
    }
}

} // namespace forkd
