// SPDX-License-Identifier: MIT
#pragma once
// From one request line and its peer to one reply line: authorisation (the privileged column
// of common/control/control_commands.hpp), the call into the daemon (a row per command, below) and
// the audit log. No sockets here, so it is tested with a fake target.
#include "common/base/error.hpp"
#include "common/control/control_commands.hpp"
#include "daemon/control/control_target.hpp"

#include <nlohmann/json.hpp>

#include <sys/types.h>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace forkd {

// The daemon's side of one control command: the row of common/control/control_commands.cpp
// with the same Command says who may call it and what arguments it has.
struct CommandHandler {
    control::Command command;
    // The result to send back (null for actions), or the error whose message() the reply carries.
    // Null for a command whose reply comes later (call_later).
    Result<nlohmann::json> (*call)(ControlTarget& target, const control::Request& request);
    // The request's arguments as the audit line shows them ("max-connections=10"); null: none.
    std::string (*audit_detail)(const control::Request& request) = nullptr;
    // The reply goes out first, then the server calls target.stop() (ControlOutcome::stop).
    bool stop_after_reply = false;
    // Instead of call: the target answers through the DeferredReply, now or later.
    void (*call_later)(ControlTarget& target, const control::Request& request, DeferredReply reply) = nullptr;
};

std::span<const CommandHandler> command_handlers();
// Null for a command without a handler (a failed reply, "unhandled command").
const CommandHandler* command_handler(control::Command command);

// Who is on the other end of a control connection (SO_PEERCRED, SO_PEERGROUPS).
struct PeerCredentials {
    pid_t pid = 0;
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    std::vector<gid_t> groups;  // supplementary groups
};

// The contract's rule for state-changing commands: uid 0, the daemon's uid, or membership
// (primary or supplementary) of the control group. status and list are open to every peer.
bool may_change_state(const PeerCredentials& peer, uid_t daemon_uid, std::optional<gid_t> control_gid);

// Which socket a request came through: the control socket (0660, every command, checked per
// peer) or the read-only one (0666, status and list only, for monitoring).
enum class ControlDoor { full, read_only };

struct ControlOutcome {
    std::string reply;  // one line, "\n" included
    bool stop = false;  // an accepted stop: the caller sends the reply, then calls target.stop()
    bool deferred = false;  // no reply yet: it comes through the caller's SendLater
};

// Where a deferred reply goes once the target gives it (one line, "\n" included).
using SendLater = std::function<void(std::string reply)>;

// Parses, authorises and carries out one request. Never throws: a bad request, a refusal and
// an exception from the target all become error replies. Logs
//   event=control-audit uid=U pid=P command=C result=ok|denied|failed
// for every denied request and every state-changing one.
// Through the read-only door a privileged command is denied whoever asks. A command whose
// target answers later (CommandHandler::call_later) is audited when it does, and its reply
// handed to send_later (once); if the target answered at once, the outcome carries it as usual.
ControlOutcome dispatch_control_request(ControlTarget& target, const PeerCredentials& peer,
                                        std::string_view line, ControlDoor door = ControlDoor::full,
                                        SendLater send_later = {});

} // namespace forkd
