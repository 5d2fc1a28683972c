// SPDX-License-Identifier: MIT
#include "daemon/master/http_request.hpp"

#include <algorithm>

namespace forkd {
namespace {

// RFC 9110 tchar: the characters of a method and of a header name.
bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), is_token_char);
}

bool is_target_char(char c) { return c > ' ' && c < 0x7f; }

std::string_view strip_cr(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

struct RequestLine {
    bool valid = false;
    std::string_view method, path;
};

// "METHOD SP TARGET SP HTTP/1.x"; the path is the target without its query.
RequestLine parse_request_line(std::string_view line) {
    RequestLine out;
    const auto first = line.find(' ');
    if (first == std::string_view::npos) return out;
    const auto second = line.find(' ', first + 1);
    if (second == std::string_view::npos) return out;
    const std::string_view method = line.substr(0, first);
    const std::string_view target = line.substr(first + 1, second - first - 1);
    const std::string_view version = line.substr(second + 1);
    if (!is_token(method) || target.empty() || target.front() != '/' ||
        !std::all_of(target.begin(), target.end(), is_target_char))
        return out;
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return out;
    out.valid = true;
    out.method = method;
    out.path = target.substr(0, target.find('?'));
    return out;
}

bool valid_header(std::string_view line) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return false;
    return std::none_of(line.begin(), line.end(), [](char c) { return c == '\0'; });
}

// The first request line, if it is all there: a garbage one is refused before its headers.
bool request_line_so_far_valid(std::string_view bytes) {
    const auto end = bytes.find('\n');
    if (end != std::string_view::npos) return parse_request_line(strip_cr(bytes.substr(0, end))).valid;
    // Not all there: what there is must at least start like a method.
    const auto space = bytes.find(' ');
    const std::string_view method = bytes.substr(0, space);
    return method.empty() || std::all_of(method.begin(), method.end(), is_token_char);
}

std::string_view status_line(HttpVerdict verdict) {
    switch (verdict) {
    case HttpVerdict::metrics: return "200 OK";
    case HttpVerdict::not_found: return "404 Not Found";
    case HttpVerdict::method_not_allowed: return "405 Method Not Allowed";
    case HttpVerdict::too_large: return "431 Request Header Fields Too Large";
    case HttpVerdict::bad_request:
    case HttpVerdict::incomplete: break;
    }
    return "400 Bad Request";
}

} // namespace

HttpRequestView parse_http_request(std::string_view bytes, std::size_t max_size) {
    HttpRequestView view;
    if (!request_line_so_far_valid(bytes.substr(0, std::min(bytes.size(), max_size)))) {
        view.verdict = HttpVerdict::bad_request;
        return view;
    }
    // The end of the headers: an empty line (CRLF CRLF, or bare LF as RFC 9112 tolerates).
    std::size_t end = bytes.find("\r\n\r\n");
    std::size_t bare = bytes.find("\n\n");
    std::size_t head_end = std::min(end == std::string_view::npos ? bytes.size() : end + 2,
                                    bare == std::string_view::npos ? bytes.size() : bare + 1);
    if (end == std::string_view::npos && bare == std::string_view::npos) {
        view.verdict = bytes.size() >= max_size ? HttpVerdict::too_large : HttpVerdict::incomplete;
        return view;
    }
    if (head_end > max_size) {
        view.verdict = HttpVerdict::too_large;
        return view;
    }
    std::string_view head = bytes.substr(0, head_end);
    const auto line_end = head.find('\n');
    const RequestLine request = parse_request_line(strip_cr(head.substr(0, line_end)));
    head.remove_prefix(line_end + 1);
    while (!head.empty()) {
        const auto next = head.find('\n');
        const std::string_view line = strip_cr(head.substr(0, next));
        if (!line.empty() && !valid_header(line)) {
            view.verdict = HttpVerdict::bad_request;
            return view;
        }
        if (next == std::string_view::npos) break;
        head.remove_prefix(next + 1);
    }
    if (request.method != "GET" && request.method != "HEAD") view.verdict = HttpVerdict::method_not_allowed;
    else if (request.path != "/metrics") view.verdict = HttpVerdict::not_found;
    else view.verdict = HttpVerdict::metrics;
    view.head = request.method == "HEAD";
    return view;
}

std::string http_response(HttpVerdict verdict, bool head, std::string_view metrics_body,
                          std::string_view content_type) {
    std::string body;
    std::string type = "text/plain; charset=utf-8";
    if (verdict == HttpVerdict::metrics) {
        body = metrics_body;
        type = content_type;
    } else {
        body = std::string(status_line(verdict)) + "\n";
    }
    std::string out = "HTTP/1.1 " + std::string(status_line(verdict)) + "\r\n";
    out += "Content-Type: " + type + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (verdict == HttpVerdict::method_not_allowed) out += "Allow: GET, HEAD\r\n";
    out += "Connection: close\r\n\r\n";
    if (!head) out += body;
    return out;
}

} // namespace forkd
