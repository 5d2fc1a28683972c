// SPDX-License-Identifier: MIT
#include "common/control/control_protocol.hpp"

#include "common/config/config_options.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace forkd::control {

namespace {

using json = nlohmann::json;

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
    std::vector<std::string_view> names;
    for (const CommandRow& row : command_rows()) names.push_back(row.name);
    return join(names);
}

std::string json_string(std::string_view text) { return dump_line(json(std::string(text))); }

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

std::string quoted_names(std::span<const ArgSpec> args, std::string_view separator) {
    std::string out;
    for (const ArgSpec& arg : args) {
        if (!out.empty()) out += separator;
        out += "'" + std::string(arg.name) + "'";
    }
    return out;
}

std::optional<RequestError> check_arg_names(const CommandRow& row, const json& args) {
    for (const auto& item : args.items()) {
        const std::string& name = item.key();
        auto known = [&name](const ArgSpec& arg) { return arg.name == name; };
        if (std::any_of(row.args.begin(), row.args.end(), known)) continue;
        if (row.args.empty())
            return bad("command '" + std::string(row.name) + "' takes no arguments (got '" + printable(name) + "')");
        std::vector<std::string_view> valid;
        for (const ArgSpec& arg : row.args) valid.push_back(arg.name);
        return bad("unknown argument '" + printable(name) + "' for command '" + std::string(row.name) +
                   "' (valid: " + join(valid) + ")");
    }
    return std::nullopt;
}

std::optional<RequestError> parse_word(const CommandRow& row, const ArgSpec& arg, const json& value,
                                       Request& request) {
    if (!value.is_string()) return bad("argument '" + std::string(arg.name) + "' must be a string");
    std::string& word = request.*arg.text;
    word = value.get<std::string>();
    const auto words = arg.words();
    if (std::find(words.begin(), words.end(), word) == words.end())
        return bad("unknown " + std::string(arg.name) + " '" + printable(word) + "' for " + std::string(row.name) +
                   " (valid: " + join(words) + ")");
    return std::nullopt;
}

std::optional<RequestError> parse_text(const ArgSpec& arg, const json& value, Request& request) {
    const std::string quoted = "argument '" + std::string(arg.name) + "'";
    auto text = scalar_text(value);
    if (!text) return bad(quoted + " must be a string or an integer");
    if (text->empty()) return bad(quoted + " is empty");
    if (has_control_chars(*text)) return bad(quoted + " contains control characters");
    request.*arg.text = std::move(*text);
    return std::nullopt;
}

std::optional<RequestError> parse_count(const ArgSpec& arg, const json& value, Request& request) {
    if (!value.is_number_unsigned())
        return bad("argument '" + std::string(arg.name) + "' must be a non-negative integer");
    request.*arg.number = value.get<std::uint64_t>();
    return std::nullopt;
}

std::optional<RequestError> parse_arg(const CommandRow& row, const ArgSpec& arg, const json& value,
                                      Request& request) {
    switch (arg.type) {
    case ArgType::word: return parse_word(row, arg, value, request);
    case ArgType::text: return parse_text(arg, value, request);
    case ArgType::count: return parse_count(arg, value, request);
    }
    return bad("argument '" + std::string(arg.name) + "' has no parser");
}

// Every argument of the row is required; they are checked in the row's order.
std::optional<RequestError> parse_args(const json& args, Request& request) {
    const CommandRow& row = command_row(request.command);
    if (auto error = check_arg_names(row, args)) return error;
    for (const ArgSpec& arg : row.args)
        if (!args.contains(std::string(arg.name)))
            return bad("command '" + std::string(row.name) + "' needs args " + quoted_names(row.args, " and "));
    for (const ArgSpec& arg : row.args)
        if (auto error = parse_arg(row, arg, args[std::string(arg.name)], request)) return error;
    return std::nullopt;
}

std::string encode_arg(const ArgSpec& arg, const Request& request) {
    std::string value = arg.type == ArgType::count ? std::to_string(request.*arg.number)
                                                   : json_string(request.*arg.text);
    return json_string(arg.name) + ":" + value;
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

} // namespace

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
    const CommandRow& row = command_row(request.command);
    std::string line = "{\"version\":" + std::to_string(protocol_version) + ",\"command\":" + json_string(row.name);
    if (!row.args.empty()) {
        std::string args;
        for (const ArgSpec& arg : row.args) args += (args.empty() ? "" : ",") + encode_arg(arg, request);
        line += ",\"args\":{" + args + "}";
    }
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
