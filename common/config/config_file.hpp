// SPDX-License-Identifier: MIT
#pragma once
// The config file's lines, read with their line numbers (Boost's own file parser gives none).
//
// Format: "name = value" per line; blank lines and lines starting with '#' are ignored.
// A '#' preceded by a blank and outside quotes starts a trailing comment; inside '...' or "..."
// it is literal, as in a shell ("exec = /bin/sh -c 'echo #1'" keeps its '#').
// A value written entirely in double quotes is unquoted (\" and \\ are its only escapes), so
// `exec = "/bin/cat -n"` means what `--exec "/bin/cat -n"` means on the command line.
#include <string>
#include <string_view>
#include <vector>

namespace forkd {

struct ConfigFileEntry {
    std::string name;
    std::string value;
    int line = 0;
};

struct ConfigFileError {
    int line = 0;
    std::string message;  // "FILE:LINE: syntax error: ..."
};

struct ConfigFileContent {
    std::vector<ConfigFileEntry> entries;
    std::vector<ConfigFileError> errors;
};

// Throws ConfigError ("FILE: cannot read: REASON") when the file cannot be opened or read.
ConfigFileContent read_config_file(const std::string& path);
// The same on text already in memory; `origin` names it in errors.
ConfigFileContent parse_config_text(std::string_view text, const std::string& origin);

// How render_config writes a value so that parse_config_text reads it back unchanged.
std::string quote_config_value(std::string_view value);

} // namespace forkd
