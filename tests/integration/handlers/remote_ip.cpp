// SPDX-License-Identifier: MIT
// Test handler behind a load balancer: reads one line from the client (what followed the PROXY
// header), then writes back who it was told the client is and who the balancer is:
//   remote TCPREMOTEIP TCPREMOTEPORT
//   proxy FORKD_PROXY_IP FORKD_PROXY_PORT     ("-" when unset)
//   line TEXT
//   local TCPLOCALIP TCPLOCALPORT              (which forkd served it)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

const char* env(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "-";
}

} // namespace

int main() {
    std::string line;
    char c;
    while (line.size() < 512 && read(0, &c, 1) == 1 && c != '\n') line += c;
    std::printf("remote %s %s\nproxy %s %s\nline %s\nlocal %s %s\n", env("TCPREMOTEIP"),
                env("TCPREMOTEPORT"), env("FORKD_PROXY_IP"), env("FORKD_PROXY_PORT"), line.c_str(),
                env("TCPLOCALIP"), env("TCPLOCALPORT"));
    return 0;
}
