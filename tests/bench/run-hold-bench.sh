#!/bin/bash
# SPDX-License-Identifier: MIT
# The hold benchmark: N concurrent idle connections held at once by forkd in event mode (default
# 10,000 and 50,000, two workers), opened by forkd_bench_hold over several client processes and
# source addresses. For each N: the time until every connection is answered, `active` (exact),
# the workers' RSS growth per connection (from /proc, user memory: the kernel's socket buffers
# are not in it, and are shown beside it from /proc/net/sockstat), and the teardown time until
# `active` is 0 again. HOLD="10000 50000" and WORKERS=2 override the defaults.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_parse_args "$@"
bench_init
HOLD_CLIENT=$BUILD_DIR/tests/bench/forkd_bench_hold
[[ -x $HOLD_CLIENT ]] || die "$HOLD_CLIENT not built"
HOLD=${HOLD:-"10000 50000"}
WORKERS=${WORKERS:-2}

status() { "$FORKCTL" -s "$WORK/$1.sock" --json status; }
workers_rss_kb() {  # summed VmRSS of the workers of forkd NAME
    local total=0 pid
    for pid in $(status "$1" | jq -r '.workers[].pid'); do
        total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")))
    done
    echo "$total"
}
tcp_mem_pages() { awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat; }
now() { date +%s.%N; }

rows=()
for n in $HOLD; do
    name=hold-$n
    port=$(free_port)
    # A worker holds a descriptor per connection: enough workers that none needs more than
    # about 18,000 (this machine's hard RLIMIT_NOFILE is 20,000 per process).
    workers=$(((n + 17999) / 18000))
    ((workers < WORKERS)) && workers=$WORKERS
    # forkd_conf writes max-connections = 0 (the table's default size, 4096): N needs more.
    conf=$(forkd_conf "$name" "$port" "handler = echo" "mode = event" "workers = $workers")
    sed -i "s/^max-connections = 0$/max-connections = $((n + 1000))/" "$conf"
    start_server "$name" "$port" env -u NOTIFY_SOCKET "$FORKD" -f -c "$conf" || die "$name did not start"
    probe "$name" || die "$name does not echo"
    sleep 0.3
    rss_before=$(workers_rss_kb "$name")
    mem_before=$(tcp_mem_pages)
    fifo=$WORK/$name.release
    mkfifo "$fifo"
    "$HOLD_CLIENT" --port "$port" --connections "$n" --processes $(((n + 9999) / 10000 + 1)) --sources 8 \
        <"$fifo" >"$WORK/$name.hold" &
    hold_pid=$!
    PIDS+=("$hold_pid")
    exec {release}>"$fifo"
    for ((i = 0; i < 1200; i++)); do [[ -s $WORK/$name.hold ]] && break; sleep 0.1; done
    served_s=$(jq -r .served_s "$WORK/$name.hold")
    active=$(status "$name" | jq .active)
    rss_after=$(workers_rss_kb "$name")
    mem_after=$(tcp_mem_pages)
    start=$(now)
    exec {release}>&-
    for ((i = 0; i < 1200; i++)); do [[ $(status "$name" | jq .active) == 0 ]] && break; sleep 0.05; done
    teardown_s=$(echo "$(now) - $start" | bc)
    wait "$hold_pid" || note "the hold client failed"
    rows+=("$(jq -nc --argjson n "$n" --argjson w "$workers" --argjson active "$active" --argjson served "$served_s" \
        --argjson rss0 "$rss_before" --argjson rss1 "$rss_after" --argjson m0 "$mem_before" \
        --argjson m1 "$mem_after" --argjson down "$teardown_s" \
        '{n: $n, workers: $w, active: $active, served_s: $served, rss_kb: $rss1, rss_b_per_conn: (($rss1 - $rss0) * 1024 / $n),
          kernel_tcp_b_per_conn: (($m1 - $m0) * 4096 / $n), teardown_s: $down}')")
    stop_pid "${SERVER_PID[$name]}"
done

echo "hold bench (forkd mode = event, at least $WORKERS workers and one per 18,000 connections, idle echo connections): $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| connections | workers | active (status) | all served in s | workers' RSS MB | RSS growth B/conn | kernel TCP memory B/conn (both ends) | teardown s |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${rows[@]}"; do
    jq -r '"| \(.n) | \(.workers) | \(.active) | \(.served_s) | \(.rss_kb / 1024 | floor) | \(.rss_b_per_conn | floor) | \(.kernel_tcp_b_per_conn | floor) | \(.teardown_s * 100 | round / 100) |"' <<<"$row"
done
