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
