#!/bin/bash
# SPDX-License-Identifier: MIT
# Short connections per second and p99 latency with /bin/cat exec'd per connection, for forkd
# (handler exec) and, in the same run, xinetd, tcpserver, socat, systemd-socket-activate and two
# bare floors (fork+exec and posix_spawn, i.e. vfork+exec). See README.md for the method.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_parse_args "$@"
bench_init
CAT=/bin/cat

start_forkds "handler = exec" "exec = $CAT"
if wanted xinetd; then
    port=$(free_port)
    start_xinetd xinetd "$port" \
        'service forkd-bench-cat' '{' \
        '    type        = UNLISTED' '    socket_type = stream' '    protocol    = tcp' \
        '    bind        = 127.0.0.1' '    port        = @PORT@' '    wait        = no' \
        '    user        = root' "    server      = $CAT" '    flags       = @FLAGS@' '}' ||
        die "xinetd did not start"
fi
if wanted tcpserver; then
    port=$(free_port)
    start_tcpserver tcpserver "$port" "$CAT" || die "tcpserver did not start"
fi
if wanted socat && command -v socat >/dev/null; then
    # socat forks a copy of itself per connection, which forks and execs cat: two processes.
    port=$(free_port)
    start_server socat "$port" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr,backlog=4096" "EXEC:$CAT" ||
        die "socat did not start"
fi
if wanted systemd-socket-activate && command -v systemd-socket-activate >/dev/null; then
    # --inetd puts the connection on stdin/stdout; SYSTEMD_LOG_LEVEL=warning drops its
    # per-connection info lines, as the others log nothing per connection.
    port=$(free_port)
    start_server systemd-socket-activate "$port" env SYSTEMD_LOG_LEVEL=warning \
        systemd-socket-activate --accept --inetd -l "127.0.0.1:$port" "$CAT" ||
        die "systemd-socket-activate did not start"
fi
if [[ -x $FLOOR ]]; then
    if wanted floor-fork-exec; then
        port=$(free_port)
        start_server floor-fork-exec "$port" "$FLOOR" --port "$port" --mode fork-exec -- "$CAT" ||
            die "the fork+exec floor did not start"
    fi
    if wanted floor-vfork-exec; then
        port=$(free_port)
        start_server floor-vfork-exec "$port" "$FLOOR" --port "$port" --mode spawn-exec -- "$CAT" ||
            die "the vfork+exec floor did not start"
    fi
fi
((${#SERVER_ORDER[@]} > 0)) || die "no server to measure"
for name in "${SERVER_ORDER[@]}"; do probe "$name" || die "$name does not echo correctly"; done

run_matrix
bench_header "exec bench (/bin/cat per connection)"
refs=()
for ref in forkd-ref xinetd tcpserver floor-fork-exec floor-vfork-exec; do [[ -n ${SERVER_PORT[$ref]:-} ]] && refs+=("$ref"); done
report "${refs[@]}"
