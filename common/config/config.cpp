// SPDX-License-Identifier: MIT
// forkd's configuration: Boost.ProgramOptions parses the command line and merges it with the
// config file (read line by line by config_file.cpp, so that errors carry line numbers).
//
// How a load works:
//   1. The command line's options (kept in CommandLine::options) are stored first, then the
//      file's; Boost keeps the first value of a single option (the command line wins) and
//      appends repeatable ones (listen, env, pass-env accumulate: command line first).
//   2. Every value, the overridden ones included, is checked where it was written, so an error
//      reads "FILE:LINE: option 'NAME': REASON" and all of them are reported together.
//   3. The merged values become one Config; cross-option rules are checked last.
#include "common/config/config.hpp"

#include "common/base/error.hpp"
#include "common/config/config_file.hpp"
#include "common/config/config_options.hpp"
#include "common/runtime_paths.hpp"

#include <boost/program_options.hpp>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <climits>
#include <set>

namespace forkd {
namespace po = boost::program_options;

namespace {

constexpr const char* kCommandLine = "command line";

// ---------------------------------------------------------------- Boost descriptions

// Command line: flags take no value ("-f"). File: every option takes one ("foreground = yes").
po::options_description describe(bool for_file) {
    po::options_description desc;
    for (const OptionSpec& spec : option_specs()) {
        if (for_file && spec.command_line_only) continue;
        std::string names(spec.name);
        if (!for_file && spec.short_name) names += std::string(",") + spec.short_name;
        const std::string help(spec.help);
        po::value_semantic* semantic = nullptr;
        switch (spec.arity) {
        case OptionSpec::Arity::single:
            semantic = po::value<std::string>();
            break;
        case OptionSpec::Arity::repeatable:
            semantic = po::value<std::vector<std::string>>()->composing();
            break;
        case OptionSpec::Arity::flag:
            semantic = for_file ? po::value<std::string>()
                                : po::value<std::string>()->zero_tokens()->implicit_value("yes");
            break;
        }
        desc.add_options()(names.c_str(), semantic, help.c_str());
    }
    return desc;
}

po::option make_option(const std::string& name, const std::string& value) {
    po::option option(name, std::vector<std::string>{value});
    option.original_tokens = {name, value};
    return option;
}

std::string boost_error_text(const po::error& error) {
    if (const auto* syntax = dynamic_cast<const po::invalid_command_line_syntax*>(&error)) {
        std::string name = syntax->get_option_name();
        name.erase(0, name.find_first_not_of('-'));
        switch (syntax->kind()) {
        case po::invalid_syntax::missing_parameter: return "option '" + name + "': missing value";
        case po::invalid_syntax::extra_parameter: return "option '" + name + "': takes no value";
        default: break;
        }
    }
    return error.what();
}

std::string absolute_path(const std::string& path) {
    if (path.empty() || path.front() == '/') return path;
    std::vector<char> cwd(PATH_MAX);
    if (!::getcwd(cwd.data(), cwd.size())) return path;
    return std::string(cwd.data()) + "/" + path;
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// ---------------------------------------------------------------- the loader

struct Problem {
    int order;  // 0: command line, N: file line N, INT_MAX: the configuration as a whole
    std::string message;
};

class ConfigLoader {
public:
    explicit ConfigLoader(const CommandLine& command_line) : command_line_(command_line) {}

    Config load() {
        store_command_line();
        locate_config_file();
        if (!config_.config_file.empty()) store_config_file();
        build();
        check_combinations();
        if (!problems_.empty()) throw ConfigError(joined_problems());
        return std::move(config_);
    }

private:
    void problem(int order, const std::string& where, std::string_view name, const std::string& reason) {
        problems_.push_back({order, where + ": option " + quoted(name) + ": " + reason});
    }

    // Checks one value where it was written; false (and a problem) when it is bad.
    bool check_value(int order, const std::string& where, const std::string& name,
                     const std::string& value) {
        try {
            Config scratch;
            apply_option(scratch, name, value);
            return true;
        } catch (const std::invalid_argument& error) {
            problem(order, where, name, error.what());
            return false;
        }
    }

    void store_command_line() {
        const po::options_description desc = describe(false);
        po::parsed_options parsed(&desc);
        for (const auto& [name, value] : command_line_.options) {
            given_.insert(name);
            if (!find_option(name) || !check_value(0, kCommandLine, name, value)) continue;
            parsed.options.push_back(make_option(name, value));
            origins_[name].push_back(kCommandLine);
            record_in_order(name, value);
        }
        store(parsed, kCommandLine);
    }

    void locate_config_file() {
        if (vm_.count("instance")) config_.instance = vm_["instance"].as<std::string>();
        if (vm_.count("config")) {
            config_.config_file = vm_["config"].as<std::string>();
            return;
        }
        if (auto path = default_config_file(config_.instance)) {
            if (file_exists(*path))
                config_.config_file = *path;
            else
                missing_default_ = *path;  // no file at all is fine; say so if listen is missing
        }
    }

    void store_config_file() {
        const std::string& path = config_.config_file;
        ConfigFileContent content;
        try {
            content = read_config_file(path);
        } catch (const ConfigError& error) {
            problems_.push_back({0, error.what()});
            unreadable_file_ = true;  // its options are unknown: none is "missing"
            return;
        }
        for (auto& error : content.errors) problems_.push_back({error.line, error.message});

        const po::options_description desc = describe(true);
        po::parsed_options parsed(&desc);
        std::map<std::string, int> first_line;
        for (const ConfigFileEntry& entry : content.entries) {
            const std::string where = path + ":" + std::to_string(entry.line);
            if (!accept_file_entry(entry, where, first_line)) continue;
            if (!check_value(entry.line, where, entry.name, entry.value)) continue;
            const OptionSpec* spec = find_option(entry.name);
            bool overridden = spec->arity != OptionSpec::Arity::repeatable && origins_.count(entry.name);
            if (overridden) continue;  // the command line wins
            parsed.options.push_back(make_option(entry.name, entry.value));
            origins_[entry.name].push_back(where);
            record_in_order(entry.name, entry.value);
        }
        store(parsed, path);
    }

    bool accept_file_entry(const ConfigFileEntry& entry, const std::string& where,
                           std::map<std::string, int>& first_line) {
        const OptionSpec* spec = find_option(entry.name);
        if (!spec) {
            problem(entry.line, where, entry.name, "unknown option");
            return false;
        }
        if (spec->command_line_only) {
            problem(entry.line, where, entry.name, "only valid on the command line");
            return false;
        }
        given_.insert(entry.name);
        if (spec->arity == OptionSpec::Arity::repeatable) return true;
        auto [it, first] = first_line.emplace(entry.name, entry.line);
        if (!first) {
            problem(entry.line, where, entry.name,
                    "given more than once (first on line " + std::to_string(it->second) + ")");
            return false;
        }
        return true;
    }

    // Rows sharing an ordered list (allow, deny) are applied in the order written (build()).
    void record_in_order(const std::string& name, const std::string& value) {
        const OptionSpec* spec = find_option(name);
        if (spec && spec->value.render_in_order) in_order_.emplace_back(name, value);
    }

    void store(const po::parsed_options& parsed, const std::string& where) {
        try {
            po::store(parsed, vm_);
        } catch (const po::error& error) {  // not expected: names and counts are checked above
            problems_.push_back({INT_MAX, where + ": " + error.what()});
        }
    }

    // The merged values, in table order, into the real Config.
    void build() {
        for (const OptionSpec& spec : option_specs()) {
            const std::string name(spec.name);
            if (!vm_.count(name) || name == "config" || name == "instance") continue;
            if (spec.value.render_in_order) continue;  // below, in the order written
            if (spec.arity == OptionSpec::Arity::repeatable) {
                for (const auto& value : vm_[name].as<std::vector<std::string>>()) apply_checked(name, value);
            } else {
                apply_checked(name, vm_[name].as<std::string>());
            }
        }
        for (const auto& [name, value] : in_order_) apply_checked(name, value);
        for (const auto& [name, places] : origins_) config_.origins[name] = places.front();
        if (config_.pidfile.empty()) config_.pidfile = default_pidfile(config_.instance);
        if (config_.control_socket.empty()) config_.control_socket = default_control_socket(config_.instance);
        config_.env = first_per_name(config_.env);
        config_.pass_env = first_per_name(config_.pass_env);
    }

    void apply_checked(const std::string& name, const std::string& value) {
        try {
            apply_option(config_, name, value);
        } catch (const std::invalid_argument& error) {  // e.g. a file that changed in between
            problem(INT_MAX, origin_of(name), name, error.what());
        }
    }

    // The command line's env/pass-env come first, so its value for a NAME wins.
    static std::vector<std::string> first_per_name(const std::vector<std::string>& items) {
        std::vector<std::string> kept;
        std::set<std::string> names;
        for (const auto& item : items)
            if (names.insert(item.substr(0, item.find('='))).second) kept.push_back(item);
        return kept;
    }

    std::string origin_of(const std::string& name, std::size_t index = 0) const {
        auto it = origins_.find(name);
        if (it != origins_.end() && index < it->second.size()) return it->second[index];
        return config_.config_file.empty() ? kCommandLine : config_.config_file;
    }

    void check_combinations() {
        check_listen();
        check_handler();
        check_mode();
    }

    // An exec'd program needs a process per connection: event workers serve built-ins only.
    void check_mode() {
        if (config_.mode != ServeMode::event || config_.handler != HandlerKind::exec) return;
        const std::string handler_at = given_.count("handler") ? origin_of("handler") : origin_of("exec");
        problem(INT_MAX, origin_of("mode"), "mode",
                "event cannot serve handler = exec (set at " + handler_at +
                    "): use mode = fork, or a built-in handler");
    }

    void check_listen() {
        if (config_.listen.empty()) {
            if (given_.count("listen") || unreadable_file_) return;  // reported already
            std::string reason = "required: at least one listen address";
            if (!missing_default_.empty()) reason += " (no config file: " + missing_default_ + " does not exist)";
            problem(INT_MAX, origin_of("listen"), "listen", reason);
            return;
        }
        std::map<std::string, std::size_t> seen;
        for (std::size_t i = 0; i < config_.listen.size(); ++i) {
            const auto& address = config_.listen[i];
            const auto* tcp = std::get_if<TcpAddress>(&address);
            if (tcp && tcp->port == 0) continue;  // several ephemeral ports are fine
            auto [it, first] = seen.emplace(to_string(address), i);
            if (!first)
                problem(INT_MAX, origin_of("listen", i), "listen",
                        "duplicate address " + it->first + " (also at " + origin_of("listen", it->second) + ")");
        }
    }

    // exec implies handler = exec; when both are given from different places the command line wins.
    void check_handler() {
        const bool has_exec = vm_.count("exec") > 0;
        const bool has_handler = vm_.count("handler") > 0;
        if (has_exec && !has_handler) config_.handler = HandlerKind::exec;
        if (has_exec && has_handler && config_.handler != HandlerKind::exec) {
            const std::string handler_at = origin_of("handler"), exec_at = origin_of("exec");
            if (handler_at == kCommandLine && exec_at != kCommandLine) {
                config_.exec_argv.clear();
            } else if (exec_at == kCommandLine && handler_at != kCommandLine) {
                config_.handler = HandlerKind::exec;
            } else {
                problem(INT_MAX, handler_at, "handler",
                        "'" + std::string(handler_name(config_.handler)) + "' conflicts with exec (at " +
                            exec_at + ")");
            }
        }
        if (config_.handler == HandlerKind::exec && !given_.count("exec"))
            problem(INT_MAX, origin_of("handler"), "handler", "exec needs the exec option (exec = PROG ARGS)");
        if (config_.handler == HandlerKind::proxy && !config_.proxy_to && !given_.count("proxy-to"))
            problem(INT_MAX, origin_of("handler"), "proxy-to",
                    "required with handler = proxy (proxy-to = HOST:PORT, [V6]:PORT or unix:PATH)");
    }

    std::string joined_problems() {
        std::stable_sort(problems_.begin(), problems_.end(),
                         [](const Problem& a, const Problem& b) { return a.order < b.order; });
        std::string text;
        for (const auto& p : problems_) {
            if (!text.empty()) text += '\n';
            text += p.message;
        }
        return text;
    }

    const CommandLine& command_line_;
    po::variables_map vm_;
    std::map<std::string, std::vector<std::string>> origins_;  // name -> where each value came from
    std::vector<std::pair<std::string, std::string>> in_order_;  // allow/deny, as written
    std::vector<Problem> problems_;
    Config config_;
    std::set<std::string> given_;  // every option written somewhere, valid or not
    std::string missing_default_;
    bool unreadable_file_ = false;
};

} // namespace

// ---------------------------------------------------------------- public interface

CommandLine parse_command_line(int argc, const char* const* argv) {
    CommandLine command_line;
    command_line.help_text = usage_text();
    const po::options_description desc = describe(false);
    const int style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;
    std::vector<po::option> parsed;
    try {
        parsed = po::command_line_parser(argc, argv).options(desc).style(style).allow_unregistered().run().options;
    } catch (const po::error& error) {
        throw ConfigError(std::string(kCommandLine) + ": " + boost_error_text(error));
    }

    std::vector<std::string> errors;
    std::set<std::string> seen;
    for (const po::option& option : parsed) {
        const std::string token = option.original_tokens.empty() ? "" : option.original_tokens.front();
        if (option.unregistered) {
            errors.push_back(std::string(kCommandLine) + ": unknown option " + quoted(token.substr(0, token.find('='))));
            continue;
        }
        if (option.string_key.empty()) {
            errors.push_back(std::string(kCommandLine) + ": unexpected argument " + quoted(token));
            continue;
        }
        const OptionSpec* spec = find_option(option.string_key);
        if (spec->arity != OptionSpec::Arity::repeatable && !seen.insert(option.string_key).second) {
            errors.push_back(std::string(kCommandLine) + ": option '" + option.string_key + "': given more than once");
            continue;
        }
        std::string value = option.value.empty() ? "" : option.value.front();
        if (spec->arity == OptionSpec::Arity::flag) value = "yes";
        // A reload runs in "/": a relative -c must keep naming the same file.
        if (option.string_key == "config") value = absolute_path(value);
        command_line.options.emplace_back(option.string_key, value);
    }
    if (!errors.empty()) {
        std::string text;
        for (const auto& e : errors) text += (text.empty() ? "" : "\n") + e;
        throw ConfigError(text);
    }
    if (seen.count("help"))
        command_line.action = CommandLine::Action::help;
    else if (seen.count("version"))
        command_line.action = CommandLine::Action::version;
    else if (seen.count("check-config"))
        command_line.action = CommandLine::Action::check_config;
    return command_line;
}

Config load_config(const CommandLine& command_line) { return ConfigLoader(command_line).load(); }

std::string Config::origin_of(std::string_view option) const {
    if (auto it = origins.find(option); it != origins.end()) return it->second;
    return config_file;
}

std::string render_config(const Config& config) {
    std::string text;
    std::set<decltype(ValueRule::render_in_order)> printed;
    for (const OptionSpec& spec : option_specs()) {
        if (!spec.value.render) continue;  // -t, -V, -h
        const std::string name(spec.name);
        if (auto in_order = spec.value.render_in_order) {
            // One list for several rows: printed once, in the order written.
            const auto lines = in_order(config);
            if (lines.empty()) {
                text += "# " + name + " = (not set)\n";
            } else if (printed.insert(in_order).second) {
                for (const auto& [line_name, value] : lines)
                    text += line_name + " = " + quote_config_value(value) + "\n";
            }
            continue;
        }
        const auto values = spec.value.render(config);
        // config and instance exist only on the command line: shown, but as comments.
        const std::string prefix = spec.command_line_only ? "# " : "";
        if (values.empty()) text += "# " + name + " = (not set)\n";
        for (const auto& value : values) text += prefix + name + " = " + quote_config_value(value) + "\n";
    }
    return text;
}

void apply_option(Config& config, std::string_view name, const std::string& value) {
    const OptionSpec* spec = find_option(name);
    if (!spec) throw std::invalid_argument("unknown option " + quoted(name));
    spec->value.apply(config, value);
}

} // namespace forkd
