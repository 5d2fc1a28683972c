#!/bin/bash
# SPDX-License-Identifier: MIT
# Short echo connections per second and p99 latency at several concurrencies for forkd's event
# mode with one and two workers, forkd's fork mode and, in the same run, a bare single-process
# epoll echo server (forkd_bench_epoll_echo, the event-loop peer); with -B, the reference build's
# event mode (one worker) as event-1-ref. EXTRA_CONFIG (lines separated by ';') goes into every
# forkd's configuration, e.g. "max-per-source = 1000". See README.md for the method.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_parse_args "$@"
bench_init

EPOLL=$BUILD_DIR/tests/bench/forkd_bench_epoll_echo
IFS=';' read -r -a EXTRA <<<"${EXTRA_CONFIG:-}"
serve() {  # serve NAME CONFIG-LINES...: a forkd with the echo handler, the extra lines and these
    local name=$1
    shift
    wanted "$name" || return 0
    start_forkd "$name" "$(free_port)" "handler = echo" ${EXTRA[@]+"${EXTRA[@]}"} "$@" || die "$name did not start"
}
serve event-1 "mode = event" "workers = 1"
# With -B, the reference build in event mode with one worker too (a change against what it changes).
[[ -n ${FORKD_REF:-} ]] && serve event-1-ref "mode = event" "workers = 1"
serve event-2 "mode = event" "workers = 2"
serve fork
if wanted epoll; then
    [[ -x $EPOLL ]] || die "$EPOLL not built"
    port=$(free_port)
    start_server epoll "$port" "$EPOLL" --port "$port" || die "the epoll server did not start"
fi
((${#SERVER_ORDER[@]} > 0)) || die "no server to measure"
for name in "${SERVER_ORDER[@]}"; do probe "$name" || die "$name does not echo correctly"; done

run_matrix
bench_header "event bench (forkd mode = event, 1 and 2 workers, vs fork mode and a bare epoll echo server)"
refs=()
for ref in epoll fork event-1-ref; do [[ -n ${SERVER_PORT[$ref]:-} ]] && refs+=("$ref"); done
report "${refs[@]}"
