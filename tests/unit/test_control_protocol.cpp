// SPDX-License-Identifier: MIT
// The control protocol: request parsing and validation, encodings, garbage and oversize input.
#include "common/control/control_protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace forkd::control {
namespace {

Request parsed_ok(std::string_view line) {
    auto parsed = parse_request(line);
    if (auto* error = std::get_if<RequestError>(&parsed)) {
        ADD_FAILURE() << "unexpected error for " << line << ": " << error->message;
        return {};
    }
    return std::get<Request>(parsed);
}

RequestError parsed_error(std::string_view line) {
    auto parsed = parse_request(line);
    if (std::holds_alternative<Request>(parsed)) {
        ADD_FAILURE() << "accepted: " << line;
        return {};
    }
    return std::get<RequestError>(parsed);
}

TEST(ControlProtocol, ParsesEveryCommandWithoutArgs) {
    for (Command command : all_commands()) {
        if (command == Command::set || command == Command::kill) continue;
        std::string name(command_name(command));
        EXPECT_EQ(parsed_ok(R"({"version":1,"command":")" + name + "\"}").command, command) << name;
        EXPECT_EQ(parsed_ok(R"({"version":1,"command":")" + name + "\",\"args\":{}}\n").command, command);
    }
}

TEST(ControlProtocol, ParsesSetWithStringOrIntegerValue) {
    Request r = parsed_ok(R"({"version":1,"command":"set","args":{"key":"max-connections","value":"10"}})");
    EXPECT_EQ(r.command, Command::set);
    EXPECT_EQ(r.key, "max-connections");
    EXPECT_EQ(r.value, "10");
    r = parsed_ok(R"({"version":1,"command":"set","args":{"key":"idle-timeout","value":30}})");
    EXPECT_EQ(r.value, "30");
    r = parsed_ok(R"({"version":1,"command":"set","args":{"key":"overload","value":"reject"}})" "\r\n");
    EXPECT_EQ(r.value, "reject");
}

TEST(ControlProtocol, ParsesKill) {
    Request r = parsed_ok(R"({"version":1,"command":"kill","args":{"id":18446744073709551615}})");
    EXPECT_EQ(r.command, Command::kill);
    EXPECT_EQ(r.id, 18446744073709551615ULL);
}

TEST(ControlProtocol, FieldOrderAndWhitespaceDoNotMatter) {
    Request r = parsed_ok(" { \"args\" : {\"id\": 7}, \"command\":\"kill\", \"version\": 1 } ");
    EXPECT_EQ(r.id, 7u);
}

TEST(ControlProtocol, UnknownCommandHasItsOwnCode) {
    RequestError e = parsed_error(R"({"version":1,"command":"explode"})");
    EXPECT_EQ(e.code, ErrorCode::unknown_command);
    EXPECT_NE(e.message.find("unknown command 'explode'"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("status, list, set, drain, resume, reload, stop, kill"), std::string::npos);
}

TEST(ControlProtocol, RejectsMalformedRequestsWithAReason) {
    struct Case { const char* line; const char* reason; };
    const Case cases[] = {
        {"", "empty request"},
        {"   ", "empty request"},
        {"hello", "malformed JSON"},
        {"{\"version\":1,", "malformed JSON"},
        {"[1,2]", "must be a JSON object"},
        {"\"status\"", "must be a JSON object"},
        {"null", "must be a JSON object"},
        {R"({"command":"status"})", "missing field 'version'"},
        {R"({"version":"1","command":"status"})", "'version' must be an integer"},
        {R"({"version":2,"command":"status"})", "unsupported protocol version 2"},
        {R"({"version":1.5,"command":"status"})", "'version' must be an integer"},
        {R"({"version":1})", "missing field 'command'"},
        {R"({"version":1,"command":7})", "'command' must be a string"},
        {R"({"version":1,"command":"status","extra":1})", "unknown field 'extra'"},
        {R"({"version":1,"command":"status","args":[]})", "'args' must be an object"},
        {R"({"version":1,"command":"status","args":{"x":1}})", "takes no arguments"},
        {R"({"version":1,"command":"set"})", "needs args 'key' and 'value'"},
        {R"({"version":1,"command":"set","args":{"key":"max-connections"}})", "needs args"},
        {R"({"version":1,"command":"set","args":{"key":"colour","value":"1"}})", "unknown key 'colour'"},
        {R"({"version":1,"command":"set","args":{"key":5,"value":"1"}})", "'key' must be a string"},
        {R"({"version":1,"command":"set","args":{"key":"overload","value":true}})", "string or an integer"},
        {R"({"version":1,"command":"set","args":{"key":"overload","value":1.5}})", "string or an integer"},
        {R"({"version":1,"command":"set","args":{"key":"overload","value":""}})", "is empty"},
        {R"({"version":1,"command":"set","args":{"key":"overload","value":"a\nb"}})", "control characters"},
        {R"({"version":1,"command":"set","args":{"key":"overload","value":"x","more":1}})", "unknown argument 'more'"},
        {R"({"version":1,"command":"kill"})", "needs args 'id'"},
        {R"({"version":1,"command":"kill","args":{"id":-1}})", "non-negative integer"},
        {R"({"version":1,"command":"kill","args":{"id":"7"}})", "non-negative integer"},
        {R"({"version":1,"command":"kill","args":{"id":7.5}})", "non-negative integer"},
        {"{\"version\":1,\"command\":\"status\"}\n{\"version\":1}", "single line"},
        {"{\"version\":1,\"command\":\"st\xff\"}", "malformed JSON"},
    };
    for (const Case& c : cases) {
        RequestError e = parsed_error(c.line);
        EXPECT_EQ(e.code, ErrorCode::bad_request) << c.line;
        EXPECT_NE(e.message.find(c.reason), std::string::npos) << c.line << " -> " << e.message;
        EXPECT_EQ(e.message.find('\n'), std::string::npos) << "one line: " << e.message;
    }
}

TEST(ControlProtocol, RejectsOversizeRequests) {
    std::string padding(max_request_size, ' ');
    RequestError e = parsed_error("{\"version\":1,\"command\":\"status\"}" + padding);
    EXPECT_NE(e.message.find("too large"), std::string::npos);
    // Exactly at the limit is still fine.
    std::string line = "{\"version\":1,\"command\":\"status\"}";
    line += std::string(max_request_size - line.size(), ' ');
    EXPECT_EQ(parsed_ok(line).command, Command::status);
}

TEST(ControlProtocol, RejectsDeepNestingBeforeParsing) {
    std::string deep = R"({"version":1,"command":"status","args":{"a":)" + std::string(10000, '[') +
                       std::string(10000, ']') + "}}";
    EXPECT_NE(parsed_error(deep).message.find("nested too deeply"), std::string::npos);
    // Brackets inside strings do not count.
    std::string in_string = R"({"version":1,"command":"set","args":{"key":"overload","value":")" +
                            std::string(100, '[') + "\"}}";
    EXPECT_EQ(parsed_ok(in_string).value, std::string(100, '['));
}

TEST(ControlProtocol, ErrorMessagesNeverEchoControlCharacters) {
    RequestError e = parsed_error("{\"version\":1,\"command\":\"a\\u0001\\nb\"}");
    EXPECT_EQ(e.code, ErrorCode::unknown_command);
    EXPECT_NE(e.message.find("'a??b'"), std::string::npos) << e.message;
    std::string long_name(1000, 'x');
    e = parsed_error("{\"version\":1,\"command\":\"" + long_name + "\"}");
    EXPECT_LT(e.message.size(), 200u);
}

TEST(ControlProtocol, RequestsRoundTrip) {
    for (Command command : all_commands()) {
        Request request;
        request.command = command;
        if (command == Command::set) {
            request.key = "log-level";
            request.value = "de\"bu\\g";
        }
        if (command == Command::kill) request.id = 123456789012345ULL;
        std::string line = encode_request(request);
        ASSERT_TRUE(line.ends_with("\n"));
        EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
        EXPECT_EQ(parsed_ok(line), request) << line;
    }
}

TEST(ControlProtocol, EncodesTheDocumentedShape) {
    Request request;
    request.command = Command::set;
    request.key = "max-connections";
    request.value = "10";
    EXPECT_EQ(encode_request(request),
              "{\"version\":1,\"command\":\"set\",\"args\":{\"key\":\"max-connections\",\"value\":\"10\"}}\n");
    EXPECT_EQ(encode_ok(nullptr), "{\"ok\":true,\"result\":null}\n");
    EXPECT_EQ(encode_error(ErrorCode::denied, "permission denied"),
              "{\"ok\":false,\"error\":\"permission denied\",\"code\":\"denied\"}\n");
}

TEST(ControlProtocol, RepliesRoundTrip) {
    nlohmann::json status = {{"pid", 12}, {"state", "running"}, {"listen", {"127.0.0.1:7"}}};
    Reply ok = parse_reply(encode_ok(status));
    EXPECT_TRUE(ok.ok);
    EXPECT_EQ(ok.result, status);
    for (ErrorCode code : {ErrorCode::denied, ErrorCode::bad_request, ErrorCode::failed, ErrorCode::unknown_command}) {
        Reply error = parse_reply(encode_error(code, "f.conf:3: option 'x': bad\nsecond line"));
        EXPECT_FALSE(error.ok);
        EXPECT_EQ(error.code, code);
        EXPECT_EQ(error.error, "f.conf:3: option 'x': bad\nsecond line");
    }
}

TEST(ControlProtocol, EncodingRepairsInvalidUtf8InsteadOfThrowing) {
    nlohmann::json result = {{"peer", std::string("unix:\xff\xfe")}};
    std::string line;
    ASSERT_NO_THROW(line = encode_ok(result));
    EXPECT_TRUE(parse_reply(line).ok);
    ASSERT_NO_THROW(line = encode_error(ErrorCode::failed, "bad \xc3"));
    EXPECT_FALSE(parse_reply(line).ok);
}

TEST(ControlProtocol, RejectsRepliesThatAreNotReplies) {
    for (const char* line : {"", "garbage", "[]", "{}", "{\"ok\":\"yes\"}", "{\"ok\":false}",
                             "{\"ok\":false,\"error\":5}"})
        EXPECT_THROW(parse_reply(line), ProtocolError) << line;
    Reply unknown_code = parse_reply(R"({"ok":false,"error":"x","code":"future-code"})");
    EXPECT_EQ(unknown_code.code, ErrorCode::failed);
    EXPECT_TRUE(parse_reply(R"({"ok":true})").result.is_null());
}

TEST(ControlProtocol, CommandAndKeyTables) {
    EXPECT_FALSE(changes_state(Command::status));
    EXPECT_FALSE(changes_state(Command::list));
    for (Command c : {Command::set, Command::drain, Command::resume, Command::reload, Command::stop, Command::kill})
        EXPECT_TRUE(changes_state(c)) << command_name(c);
    for (Command c : all_commands()) EXPECT_EQ(parse_command(command_name(c)), c);
    EXPECT_EQ(set_keys().size(), 9u);
    for (auto key : {"max-connections", "max-per-source", "connection-timeout", "idle-timeout", "overload", "log-level",
                     "max-connection-rate", "max-per-source-rate", "busy-message"})
        EXPECT_TRUE(is_set_key(key)) << key;
    EXPECT_FALSE(is_set_key("max"));
    EXPECT_EQ(parse_error_code("bad-request"), ErrorCode::bad_request);
    EXPECT_EQ(parse_error_code("unknown-command"), ErrorCode::unknown_command);
}

} // namespace
} // namespace forkd::control
