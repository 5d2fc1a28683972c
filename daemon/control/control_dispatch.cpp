// SPDX-License-Identifier: MIT
#include "daemon/control/control_dispatch.hpp"

#include "common/control/control_protocol.hpp"
#include "common/log.hpp"

#include <algorithm>
#include <array>
#include <exception>
#include <memory>
#include <optional>
#include <variant>

namespace forkd {

namespace {

using control::Command;
using control::ErrorCode;
using control::Request;
using nlohmann::json;

Result<json> done(Status status) {
    if (!status) return status.error();
    return json(nullptr);
}

// What the request asked for, as the audit line shows it ("max-connections=10", "id=7").
std::string set_detail(const Request& request) { return request.key + "=" + request.value; }
std::string kill_detail(const Request& request) { return "id=" + std::to_string(request.id); }

// One row per command of common/control/control_commands.cpp: what it asks of the daemon.
const auto handlers = std::to_array<CommandHandler>({
    {Command::status, [](ControlTarget& target, const Request&) -> Result<json> { return target.status(); }},
    {Command::list, [](ControlTarget& target, const Request&) -> Result<json> { return target.list(); }},
    {Command::set, [](ControlTarget& target, const Request& request) { return done(target.set(request.key, request.value)); },
     set_detail},
    {Command::drain, [](ControlTarget& target, const Request&) { target.drain(); return done({}); }},
    {Command::resume, [](ControlTarget& target, const Request&) { target.resume(); return done({}); }},
    {Command::reload, [](ControlTarget& target, const Request&) { return target.reload(); }},
    // The server calls target.stop() once the reply is sent.
    {Command::stop, [](ControlTarget&, const Request&) { return done({}); }, nullptr, true},
    {Command::kill, [](ControlTarget& target, const Request& request) { return done(target.kill(request.id)); },
     kill_detail},
    {Command::metrics, [](ControlTarget& target, const Request&) -> Result<json> { return json(target.metrics()); }},
    // The reply waits for the new binary's check; the execve follows from the loop.
    {Command::upgrade, nullptr, nullptr, false,
     [](ControlTarget& target, const Request&, DeferredReply reply) { target.upgrade(std::move(reply)); }},
});

void audit(const PeerCredentials& peer, const Request& request, std::string_view result,
           std::string_view error = {}) {
    log::Level level = result == "ok" ? log::Level::notice : log::Level::warning;
    const auto uid = static_cast<unsigned>(peer.uid);
    const auto pid = static_cast<int>(peer.pid);
    const std::string_view command = control::command_name(request.command);
    const CommandHandler* handler = command_handler(request.command);
    const std::string detail = handler && handler->audit_detail ? handler->audit_detail(request) : "";
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

// The reply line to an answer, audited if the command changes state.
std::string conclude(const PeerCredentials& peer, const Request& request, const Result<json>& answer) {
    const bool audited = control::changes_state(request.command);
    if (!answer) {
        const std::string error = answer.error().message();
        if (audited) audit(peer, request, "failed", error);
        return control::encode_error(ErrorCode::failed, error);
    }
    if (audited) audit(peer, request, "ok");
    return control::encode_ok(*answer);
}

ControlOutcome carry_out(ControlTarget& target, const PeerCredentials& peer, const Request& request,
                         const CommandHandler* handler) {
    Result<json> answer = failure("unhandled command");
    try {
        if (handler) answer = handler->call(target, request);
    } catch (const std::exception& e) {
        answer = failure(std::string("internal error: ") + e.what());
    }
    return {conclude(peer, request, answer), answer && handler->stop_after_reply};
}

// The reply of a call_later command: kept here while the call is still under way, sent through
// send_later after it, and never twice.
struct LaterReply {
    bool answered = false, call_returned = false;
    std::optional<std::string> at_once;
    SendLater send_later;
};

ControlOutcome carry_out_later(ControlTarget& target, const PeerCredentials& peer, const Request& request,
                               const CommandHandler& handler, SendLater send_later) {
    auto later = std::make_shared<LaterReply>();
    later->send_later = std::move(send_later);
    DeferredReply reply = [later, peer, request](Result<json> answer) {
        if (later->answered) return;
        later->answered = true;
        std::string line = conclude(peer, request, answer);
        if (!later->call_returned) {
            later->at_once = std::move(line);
            return;
        }
        if (later->send_later) later->send_later(std::move(line));
    };
    try {
        handler.call_later(target, request, reply);
    } catch (const std::exception& e) {
        reply(failure(std::string("internal error: ") + e.what()));
    }
    later->call_returned = true;
    if (later->at_once) return {*later->at_once};
    return {"", false, true};
}

} // namespace

std::span<const CommandHandler> command_handlers() { return handlers; }

const CommandHandler* command_handler(Command command) {
    auto it = std::find_if(handlers.begin(), handlers.end(),
                           [command](const CommandHandler& handler) { return handler.command == command; });
    return it == handlers.end() ? nullptr : &*it;
}

bool may_change_state(const PeerCredentials& peer, uid_t daemon_uid, std::optional<gid_t> control_gid) {
    if (peer.uid == 0 || peer.uid == daemon_uid) return true;
    if (!control_gid) return false;
    return peer.gid == *control_gid ||
           std::find(peer.groups.begin(), peer.groups.end(), *control_gid) != peer.groups.end();
}

ControlOutcome dispatch_control_request(ControlTarget& target, const PeerCredentials& peer,
                                        std::string_view line, ControlDoor door, SendLater send_later) {
    auto parsed = control::parse_request(line);
    if (auto* error = std::get_if<control::RequestError>(&parsed)) {
        log::info("control-bad-request", {{"uid", static_cast<unsigned>(peer.uid)},
                                          {"pid", static_cast<int>(peer.pid)},
                                          {"error", error->message}});
        return {control::encode_error(error->code, error->message)};
    }
    const Request& request = std::get<Request>(parsed);
    if (control::command_row(request.command).privileged && door == ControlDoor::read_only) {
        audit(peer, request, "denied", "read-only control socket");
        return {control::encode_error(ErrorCode::denied,
                                      "permission denied: the read-only control socket serves only status, list and metrics")};
    }
    if (control::command_row(request.command).privileged &&
        !may_change_state(peer, target.daemon_uid(), target.control_gid())) {
        audit(peer, request, "denied");
        return {control::encode_error(ErrorCode::denied, "permission denied")};
    }
    const CommandHandler* handler = command_handler(request.command);
    if (handler && handler->call_later)
        return carry_out_later(target, peer, request, *handler, std::move(send_later));
    return carry_out(target, peer, request, handler);
}

} // namespace forkd
