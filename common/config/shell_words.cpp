// SPDX-License-Identifier: MIT
// Shell-like word splitting for exec = "PROG ARGS" (POSIX Shell Command Language, 2.2 Quoting).
#include "common/config/shell_words.hpp"

#include <stdexcept>

namespace forkd {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// Inside double quotes a backslash only escapes these; before anything else it stays literal.
bool escapable_in_double_quotes(char c) {
    return c == '\\' || c == '"' || c == '$' || c == '`' || c == '\n';
}

class Splitter {
public:
    explicit Splitter(std::string_view text) : text_(text) {}

    std::vector<std::string> run() {
        while (pos_ < text_.size()) {
            char c = text_[pos_++];
            if (is_blank(c)) {
                end_word();
            } else if (c == '\\') {
                backslash();
            } else if (c == '\'') {
                single_quoted();
            } else if (c == '"') {
                double_quoted();
            } else {
                append(c);
            }
        }
        end_word();
        return std::move(words_);
    }

private:
    void append(char c) {
        word_ += c;
        in_word_ = true;
    }
    void end_word() {
        if (in_word_) words_.push_back(std::move(word_));
        word_.clear();
        in_word_ = false;
    }
    void backslash() {
        if (pos_ >= text_.size()) throw std::invalid_argument("trailing backslash");
        char next = text_[pos_++];
        if (next != '\n') append(next);  // backslash-newline is a line continuation
    }
    void single_quoted() {
        in_word_ = true;  // '' is an empty word
        auto close = text_.find('\'', pos_);
        if (close == std::string_view::npos) throw std::invalid_argument("unterminated single quote");
        word_.append(text_.substr(pos_, close - pos_));
        pos_ = close + 1;
    }
    void double_quoted() {
        in_word_ = true;
        while (pos_ < text_.size()) {
            char c = text_[pos_++];
            if (c == '"') return;
            if (c == '\\' && pos_ < text_.size() && escapable_in_double_quotes(text_[pos_])) {
                char next = text_[pos_++];
                if (next != '\n') word_ += next;
            } else {
                word_ += c;
            }
        }
        throw std::invalid_argument("unterminated double quote");
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::string word_;
    bool in_word_ = false;
    std::vector<std::string> words_;
};

bool is_safe_bare(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("/._-+=:,@%^").find(c) != std::string_view::npos;
}

} // namespace

std::vector<std::string> split_shell_words(std::string_view text) { return Splitter(text).run(); }

std::string quote_shell_word(std::string_view word) {
    bool bare = !word.empty();
    for (char c : word) bare = bare && is_safe_bare(c);
    if (bare) return std::string(word);
    std::string out = "'";
    for (char c : word) {
        if (c == '\'')
            out += "'\\''";  // close, escaped quote, reopen
        else
            out += c;
    }
    out += '\'';
    return out;
}

std::string join_shell_words(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& word : words) {
        if (!out.empty()) out += ' ';
        out += quote_shell_word(word);
    }
    return out;
}

} // namespace forkd
