// SPDX-License-Identifier: MIT
#include "daemon/control/control_admission.hpp"

#include <algorithm>

namespace forkd {

ControlAdmission::ControlAdmission(ControlAdmissionLimits limits, uid_t daemon_uid)
    : limits_(limits), daemon_uid_(daemon_uid) {}

std::size_t ControlAdmission::active_of(uid_t uid) const {
    auto it = per_uid_.find(uid);
    return it == per_uid_.end() ? 0 : it->second;
}

// A reserve larger than a quarter of the cap would starve everyone else.
std::size_t ControlAdmission::limit_for_others() const {
    return limits_.max_clients - std::min(limits_.admin_reserve, limits_.max_clients / 4);
}

ControlDecision ControlAdmission::refuse(Episode& episode, ControlVerdict verdict, uid_t uid) {
    const bool starts = !episode.open;
    episode.open = true;
    ++episode.refused;
    episode.last_uid = uid;
    return {verdict, starts};
}

ControlDecision ControlAdmission::admit(uid_t uid) {
    const bool admin = is_admin(uid);
    if (total_ >= limits_.max_clients || (!admin && others_ >= limit_for_others()))
        return refuse(total_episode_, ControlVerdict::too_many_clients, uid);
    if (!admin && active_of(uid) >= limits_.per_uid)
        return refuse(uid_episodes_[uid], ControlVerdict::too_many_from_uid, uid);
    ++total_;
    if (!admin) ++others_;
    ++per_uid_[uid];
    return {};
}

std::optional<RefusalEpisode> ControlAdmission::close_if_room(Episode& episode, ControlVerdict verdict,
                                                              bool room) {
    if (!episode.open || !room) return std::nullopt;
    RefusalEpisode ended{verdict, episode.last_uid, episode.refused};
    episode = {};
    return ended;
}

std::optional<RefusalEpisode> ControlAdmission::release(uid_t uid) {
    auto it = per_uid_.find(uid);
    if (it == per_uid_.end()) return std::nullopt;
    --total_;
    if (!is_admin(uid)) --others_;
    if (--it->second == 0) per_uid_.erase(it);
    // The uid's own episode ends first: its flood is what the admin wants to hear about.
    if (auto found = uid_episodes_.find(uid); found != uid_episodes_.end()) {
        auto ended = close_if_room(found->second, ControlVerdict::too_many_from_uid, true);
        uid_episodes_.erase(found);
        if (ended) return ended;
    }
    return close_if_room(total_episode_, ControlVerdict::too_many_clients,
                         total_ < limits_.max_clients && others_ < limit_for_others());
}

} // namespace forkd
