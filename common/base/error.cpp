// SPDX-License-Identifier: MIT
#include "common/base/error.hpp"

#include <cstring>

namespace forkd {

std::string errno_text(int errnum) {
    char buffer[256];
    // GNU strerror_r returns the text (maybe a static string, maybe buffer).
    return ::strerror_r(errnum, buffer, sizeof buffer);
}

} // namespace forkd
