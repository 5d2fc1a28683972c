#!/bin/bash
# SPDX-License-Identifier: MIT
# Short echo connections per second and p99 latency at several concurrencies, for forkd's built-in
# echo and, in the same run, xinetd's internal echo, tcpserver running /bin/cat and a bare
# fork-per-accept echo server (the floor). See README.md for the method.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_parse_args "$@"
bench_init

start_forkds "handler = echo"
if wanted xinetd; then
    # An internal service is found by its name ("echo") and id; UNLISTED: the port is ours.
    port=$(free_port)
    start_xinetd xinetd "$port" \
        'service echo' '{' \
        '    type        = INTERNAL UNLISTED' '    id          = echo-stream' \
        '    socket_type = stream' '    protocol    = tcp' '    bind        = 127.0.0.1' \
        '    port        = @PORT@' '    wait        = no' '    user        = root' \
        '    flags       = @FLAGS@' '}' || die "xinetd did not start"
fi
if wanted tcpserver; then
    port=$(free_port)
    start_tcpserver tcpserver "$port" /bin/cat || die "tcpserver did not start"
fi
if wanted floor; then
    [[ -x $FLOOR ]] || die "$FLOOR not built"
    port=$(free_port)
    start_server floor "$port" "$FLOOR" --port "$port" --mode echo || die "the floor server did not start"
fi
((${#SERVER_ORDER[@]} > 0)) || die "no server to measure"
for name in "${SERVER_ORDER[@]}"; do probe "$name" || die "$name does not echo correctly"; done

run_matrix
bench_header "echo bench (built-in echo vs xinetd INTERNAL echo, tcpserver /bin/cat, bare fork floor)"
refs=()
for ref in forkd-ref xinetd floor; do [[ -n ${SERVER_PORT[$ref]:-} ]] && refs+=("$ref"); done
report "${refs[@]}"
