// SPDX-License-Identifier: MIT
#pragma once
// A blocking write of a whole buffer, through EINTR and short writes.
#include "common/base/error.hpp"

#include <string_view>

namespace forkd {

// Writes all of DATA to FD; on failure, the errno of the write that failed ("write").
Status write_all(int fd, std::string_view data);

} // namespace forkd
