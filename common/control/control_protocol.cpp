// SPDX-License-Identifier: MIT
#include "common/control/control_protocol.hpp"

#include "common/config/config_options.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace forkd::control {

namespace {

using json = nlohmann::json;

constexpr std::array<Command, 8> commands = {
    Command::status, Command::list,   Command::set,  Command::drain,
    Command::resume, Command::reload, Command::stop, Command::kill,
};

// Deeper JSON than any request or reply needs is refused before the parser sees it.
constexpr int max_request_nesting = 16;
constexpr int max_reply_nesting = 64;

template <class Words>
std::string join(const Words& words) {
    std::string out;
    for (const auto& word : words) {
        if (!out.empty()) out += ", ";
        out += word;
    }
    return out;
}

std::string command_list() {
    std::array<std::string_view, commands.size()> names;
    std::transform(commands.begin(), commands.end(), names.begin(), command_name);
    return join(names);
}

RequestError bad(std::string message) { return {ErrorCode::bad_request, std::move(message)}; }

bool nested_too_deeply(std::string_view text, int max_nesting) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_nesting) return true;
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
    return false;
}

// A name from a request, safe to echo in a one-line error message.
std::string printable(std::string_view text) {
    constexpr std::size_t limit = 64;
    std::string out;
    for (char c : text.substr(0, limit))
        out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    if (text.size() > limit) out += "...";
    return out;
}

bool has_control_chars(std::string_view text) {
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::optional<std::string> scalar_text(const json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_number_unsigned()) return std::to_string(value.get<std::uint64_t>());
    if (value.is_number_integer()) return std::to_string(value.get<std::int64_t>());
    return std::nullopt;
}

std::optional<RequestError> check_arg_names(Command command, const json& args,
                                            std::initializer_list<std::string_view> allowed) {
    for (const auto& [name, value] : args.items()) {
        if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
        if (allowed.size() == 0)
            return bad("command '" + std::string(command_name(command)) +
                       "' takes no arguments (got '" + printable(name) + "')");
        return bad("unknown argument '" + printable(name) + "' for command '" +
                   std::string(command_name(command)) + "' (valid: " + join(allowed) + ")");
    }
    return std::nullopt;
}

std::optional<RequestError> parse_set_args(const json& args, Request& request) {
    if (auto error = check_arg_names(Command::set, args, {"key", "value"})) return error;
    if (!args.contains("key") || !args.contains("value"))
        return bad("command 'set' needs args 'key' and 'value'");
    const json& key = args["key"];
    if (!key.is_string()) return bad("argument 'key' must be a string");
    request.key = key.get<std::string>();
    if (!is_set_key(request.key))
        return bad("unknown key '" + printable(request.key) + "' for set (valid: " + join(set_keys()) + ")");
    auto value = scalar_text(args["value"]);
    if (!value) return bad("argument 'value' must be a string or an integer");
    if (value->empty()) return bad("argument 'value' is empty");
    if (has_control_chars(*value)) return bad("argument 'value' contains control characters");
    request.value = std::move(*value);
    return std::nullopt;
}

std::optional<RequestError> parse_kill_args(const json& args, Request& request) {
    if (auto error = check_arg_names(Command::kill, args, {"id"})) return error;
    if (!args.contains("id")) return bad("command 'kill' needs args 'id'");
    const json& id = args["id"];
    if (id.is_number_unsigned()) {
        request.id = id.get<std::uint64_t>();
        return std::nullopt;
    }
    return bad("argument 'id' must be a non-negative integer");
}

std::optional<RequestError> parse_args(const json& args, Request& request) {
    switch (request.command) {
    case Command::set: return parse_set_args(args, request);
    case Command::kill: return parse_kill_args(args, request);
    default: return check_arg_names(request.command, args, {});
    }
}

ParsedRequest parse_object(const json& doc) {
    if (!doc.is_object()) return bad("request must be a JSON object");
    for (const auto& [name, value] : doc.items())
        if (name != "version" && name != "command" && name != "args")
            return bad("unknown field '" + printable(name) + "' (valid: version, command, args)");
    if (!doc.contains("version")) return bad("missing field 'version'");
    const json& version = doc["version"];
    if (!version.is_number_integer()) return bad("field 'version' must be an integer");
    if (version.get<std::int64_t>() != protocol_version)
        return bad("unsupported protocol version " + version.dump() + " (this forkd speaks " +
                   std::to_string(protocol_version) + ")");
    if (!doc.contains("command")) return bad("missing field 'command'");
    const json& name = doc["command"];
    if (!name.is_string()) return bad("field 'command' must be a string");
    Request request;
    auto command = parse_command(name.get<std::string>());
    if (!command)
        return RequestError{ErrorCode::unknown_command,
                            "unknown command '" + printable(name.get<std::string>()) + "' (valid: " +
                                command_list() + ")"};
    request.command = *command;
    json no_args = json::object();
    const json& args = doc.contains("args") ? doc["args"] : no_args;
    if (!args.is_object()) return bad("field 'args' must be an object");
    if (auto error = parse_args(args, request)) return *error;
    return request;
}

std::string json_string(std::string_view text) { return dump_line(json(std::string(text))); }

} // namespace

std::span<const Command> all_commands() { return commands; }

std::string_view command_name(Command command) {
    switch (command) {
    case Command::status: return "status";
    case Command::list: return "list";
    case Command::set: return "set";
    case Command::drain: return "drain";
    case Command::resume: return "resume";
    case Command::reload: return "reload";
    case Command::stop: return "stop";
    case Command::kill: return "kill";
    }
    return "unknown";
}

std::optional<Command> parse_command(std::string_view name) {
    for (Command command : commands)
        if (command_name(command) == name) return command;
    return std::nullopt;
}

bool changes_state(Command command) {
    return command != Command::status && command != Command::list;
}

// The option table's rows that forkctl set may change (common/config/config_options.cpp).
std::span<const std::string_view> set_keys() {
    static const std::vector<std::string_view> keys = runtime_settable_options();
    return keys;
}

bool is_set_key(std::string_view key) {
    const auto keys = set_keys();
    return std::find(keys.begin(), keys.end(), key) != keys.end();
}

std::string_view error_code_name(ErrorCode code) {
    switch (code) {
    case ErrorCode::denied: return "denied";
    case ErrorCode::bad_request: return "bad-request";
    case ErrorCode::failed: return "failed";
    case ErrorCode::unknown_command: return "unknown-command";
    }
    return "failed";
}

std::optional<ErrorCode> parse_error_code(std::string_view name) {
    for (ErrorCode code : {ErrorCode::denied, ErrorCode::bad_request, ErrorCode::failed,
                           ErrorCode::unknown_command})
        if (error_code_name(code) == name) return code;
    return std::nullopt;
}

ParsedRequest parse_request(std::string_view line) {
    if (line.ends_with('\n')) line.remove_suffix(1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.size() > max_request_size)
        return bad("request too large (limit " + std::to_string(max_request_size) + " bytes)");
    if (line.find('\n') != std::string_view::npos) return bad("request must be a single line");
    if (line.find_first_not_of(" \t") == std::string_view::npos) return bad("empty request");
    if (nested_too_deeply(line, max_request_nesting)) return bad("request nested too deeply");
    json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return bad("malformed JSON");
    return parse_object(doc);
}

std::string encode_request(const Request& request) {
    std::string line = "{\"version\":" + std::to_string(protocol_version) + ",\"command\":" +
                       json_string(command_name(request.command));
    if (request.command == Command::set)
        line += ",\"args\":{\"key\":" + json_string(request.key) + ",\"value\":" + json_string(request.value) + "}";
    else if (request.command == Command::kill)
        line += ",\"args\":{\"id\":" + std::to_string(request.id) + "}";
    return line + "}\n";
}

std::string encode_ok(const json& result) {
    return "{\"ok\":true,\"result\":" + dump_line(result) + "}\n";
}

std::string encode_error(ErrorCode code, std::string_view message) {
    return "{\"ok\":false,\"error\":" + json_string(message) + ",\"code\":" +
           json_string(error_code_name(code)) + "}\n";
}

Reply parse_reply(std::string_view line) {
    if (line.ends_with('\n')) line.remove_suffix(1);
    if (line.size() > max_reply_size) throw ProtocolError("reply too large");
    if (nested_too_deeply(line, max_reply_nesting)) throw ProtocolError("reply nested too deeply");
    json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) throw ProtocolError("reply is not JSON");
    if (!doc.is_object() || !doc.contains("ok") || !doc["ok"].is_boolean())
        throw ProtocolError("reply has no boolean 'ok'");
    Reply reply;
    reply.ok = doc["ok"].get<bool>();
    if (reply.ok) {
        if (doc.contains("result")) reply.result = doc["result"];
        return reply;
    }
    if (!doc.contains("error") || !doc["error"].is_string())
        throw ProtocolError("error reply has no string 'error'");
    reply.error = doc["error"].get<std::string>();
    if (doc.contains("code") && doc["code"].is_string())
        reply.code = parse_error_code(doc["code"].get<std::string>()).value_or(ErrorCode::failed);
    return reply;
}

std::string dump_line(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace forkd::control
