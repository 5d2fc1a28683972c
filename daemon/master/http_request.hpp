// SPDX-License-Identifier: MIT
#pragma once
// The little HTTP/1.x the metrics endpoint understands, as pure functions: what the bytes read
// so far from a client ask for, and the reply to send. One request per connection: forkd
// answers the first and closes, so pipelined requests and whatever follows are never read.
#include <cstddef>
#include <string>
#include <string_view>

namespace forkd {

enum class HttpVerdict {
    incomplete,          // no end of headers yet: read more (within the size bound)
    metrics,             // GET /metrics (or HEAD)
    not_found,           // another path
    method_not_allowed,  // another method
    bad_request,         // not HTTP/1.x: request line or a header malformed
    too_large,           // no end of headers within max_size bytes
};

struct HttpRequestView {
    HttpVerdict verdict = HttpVerdict::incomplete;
    bool head = false;  // HEAD: the reply without its body
};

// BYTES: everything read from the client so far. A request line that is already malformed is
// a bad_request at once, without waiting for the rest.
HttpRequestView parse_http_request(std::string_view bytes, std::size_t max_size);

// The whole reply, "Connection: close" included: status line, headers, body (none for HEAD).
std::string http_response(HttpVerdict verdict, bool head, std::string_view metrics_body,
                          std::string_view content_type);

} // namespace forkd
