// SPDX-License-Identifier: MIT
#include "daemon/master/admission_policy.hpp"

#include "daemon/admission/policy_blob.hpp"
#include "daemon/core/admitted_claim.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

namespace forkd {
namespace {

// A sealed memfd holding `bytes`: the spawner can map it but nobody can change it.
UniqueFd sealed_memfd(const std::vector<std::byte>& bytes) {
    UniqueFd fd(memfd_create("forkd-admission", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) throw std::system_error(errno, std::generic_category(), "admission policy: memfd_create");
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::system_error(errno, std::generic_category(), "admission policy: write");
        done += std::size_t(n);
    }
    if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
        throw std::system_error(errno, std::generic_category(), "admission policy: seal");
    return fd;
}

} // namespace

AdmissionPolicy::AdmissionPolicy(Scoreboard& board)
    : board_(board), gate_(board.source_rate_storage(), board.source_rate_table_rate()) {}

void AdmissionPolicy::update(const Config& config) {
    set_shared_limits(board_, gate_, config.limits);
    if (block_ && config.access_rules == rules_.rules() && config.busy_message == busy_message_) return;
    AccessRules rules(config.access_rules);
    UniqueFd block = sealed_memfd(encode_policy(rules.table(), config.busy_message));
    rules_ = std::move(rules);
    busy_message_ = config.busy_message;
    block_ = std::move(block);
    ++generation_;
    gate_.set_rules(rules_.table());
}

std::string AdmissionPolicy::describe_rule(std::size_t rule) const {
    if (rule < rules_.size()) return rules_.rules()[rule].to_string();
    return "no allow rule matches";
}

} // namespace forkd
