// SPDX-License-Identifier: MIT
#include "common/config/config_diff.hpp"

#include "common/config/config.hpp"
#include "common/config/config_file.hpp"
#include "common/config/config_options.hpp"

#include <set>

namespace forkd {
namespace {

std::string rendered(const OptionSpec& spec, const Config& config) {
    if (auto in_order = spec.value.render_in_order) {
        // allow/deny: the whole list in order, so that a change of order is a change too.
        std::string text;
        for (const auto& [name, value] : in_order(config))
            text += (text.empty() ? "" : ", ") + name + " " + value;
        return text.empty() ? "(not set)" : text;
    }
    const auto values = spec.value.render(config);
    if (values.empty()) return "(not set)";
    std::string text;
    for (const auto& value : values) {
        if (!text.empty()) text += ", ";
        text += quote_config_value(value);
    }
    return text;
}

} // namespace

std::vector<ConfigChange> config_changes(const Config& before, const Config& after) {
    std::vector<ConfigChange> changes;
    std::set<decltype(ValueRule::render_in_order)> compared;
    for (const OptionSpec& spec : option_specs()) {
        if (!spec.value.render) continue;  // -t, -V, -h
        if (spec.value.render_in_order && !compared.insert(spec.value.render_in_order).second) continue;
        std::string was = rendered(spec, before), now = rendered(spec, after);
        if (was != now) changes.push_back({std::string(spec.name), std::move(was), std::move(now)});
    }
    return changes;
}

std::string describe_change(const ConfigChange& change) {
    return change.option + " " + change.before + " -> " + change.after;
}

} // namespace forkd
