// SPDX-License-Identifier: MIT
#pragma once
// What the control server asks of the daemon. The manager implements it; the control server
// (daemon/control/control_server.cpp) only speaks the protocol, checks credentials and calls these.
#include "common/base/error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace forkd {

// The reply to a command whose outcome comes later (upgrade waits for the new binary's check):
// the target calls it once, from the loop, or at once if it knows the answer already. The
// client may have gone meanwhile; then it does nothing.
using DeferredReply = std::function<void(Result<nlohmann::json>)>;

class ControlTarget {
public:
    virtual ~ControlTarget() = default;
    // The objects of the interface contract: status (at least the documented fields) and list.
    virtual nlohmann::json status() const = 0;
    virtual nlohmann::json list() const = 0;
    // The Prometheus text exposition (daemon/master/metrics_render.hpp).
    virtual std::string metrics() const = 0;
    // A failure's message() is the reply's error text.
    virtual Status set(std::string_view key, std::string_view value) = 0;
    virtual void drain() = 0;
    virtual void resume() = 0;
    // What changed, as control-protocol.md describes the reply; "FILE:LINE: ..." on failure.
    virtual Result<nlohmann::json> reload() = 0;
    virtual void stop() = 0;      // begins the graceful stop
    virtual Status kill(std::uint64_t id) = 0;
    // Live upgrade: checks the new binary without waiting for it and, if it can take over,
    // replies and re-executes it from the loop; the reply names the versions and the generation
    // to come. Refused with the reason otherwise. `reply` may be empty (SIGUSR2: the log says).
    virtual void upgrade(DeferredReply reply) {
        if (reply) reply(failure("live upgrade is not supported"));
    }
    // Whether what the requests so far changed has taken effect everywhere: forkd-spawner
    // confirms a new configuration asynchronously. While it has not, the reply to a request
    // that changed something is held (ControlServer::release_held), so that a client that has
    // its answer finds the change in force for the next connection.
    virtual bool changes_applied() const { return true; }
    // uid of the daemon and gid of the control group (nullopt: no group), for authorisation.
    virtual uid_t daemon_uid() const = 0;
    virtual std::optional<gid_t> control_gid() const = 0;
};

} // namespace forkd
