// SPDX-License-Identifier: MIT
#include "daemon/upgrade/state_memfd.hpp"

#include "common/base/write_all.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

namespace forkd::upgrade {

Result<UniqueFd> write_state_memfd(const UpgradeState& state) {
    UniqueFd fd(memfd_create("forkd-upgrade-state", MFD_CLOEXEC));
    if (!fd) return system_error("memfd_create");
    if (Status s = write_all(fd.get(), encode_state(state)); !s) return s.error();
    if (lseek(fd.get(), 0, SEEK_SET) < 0) return system_error("lseek");
    return fd;
}

Result<UpgradeState> read_state_fd(int raw) {
    UniqueFd fd(raw);
    std::string bytes;
    char buffer[65536];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return system_error("read the upgrade state record (fd " + std::to_string(raw) + ")");
        if (n == 0) break;
        bytes.append(buffer, std::size_t(n));
    }
    return decode_state(bytes);
}

int take_state_fd_from_environment() {
    const char* text = ::getenv(state_environment);
    if (!text) return -1;
    char* end = nullptr;
    const long fd = std::strtol(text, &end, 10);
    ::unsetenv(state_environment);
    if (end == text || *end || fd < 0 || fd > INT_MAX) return -1;
    return int(fd);
}

Status set_inherited(std::span<const int> fds, bool inherit) {
    for (int fd : fds) {
        const int flags = fcntl(fd, F_GETFD);
        if (flags < 0) return system_error("fcntl F_GETFD " + std::to_string(fd));
        const int wanted = inherit ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC;
        if (wanted != flags && fcntl(fd, F_SETFD, wanted) < 0)
            return system_error("fcntl F_SETFD " + std::to_string(fd));
    }
    return {};
}

} // namespace forkd::upgrade
