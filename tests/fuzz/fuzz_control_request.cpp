// SPDX-License-Identifier: MIT
// libFuzzer target: the control request parser (and the reply parser forkctl uses) must never
// crash, hang or leak on any input, and whatever it accepts must survive an encode round trip.
#include "common/control/control_protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace forkd::control;
    std::string_view input(reinterpret_cast<const char*>(data), size);

    auto parsed = parse_request(input);
    if (auto* request = std::get_if<Request>(&parsed)) {
        auto again = parse_request(encode_request(*request));
        if (!std::holds_alternative<Request>(again) || std::get<Request>(again) != *request) std::abort();
    } else {
        const auto& error = std::get<RequestError>(parsed);
        if (error.message.empty() || error.message.find('\n') != std::string::npos) std::abort();
        (void)parse_reply(encode_error(error.code, error.message));
    }

    try {
        Reply reply = parse_reply(input);
        (void)encode_ok(reply.result);
    } catch (const ProtocolError&) {
    }
    return 0;
}
