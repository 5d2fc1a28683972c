// SPDX-License-Identifier: MIT
#pragma once
// Reads an exec'd handler's stderr pipe from the master's loop and logs each line as
//   event=handler-stderr id=ID line="..."
// Lines are bounded (longer ones are split); the source frees itself at EOF.
#include "common/base/unique_fd.hpp"

#include <systemd/sd-event.h>
#include <cstdint>
#include <memory>

namespace forkd {

class HandlerStderr {
public:
    // Throws std::system_error if the loop refuses the source.
    HandlerStderr(sd_event* event, UniqueFd pipe_read, std::uint64_t connection_id);
    ~HandlerStderr();
    HandlerStderr(const HandlerStderr&) = delete;
    HandlerStderr& operator=(const HandlerStderr&) = delete;
    bool finished() const;  // EOF seen
    // The pipe, for a live upgrade to hand to the new image (a partial line is not carried).
    int fd() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace forkd
