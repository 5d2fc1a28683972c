// SPDX-License-Identifier: MIT
// The option table: every row renders, what it renders parses back, and the contract's options
// (spec/interface.md, "forkd command line") and forkctl set's keys are rows of it.
#include "common/config/config.hpp"
#include "common/config/config_options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace forkd {
namespace {

bool is_action(std::string_view name) { return name == "check-config" || name == "version" || name == "help"; }

// The configuration of `forkd -c /dev/null --listen 127.0.0.1:0`: every default resolved.
Config loaded_defaults() {
    const char* argv[] = {"forkd", "-c", "/dev/null", "--listen", "127.0.0.1:0"};
    return load_config(parse_command_line(5, argv));
}

// A value's rendering applied to a fresh Config renders the same again.
void expect_round_trip(const OptionSpec& spec, const std::vector<std::string>& values) {
    Config fresh;
    for (const auto& value : values)
        EXPECT_NO_THROW(apply_option(fresh, spec.name, value)) << spec.name << " = " << value;
    EXPECT_EQ(spec.value.render(fresh), values) << spec.name;
}

TEST(OptionTable, EveryRowHasAParserAndEveryOptionRenders) {
    const Config config = loaded_defaults();
    const std::string text = render_config(config);
    for (const OptionSpec& spec : option_specs()) {
        ASSERT_NE(spec.value.apply, nullptr) << spec.name;
        EXPECT_FALSE(spec.help.empty()) << spec.name;
        if (is_action(spec.name)) {
            EXPECT_EQ(spec.value.render, nullptr) << spec.name;
            continue;
        }
        ASSERT_NE(spec.value.render, nullptr) << spec.name;
        const std::string name(spec.name);
        const auto values = spec.value.render(config);
        if (values.empty()) {
            EXPECT_NE(text.find("# " + name + " = (not set)\n"), std::string::npos) << name;
        } else {
            EXPECT_NE(text.find(name + " = "), std::string::npos) << name;
        }
    }
}

TEST(OptionTable, WhatEveryRowRendersParsesBack) {
    const Config config = loaded_defaults();
    for (const OptionSpec& spec : option_specs())
        if (spec.value.render) expect_round_trip(spec, spec.value.render(config));
}

TEST(OptionTable, EverySettableRowParsesItsOwnRenderingBack) {
    const std::vector<std::string> candidates = {"0", "1", "7", "3600", "65536", "10/60", "wait", "reject",
                                                 "debug", "notice", "err"};
    for (const OptionSpec& spec : option_specs()) {
        if (spec.set_position == 0) continue;
        int accepted = 0;
        for (const auto& candidate : candidates) {
            Config config;
            try {
                apply_option(config, spec.name, candidate);
            } catch (const std::invalid_argument&) {
                continue;
            }
            ++accepted;
            expect_round_trip(spec, spec.value.render(config));
        }
        EXPECT_GE(accepted, 2) << spec.name;
    }
}

TEST(OptionTable, UnknownNamesAreRefused) {
    Config config;
    EXPECT_EQ(find_option("colour"), nullptr);
    try {
        apply_option(config, "colour", "blue");
        ADD_FAILURE() << "colour accepted";
    } catch (const std::invalid_argument& error) {
        EXPECT_STREQ(error.what(), "unknown option 'colour'");
    }
}

struct ContractOption {
    std::string_view name;
    char short_name;
    OptionSpec::Arity arity;
    bool command_line_only;
};

TEST(OptionTable, EveryContractOptionHasARow) {
    using A = OptionSpec::Arity;
    const std::vector<ContractOption> contract = {
        {"config", 'c', A::single, true},          {"instance", 'i', A::single, true},
        {"foreground", 'f', A::flag, false},       {"check-config", 't', A::flag, true},
        {"version", 'V', A::flag, true},           {"help", 'h', A::flag, true},
        {"pidfile", 0, A::single, false},          {"control-socket", 0, A::single, false},
        {"control-group", 0, A::single, false},    {"listen", 0, A::repeatable, false},
        {"backlog", 0, A::single, false},          {"handler", 0, A::single, false},
        {"exec", 0, A::single, false},             {"user", 0, A::single, false},
        {"group", 0, A::single, false},            {"env", 0, A::repeatable, false},
        {"pass-env", 0, A::repeatable, false},     {"max-connections", 0, A::single, false},
        {"max-per-source", 0, A::single, false},   {"overload", 0, A::single, false},
        {"connection-timeout", 0, A::single, false}, {"idle-timeout", 0, A::single, false},
        {"shutdown-timeout", 0, A::single, false}, {"log-level", 0, A::single, false},
        {"allow", 0, A::repeatable, false},        {"deny", 0, A::repeatable, false},
        {"source-prefix", 0, A::single, false},    {"max-connection-rate", 0, A::single, false},
        {"max-per-source-rate", 0, A::single, false}, {"busy-message", 0, A::single, false},
        {"proxy-protocol", 0, A::single, false},   {"proxy-from", 0, A::repeatable, false},
        {"proxy-header-timeout", 0, A::single, false}, {"agent-listen", 0, A::single, false},
    };
    for (const ContractOption& option : contract) {
        const OptionSpec* spec = find_option(option.name);
        ASSERT_NE(spec, nullptr) << option.name;
        EXPECT_EQ(spec->short_name, option.short_name) << option.name;
        EXPECT_EQ(spec->arity, option.arity) << option.name;
        EXPECT_EQ(spec->command_line_only, option.command_line_only) << option.name;
    }
}

TEST(OptionTable, SetKeysAreTheContractsInItsOrder) {
    const std::vector<std::string_view> expected = {"max-connections", "max-per-source", "connection-timeout",
                                                    "idle-timeout",    "overload",       "log-level",
                                                    "max-connection-rate", "max-per-source-rate", "busy-message"};
    EXPECT_EQ(runtime_settable_options(), expected);
}

} // namespace
} // namespace forkd
