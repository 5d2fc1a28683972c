// SPDX-License-Identifier: MIT
// Test handler: says "ready" and then sleeps until killed. With --ignore-term it ignores
// SIGTERM, so only the master's SIGKILL after the grace period ends it.
#include <signal.h>
#include <unistd.h>

#include <cstring>

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "--ignore-term") == 0) signal(SIGTERM, SIG_IGN);
    const char ready[] = "ready\n";
    if (write(1, ready, sizeof ready - 1) < 0) return 1;
    for (;;) pause();
}
