#pragma once
// Forks the child that runs a built-in handler for one connection.
#include "daemon/builtin_handlers.hpp"

#include <sys/types.h>

namespace forkd {

// Returns the child's pid, or -errno when fork fails. The child never returns.
pid_t spawn_builtin_handler(HandlerKind kind, BuiltinContext context, pid_t master_pid);

} // namespace forkd
