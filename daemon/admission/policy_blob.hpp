// SPDX-License-Identifier: MIT
#pragma once
// The admission policy that does not fit a fixed-size record, as one flat block of bytes: the
// access rules' range tables and the busy message. The master writes it into a sealed memfd and
// hands it to forkd-spawner (spawner_protocol.hpp, RequestKind::policy), which maps it read-only
// and matches against it in place: thousands of rules cost it no copy and no allocation.
//   header (32 bytes) | v6 starts (16 B each) | v4 starts | v4 winners | v6 winners (4 B each)
//   | one action byte per rule | the busy message
#include "daemon/admission/access_rules.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace forkd {

struct PolicyView {
    AccessTable rules;
    std::string_view busy_message;
};

std::vector<std::byte> encode_policy(const AccessTable& rules, std::string_view busy_message);
// nullopt for anything that is not a whole, well-formed block (wrong magic or version, sizes
// that do not add up, a misaligned buffer, an unknown action). The view points into `bytes`.
std::optional<PolicyView> decode_policy(std::span<const std::byte> bytes);

} // namespace forkd
