// SPDX-License-Identifier: MIT
#pragma once
// The built-in services, run in a forked child on the connection: echo (RFC 862), discard
// (RFC 863), daytime (RFC 867), chargen (RFC 864). Each honours idle-timeout itself (socket timeouts,
// judged by TCP_INFO);
// connection-timeout is the master's job.
#include "common/base/handler_kind.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace forkd {

class Scoreboard;

struct BuiltinContext {
    int fd = -1;                        // the connection (read and written)
    Scoreboard* scoreboard = nullptr;   // traffic accounting into the connection's slot
    std::uint32_t slot = 0;
    unsigned idle_timeout_s = 0;        // 0 = none
};

// A built-in handler's exit codes. The master reads them: one that idle-timeout ended is
// logged and counted as ended by idle, like an exec'd handler the master ends for idling.
inline constexpr int builtin_exit_ok = 0;
inline constexpr int builtin_exit_io_error = 1;
inline constexpr int builtin_exit_idle = 2;

// Runs the service until the client goes away or idles out. Returns the child's exit code.
int run_builtin_handler(HandlerKind kind, const BuiltinContext& context);

// RFC 864's pattern: line n (from 0) of 72 printable characters plus CRLF.
std::string chargen_line(std::uint64_t n);
// The same line into `out` (chargen_line_size bytes), allocating nothing (event workers).
inline constexpr std::size_t chargen_line_size = 74;
void chargen_line_into(std::uint64_t n, char* out);
// RFC 867 leaves the format free; ours: "Sunday, November 22, 2026 05:30:00-UTC\r\n".
std::string daytime_text(std::int64_t unix_time);

} // namespace forkd
