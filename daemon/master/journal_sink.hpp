// SPDX-License-Identifier: MIT
#pragma once
// The journal writer the log uses when forkd's stderr is the journal's stream
// (log::set_structured_sink): each line through sd_journal_sendv, its fields from journal_fields.
#include "common/log.hpp"

namespace forkd {

bool send_to_journal(log::Level level, std::string_view event, std::span<const log::Field> fields,
                     std::string_view line);

} // namespace forkd
