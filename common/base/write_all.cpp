// SPDX-License-Identifier: MIT
#include "common/base/write_all.hpp"

#include <unistd.h>

#include <cerrno>

namespace forkd {

Status write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return system_error("write");
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return Status::success();
}

} // namespace forkd
