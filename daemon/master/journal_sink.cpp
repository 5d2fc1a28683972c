// SPDX-License-Identifier: MIT
#include "daemon/master/journal_sink.hpp"

#include "daemon/master/journal_fields.hpp"

#include <systemd/sd-journal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <vector>

namespace forkd {

namespace {

// sd_journal_sendv reports success when journald's socket is absent ("fail silently"): without
// it, the line goes to stderr with its <N> prefix instead of nowhere. Looked up once.
bool journal_socket_present() {
    static const bool present = ::access("/run/systemd/journal/socket", F_OK) == 0;
    return present;
}

} // namespace

bool send_to_journal(log::Level level, std::string_view event, std::span<const log::Field> fields,
                     std::string_view line) {
    if (!journal_socket_present()) return false;
    const std::vector<std::string> entries = journal_fields(level, event, fields, line);
    std::vector<iovec> vector;
    vector.reserve(entries.size());
    for (const std::string& entry : entries)
        vector.push_back({const_cast<char*>(entry.data()), entry.size()});
    return sd_journal_sendv(vector.data(), static_cast<int>(vector.size())) >= 0;
}

} // namespace forkd
