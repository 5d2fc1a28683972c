// SPDX-License-Identifier: MIT
// Test handler: reports what an exec'd handler inherits, one "key value" per line on stdout
// (the connection), then exits 0:
//   argv N TEXT / env NAME=VALUE / fd N TARGET / status SigBlk:... / rlimit-nofile SOFT/HARD /
//   umask 0022 / cwd PATH / end
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

extern char** environ;

namespace {

void open_fds() {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return;
    const int own = dirfd(dir);  // listing the directory needs an fd of its own
    while (dirent* entry = readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        int fd = std::atoi(entry->d_name);
        if (fd == own) continue;
        char target[PATH_MAX] = {};
        std::string link = std::string("/proc/self/fd/") + entry->d_name;
        ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
        std::printf("fd %d %s\n", fd, n > 0 ? target : "?");
    }
    closedir(dir);
}

void status_lines() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        for (const char* key : {"SigBlk:", "SigIgn:", "Uid:", "Gid:", "Groups:"})
            if (line.rfind(key, 0) == 0) std::printf("status %s\n", line.c_str());
    }
}

} // namespace

int main(int argc, char** argv) {
    for (int i = 0; i < argc; ++i) std::printf("argv %d %s\n", i, argv[i]);
    for (char** e = environ; *e; ++e) std::printf("env %s\n", *e);
    open_fds();
    status_lines();
    rlimit nofile{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    std::printf("rlimit-nofile %llu/%llu\n", static_cast<unsigned long long>(nofile.rlim_cur),
                static_cast<unsigned long long>(nofile.rlim_max));
    mode_t mask = umask(0);
    std::printf("umask %04o\n", static_cast<unsigned>(mask));
    char cwd[PATH_MAX] = {};
    std::printf("cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
    std::printf("end\n");
    return 0;
}
