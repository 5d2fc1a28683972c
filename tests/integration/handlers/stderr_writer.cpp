// SPDX-License-Identifier: MIT
// Test handler: one line to the client, two to stderr (which must reach forkd's log, tagged
// with the connection id, and never the client).
#include <cstdio>
#include <cstdlib>

int main() {
    const char* id = std::getenv("FORKD_CONNECTION_ID");
    std::printf("to-client %s\n", id ? id : "?");
    std::fflush(stdout);
    std::fprintf(stderr, "to-log first from %s\n", id ? id : "?");
    std::fprintf(stderr, "to-log second without newline");
    return 0;
}
