// SPDX-License-Identifier: MIT
#pragma once
// Debian's haproxy, run by a test in the foreground with a config it generated (from
// examples/haproxy.cfg, the one the man pages show), stopped by pid in the destructor; its
// admin stats socket for "show stat".
#include "harness/files.hpp"
#include "harness/wait.hpp"

#include <sys/types.h>

#include <map>
#include <string>

namespace forkd::test {

// examples/haproxy.cfg with each @NAME@ replaced by values[NAME] (@STATS_SOCKET@ is left for
// Haproxy to fill in); "" if another placeholder is left.
std::string haproxy_config_from_example(const std::map<std::string, std::string>& values);
std::string source_file(const std::string& relative);  // a file of the source tree, read whole

class Haproxy {
public:
    // Writes `config` (its stats socket must be stats_socket()) and starts haproxy on it; ready
    // once the stats socket answers. available() is false if there is no haproxy binary.
    explicit Haproxy(const std::string& config_with_stats_socket_placeholder);
    ~Haproxy();  // SIGTERM by pid, then SIGKILL
    Haproxy(const Haproxy&) = delete;
    Haproxy& operator=(const Haproxy&) = delete;

    static bool available();
    bool ready() const { return ready_; }
    std::string stats_socket() const { return dir_.file("haproxy.stat"); }
    std::string log() const { return read_file(dir_.file("haproxy.log")); }
    // A command on the stats socket ("show stat"), its whole answer.
    std::string command(const std::string& line) const;
    // The "status" column of SERVER's row in "show stat" ("UP", "DRAIN", "DOWN", ...).
    std::string server_status(const std::string& server) const;
    // Any column of SERVER's row in "show stat" ("weight", "last_agt", ...), "" if none.
    std::string server_field(const std::string& server, const std::string& column) const;

private:
    TempDir dir_;
    pid_t pid_ = -1;
    bool ready_ = false;
};

} // namespace forkd::test
