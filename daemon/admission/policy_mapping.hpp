// SPDX-License-Identifier: MIT
#pragma once
// The admission policy block the master sent (a sealed memfd, policy_blob.hpp), mapped read-only
// by whoever accepts for it: forkd-spawner and event mode's forkd-worker. Not mapped into a
// forked handler (MADV_DONTFORK: thousands of rules must not cost a fork its page tables).
#include "daemon/admission/admission.hpp"
#include "daemon/admission/policy_blob.hpp"

#include <cstddef>

namespace forkd {

class PolicyMapping {
public:
    PolicyMapping() = default;
    PolicyMapping(const PolicyMapping&) = delete;
    PolicyMapping& operator=(const PolicyMapping&) = delete;
    ~PolicyMapping() { reset(); }

    // False (and the old one kept) if the fd cannot be mapped or its block is malformed.
    bool map(int fd);
    const PolicyView& view() const { return view_; }

    // busy-message to a client refused for `why`: what fits in the socket now, never waiting
    // (the connection closes next). Nothing for a deny rule or when no message is configured.
    void send_busy_message(int fd, Refusal why) const;

private:
    void reset();
    void* address_ = nullptr;
    std::size_t length_ = 0;
    PolicyView view_;
};

} // namespace forkd
