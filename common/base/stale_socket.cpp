// SPDX-License-Identifier: MIT
#include "common/base/stale_socket.hpp"

#include "common/base/unique_fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace forkd {

namespace {

// Whether something accepts on the socket at ADDRESS; an Error when the probe itself failed.
Result<bool> answers(const sockaddr_un& address) {
    // Non-blocking: a live server with a full backlog says EAGAIN instead of stalling us.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe) return system_error("probe");
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 ||
        errno == EAGAIN)
        return true;
    if (errno == ECONNREFUSED) return false;
    return system_error("probe");
}

} // namespace

Status remove_stale_socket(const RunPath& run) {
    const std::string& path = run.path;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) return Error{ENAMETOOLONG, "probe"};
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    struct stat st {};
    if (::fstatat(run.dir.get(), run.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return Status::success();
        return system_error("inspect");
    }
    if (!S_ISSOCK(st.st_mode)) return Error{EEXIST, "inspect"};
    const Result<bool> in_use = answers(address);
    if (!in_use) return in_use.error();
    if (*in_use) return Error{EADDRINUSE, "probe"};
    if (::unlinkat(run.dir.get(), run.name.c_str(), 0) < 0 && errno != ENOENT) return system_error("remove stale");
    return Status::success();
}

} // namespace forkd
