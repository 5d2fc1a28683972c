// SPDX-License-Identifier: MIT
#include "ctl/commands.hpp"
#include "common/version.hpp"

#include "common/runtime_paths.hpp"
#include "ctl/completion.hpp"
#include "ctl/control_client.hpp"

#include <unistd.h>
#include <cstdio>
#include <iostream>
#include <thread>

namespace forkd::ctl {

namespace {

using control::Command;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds drain_poll_interval{100};

// Each exchange with forkd is bounded by the global --timeout (default 10 s).
Deadline reply_deadline(const Invocation& invocation) {
    return deadline_after(invocation.timeout.value_or(default_reply_timeout));
}

// drain --wait and stop: their own --timeout, else an explicit global one, else no limit.
std::optional<milliseconds> wait_bound(const Invocation& invocation) {
    return invocation.wait_timeout ? invocation.wait_timeout : invocation.timeout;
}

std::string seconds_text(milliseconds ms) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%g s", static_cast<double>(ms.count()) / 1000);
    return buffer;
}

int refused(const Invocation& invocation, const control::Reply& reply, Output& output) {
    std::string_view name = control::command_name(invocation.request.command);
    if (invocation.json) output.out << control::encode_error(reply.code, reply.error) << std::flush;
    if (reply.code == control::ErrorCode::denied) {
        // forkd's own reason when it gives one (the read-only socket), else who may.
        const std::string why = reply.error != "permission denied"
                                    ? reply.error
                                    : "permission denied (needs root, forkd's user or its control group)";
        output.err << "forkctl: " << name << ": " << why << "\n";
        return exit_denied;
    }
    output.err << "forkctl: " << name << ": " << reply.error << "\n";
    return exit_failed;
}

int succeeded(const Invocation& invocation, const control::Reply& reply, Output& output) {
    const CommandSpec& spec = command_spec(invocation.request.command);
    if (!invocation.json)
        output.out << spec.print(invocation.request, reply.result);
    else if (spec.json_data)
        output.out << reply.result.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
    else
        output.out << control::encode_ok(reply.result);
    output.out << std::flush;
    return exit_ok;
}

int run_once(const Invocation& invocation, Output& output) {
    auto reply = request_once(socket_path(invocation), invocation.request, reply_deadline(invocation));
    if (!reply.ok) return refused(invocation, reply, output);
    return succeeded(invocation, reply, output);
}

class DrainProgress {
public:
    explicit DrainProgress(Output& output, bool quiet) : output_(output), quiet_(quiet) {}

    void show(std::int64_t active) {
        if (quiet_ || active == last_) return;
        last_ = active;
        std::string text = "draining: " + std::to_string(active) + " connection" +
                           (active == 1 ? "" : "s") + " still active";
        if (output_.terminal) output_.out << "\r" << text << "\33[K" << std::flush;
        else output_.out << text << "\n" << std::flush;
    }
    void finish(const std::string& text) {
        if (quiet_) return;
        if (output_.terminal && last_ >= 0) output_.out << "\r\33[K";
        output_.out << text << std::flush;
    }

private:
    Output& output_;
    bool quiet_;
    std::int64_t last_ = -1;
};

std::int64_t active_of(const json& status) {
    auto it = status.find("active");
    if (it == status.end() || !it->is_number_integer())
        throw ClientError(exit_failed, "status from forkd has no 'active' count");
    return it->get<std::int64_t>();
}

int wait_drained(const Invocation& invocation, const control::Reply& drain_reply, Output& output) {
    const std::string path = socket_path(invocation);
    const auto bound = wait_bound(invocation);
    const Deadline deadline = deadline_after(bound);
    DrainProgress progress(output, invocation.json);
    for (;;) {
        control::Request status;
        status.command = Command::status;
        auto reply = request_once(path, status, reply_deadline(invocation));
        if (!reply.ok) return refused(invocation, reply, output);
        std::int64_t active = active_of(reply.result);
        if (active == 0) {
            progress.finish(invocation.json ? "" : "drained: no connections active\n");
            if (invocation.json) output.out << control::encode_ok(drain_reply.result) << std::flush;
            return exit_ok;
        }
        progress.show(active);
        auto now = Clock::now();
        if (deadline && now >= *deadline) {
            progress.finish(output.terminal ? "\n" : "");
            std::string message = std::to_string(active) + " connection" + (active == 1 ? "" : "s") +
                                  " still active after " + seconds_text(*bound) +
                                  "; forkd is still draining (forkctl resume to accept again)";
            if (invocation.json)
                output.out << control::encode_error(control::ErrorCode::failed, message) << std::flush;
            output.err << "forkctl: drain: " << message << "\n";
            return exit_failed;
        }
        auto pause = drain_poll_interval;
        if (deadline) pause = std::min(pause, std::chrono::duration_cast<milliseconds>(*deadline - now));
        std::this_thread::sleep_for(pause);
    }
}

// With --json, stdout holds exactly one document even when forkd never answered: an error in
// the shape of forkd's error replies, its code naming the exit code's reason.
void print_json_client_error(const ClientError& error, std::ostream& out) {
    const char* code = error.exit_code() == exit_unreachable ? "unreachable"
                       : error.exit_code() == exit_denied   ? "denied"
                                                            : "failed";
    const json reply = {{"ok", false}, {"error", error.what()}, {"code", code}};
    out << reply.dump(-1, ' ', false, json::error_handler_t::replace) << "\n" << std::flush;
}

} // namespace

int run_stop(const Invocation& invocation, Output& output) {
    const std::string path = socket_path(invocation);
    ControlConnection connection(path, reply_deadline(invocation));
    auto reply = connection.exchange(invocation.request, reply_deadline(invocation));
    if (!reply.ok) return refused(invocation, reply, output);
    const auto bound = wait_bound(invocation);
    if (!connection.wait_exited(deadline_after(bound))) {
        std::string message = "forkd has not exited after " + seconds_text(*bound);
        if (invocation.json)
            output.out << control::encode_error(control::ErrorCode::failed, message) << std::flush;
        output.err << "forkctl: stop: " << message << "\n";
        return exit_failed;
    }
    return succeeded(invocation, reply, output);
}

namespace {

constexpr milliseconds upgrade_poll_interval{10};
constexpr milliseconds default_upgrade_timeout{30000};

std::int64_t integer_of(const json& object, const char* key, std::int64_t otherwise) {
    auto it = object.find(key);
    return it != object.end() && it->is_number_integer() ? it->get<std::int64_t>() : otherwise;
}

} // namespace

// The reply says the new binary passed its check; the upgrade is done when the new image answers
// status with the generation the reply announced (the control socket is inherited, so requests
// queue meanwhile). An old image that answers with upgrade_error could not execve.
int run_upgrade(const Invocation& invocation, Output& output) {
    const std::string path = socket_path(invocation);
    auto reply = request_once(path, invocation.request, reply_deadline(invocation));
    if (!reply.ok) return refused(invocation, reply, output);
    const std::int64_t pid = integer_of(reply.result, "pid", -1);
    const std::int64_t generation = integer_of(reply.result, "generation", 0);
    const auto bound = wait_bound(invocation).value_or(default_upgrade_timeout);
    const Deadline deadline = deadline_after(bound);
    std::string last_problem = "no answer";
    for (;;) {
        control::Request status;
        status.command = Command::status;
        try {
            auto answer = request_once(path, status, deadline);
            if (answer.ok) {
                const json& facts = answer.result;
                if (integer_of(facts, "generation", -1) >= generation && integer_of(facts, "pid", -2) == pid) {
                    control::Reply done = reply;
                    done.result["to_version"] = facts.value("version", "");
                    done.result["connections"] = integer_of(facts, "active", 0);
                    return succeeded(invocation, done, output);
                }
                if (auto it = facts.find("upgrade_error"); it != facts.end() && it->is_string()) {
                    control::Reply failed;
                    failed.error = "the old forkd carries on: " + it->get<std::string>();
                    return refused(invocation, failed, output);
                }
                last_problem = "still generation " + std::to_string(integer_of(facts, "generation", 0));
            }
        } catch (const ClientError& e) {
            last_problem = e.what();  // the exec closed our connection: ask again
        }
        if (deadline && Clock::now() >= *deadline) {
            control::Reply late;
            late.error = "no new image answered within " + seconds_text(bound) + " (" + last_problem + ")";
            return refused(invocation, late, output);
        }
        std::this_thread::sleep_for(upgrade_poll_interval);
    }
}

int run_drain(const Invocation& invocation, Output& output) {
    auto reply = request_once(socket_path(invocation), invocation.request, reply_deadline(invocation));
    if (!reply.ok) return refused(invocation, reply, output);
    if (invocation.wait) return wait_drained(invocation, reply, output);
    return succeeded(invocation, reply, output);
}

std::string socket_path(const Invocation& invocation) {
    if (invocation.socket) return *invocation.socket;
    return client_control_socket(invocation.instance);
}

int execute(const Invocation& invocation, Output& output) {
    const CommandSpec& spec = invocation.local_command.empty() ? command_spec(invocation.request.command)
                                                               : *find_command_spec(invocation.local_command);
    return spec.run ? spec.run(invocation, output) : run_once(invocation, output);
}

int run_forkctl(int argc, const char* const* argv) {
    std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
    Invocation invocation;
    try {
        invocation = parse_command_line(args);
    } catch (const UsageError& e) {
        std::string message = e.what();
        if (!e.lists_valid_choices()) message += " (see 'forkctl --help')";
        std::cerr << "forkctl: " << message << "\n";
        return exit_usage;
    }
    if (invocation.action == Invocation::Action::help) {
        std::cout << usage_text();
        return exit_ok;
    }
    if (invocation.action == Invocation::Action::version) {
        std::cout << "forkctl " << forkd_version() << "\n";
        return exit_ok;
    }
    if (invocation.action == Invocation::Action::complete) {
        for (const std::string& word : completion_words(invocation)) std::cout << word << "\n";
        return exit_ok;
    }
    Output output{std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1};
    try {
        return execute(invocation, output);
    } catch (const ClientError& e) {
        if (invocation.json) print_json_client_error(e, std::cout);
        std::cerr << "forkctl: " << e.what() << "\n";
        return e.exit_code();
    } catch (const std::exception& e) {
        std::cerr << "forkctl: " << e.what() << "\n";
        return exit_failed;
    }
}

} // namespace forkd::ctl
