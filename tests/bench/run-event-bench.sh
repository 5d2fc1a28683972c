#!/bin/bash
# SPDX-License-Identifier: MIT
# Short echo connections per second and p99 latency at several concurrencies for forkd's event
# mode with one and two workers, forkd's fork mode and, in the same run, a bare single-process
# epoll echo server (forkd_bench_epoll_echo, the event-loop peer). See README.md for the method.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_parse_args "$@"
bench_init

EPOLL=$BUILD_DIR/tests/bench/forkd_bench_epoll_echo
if wanted event-1; then start_forkd event-1 "$(free_port)" "handler = echo" "mode = event" "workers = 1" || die "event-1 did not start"; fi
if wanted event-2; then start_forkd event-2 "$(free_port)" "handler = echo" "mode = event" "workers = 2" || die "event-2 did not start"; fi
if wanted fork; then start_forkd fork "$(free_port)" "handler = echo" || die "fork did not start"; fi
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
for ref in epoll fork; do [[ -n ${SERVER_PORT[$ref]:-} ]] && refs+=("$ref"); done
report "${refs[@]}"
