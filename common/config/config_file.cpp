// SPDX-License-Identifier: MIT
// Reads "name = value" lines, keeping line numbers for error messages.
#include "common/config/config_file.hpp"

#include "common/base/error.hpp"
#include "common/config/config.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace forkd {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
    return text;
}

bool is_option_name(std::string_view name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
}

// Cuts a trailing " # comment" that lies outside quotes (shell rules for quotes and '\').
std::string_view strip_trailing_comment(std::string_view value) {
    char quote = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (quote == '\'') {
            if (c == '\'') quote = 0;
        } else if (quote == '"') {
            if (c == '\\') ++i;
            else if (c == '"') quote = 0;
        } else if (c == '\\') {
            ++i;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '#' && (i == 0 || is_blank(value[i - 1]))) {
            return value.substr(0, i);
        }
    }
    return value;
}

// "..." as a whole becomes its content; anything else is returned as written.
std::string unquote_whole_value(std::string_view value) {
    if (value.size() < 2 || value.front() != '"') return std::string(value);
    std::string out;
    for (std::size_t i = 1; i < value.size(); ++i) {
        char c = value[i];
        if (c == '\\' && i + 1 < value.size() && (value[i + 1] == '"' || value[i + 1] == '\\')) {
            out += value[++i];
        } else if (c == '"') {
            return i + 1 == value.size() ? out : std::string(value);  // closing quote must end it
        } else {
            out += c;
        }
    }
    return std::string(value);  // unterminated: leave it for the option's own check
}

void parse_line(std::string_view raw, int number, const std::string& origin,
                ConfigFileContent& content) {
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') return;
    const std::string where = origin + ":" + std::to_string(number) + ": ";
    auto equals = line.find('=');
    if (equals == std::string_view::npos) {
        content.errors.push_back({number, where + "syntax error: expected 'name = value'"});
        return;
    }
    std::string_view name = trim(line.substr(0, equals));
    if (name.empty()) {
        content.errors.push_back({number, where + "syntax error: missing option name before '='"});
        return;
    }
    if (!is_option_name(name)) {
        content.errors.push_back(
            {number, where + "syntax error: bad option name " + quoted(name)});
        return;
    }
    std::string_view value = trim(strip_trailing_comment(trim(line.substr(equals + 1))));
    if (value.empty()) {
        content.errors.push_back({number, where + "option '" + std::string(name) + "': missing value"});
        return;
    }
    content.entries.push_back({std::string(name), unquote_whole_value(value), number});
}

} // namespace

ConfigFileContent parse_config_text(std::string_view text, const std::string& origin) {
    ConfigFileContent content;
    // A UTF-8 byte-order mark, as some editors write, is not part of the first line.
    constexpr std::string_view bom = "\xEF\xBB\xBF";
    if (text.substr(0, bom.size()) == bom) text.remove_prefix(bom.size());
    int number = 0;
    while (!text.empty()) {
        auto newline = text.find('\n');
        std::string_view line = text.substr(0, newline);
        parse_line(line, ++number, origin, content);
        if (newline == std::string_view::npos) break;
        text.remove_prefix(newline + 1);
    }
    return content;
}

ConfigFileContent read_config_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        throw ConfigError(path + ": is a directory, not a config file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(path + ": cannot read: " + errno_text(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw ConfigError(path + ": cannot read: " + errno_text(errno));
    return parse_config_text(text.str(), path);
}

std::string quote_config_value(std::string_view value) {
    bool needs_quotes = value.empty() || is_blank(value.front()) || is_blank(value.back()) ||
                        value.front() == '"' || value.find('#') != std::string_view::npos;
    if (!needs_quotes) return std::string(value);
    std::string out = "\"";
    for (char c : value) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

} // namespace forkd
