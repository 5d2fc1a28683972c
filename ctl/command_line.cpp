// SPDX-License-Identifier: MIT
#include "ctl/command_line.hpp"

#include "common/runtime_paths.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>

namespace forkd::ctl {

namespace po = boost::program_options;

namespace {

// Global options that take their value in the next word: the command starts after them.
constexpr std::array<std::string_view, 5> options_with_value = {"-s", "-i", "--socket", "--instance",
                                                                 "--timeout"};

template <class Words>
std::string join(const Words& words, std::string_view separator = ", ") {
    std::string out;
    for (const auto& word : words) {
        if (!out.empty()) out += separator;
        out += word;
    }
    return out;
}

std::vector<std::string_view> command_names() {
    std::vector<std::string_view> names;
    for (const auto& spec : command_table()) names.push_back(spec.name());
    return names;
}

// Index of the command word in args (after "--" when present).
std::size_t command_index(const std::vector<std::string>& args, bool& after_dashes) {
    std::size_t i = 0;
    while (i < args.size()) {
        const std::string& arg = args[i];
        if (arg == "--") {
            after_dashes = true;
            return i;
        }
        if (arg.size() < 2 || arg[0] != '-') break;
        bool takes_value = std::find(options_with_value.begin(), options_with_value.end(), arg) !=
                           options_with_value.end();
        i += takes_value ? 2 : 1;
    }
    return std::min(i, args.size());
}

po::variables_map parse_options(const std::vector<std::string>& args, const po::options_description& options,
                                const po::positional_options_description* positional) {
    po::variables_map vm;
    int style = po::command_line_style::unix_style ^ po::command_line_style::allow_guessing;
    try {
        po::command_line_parser parser(args);
        parser.options(options).style(style);
        if (positional) parser.positional(*positional);
        po::store(parser.run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    return vm;
}

std::optional<std::chrono::milliseconds> seconds_option(const po::variables_map& vm, std::string_view name) {
    if (!vm.count(std::string(name))) return std::nullopt;
    return parse_seconds(vm[std::string(name)].as<std::string>(), "--" + std::string(name));
}

} // namespace

std::string_view match_word(std::string_view word, std::span<const std::string_view> valid, std::string_view what) {
    std::vector<std::string_view> candidates;
    for (std::string_view name : valid) {
        if (name == word) return name;
        if (!word.empty() && name.starts_with(word)) candidates.push_back(name);
    }
    if (candidates.size() == 1) return candidates.front();
    if (candidates.empty())
        throw UsageError("unknown " + std::string(what) + " '" + std::string(word) + "' (valid: " + join(valid) + ")",
                         UsageError::Lists::valid_choices);
    throw UsageError("ambiguous " + std::string(what) + " '" + std::string(word) + "' (could be: " +
                     join(candidates) + ")", UsageError::Lists::valid_choices);
}

std::chrono::milliseconds parse_seconds(std::string_view text, std::string_view option) {
    std::string copy(text);
    char* end = nullptr;
    double seconds = std::strtod(copy.c_str(), &end);
    if (copy.empty() || end != copy.c_str() + copy.size() || !std::isfinite(seconds) || seconds <= 0 ||
        seconds > 1e7)
        throw UsageError(std::string(option) + ": expected a positive number of seconds, got '" + copy + "'");
    return std::chrono::milliseconds(static_cast<long long>(std::ceil(seconds * 1000)));
}

void parse_command_words(const std::vector<std::string>& words, Invocation& invocation) {
    if (!words.empty() && words[0] == complete_command) {
        invocation.action = Invocation::Action::complete;
        invocation.complete_words.assign(words.begin() + 1, words.end());
        return;
    }
    auto names = command_names();
    if (words.empty())
        throw UsageError("missing command (valid: " + join(names) + ")", UsageError::Lists::valid_choices);
    auto name = match_word(words[0], names, "command");
    const CommandSpec& spec = *find_command_spec(name);
    invocation.request = control::Request{};
    invocation.request.command = spec.command;
    invocation.local_command = std::string(spec.local_name);

    po::options_description options;
    options.add_options()("json", po::bool_switch())("arg", po::value<std::vector<std::string>>());
    if (spec.options.wait) options.add_options()("wait,w", po::bool_switch());
    if (spec.options.timeout) options.add_options()("timeout", po::value<std::string>());
    if (spec.options.delay) options.add_options()("delay,d", po::value<std::string>());
    if (spec.options.once) options.add_options()("once", po::bool_switch());
    po::positional_options_description positional;
    positional.add("arg", -1);
    std::vector<std::string> rest(words.begin() + 1, words.end());
    auto vm = parse_options(rest, options, &positional);

    auto args = vm.count("arg") ? vm["arg"].as<std::vector<std::string>>() : std::vector<std::string>{};
    if (vm["json"].as<bool>()) invocation.json = true;
    if (spec.options.wait) invocation.wait = vm["wait"].as<bool>();
    if (spec.options.timeout) invocation.wait_timeout = seconds_option(vm, "timeout");
    if (spec.options.delay) invocation.delay = seconds_option(vm, "delay").value_or(invocation.delay);
    if (spec.options.once) invocation.once = vm["once"].as<bool>();
    if (spec.options.wait && invocation.wait_timeout && !invocation.wait)
        throw UsageError(std::string(spec.name()) + ": --timeout needs --wait");

    if (spec.parse_args) return spec.parse_args(spec, args, invocation.request);
    if (!args.empty())
        throw UsageError("too many arguments for '" + std::string(spec.name()) + "': '" + args[0] + "'");
}

Invocation parse_command_line(const std::vector<std::string>& args) {
    bool after_dashes = false;
    std::size_t index = command_index(args, after_dashes);
    std::vector<std::string> global(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(index));
    std::vector<std::string> words(args.begin() + static_cast<std::ptrdiff_t>(index + (after_dashes ? 1 : 0)),
                                   args.end());

    po::options_description options;
    options.add_options()
        ("socket,s", po::value<std::string>())
        ("instance,i", po::value<std::string>())
        ("json", po::bool_switch())
        ("timeout", po::value<std::string>())
        ("help,h", po::bool_switch())
        ("version,V", po::bool_switch());
    auto vm = parse_options(global, options, nullptr);

    Invocation invocation;
    if (vm["help"].as<bool>()) {
        invocation.action = Invocation::Action::help;
        return invocation;
    }
    if (vm["version"].as<bool>()) {
        invocation.action = Invocation::Action::version;
        return invocation;
    }
    if (vm.count("socket") && vm.count("instance")) throw UsageError("-s and -i cannot be used together");
    if (vm.count("socket")) invocation.socket = vm["socket"].as<std::string>();
    if (vm.count("instance")) invocation.instance = vm["instance"].as<std::string>();
    if (invocation.socket && invocation.socket->empty()) throw UsageError("-s: empty socket path");
    if (invocation.instance && invocation.instance->empty()) throw UsageError("-i: empty instance name");
    invocation.json = vm["json"].as<bool>();
    invocation.timeout = seconds_option(vm, "timeout");
    parse_command_words(words, invocation);
    return invocation;
}

std::string usage_text() {
    std::string text =
        "Usage: forkctl [-s SOCKET | -i NAME] [--json] [--timeout S] COMMAND [ARGS]\n"
        "\n"
        "Show and steer a running forkd through its control socket.\n"
        "\n"
        "Commands (a unique prefix is enough):\n";
    for (const auto& spec : command_table()) {
        std::string left = "  " + std::string(spec.name()) + " " + std::string(spec.arguments);
        left.resize(std::max<std::size_t>(left.size() + 1, 32), ' ');
        text += left + std::string(spec.summary) + "\n";
    }
    text += "\nKeys for set: " + join(control::set_keys()) + "\n";
    text +=
        "\nOptions:\n"
        "  -s, --socket PATH   control socket (default: " + default_control_socket(std::nullopt) + ")\n"
        "  -i, --instance NAME the control socket of instance NAME\n"
        "  --json              print exactly one JSON document on stdout\n"
        "  --timeout S         give up when forkd does not answer within S seconds (default 10);\n"
        "                      also bounds drain --wait and stop unless they have their own\n"
        "  -h, --help          this text\n"
        "  -V, --version       forkctl's version\n"
        "\n"
        "Exit status: 0 done, 1 refused or failed, 2 usage error, 3 forkd not reachable,\n"
        "4 permission denied.\n";
    return text;
}

} // namespace forkd::ctl
