// SPDX-License-Identifier: MIT
#include "common/base/unix_bind.hpp"

#include "common/base/stale_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace forkd {

Result<BoundUnixSocket> bind_unix_socket(RunPath run, mode_t mode) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (run.path.size() >= sizeof address.sun_path) return Error{ENAMETOOLONG, "bind"};
    std::memcpy(address.sun_path, run.path.c_str(), run.path.size() + 1);
    if (Status cleared = remove_stale_socket(run); !cleared) return cleared.error();
    BoundUnixSocket bound;
    bound.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!bound.fd) return system_error("create");
    const mode_t old_umask = ::umask(~mode & 0777);
    const int r = ::bind(bound.fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
    const int bind_errno = errno;
    ::umask(old_umask);
    if (r < 0) return Error{bind_errno, "bind"};
    // bind(2) takes a path: only forkd or root can create names in the checked directory, so a
    // socket there now is ours, and none means the directory was moved away between the check
    // and the bind (a parent that others may write to).
    struct stat st {};
    if (::fstatat(run.dir.get(), run.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode))
        return Error{EXDEV, "verify"};
    if (::fchmodat(run.dir.get(), run.name.c_str(), mode, 0) < 0) return system_error("chmod");
    bound.file = UnixSocketFile{std::move(run), st.st_dev, st.st_ino};
    return bound;
}

void UnixSocketFile::unlink() const {
    struct stat st {};
    if (!run.dir) return;
    if (::fstatat(run.dir.get(), run.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_dev == dev && st.st_ino == ino)
        ::unlinkat(run.dir.get(), run.name.c_str(), 0);
}

} // namespace forkd
