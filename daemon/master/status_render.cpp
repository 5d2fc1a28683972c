// SPDX-License-Identifier: MIT
#include "daemon/master/status_render.hpp"
#include "common/version.hpp"

#include "common/config/config_values.hpp"

#include <algorithm>

namespace forkd {
namespace {

std::string_view slot_state_name(SlotState state) {
    switch (state) {
    case SlotState::running: return "running";
    case SlotState::closing: return "closing";
    case SlotState::free: break;
    }
    return "free";
}

nlohmann::json limits_json(const RuntimeLimits& limits) {
    return {{"max_connections", limits.max_connections},
            {"max_per_source", limits.max_per_source},
            {"overload", std::string(overload_name(limits.overload))},
            {"connection_timeout", limits.connection_timeout_s},
            {"idle_timeout", limits.idle_timeout_s},
            {"max_connection_rate", config_values::format_rate(limits.max_connection_rate)},
            {"max_per_source_rate", config_values::format_rate(limits.max_per_source_rate)},
            {"source_prefix", config_values::format_source_prefix(limits.source_prefix)}};
}

nlohmann::json totals_json(const ConnectionTotals& totals) {
    return {{"accepted", totals.accepted()},
            {"completed", totals.completed()},
            {"rejected", totals.rejected()},
            {"killed", totals.killed()},
            {"failed", totals.failed()}};
}

nlohmann::json refused_json(const ConnectionTotals& totals) {
    nlohmann::json refused = nlohmann::json::object();
    for (const RefusalCount& row : totals.refusals()) refused[std::string(row.reason)] = row.count;
    return refused;
}

nlohmann::json list_row(const SlotView& slot, std::int64_t now_ns) {
    // A built-in handler's pid is known once the spawner has forked it, microseconds later.
    const bool forked = slot.pid > 0;
    nlohmann::json row = {{"id", slot.id},
                          {"pid", forked ? nlohmann::json(slot.pid) : nlohmann::json(nullptr)},
                          {"peer", slot.peer},
                          {"age_s", (now_ns - slot.start_monotonic_ns) / 1000000000},
                          {"state", forked ? std::string(slot_state_name(slot.state)) : "starting"}};
    if (slot.bytes_known) {
        row["bytes_in"] = slot.bytes_in;
        row["bytes_out"] = slot.bytes_out;
    }
    return row;
}

nlohmann::json limit_waits_json(const StatusFacts::LimitWaits& waits) {
    nlohmann::json out = nlohmann::json::object();
    out["episodes"] = waits.episodes;
    out["waited_ms"] = waits.waited_ms;
    return out;
}

nlohmann::json exec_json(const std::vector<std::string>& argv) {
    if (argv.empty()) return nullptr;
    nlohmann::json words = nlohmann::json::array();
    for (const auto& word : argv) words.push_back(word);
    return words;
}

nlohmann::json workers_json(const std::vector<StatusFacts::Worker>& workers) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : workers) out.push_back({{"pid", w.pid}, {"active", w.active}, {"accepted", w.accepted}});
    return out;
}

nlohmann::json optional_text(const std::optional<std::string>& text) {
    return text ? nlohmann::json(*text) : nlohmann::json(nullptr);
}

} // namespace

nlohmann::json render_status(const StatusFacts& facts) {
    nlohmann::json listen = nlohmann::json::array();
    for (const auto& address : facts.listen) listen.push_back(address);
    nlohmann::json status = {
        {"pid", facts.pid},
        {"version", forkd_version()},
        {"generation", facts.generation},
        {"instance", optional_text(facts.instance)},
        {"state", std::string(facts.state)},
        {"accepting", facts.accepting},
        {"active", facts.active},
        {"uptime_s", facts.uptime_s},
        {"limits", limits_json(facts.limits)},
        {"listen", listen},
        {"handler", std::string(handler_name(facts.handler))},
        {"exec", exec_json(facts.exec_argv)},
        {"user", optional_text(facts.user)},
        {"group", optional_text(facts.group)},
        {"config_file", facts.config_file},
        {"capacity", facts.capacity},
        {"spawner_pid", facts.spawner_pid ? nlohmann::json(*facts.spawner_pid) : nlohmann::json(nullptr)},
        {"mode", std::string(mode_name(facts.mode))},
        {"workers", workers_json(facts.workers)},
        {"totals", totals_json(facts.totals)},
        {"refused", refused_json(facts.totals)},
        {"limit_waits", limit_waits_json(facts.limit_waits)},
        {"agent", facts.agent},
    };
    if (facts.upgrade_error) status["upgrade_error"] = *facts.upgrade_error;
    return status;
}

nlohmann::json render_list(std::span<const SlotView> slots, std::int64_t now_ns) {
    nlohmann::json rows = nlohmann::json::array();
    for (const SlotView& slot : slots) rows.push_back(list_row(slot, now_ns));
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a["id"] < b["id"]; });
    return rows;
}

} // namespace forkd
