#!/bin/bash
# SPDX-License-Identifier: MIT
# The proxy handler against HAProxy (TCP mode), socat and systemd-socket-proxyd, all in front of
# the same single-process epoll echo backend (forkd_bench_epoll_echo) on loopback, in the same
# run: short connections per second and p99 at several concurrencies (payload echoed through
# the proxy), then bulk throughput, 1 GiB each way through the proxy (64 connections of
# 16 MiB, one at a time, echoed back and checked). See README.md for the method.
# PROXY_MODES="fork event" adds forkd in event mode (mode = event) once the daemon has it;
# by default event mode is measured if `forkd -t` accepts it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_parse_args "$@"
bench_init
BACKEND=$BUILD_DIR/tests/bench/forkd_bench_epoll_echo
[[ -x $BACKEND ]] || die "$BACKEND not built (cmake --build $BUILD_DIR --target forkd_bench_epoll_echo)"
SOCKET_PROXYD=${SOCKET_PROXYD:-/lib/systemd/systemd-socket-proxyd}

backend_port=$(free_port)
env -i "$BACKEND" --port "$backend_port" >"$WORK/backend.out" 2>&1 </dev/null &
PIDS+=("$!")
for ((i = 0; i < 100; i++)); do [[ -n $(ss -Hltn "( sport = :$backend_port )") ]] && break; sleep 0.05; done
backend=127.0.0.1:$backend_port
note "backend: forkd_bench_epoll_echo on $backend"

event_mode_available() {
    printf 'listen = 127.0.0.1:1\nmode = event\nhandler = proxy\nproxy-to = %s\n' "$backend" >"$WORK/probe.conf"
    "$FORKD" -t -c "$WORK/probe.conf" >/dev/null 2>&1
}
PROXY_MODES=${PROXY_MODES:-fork$(if event_mode_available; then echo " event"; fi)}

for mode in $PROXY_MODES; do
    name=forkd-$mode
    wanted "$name" || continue
    mode_lines=()
    [[ $mode == event ]] && mode_lines=("mode = event")
    start_forkd "$name" "$(free_port)" "handler = proxy" "proxy-to = $backend" "${mode_lines[@]}" \
        || die "$name did not start"
done
if wanted haproxy && command -v haproxy >/dev/null; then
    # TCP mode, its default threads (one per CPU), no logging; maxconn raised as far as the fd
    # limit allows (two fds per connection), far above what the bench opens.
    port=$(free_port)
    cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 8000
defaults
    mode tcp
    timeout connect 10s
    timeout client 60s
    timeout server 60s
listen proxy
    bind 127.0.0.1:$port
    maxconn 8000
    server backend $backend
CFG
    start_server haproxy "$port" haproxy -db -f "$WORK/haproxy.cfg" || die "haproxy did not start"
fi
if wanted socat && command -v socat >/dev/null; then
    port=$(free_port)
    start_server socat "$port" socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=4096" \
        "TCP:$backend" || die "socat did not start"
fi
if wanted socket-proxyd && [[ -x $SOCKET_PROXYD ]] && command -v systemd-socket-activate >/dev/null; then
    # Socket-activated as systemd would run it; its connection limit (256) lifted.
    port=$(free_port)
    start_server socket-proxyd "$port" systemd-socket-activate -l "127.0.0.1:$port" \
        "$SOCKET_PROXYD" --connections-max=10000 "$backend" || die "systemd-socket-proxyd did not start"
fi
((${#SERVER_ORDER[@]} > 0)) || die "no proxy to measure"
# Short connections: one line each way, then the client closes. Not the echo protocol of the
# other benches (write, shutdown(SHUT_WR), read to EOF): systemd-socket-proxyd does not pass a
# half-close on, it closes both directions at the client's EOF.
LOADGEN_MODE=request
LOADGEN_ARGS=(--request "proxied ping" --expect "proxied ping")
for name in "${SERVER_ORDER[@]}"; do probe "$name" || die "$name does not proxy correctly"; done
# Bulk needs the half-close (the echo check reads to EOF after its shutdown).
declare -A HALF_CLOSE=()
SHORT_ARGS=("${LOADGEN_ARGS[@]}")
LOADGEN_MODE=echo LOADGEN_ARGS=()
for name in "${SERVER_ORDER[@]}"; do
    if probe "$name" 2>/dev/null; then HALF_CLOSE[$name]=1; else note "$name: no half-close, no bulk run"; fi
done
LOADGEN_MODE=request LOADGEN_ARGS=("${SHORT_ARGS[@]}")

run_matrix
PAYLOAD=13  # "proxied ping\n", for the header
bench_header "proxy bench, short connections (forkd handler = proxy vs HAProxy TCP mode, socat, systemd-socket-proxyd; backend: one epoll echo process)"
refs=()
for ref in haproxy; do [[ -n ${SERVER_PORT[$ref]:-} ]] && refs+=("$ref"); done
report "${refs[@]}"

# Bulk: 1 GiB each way through the proxy, ROUNDS times per proxy, proxies in rotated order.
BULK=$WORK/bulk.jsonl
: >"$BULK"
n=${#SERVER_ORDER[@]}
for ((round = 0; round < ROUNDS; round++)); do
    for ((i = 0; i < n; i++)); do
        name=${SERVER_ORDER[(i + round) % n]}
        [[ -n ${HALF_CLOSE[$name]:-} ]] || continue
        "$LOADGEN" --port "${SERVER_PORT[$name]}" --concurrency 1 --count 64 --payload $((16 << 20)) \
            --duration 600 --warmup 0 --timeout 60 --label "$name" --json >>"$BULK" || note "$name: bulk run failed"
        note "bulk round $((round + 1))/$ROUNDS $name: $(tail -n1 "$BULK" | jq -r '"\(1024 / .elapsed_s | floor) MiB/s, errors \(.errors)"')"
    done
done
echo
echo "bulk: 1 GiB each way through the proxy (64 x 16 MiB echoed, one connection at a time), median of $ROUNDS"
echo
jq -s -r --argjson order "$(printf '%s\n' "${SERVER_ORDER[@]}" | jq -R . | jq -s .)" '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
                     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  (group_by(.label) | map({label: .[0].label, mibs: (map(select(.errors == 0 and .ok == 64) | 1024 / .elapsed_s) | median),
                            errors: (map(.errors) | add)})) as $rows
  | ($rows | map({key: .label, value: .mibs}) | from_entries) as $rate
  | "| proxy | MiB/s each way (median) | errors | x haproxy |", "|---|---:|---:|---:|",
    ($rows | sort_by(.label as $l | $order | index($l))[]
     | "| \(.label) | \(if .mibs == null then "-" else (.mibs | round) end) | \(.errors) | \(if .mibs == null or ($rate.haproxy // null) == null then "-" else ((.mibs / $rate.haproxy * 100 | round) / 100) end) |")
' "$BULK"
