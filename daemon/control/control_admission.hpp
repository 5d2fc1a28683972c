// SPDX-License-Identifier: MIT
#pragma once
// Who may open one more control connection: pure policy, no sockets. At most max_clients at once
// (the hard cap); every uid but root and the daemon's at most per_uid of them, and all such
// uids together at most max_clients less a reserve, so that one local user (or a few) flooding
// the socket cannot crowd out the admin. Refusals come in episodes, so that the log says once
// when a flood starts being refused and once, with the count, when it ends.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

namespace forkd {

struct ControlAdmissionLimits {
    std::size_t max_clients = 32;
    std::size_t per_uid = 8;
    std::size_t admin_reserve = 4;  // kept for root and the daemon's uid (at most max_clients / 4)
};

enum class ControlVerdict { admitted, too_many_clients, too_many_from_uid };

struct ControlDecision {
    ControlVerdict verdict = ControlVerdict::admitted;
    bool starts_episode = false;  // the first refusal of this kind (for this uid): log it
};

// A refusal episode that is over: room was made again after `refused` refusals.
struct RefusalEpisode {
    ControlVerdict verdict;
    uid_t uid;  // too_many_from_uid: whose; too_many_clients: the last refused
    std::uint64_t refused;
};

class ControlAdmission {
public:
    ControlAdmission(ControlAdmissionLimits limits, uid_t daemon_uid);

    // Records an admitted client of UID, or says why not.
    ControlDecision admit(uid_t uid);
    // A client of UID went away; the refusal episode this ends, if any.
    std::optional<RefusalEpisode> release(uid_t uid);

    std::size_t active() const { return total_; }
    std::size_t active_of(uid_t uid) const;
    std::size_t limit_for_others() const;
    const ControlAdmissionLimits& limits() const { return limits_; }

private:
    struct Episode {
        bool open = false;
        std::uint64_t refused = 0;
        uid_t last_uid = 0;
    };
    bool is_admin(uid_t uid) const { return uid == 0 || uid == daemon_uid_; }
    ControlDecision refuse(Episode& episode, ControlVerdict verdict, uid_t uid);
    std::optional<RefusalEpisode> close_if_room(Episode& episode, ControlVerdict verdict, bool room);

    ControlAdmissionLimits limits_;
    uid_t daemon_uid_;
    std::size_t total_ = 0;
    std::size_t others_ = 0;              // clients of uids that are not admins
    std::map<uid_t, std::size_t> per_uid_;
    std::map<uid_t, Episode> uid_episodes_;
    Episode total_episode_;
};

} // namespace forkd
