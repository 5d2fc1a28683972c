// SPDX-License-Identifier: MIT
#pragma once
// Splits a command line into words the way a POSIX shell would, without running one:
// 'single quotes' are literal, "double quotes" honour \\ \" \$ \` and \<newline>, a backslash
// outside quotes escapes the next character (\<newline> joins lines), and blanks separate
// words. No globbing, no variables, no comments, no operators: every other character is literal.
#include <string>
#include <string_view>
#include <vector>

namespace forkd {

// Throws std::invalid_argument: "unterminated single quote", "unterminated double quote",
// "trailing backslash".
std::vector<std::string> split_shell_words(std::string_view text);

// The inverse: one word quoted so that split_shell_words gives it back unchanged
// (left bare when it needs no quoting).
std::string quote_shell_word(std::string_view word);
std::string join_shell_words(const std::vector<std::string>& words);

} // namespace forkd
