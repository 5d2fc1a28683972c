// SPDX-License-Identifier: MIT
// The metrics endpoint's HTTP parsing: what a request asks for, what is malformed, and when the
// bytes read so far are not yet a request.
#include "daemon/master/http_request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace forkd {
namespace {

constexpr std::size_t max_size = 8192;

HttpVerdict verdict(std::string_view bytes) { return parse_http_request(bytes, max_size).verdict; }

TEST(HttpRequest, GetMetricsIsAnsweredWithOrWithoutQueryAndHeaders) {
    EXPECT_EQ(verdict("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"), HttpVerdict::metrics);
    EXPECT_EQ(verdict("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), HttpVerdict::metrics);
    EXPECT_EQ(verdict("GET /metrics HTTP/1.1\n\n"), HttpVerdict::metrics) << "bare LF is tolerated";
    auto head = parse_http_request("HEAD /metrics HTTP/1.1\r\n\r\n", max_size);
    EXPECT_EQ(head.verdict, HttpVerdict::metrics);
    EXPECT_TRUE(head.head);
}

TEST(HttpRequest, OtherPathsAndMethods) {
    EXPECT_EQ(verdict("GET / HTTP/1.1\r\n\r\n"), HttpVerdict::not_found);
    EXPECT_EQ(verdict("GET /metricsx HTTP/1.1\r\n\r\n"), HttpVerdict::not_found);
    EXPECT_EQ(verdict("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), HttpVerdict::method_not_allowed);
    EXPECT_EQ(verdict("DELETE /x HTTP/1.1\r\n\r\n"), HttpVerdict::method_not_allowed);
}

TEST(HttpRequest, IncompleteUntilTheEmptyLine) {
    EXPECT_EQ(verdict(""), HttpVerdict::incomplete);
    EXPECT_EQ(verdict("GE"), HttpVerdict::incomplete);
    EXPECT_EQ(verdict("GET /metrics HTTP/1.1\r\n"), HttpVerdict::incomplete);
    EXPECT_EQ(verdict("GET /metrics HTTP/1.1\r\nHost: x\r\n"), HttpVerdict::incomplete);
}

TEST(HttpRequest, MalformedRequestLinesAreRefusedAtOnce) {
    EXPECT_EQ(verdict("\x16\x03\x01\x02"), HttpVerdict::bad_request) << "a TLS hello";
    EXPECT_EQ(verdict("GET /metrics\r\n"), HttpVerdict::bad_request) << "HTTP/0.9";
    EXPECT_EQ(verdict("GET metrics HTTP/1.1\r\n"), HttpVerdict::bad_request);
    EXPECT_EQ(verdict("GET /metrics HTTP/2.0\r\n"), HttpVerdict::bad_request);
    EXPECT_EQ(verdict("GET  /metrics HTTP/1.1\r\n"), HttpVerdict::bad_request);
    EXPECT_EQ(verdict("GET /met rics HTTP/1.1\r\n"), HttpVerdict::bad_request);
    EXPECT_EQ(verdict("G(T /metrics HTTP/1.1\r\n"), HttpVerdict::bad_request);
}

TEST(HttpRequest, MalformedHeadersAreBadRequests) {
    EXPECT_EQ(verdict("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"), HttpVerdict::bad_request);
    EXPECT_EQ(verdict("GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n"), HttpVerdict::bad_request);
    EXPECT_EQ(verdict("GET /metrics HTTP/1.1\r\n: x\r\n\r\n"), HttpVerdict::bad_request);
}

TEST(HttpRequest, HugeHeadersAreTooLarge) {
    std::string huge = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(max_size, 'a');
    EXPECT_EQ(verdict(huge), HttpVerdict::too_large);
    EXPECT_EQ(verdict(huge + "\r\n\r\n"), HttpVerdict::too_large);
    std::string fits = "GET /metrics HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n";
    EXPECT_EQ(parse_http_request(fits, fits.size()).verdict, HttpVerdict::metrics);
}

TEST(HttpRequest, OnlyTheFirstOfPipelinedRequestsCounts) {
    EXPECT_EQ(verdict("GET /metrics HTTP/1.1\r\n\r\nGARBAGE\x01\x02 /x\r\n\r\n"), HttpVerdict::metrics);
}

TEST(HttpRequest, ResponsesSayWhatAndClose) {
    const std::string ok = http_response(HttpVerdict::metrics, false, "a 1\n", "text/plain; version=0.0.4");
    EXPECT_EQ(ok, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 4\r\n"
                  "Connection: close\r\n\r\na 1\n");
    const std::string head = http_response(HttpVerdict::metrics, true, "a 1\n", "t");
    EXPECT_TRUE(head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
    EXPECT_TRUE(http_response(HttpVerdict::not_found, false, "", "t").starts_with("HTTP/1.1 404 Not Found\r\n"));
    const std::string not_allowed = http_response(HttpVerdict::method_not_allowed, false, "", "t");
    EXPECT_TRUE(not_allowed.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    EXPECT_NE(not_allowed.find("Allow: GET, HEAD\r\n"), std::string::npos);
    EXPECT_TRUE(http_response(HttpVerdict::bad_request, false, "", "t").starts_with("HTTP/1.1 400 "));
    EXPECT_TRUE(http_response(HttpVerdict::too_large, false, "", "t").starts_with("HTTP/1.1 431 "));
}

} // namespace
} // namespace forkd
