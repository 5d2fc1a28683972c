// SPDX-License-Identifier: MIT
#pragma once
// The master's side of admission: the gate for the connections it accepts itself (exec'd
// handlers) and the policy block it hands forkd-spawner (allow/deny tables and busy-message in
// a sealed memfd, see daemon/admission/policy_blob.hpp), rebuilt when the configuration's rules
// or message change (start, reload, forkctl set busy-message) and only then. The gate's
// per-source rate buckets are the scoreboard's, shared with forkd-spawner and the workers.
#include "common/base/unique_fd.hpp"
#include "common/config/config.hpp"
#include "daemon/admission/access_rules.hpp"
#include "daemon/admission/admission_gate.hpp"
#include "daemon/core/scoreboard.hpp"

#include <cstdint>
#include <string>

namespace forkd {

class AdmissionPolicy {
public:
    explicit AdmissionPolicy(Scoreboard& board);
    AdmissionPolicy(const AdmissionPolicy&) = delete;
    AdmissionPolicy& operator=(const AdmissionPolicy&) = delete;

    // Applies the configuration's limits at once and, if its rules or busy-message changed,
    // rebuilds the tables and the block. Throws std::system_error if the memfd cannot be made.
    void update(const Config& config);

    AdmissionGate& gate() { return gate_; }
    const AdmissionGate& gate() const { return gate_; }
    const AccessRules& rules() const { return rules_; }
    const std::string& busy_message() const { return busy_message_; }
    // The block for forkd-spawner, and which one it is (changes with every rebuild).
    int block_fd() const { return block_.get(); }
    std::uint64_t generation() const { return generation_; }

    // "deny 10.0.0.0/8" for a rule index, "no allow rule matches" for none.
    std::string describe_rule(std::size_t rule) const;

private:
    Scoreboard& board_;
    AdmissionGate gate_;
    AccessRules rules_;
    std::string busy_message_;
    UniqueFd block_;
    std::uint64_t generation_ = 0;
};

} // namespace forkd
