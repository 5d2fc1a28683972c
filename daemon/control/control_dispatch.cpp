// SPDX-License-Identifier: MIT
#include "daemon/control/control_dispatch.hpp"

#include "common/control/control_protocol.hpp"
#include "common/log.hpp"

#include <algorithm>
#include <exception>
#include <variant>

namespace forkd {

namespace {

using control::Command;
using control::ErrorCode;
using control::Request;
using nlohmann::json;

// What the request asked for, as the audit line shows it ("max-connections=10", "id=7").
std::string audit_detail(const Request& request) {
    if (request.command == Command::set) return request.key + "=" + request.value;
    if (request.command == Command::kill) return "id=" + std::to_string(request.id);
    return "";
}

void audit(const PeerCredentials& peer, const Request& request, std::string_view result,
           std::string_view error = {}) {
    log::Level level = result == "ok" ? log::Level::notice : log::Level::warning;
    const auto uid = static_cast<unsigned>(peer.uid);
    const auto pid = static_cast<int>(peer.pid);
    const std::string_view command = control::command_name(request.command);
    const std::string detail = audit_detail(request);
    if (detail.empty() && error.empty())
        log::write(level, "control-audit", {{"uid", uid}, {"pid", pid}, {"command", command}, {"result", result}});
    else if (error.empty())
        log::write(level, "control-audit", {{"uid", uid}, {"pid", pid}, {"command", command}, {"result", result},
                                            {"request", detail}});
    else if (detail.empty())
        log::write(level, "control-audit", {{"uid", uid}, {"pid", pid}, {"command", command}, {"result", result},
                                            {"error", error}});
    else
        log::write(level, "control-audit", {{"uid", uid}, {"pid", pid}, {"command", command}, {"result", result},
                                            {"request", detail}, {"error", error}});
}

// The target's answer: a result to send back, or an error message.
struct TargetAnswer {
    json result;
    std::optional<std::string> error;
};

TargetAnswer call_target(ControlTarget& target, const Request& request) {
    switch (request.command) {
    case Command::status: return {target.status(), std::nullopt};
    case Command::list: return {target.list(), std::nullopt};
    case Command::set: return {nullptr, target.set(request.key, request.value)};
    case Command::drain: target.drain(); return {nullptr, std::nullopt};
    case Command::resume: target.resume(); return {nullptr, std::nullopt};
    case Command::reload: return {nullptr, target.reload()};
    case Command::stop: return {nullptr, std::nullopt};  // the caller stops after replying
    case Command::kill: return {nullptr, target.kill(request.id)};
    }
    return {nullptr, "unhandled command"};
}

ControlOutcome carry_out(ControlTarget& target, const PeerCredentials& peer, const Request& request) {
    TargetAnswer answer;
    try {
        answer = call_target(target, request);
    } catch (const std::exception& e) {
        answer = {nullptr, std::string("internal error: ") + e.what()};
    }
    if (answer.error) {
        if (control::changes_state(request.command)) audit(peer, request, "failed", *answer.error);
        return {control::encode_error(ErrorCode::failed, *answer.error)};
    }
    if (control::changes_state(request.command)) audit(peer, request, "ok");
    return {control::encode_ok(answer.result), request.command == Command::stop};
}

} // namespace

bool may_change_state(const PeerCredentials& peer, uid_t daemon_uid, std::optional<gid_t> control_gid) {
    if (peer.uid == 0 || peer.uid == daemon_uid) return true;
    if (!control_gid) return false;
    return peer.gid == *control_gid ||
           std::find(peer.groups.begin(), peer.groups.end(), *control_gid) != peer.groups.end();
}

ControlOutcome dispatch_control_request(ControlTarget& target, const PeerCredentials& peer,
                                        std::string_view line) {
    auto parsed = control::parse_request(line);
    if (auto* error = std::get_if<control::RequestError>(&parsed)) {
        log::info("control-bad-request", {{"uid", static_cast<unsigned>(peer.uid)},
                                          {"pid", static_cast<int>(peer.pid)},
                                          {"error", error->message}});
        return {control::encode_error(error->code, error->message)};
    }
    const Request& request = std::get<Request>(parsed);
    if (control::changes_state(request.command) &&
        !may_change_state(peer, target.daemon_uid(), target.control_gid())) {
        audit(peer, request, "denied");
        return {control::encode_error(ErrorCode::denied, "permission denied")};
    }
    return carry_out(target, peer, request);
}

} // namespace forkd
