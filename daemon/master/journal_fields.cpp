// SPDX-License-Identifier: MIT
#include "daemon/master/journal_fields.hpp"

#include <array>
#include <cstdlib>

namespace forkd {
namespace {

struct Rename {
    std::string_view key;    // in the key=value line
    std::string_view field;  // in the journal
};

// The fields whose values are carried over as they are.
constexpr auto renames = std::to_array<Rename>({
    {"id", "FORKD_CONN_ID"},
    {"exit", "FORKD_EXIT"},
    {"bytes_in", "FORKD_BYTES_IN"},
    {"bytes_out", "FORKD_BYTES_OUT"},
});

// "127.0.0.1:5555", "[::1]:5555": host and port; "unix:/path" (or a peer's credentials): the
// whole text as the address, no port.
void add_peer(std::vector<std::string>& out, std::string_view peer) {
    const auto colon = peer.rfind(':');
    const bool bracketed = peer.starts_with('[');
    const bool inet = colon != std::string_view::npos && !peer.starts_with("unix") &&
                      (bracketed || peer.find(':') == colon);
    if (!inet) {
        out.push_back("REMOTE_ADDR=" + std::string(peer));
        return;
    }
    std::string_view host = peer.substr(0, colon);
    if (bracketed && host.size() >= 2 && host.back() == ']') host = host.substr(1, host.size() - 2);
    out.push_back("REMOTE_ADDR=" + std::string(host));
    out.push_back("REMOTE_PORT=" + std::string(peer.substr(colon + 1)));
}

} // namespace

std::vector<std::string> journal_fields(log::Level level, std::string_view event,
                                        std::span<const log::Field> fields, std::string_view line) {
    std::vector<std::string> out;
    out.push_back("MESSAGE=" + std::string(line));
    out.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
    out.push_back("SYSLOG_IDENTIFIER=forkd");
    out.push_back("FORKD_EVENT=" + std::string(event));
    for (const log::Field& field : fields) {
        for (const Rename& rename : renames)
            if (field.key == rename.key) out.push_back(std::string(rename.field) + "=" + field.value);
        if (field.key == "peer") add_peer(out, field.value);
        if (field.key == "duration_ms")
            out.push_back("FORKD_DURATION_USEC=" + std::to_string(std::strtoull(field.value.c_str(), nullptr, 10) * 1000));
        if (field.key == "reason" && event.starts_with("refused"))
            out.push_back("FORKD_REFUSE_REASON=" + field.value);
    }
    return out;
}

} // namespace forkd
