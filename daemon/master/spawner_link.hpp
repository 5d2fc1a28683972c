// SPDX-License-Identifier: MIT
#pragma once
// The master's side of the spawner (spawner.hpp): starts forkd-spawner, tells it what to accept,
// forwards signals to handlers and turns its reports into callbacks, all from the event loop.
#include "common/base/handler_kind.hpp"
#include "common/base/unique_fd.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"
#include "daemon/spawner/spawner_protocol.hpp"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace forkd {

class Scoreboard;

class SpawnerLink {
public:
    // Every report but hello, one datagram's worth at a time, in the order the spawner sent them.
    using ReportHandler = std::function<void(std::span<const spawner::Report>)>;

    // `path`: the binary to run, forkd-spawner by default; forkd-worker (event mode) speaks the
    // same protocol and is started the same way.
    SpawnerLink(sd_event* event, const Scoreboard& board, ReportHandler on_report,
                std::string path = binary_path());
    // Closes the socket and SIGKILLs and reaps the process: by then the master has nothing left
    // for it (a stop waits for every handler), and its handlers die with it regardless.
    ~SpawnerLink();
    SpawnerLink(const SpawnerLink&) = delete;
    SpawnerLink& operator=(const SpawnerLink&) = delete;

    // forkd-spawner next to the running forkd (a build tree), else the installed one.
    static std::string binary_path();
    // forkd-worker, found the same way.
    static std::string worker_binary_path();

    // Start-up, before the loop runs: starts the spawner and waits (at most 5 s) for its hello.
    // Throws std::runtime_error naming the binary and the reason.
    void start_and_wait();
    // In the loop, after the spawner died: starts a new one without waiting for it. Returns the
    // error, or "" on success.
    std::string restart();
    // A live upgrade's new image: the spawner the old image ran (still our child, same pid),
    // its socket, and the generation of the last configuration sent to it, so that its
    // "configured" reports keep their meaning. What the old image had not sent yet is lost;
    // the new image configures it afresh.
    void adopt(pid_t pid, UniqueFd socket, std::uint64_t generation);
    // The socket, for the state record (-1 when none runs).
    int socket_fd() const { return socket_.get(); }

    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }
    // Whether the current process has said hello (a spawner that dies before is broken).
    bool greeted() const { return greeted_; }

    // A listening socket for the spawner to accept on, and the tag its reports name it by.
    struct ListenerRef {
        int fd;
        std::uint32_t tag;
        std::string_view address;  // for the log line if it cannot be handed over
    };
    // Replaces what the spawner accepts on and how (a configure request; its generation and
    // listener count are set here). Nothing is sent if it is what this process was last told;
    // otherwise at once, or once the socket has room, and a newer configuration replaces one not
    // sent yet. At most spawner::max_listeners listeners are handed over.
    // With settings.has_policy, `policy_fd` (the admission policy block) rides along last.
    void configure(spawner::Request settings, std::span<const ListenerRef> listeners, int policy_fd = -1);
    // The generation of the last configuration the spawner applied (its configured report).
    std::uint64_t applied_generation() const { return applied_generation_; }
    std::uint64_t sent_generation() const { return generation_; }
    // Signals the handler of connection `id` (if it is still running); sent at once.
    void signal(std::uint64_t id, std::uint32_t slot, int signo);

    // The master reaped pid(): delivers what the spawner still had to say, drops what it never
    // got (those clients see their connection closed), and forgets the process.
    void exited();

private:
    void socket_ready(std::uint32_t events);
    std::string launch();
    void read_reports();
    bool handle_datagram(const spawner::Datagram& datagram);
    void flush();
    void watch_output(bool want);
    void drop();

    sd_event* event_;
    const Scoreboard& board_;
    ReportHandler on_report_;
    std::string path_;
    pid_t pid_ = 0;
    bool greeted_ = false;
    UniqueFd socket_;
    EventSourcePtr source_;
    bool watching_output_ = false;
    // Receive buffers, allocated once: reports arrive for every connection.
    std::unique_ptr<spawner::Datagram> inbox_ = std::make_unique<spawner::Datagram>();
    std::unique_ptr<spawner::Records<spawner::Report>> decoded_ =
        std::make_unique<spawner::Records<spawner::Report>>();
    std::uint64_t generation_ = 0;
    std::uint64_t applied_generation_ = 0;
    // What this process was last told (generation and count aside), to send only changes.
    std::optional<spawner::Request> last_settings_;
    std::vector<std::uint32_t> last_tags_;
    // A configuration not sent yet (the socket was full): its records and its listeners' dups.
    std::vector<spawner::Request> configuration_;
    std::vector<UniqueFd> configuration_fds_;
    std::vector<spawner::Request> signals_;  // not sent yet
};

} // namespace forkd
