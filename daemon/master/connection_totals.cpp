// SPDX-License-Identifier: MIT
#include "daemon/master/connection_totals.hpp"

#include "daemon/handlers/builtin_handlers.hpp"
#include "daemon/proxy/proxy_exit.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>

namespace forkd {
namespace {

constexpr auto bucket_bounds_s =
    std::to_array<double>({0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600});

} // namespace

std::span<const Refusal> counted_refusals() { return refusal_reasons; }
std::span<const double> duration_buckets_s() { return bucket_bounds_s; }

std::string_view ending_name(Ending ending) {
    switch (ending) {
    case Ending::completed:
    case Ending::crashed: return "handler";
    case Ending::timeout: return "timeout";
    case Ending::idle: return "idle";
    case Ending::killed: return "killed";
    case Ending::shutdown: return "shutdown";
    case Ending::spawner_exit: return "spawner-exit";
    case Ending::worker_exit: return "worker-exit";
    case Ending::client_gone: return "client";
    case Ending::backend: return "backend";
    }
    return "handler";
}

Ending ending_of_exit(ServedBy served_by, int wait_status) {
    if (WIFSIGNALED(wait_status))
        return WTERMSIG(wait_status) == SIGPIPE ? Ending::client_gone : Ending::crashed;
    if (served_by != ServedBy::exec && WIFEXITED(wait_status) &&
        WEXITSTATUS(wait_status) == builtin_exit_idle)
        return Ending::idle;
    if (served_by != ServedBy::exec && WIFEXITED(wait_status) &&
        !proxy_failure_reason(WEXITSTATUS(wait_status)).empty())
        return Ending::backend;
    return Ending::completed;
}

void ConnectionTotals::start_failed(std::uint64_t count) {
    accepted_ += count;
    failed_ += count;
}

void ConnectionTotals::refused(Refusal reason, std::uint64_t count) {
    if (reason == Refusal::none || std::size_t(reason) >= refused_.size()) return;
    refused_[std::size_t(reason)] += count;
    if (reason == Refusal::fork_failed) start_failed(count);
}

std::uint64_t ConnectionTotals::rejected() const {
    std::uint64_t sum = 0;
    for (Refusal reason : counted_refusals())
        if (reason != Refusal::fork_failed) sum += refused(reason);
    return sum;
}

// What the master ended (or idle-timeout, for a built-in handler) was killed; a handler that
// died of a signal by itself, or with the spawner, failed; one whose client went away completed.
void ConnectionTotals::ended(Ending ending) {
    switch (ending) {
    case Ending::completed:
    case Ending::client_gone: ++completed_; break;
    case Ending::crashed:
    case Ending::spawner_exit:
    case Ending::worker_exit:
    case Ending::backend: ++failed_; break;
    case Ending::timeout:
    case Ending::idle:
    case Ending::killed:
    case Ending::shutdown: ++killed_; break;
    }
}

// Every counter by its name, so that a newer image can add counters without a new record version.
// Every counter by name, the metrics' histogram and bytes too, so that no counter goes backwards
// across a live upgrade; a name the other image does not know is ignored.
std::vector<std::pair<std::string, std::uint64_t>> ConnectionTotals::save() const {
    std::vector<std::pair<std::string, std::uint64_t>> values = {
        {"accepted", accepted_}, {"completed", completed_}, {"killed", killed_}, {"failed", failed_},
        {"bytes_in", bytes_in_}, {"bytes_out", bytes_out_}, {"durations", durations_},
        {"duration_sum_us", static_cast<std::uint64_t>(duration_sum_s_ * 1e6)}};
    for (Refusal reason : counted_refusals())
        values.emplace_back("refused_" + std::string(refusal_name(reason)), refused(reason));
    for (std::size_t i = 0; i < duration_counts_.size(); ++i)
        values.emplace_back("duration_bucket_" + std::to_string(i), duration_counts_[i]);
    return values;
}

void ConnectionTotals::restore(const std::vector<std::pair<std::string, std::uint64_t>>& values) {
    for (const auto& [name, value] : values) {
        if (name == "accepted") accepted_ = value;
        else if (name == "completed") completed_ = value;
        else if (name == "killed") killed_ = value;
        else if (name == "failed") failed_ = value;
        else if (name == "bytes_in") bytes_in_ = value;
        else if (name == "bytes_out") bytes_out_ = value;
        else if (name == "durations") durations_ = value;
        else if (name == "duration_sum_us") duration_sum_s_ = static_cast<double>(value) / 1e6;
        for (Refusal reason : counted_refusals())
            if (name == "refused_" + std::string(refusal_name(reason))) refused_[std::size_t(reason)] = value;
        for (std::size_t i = 0; i < duration_counts_.size(); ++i)
            if (name == "duration_bucket_" + std::to_string(i)) duration_counts_[i] = value;
    }
}

} // namespace forkd

namespace forkd {

static_assert(bucket_bounds_s.size() + 1 <= 16, "duration_counts_ holds the buckets and +Inf");

std::vector<RefusalCount> ConnectionTotals::refusals() const {
    std::vector<RefusalCount> out;
    for (Refusal reason : counted_refusals()) out.push_back({refusal_name(reason), refused(reason)});
    return out;
}

void ConnectionTotals::observe_end(std::int64_t duration_ns, bool bytes_known, std::uint64_t bytes_in,
                                   std::uint64_t bytes_out) {
    const double seconds = static_cast<double>(std::max<std::int64_t>(duration_ns, 0)) / 1e9;
    const auto bound = std::lower_bound(bucket_bounds_s.begin(), bucket_bounds_s.end(), seconds);
    ++duration_counts_[static_cast<std::size_t>(bound - bucket_bounds_s.begin())];
    ++durations_;
    duration_sum_s_ += seconds;
    if (!bytes_known) return;
    bytes_in_ += bytes_in;
    bytes_out_ += bytes_out;
}

DurationHistogram ConnectionTotals::durations() const {
    DurationHistogram histogram;
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bucket_bounds_s.size(); ++i) {
        running += duration_counts_[i];
        histogram.cumulative.push_back(running);
    }
    histogram.count = durations_;
    histogram.sum_s = duration_sum_s_;
    return histogram;
}

} // namespace forkd
