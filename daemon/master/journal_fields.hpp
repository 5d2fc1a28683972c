// SPDX-License-Identifier: MIT
#pragma once
// A log line as journal fields (interface.md, "Observability"): MESSAGE (the key=value line),
// PRIORITY, SYSLOG_IDENTIFIER, FORKD_EVENT and, where the line has them, FORKD_CONN_ID (id),
// REMOTE_ADDR and REMOTE_PORT (peer), FORKD_DURATION_USEC (duration_ms), FORKD_EXIT (exit),
// FORKD_BYTES_IN, FORKD_BYTES_OUT and FORKD_REFUSE_REASON (reason of a refused line). Pure, so
// that the mapping is tested without a journal.
#include "common/log.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace forkd {

// "FIELD=value" strings, in a stable order.
std::vector<std::string> journal_fields(log::Level level, std::string_view event,
                                        std::span<const log::Field> fields, std::string_view line);

} // namespace forkd
