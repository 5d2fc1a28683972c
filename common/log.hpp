// SPDX-License-Identifier: MIT
#pragma once
// One line per event, stable key=value shape:  event=NAME key=value key="value with spaces"
// Sinks: stderr (foreground; "<N>" priority prefixes when JOURNAL_STREAM is set), syslog, or a
// file of our own (each line led by an RFC 3339 timestamp, the pid and the level).
#include "common/base/error.hpp"

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace forkd::log {

// Numeric values are the syslog priorities.
enum class Level { err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

std::optional<Level> parse_level(std::string_view name);
std::string_view level_name(Level level);

struct Field {
    Field(std::string_view k, std::string_view v) : key(k), value(v) {}
    Field(std::string_view k, const std::string& v) : key(k), value(v) {}
    Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
    Field(std::string_view k, int v) : key(k), value(std::to_string(v)) {}
    Field(std::string_view k, unsigned v) : key(k), value(std::to_string(v)) {}
    Field(std::string_view k, long v) : key(k), value(std::to_string(v)) {}
    Field(std::string_view k, unsigned long v) : key(k), value(std::to_string(v)) {}
    // long long / unsigned long long also cover std::int64_t / std::uint64_t on 32-bit targets.
    Field(std::string_view k, long long v) : key(k), value(std::to_string(v)) {}
    Field(std::string_view k, unsigned long long v) : key(k), value(std::to_string(v)) {}
    Field(std::string_view k, double v);
    std::string_view key;
    std::string value;
};

enum class Sink { stderr_plain, stderr_journal, syslog, file };

// Whether stderr is the journal's stream: JOURNAL_STREAM names its device and inode, as
// systemd.exec(5) says to check (a variable inherited by a process whose stderr was redirected
// since, to a terminal say, does not count).
bool stderr_is_journal();
// Chooses stderr with "<N>" prefixes when stderr_is_journal(), without otherwise.
void use_stderr();
// A writer of structured entries for the journal (the master's, daemon/master/journal_sink.hpp:
// common links no libsystemd, so it is handed in). While stderr is the journal's stream and one is
// set, each line goes to it, with its event and fields, instead of as a "<N>" line; when it
// returns false (the journal refused) the "<N>" line is written after all.
using StructuredSink = bool (*)(Level level, std::string_view event, std::span<const Field> fields,
                                std::string_view line);
void set_structured_sink(StructuredSink sink);
void use_syslog(const char* ident);
// Appends to PATH (created 0640; O_NOFOLLOW, O_CLOEXEC), refused unless it is a regular file of
// ours with one link. On failure the sink is unchanged.
Status use_file(const std::string& path);
// logrotate moved the file away: opens PATH anew (no-op for other sinks). On failure the old file
// stays in use.
Status reopen_file();
// Whether a syslog daemon listens on /dev/log (FORKD_TEST_SYSLOG_PATH replaces the path, for
// the tests only: the host's /dev/log cannot be removed to test its absence).
bool syslog_reachable();
// "2026-12-01T09:40:00.123+01:00": now, local time, millisecond precision.
std::string rfc3339_now();
void set_level(Level level);
Level level();
bool enabled(Level level);

// Formats "event=NAME k=v ..." (values with spaces, quotes or '=' are double-quoted and escaped).
// The span forms are for lines whose fields vary (a field left out where its value is unknown).
std::string format(std::string_view event, std::span<const Field> fields);
void write(Level level, std::string_view event, std::span<const Field> fields);
inline std::string format(std::string_view event, std::initializer_list<Field> fields) {
    return format(event, std::span<const Field>(fields.begin(), fields.size()));
}
inline void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
    write(level, event, std::span<const Field>(fields.begin(), fields.size()));
}

inline void err(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::err, e, f); }
inline void warning(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::warning, e, f); }
inline void notice(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::notice, e, f); }
inline void info(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::info, e, f); }
inline void debug(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::debug, e, f); }

} // namespace forkd::log
