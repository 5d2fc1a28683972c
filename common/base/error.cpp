// SPDX-License-Identifier: MIT
#include "common/base/error.hpp"

#include <cstring>

namespace forkd {

std::string errno_text(int errnum) {
    char buffer[256];
    // GNU strerror_r returns the text (maybe a static string, maybe buffer).
    return ::strerror_r(errnum, buffer, sizeof buffer);
}

std::string quoted(std::string_view text) {
    constexpr std::size_t shown = 40;
    // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "'" + std::string&&.
    std::string out(1, '\'');
    out.append(text.substr(0, shown));
    if (text.size() <= shown) return out += '\'';
    out += "...' (";
    out += std::to_string(text.size());
    out += " bytes)";
    return out;
}

} // namespace forkd
