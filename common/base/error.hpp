// SPDX-License-Identifier: MIT
#pragma once
// forkd's one runtime error shape: an errno (0 when the failure is not a system call's) and the
// context it happened in, travelling together (systemd's log_error_errno idiom). Callers test
// `code`, never the text. Result<T> is a value or an Error; Status is Result without a value.
#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace forkd {

// strerror_r's text for errnum ("Permission denied"), thread-safe, never throws on a bad number.
std::string errno_text(int errnum);

// 'text' for an error message, cut after a few dozen bytes so that a runaway value (a 5 MB
// config line) is not echoed whole: "'abc...' (5242880 bytes)".
std::string quoted(std::string_view text);

struct Error {
    int code = 0;          // errno, or 0: a refusal or a bad value, explained by context alone
    std::string context;   // "bind 127.0.0.1:80", "option 'max-connections': 'x' is not a number"

    // "CONTEXT: ERRNO TEXT", or CONTEXT alone when code is 0.
    std::string message() const {
        return code == 0 ? context : context + ": " + errno_text(code);
    }
};

// The Error of a failed system call: errno as it is now.
inline Error system_error(std::string context) { return Error{errno, std::move(context)}; }
// An Error that is not a system call's.
inline Error failure(std::string context) { return Error{0, std::move(context)}; }

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

class [[nodiscard]] Status {
public:
    Status() = default;  // success
    Status(Error error) : error_(std::move(error)), failed_(true) {}
    static Status success() { return {}; }

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return error_; }

private:
    Error error_;
    bool failed_ = false;
};

} // namespace forkd
