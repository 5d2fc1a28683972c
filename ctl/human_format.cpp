// SPDX-License-Identifier: MIT
#include "ctl/human_format.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

namespace forkd::ctl {

namespace {

using nlohmann::json;

const json* field(const json& object, const char* key) {
    if (!object.is_object()) return nullptr;
    auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string text(const json* value) {
    if (!value || value->is_null()) return "-";
    if (value->is_string()) return value->get<std::string>();
    if (value->is_boolean()) return value->get<bool>() ? "yes" : "no";
    return value->dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string text(const json& object, const char* key) { return text(field(object, key)); }

// A limit where 0 means none: "256", "unlimited".
std::string limit(const json& object, const char* key, const char* zero) {
    const json* value = field(object, key);
    if (value && value->is_number() && value->get<double>() == 0) return zero;
    return text(value);
}

std::string seconds_limit(const json& object, const char* key) {
    const json* value = field(object, key);
    if (!value || !value->is_number()) return text(value);
    auto s = value->get<std::int64_t>();
    return s == 0 ? "none" : format_duration(s);
}

std::string counts(const json* object) {
    if (!object || !object->is_object() || object->empty()) return "-";
    std::string out;
    for (const auto& [name, value] : object->items()) {
        if (!out.empty()) out += ", ";
        // The keys as they are: the log's reason= and status --json spell them the same way.
        out += text(&value) + " " + name;
    }
    return out;
}

void line(std::string& out, std::string_view label, const std::string& value) {
    std::string padded(label);
    if (padded.size() < 10) padded.insert(0, 10 - padded.size(), ' ');
    out += padded + ": " + value + "\n";
}

std::string listeners(const json& status) {
    const json* listen = field(status, "listen");
    if (!listen || !listen->is_array() || listen->empty()) return "-";
    std::string out;
    for (const auto& address : *listen) {
        if (!out.empty()) out += "\n            ";
        out += text(&address);
    }
    return out;
}

std::string state_line(const json& status) {
    std::string state = text(status, "state");
    const json* accepting = field(status, "accepting");
    if (accepting && accepting->is_boolean())
        state += accepting->get<bool>() ? " (accepting)" : " (not accepting)";
    return state;
}

std::string active_line(const json& status) {
    const json empty = json::object();
    const json* limits = field(status, "limits");
    const json& l = limits ? *limits : empty;
    return text(status, "active") + " of " + limit(l, "max_connections", "unlimited") +
           " (per source: " + limit(l, "max_per_source", "unlimited") +
           ", overload: " + text(l, "overload") + ")";
}

std::string timeouts_line(const json& status) {
    const json empty = json::object();
    const json* limits = field(status, "limits");
    const json& l = limits ? *limits : empty;
    return "connection " + seconds_limit(l, "connection_timeout") + ", idle " + seconds_limit(l, "idle_timeout");
}

std::string cell_duration(const json& row, const char* key) {
    const json* value = field(row, key);
    if (!value || !value->is_number()) return text(value);
    return format_duration(value->get<std::int64_t>());
}

std::string cell_bytes(const json& row, const char* key) {
    const json* value = field(row, key);
    if (!value || !value->is_number_unsigned()) return text(value);
    return format_bytes(value->get<std::uint64_t>());
}

// "exec /usr/bin/prog arg (user nobody, group nogroup)", "echo".
std::string handler_line(const json& status) {
    std::string out = text(status, "handler");
    if (const json* exec = field(status, "exec"); exec && exec->is_array()) {
        for (const auto& word : *exec) {
            // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on " " + std::string&&.
            out += ' ';
            out += text(&word);
        }
    }
    std::string identity;
    if (const json* user = field(status, "user")) identity = "user " + text(user);
    if (const json* group = field(status, "group"))
        identity += (identity.empty() ? "group " : ", group ") + text(group);
    return identity.empty() ? out : out + " (" + identity + ")";
}

// "2 times at the limit, 1.5s in all": how often and how long accepting waited for room.
std::string waits_line(const json& waits) {
    const json* episodes = field(waits, "episodes");
    const json* waited_ms = field(waits, "waited_ms");
    if (!episodes || !episodes->is_number() || !waited_ms || !waited_ms->is_number()) return "-";
    const auto times = episodes->get<std::uint64_t>();
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1fs", double(waited_ms->get<std::uint64_t>()) / 1000);
    return std::to_string(times) + (times == 1 ? " time" : " times") + " at the limit, " + seconds +
           " in all";
}

} // namespace

std::string format_duration(std::int64_t s) {
    if (s < 0) s = 0;
    char buffer[64];
    if (s < 60) std::snprintf(buffer, sizeof buffer, "%llds", static_cast<long long>(s));
    else if (s < 3600) std::snprintf(buffer, sizeof buffer, "%lldmin %llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
    else if (s < 86400) std::snprintf(buffer, sizeof buffer, "%lldh %lldmin", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60));
    else std::snprintf(buffer, sizeof buffer, "%lldd %lldh", static_cast<long long>(s / 86400), static_cast<long long>(s % 86400 / 3600));
    return buffer;
}

std::string format_bytes(std::uint64_t bytes) {
    if (bytes < 1024) return std::to_string(bytes);
    constexpr std::array<char, 6> units = {'K', 'M', 'G', 'T', 'P', 'E'};
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    for (value /= 1024; value >= 1024 && unit + 1 < units.size(); value /= 1024) ++unit;
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f%c", value, units[unit]);
    return buffer;
}

std::string format_status(const json& status) {
    std::string title = "forkd";
    if (const json* instance = field(status, "instance")) title += " (instance " + text(instance) + ")";
    std::string out = title + " - " + text(status, "state") + "\n";
    line(out, "State", state_line(status));
    line(out, "PID", text(status, "pid"));
    const json* uptime = field(status, "uptime_s");
    line(out, "Uptime", uptime && uptime->is_number() ? format_duration(uptime->get<std::int64_t>()) : "-");
    line(out, "Version", text(status, "version"));
    line(out, "Handler", handler_line(status));
    if (const json* config = field(status, "config_file")) line(out, "Config", text(config));
    line(out, "Listen", listeners(status));
    line(out, "Active", active_line(status));
    line(out, "Timeouts", timeouts_line(status));
    if (const json* refused = field(status, "refused")) line(out, "Refused", counts(refused));
    line(out, "Totals", counts(field(status, "totals")));
    if (const json* waits = field(status, "limit_waits")) line(out, "Waited", waits_line(*waits));
    // What an HAProxy agent-check would be told now (agent-listen).
    if (const json* agent = field(status, "agent")) line(out, "Agent", text(agent));
    return out;
}

std::string format_reload(const json& result) {
    const json* changes = field(result, "changes");
    if (!changes || !changes->is_array() || changes->empty())
        return "configuration reloaded: nothing changed\n";
    std::string out = "configuration reloaded:\n";
    for (const auto& change : *changes)
        out += "  " + text(change, "option") + " " + text(change, "from") + " -> " + text(change, "to") + "\n";
    if (const json* reverted = field(result, "reverted_set"); reverted && reverted->is_array())
        for (const auto& option : *reverted)
            out += "note: " + text(&option) + " had been set with forkctl set; the file's value replaces it\n";
    return out;
}

std::string format_upgrade(const json& result) {
    return "upgraded in place: forkd " + text(result, "from_version") + " -> " + text(result, "to_version") +
           " (pid " + text(result, "pid") + ", generation " + text(result, "generation") + "), " +
           text(result, "connections") + " connections carried over\n";
}

std::string format_list(const json& connections) {
    if (!connections.is_array() || connections.empty()) return "no active connections\n";
    static constexpr std::array<const char*, 7> headers = {"ID", "PID", "PEER", "AGE", "STATE", "IN", "OUT"};
    std::vector<std::array<std::string, 7>> rows;
    rows.push_back({});
    std::copy(headers.begin(), headers.end(), rows.back().begin());
    for (const auto& c : connections)
        rows.push_back({text(c, "id"), text(c, "pid"), text(c, "peer"), cell_duration(c, "age_s"),
                        text(c, "state"), cell_bytes(c, "bytes_in"), cell_bytes(c, "bytes_out")});
    std::array<std::size_t, 7> width{};
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    std::string out;
    for (const auto& row : rows) {
        std::string text_line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            bool numeric = i == 0 || i == 1 || i >= 5;  // right-aligned columns
            std::string cell = row[i];
            std::string pad(width[i] - cell.size(), ' ');
            text_line += numeric ? pad + cell : cell + (i + 1 < row.size() ? pad : "");
            if (i + 1 < row.size()) text_line += "  ";
        }
        out += text_line + "\n";
    }
    return out;
}

} // namespace forkd::ctl
