// SPDX-License-Identifier: MIT
#pragma once
// forkctl's command line, parsed without side effects:
//   forkctl [-s SOCKET | -i NAME] [--json] [--timeout S] COMMAND [ARGS]
// Global options (Boost.ProgramOptions) come before the command; the command word and its
// arguments go through a relayctl-style table: unique prefixes are accepted, and a mistake says
// unknown, ambiguous or missing argument and lists the valid words.
#include "common/control/control_protocol.hpp"
#include "ctl/command_table.hpp"

#include <chrono>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace forkd::ctl {

// A mistake on the command line (forkctl exits 2). what() is one line without "forkctl: ".
class UsageError : public std::runtime_error {
public:
    // Whether the message lists what would have been valid; if not, forkctl points to --help.
    enum class Lists { nothing, valid_choices };
    explicit UsageError(const std::string& message, Lists lists = Lists::nothing)
        : std::runtime_error(message), lists_valid_choices_(lists == Lists::valid_choices) {}
    bool lists_valid_choices() const { return lists_valid_choices_; }

private:
    bool lists_valid_choices_;
};

// Resolves WORD among VALID (exact match, else a unique prefix). WHAT names the kind of word in
// messages: "unknown command 'x' (valid: ...)", "ambiguous key 'max' (could be: ...)".
std::string_view match_word(std::string_view word, std::span<const std::string_view> valid,
                            std::string_view what);

struct Invocation {
    enum class Action { run, help, version, complete } action = Action::run;
    std::optional<std::string> socket;     // -s
    std::optional<std::string> instance;   // -i
    bool json = false;
    std::optional<std::chrono::milliseconds> timeout;       // global --timeout
    control::Request request;
    bool wait = false;                                      // drain --wait
    std::optional<std::chrono::milliseconds> wait_timeout;  // drain/stop --timeout
    std::string local_command;                              // top: forkctl's own command, else ""
    std::chrono::milliseconds delay{1000};                  // top -d
    bool once = false;                                      // top --once
    std::vector<std::string> complete_words;  // complete: the words before the one completed
};

// The hidden command word the bash completion calls: `forkctl [-s S | -i N] __complete WORD...`
// prints the candidates for the word after WORD... (ctl/completion.hpp).
inline constexpr std::string_view complete_command = "__complete";

// Default time to connect and get a reply when --timeout is not given.
inline constexpr std::chrono::milliseconds default_reply_timeout{10000};

// Throws UsageError.
Invocation parse_command_line(const std::vector<std::string>& args);  // args without argv[0]
// The words after the global options: COMMAND [ARGS]. Throws UsageError.
void parse_command_words(const std::vector<std::string>& words, Invocation& invocation);
// "1", "0.5", "30" seconds; positive. Throws UsageError naming OPTION.
std::chrono::milliseconds parse_seconds(std::string_view text, std::string_view option);

std::string usage_text();

} // namespace forkd::ctl
