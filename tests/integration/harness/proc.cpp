// SPDX-License-Identifier: MIT
#include "harness/proc.hpp"

#include "harness/commands.hpp"
#include "harness/log_text.hpp"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace forkd::test {

namespace {

// "pid (comm) S ppid ...": comm may hold spaces and parens, so split at the last ')'.
struct ProcStat {
    std::string comm;
    char state = '?';
    pid_t ppid = -1;
    std::uint64_t utime = 0, stime = 0;
};

std::optional<ProcStat> read_stat(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    if (!in) return std::nullopt;
    std::string line;
    std::getline(in, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 1));
    ProcStat st;
    if (auto open = line.find('('); open != std::string::npos && open < close)
        st.comm = line.substr(open + 1, close - open - 1);
    rest >> st.state >> st.ppid;
    // fields 5..13 (pgrp session tty tpgid flags minflt cminflt majflt cmajflt), then utime stime
    std::string skip;
    for (int i = 0; i < 9; ++i) rest >> skip;
    rest >> st.utime >> st.stime;
    if (!rest && st.ppid < 0) return std::nullopt;
    return st;
}

std::vector<pid_t> all_pids() {
    std::vector<pid_t> pids;
    DIR* d = ::opendir("/proc");
    if (!d) return pids;
    while (auto* e = ::readdir(d)) {
        char* end = nullptr;
        long v = std::strtol(e->d_name, &end, 10);
        if (end && *end == '\0' && v > 0) pids.push_back(static_cast<pid_t>(v));
    }
    ::closedir(d);
    return pids;
}

} // namespace

std::optional<char> proc_state(pid_t pid) {
    auto st = read_stat(pid);
    if (!st) return std::nullopt;
    return st->state;
}

bool process_alive(pid_t pid) {
    auto s = proc_state(pid);
    return s && *s != 'Z' && *s != 'X';
}

std::string proc_comm(pid_t pid) {
    auto st = read_stat(pid);
    return st ? st->comm : "";
}

pid_t proc_ppid(pid_t pid) {
    auto st = read_stat(pid);
    return st ? st->ppid : -1;
}

std::vector<pid_t> proc_children(pid_t parent, bool include_zombies) {
    std::vector<pid_t> out;
    for (pid_t p : all_pids()) {
        auto st = read_stat(p);
        if (!st || st->ppid != parent) continue;
        if (!include_zombies && (st->state == 'Z' || st->state == 'X')) continue;
        out.push_back(p);
    }
    return out;
}

std::vector<pid_t> proc_descendants(pid_t root) {
    std::map<pid_t, std::vector<pid_t>> kids;
    for (pid_t p : all_pids()) {
        auto st = read_stat(p);
        if (st && st->state != 'Z' && st->state != 'X') kids[st->ppid].push_back(p);
    }
    std::vector<pid_t> out, todo = {root};
    while (!todo.empty()) {
        pid_t p = todo.back();
        todo.pop_back();
        for (pid_t c : kids[p]) {
            out.push_back(c);
            todo.push_back(c);
        }
    }
    return out;
}

std::uint64_t proc_cpu_ticks(pid_t pid) {
    auto st = read_stat(pid);
    return st ? st->utime + st->stime : 0;
}

std::size_t proc_fd_count(pid_t pid) {
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++n;
    return n;
}

std::vector<std::string> proc_fd_targets(pid_t pid) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        std::error_code link_ec;
        auto target = std::filesystem::read_symlink(it->path(), link_ec);
        if (!link_ec) out.push_back(target.string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::size_t proc_rss_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    while (in >> key) {
        if (key == "VmRSS:") {
            std::size_t kb = 0;
            in >> kb;
            return kb;
        }
        in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return 0;
}

std::vector<std::string> ipc_objects() {
    std::vector<std::string> out;
    auto r = run({"ipcs"}, 10s);
    for (const auto& line : lines_of(r.out)) {
        // Object rows start with a hex key; headers and blank lines do not.
        if (line.rfind("0x", 0) == 0) out.push_back("sysv " + line);
    }
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/dev/shm", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        out.push_back("shm " + it->path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

int proc_lowest_free_fd(pid_t pid) {
    std::set<int> used;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        used.insert(std::stoi(entry.path().filename().string()));
    int fd = 0;
    while (used.count(fd)) ++fd;
    return fd;
}

std::vector<std::string> ipc_objects_added_since(const std::vector<std::string>& before) {
    const auto now = ipc_objects();
    std::vector<std::string> added;
    std::set_difference(now.begin(), now.end(), before.begin(), before.end(), std::back_inserter(added));
    return added;
}

} // namespace forkd::test
