// SPDX-License-Identifier: MIT
#include "harness/log_text.hpp"

#include <sstream>

namespace forkd::test {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
}

std::optional<std::string> field_value(const std::string& line, const std::string& key) {
    auto pos = line.find(" " + key + "=");
    if (pos == std::string::npos) {
        if (line.rfind(key + "=", 0) != 0) return std::nullopt;
        pos = 0;
    } else {
        pos += 1;
    }
    pos += key.size() + 1;
    if (pos < line.size() && line[pos] == '"') {
        auto end = line.find('"', pos + 1);
        return line.substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
    }
    auto end = line.find(' ', pos);
    return line.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

std::uint16_t port_of_address(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) return 0;
    return static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)));
}

} // namespace forkd::test
