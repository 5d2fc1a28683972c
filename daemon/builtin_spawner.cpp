#include "daemon/builtin_spawner.hpp"

#include "daemon/child_setup.hpp"
#include "daemon/scoreboard.hpp"

#include <unistd.h>

#include <cerrno>

namespace forkd {
namespace {

[[noreturn]] void run_child(HandlerKind kind, BuiltinContext context, pid_t master_pid) {
    reset_signal_state();
    if (!die_with_master(master_pid) || !connection_to_stdio(context.fd)) _exit(1);
    context.fd = 0;
    const int code = run_builtin_handler(kind, context);
    // The client sees the close first; the counter drops before the process is gone, and
    // the master reconciles on reap either way.
    close(0);
    close(1);
    context.scoreboard->release_from_child(context.slot);
    _exit(code);
}

} // namespace

pid_t spawn_builtin_handler(HandlerKind kind, BuiltinContext context, pid_t master_pid) {
    const pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) run_child(kind, context, master_pid);
    return pid;
}

} // namespace forkd
