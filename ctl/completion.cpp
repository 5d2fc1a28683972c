// SPDX-License-Identifier: MIT
#include "ctl/completion.hpp"

#include "ctl/commands.hpp"
#include "ctl/control_client.hpp"

#include <array>

namespace forkd::ctl {

namespace {

using namespace std::chrono_literals;

// Values worth offering for `set KEY`; other keys take free text.
struct KeyValues {
    std::string_view key;
    std::vector<std::string> values;
};

const std::array<KeyValues, 8> set_values = {{
    {"overload", {"wait", "reject"}},
    {"log-level", {"debug", "info", "notice", "warning", "err"}},
    {"max-connections", {"0"}},
    {"max-per-source", {"0"}},
    {"connection-timeout", {"0"}},
    {"idle-timeout", {"0"}},
    {"max-connection-rate", {"0"}},
    {"max-per-source-rate", {"0"}},
}};

std::vector<std::string> option_words(const CommandSpec& spec) {
    std::vector<std::string> words;
    if (spec.options.wait) words.emplace_back("--wait");
    if (spec.options.timeout) words.emplace_back("--timeout");
    if (spec.options.delay) words.emplace_back("-d");
    if (spec.options.once) words.emplace_back("--once");
    words.emplace_back("--json");
    return words;
}

} // namespace

std::vector<std::string> completion_words(const Invocation& invocation) {
    const std::vector<std::string>& words = invocation.complete_words;
    if (words.empty()) {
        std::vector<std::string> names;
        for (const CommandSpec& spec : command_table()) names.emplace_back(spec.name());
        return names;
    }
    const CommandSpec* found = find_command_spec(words[0]);
    if (!found) return {};
    const CommandSpec& spec = *found;
    if (!spec.complete) return option_words(spec);
    return spec.complete(invocation, std::vector<std::string>(words.begin() + 1, words.end()));
}

std::vector<std::string> complete_set_arguments(const Invocation&, const std::vector<std::string>& args) {
    if (args.empty()) return {control::set_keys().begin(), control::set_keys().end()};
    if (args.size() > 1) return {};
    for (const KeyValues& row : set_values)
        if (row.key == args[0]) return row.values;
    return {};
}

std::vector<std::string> complete_connection_ids(const Invocation& invocation, const std::vector<std::string>& args) {
    if (!args.empty()) return {};
    control::Request list;
    list.command = control::Command::list;
    std::vector<std::string> ids;
    try {
        auto reply = request_once(socket_path(invocation), list, deadline_after(1000ms));
        if (!reply.ok || !reply.result.is_array()) return {};
        for (const auto& connection : reply.result)
            if (connection.contains("id") && connection["id"].is_number_unsigned())
                ids.push_back(std::to_string(connection["id"].get<std::uint64_t>()));
    } catch (const std::exception&) {
        return {};  // no forkd to ask: nothing to offer
    }
    return ids;
}

} // namespace forkd::ctl
