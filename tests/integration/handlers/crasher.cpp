// SPDX-License-Identifier: MIT
// Test handler: dies of SIGSEGV at once, without a core file.
#include <signal.h>
#include <sys/resource.h>

int main() {
    rlimit none{0, 0};
    setrlimit(RLIMIT_CORE, &none);
    raise(SIGSEGV);
    return 0;
}
