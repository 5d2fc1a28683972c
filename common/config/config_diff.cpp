// SPDX-License-Identifier: MIT
#include "common/config/config_diff.hpp"

#include "common/config/config.hpp"
#include "common/config/config_file.hpp"
#include "common/config/config_options.hpp"

namespace forkd {
namespace {

std::string rendered(const OptionSpec& spec, const Config& config) {
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
    for (const OptionSpec& spec : option_specs()) {
        if (!spec.value.render) continue;  // -t, -V, -h
        std::string was = rendered(spec, before), now = rendered(spec, after);
        if (was != now) changes.push_back({std::string(spec.name), std::move(was), std::move(now)});
    }
    return changes;
}

std::string describe_change(const ConfigChange& change) {
    return change.option + " " + change.before + " -> " + change.after;
}

} // namespace forkd
