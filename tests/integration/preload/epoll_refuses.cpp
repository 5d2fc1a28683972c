// SPDX-License-Identifier: MIT
// LD_PRELOAD shim for the tests only: epoll_ctl(EPOLL_CTL_ADD) fails with ENOSPC (what the kernel
// says past fs.epoll.max_user_watches) for a UNIX socket whose path contains
// $FORKD_TEST_EPOLL_REFUSES. It lets a test make sd_event_add_io fail inside the real daemon,
// so that a reload's listener registration throws from within an sd-event callback.
#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace {

bool refused(int fd) {
    const char* marker = std::getenv("FORKD_TEST_EPOLL_REFUSES");
    if (!marker || !*marker) return false;
    sockaddr_un address{};
    socklen_t length = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) < 0) return false;
    if (address.sun_family != AF_UNIX || length <= offsetof(sockaddr_un, sun_path)) return false;
    return std::strstr(address.sun_path, marker) != nullptr;
}

} // namespace

extern "C" int epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
    using Real = int (*)(int, int, int, epoll_event*);
    static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "epoll_ctl"));
    if (op == EPOLL_CTL_ADD && refused(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return real(epfd, op, fd, event);
}
