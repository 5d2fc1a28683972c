// SPDX-License-Identifier: MIT
#pragma once
// The control protocol spoken on forkd's UNIX control socket (doc/control-protocol.md).
// One request line per connection, one reply line back:
//   {"version":1,"command":"set","args":{"key":"max-connections","value":"10"}}\n
//   {"ok":true,"result":null}\n
//   {"ok":false,"error":"permission denied","code":"denied"}\n
// Parsing is pure and bounded: no I/O, no exceptions out of parse_request().
#include "common/control/control_commands.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace forkd::control {

inline constexpr int protocol_version = 1;
// A request line, newline excluded, is at most this long; anything longer is refused unread.
inline constexpr std::size_t max_request_size = 64 * 1024;
// Replies (a list of many connections) may be longer; clients bound what they accept.
inline constexpr std::size_t max_reply_size = 16 * 1024 * 1024;

// The keys "set" accepts, in the contract's order.
std::span<const std::string_view> set_keys();
bool is_set_key(std::string_view key);

enum class ErrorCode { denied, bad_request, failed, unknown_command };
std::string_view error_code_name(ErrorCode code);
std::optional<ErrorCode> parse_error_code(std::string_view name);

struct RequestError {
    ErrorCode code = ErrorCode::bad_request;
    std::string message;  // one line, says what was wrong
};

using ParsedRequest = std::variant<Request, RequestError>;

// Parses one request line (a trailing "\n" or "\r\n" is allowed) and checks its arguments
// against the command's row (control_commands.hpp). Never throws.
ParsedRequest parse_request(std::string_view line);

// The request line a client sends, "\n" included.
std::string encode_request(const Request& request);

// Reply lines, "\n" included. Strings that are not valid UTF-8 are repaired, never thrown on.
std::string encode_ok(const nlohmann::json& result);
std::string encode_error(ErrorCode code, std::string_view message);

struct Reply {
    bool ok = false;
    nlohmann::json result;               // ok: the command's result (null for actions)
    ErrorCode code = ErrorCode::failed;  // !ok
    std::string error;                   // !ok
};

class ProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Parses one reply line. Throws ProtocolError when it is not a reply.
Reply parse_reply(std::string_view line);

// Dumps JSON on one line, replacing invalid UTF-8 instead of throwing.
std::string dump_line(const nlohmann::json& value);

} // namespace forkd::control
