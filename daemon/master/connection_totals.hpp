// SPDX-License-Identifier: MIT
#pragma once
// The daemon's connection accounting, in one place: one function per way a connection starts or
// ends, whoever served it. Every connection that passes admission and gets a slot counts as
// accepted and ends exactly once as completed, killed or failed (a client that went away, even by
// a SIGPIPE that killed its handler, completed its connection); one refused at admission is
// counted by its reason only. A handler that could not be forked is both accepted and failed,
// and counted as refused (fork_failed) too.
#include "daemon/admission/admission.hpp"

#include <array>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forkd {

// exec: the master's own child; spawner: forkd-spawner's child; worker: inside forkd-worker.
enum class ServedBy { exec, spawner, worker };

// How a started connection ended: by its handler, or because the master ended it (the
// connection-end line's ended_by says which).
enum class Ending {
    completed,     // the handler exited
    crashed,       // the handler died of a signal nobody sent it
    timeout,       // connection-timeout
    idle,          // idle-timeout
    killed,        // forkctl kill
    shutdown,      // the daemon stopped
    spawner_exit,  // it died with forkd-spawner (PDEATHSIG)
    worker_exit,   // its forkd-worker died (event mode)
    client_gone,   // the handler died of SIGPIPE: its client went away while it wrote
    backend,       // a proxy could not reach (or lost) its proxy-to: its exit code says why
};

// The ended_by text of the log: "handler" when the handler ended it by itself.
std::string_view ending_name(Ending ending);

// How a connection the master did not end ended, from its handler's wait status: one rule for
// built-in and exec'd handlers. A built-in handler that idle-timeout ended (its exit code says
// so) ended by idle, as an exec'd one the master ends for idling; a SIGPIPE is the client's doing.
// A proxy child's failure codes (daemon/proxy/proxy_exit.hpp) end it by its backend: failed.
Ending ending_of_exit(ServedBy served_by, int wait_status);

// The refusal reasons forkd counts, in the order status.refused and forkd_refused_total show
// them: a reason added here appears in both (status_render.cpp, metrics_render.cpp read this).
std::span<const Refusal> counted_refusals();

// The upper bounds (seconds) of forkd_connection_duration_seconds' buckets, +Inf aside: from a
// millisecond (a refused-late or echo connection) to an hour (an interactive session).
std::span<const double> duration_buckets_s();

struct RefusalCount {
    std::string_view reason;  // refusal_name(): the key of status.refused, the label of the metric
    std::uint64_t count;
};

// Ended connections by duration: the cumulative counts of a Prometheus histogram.
struct DurationHistogram {
    std::vector<std::uint64_t> cumulative;  // one per duration_buckets_s() bound, then +Inf
    std::uint64_t count = 0;
    double sum_s = 0;
};

class ConnectionTotals {
public:
    // Started: it passed admission, has a slot and a handler.
    void started() { ++accepted_; }
    // Passed admission and had a slot, but its handler could not be started for another reason
    // than a failed fork; or the spawner died before it could report it.
    void start_failed(std::uint64_t count = 1);
    // Refused at admission (limit, per_source), or its handler could not be forked (fork_failed).
    void refused(Refusal reason, std::uint64_t count = 1);
    void ended(Ending ending);
    // How long an ended connection lasted and, where known, its traffic (metrics only).
    void observe_end(std::int64_t duration_ns, bool bytes_known, std::uint64_t bytes_in,
                     std::uint64_t bytes_out);

    // By name, for a live upgrade's state record; restore() ignores names it does not know.
    std::vector<std::pair<std::string, std::uint64_t>> save() const;
    void restore(const std::vector<std::pair<std::string, std::uint64_t>>& values);

    std::uint64_t accepted() const { return accepted_; }
    std::uint64_t completed() const { return completed_; }
    std::uint64_t killed() const { return killed_; }
    std::uint64_t failed() const { return failed_; }
    std::uint64_t refused(Refusal reason) const { return refused_[std::size_t(reason)]; }
    std::uint64_t refused_limit() const { return refused(Refusal::limit); }
    std::uint64_t refused_per_source() const { return refused(Refusal::per_source); }
    std::uint64_t refused_fork() const { return refused(Refusal::fork_failed); }
    std::uint64_t refused_proxy() const { return refused(Refusal::proxy); }
    // Refused by the admission rules, every reason but fork_failed (status' "rejected").
    std::uint64_t rejected() const;
    // Every counted_refusals() reason with its count.
    std::vector<RefusalCount> refusals() const;
    DurationHistogram durations() const;
    std::uint64_t bytes_in() const { return bytes_in_; }
    std::uint64_t bytes_out() const { return bytes_out_; }

private:
    std::uint64_t accepted_ = 0, completed_ = 0, killed_ = 0, failed_ = 0;
    std::array<std::uint64_t, std::size(refusal_reasons) + 1> refused_{};  // by Refusal
    std::array<std::uint64_t, 16> duration_counts_{};  // per bucket (not cumulative), +Inf last
    std::uint64_t durations_ = 0;
    double duration_sum_s_ = 0;
    std::uint64_t bytes_in_ = 0, bytes_out_ = 0;
};

} // namespace forkd
