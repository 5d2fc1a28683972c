#!/bin/bash
# SPDX-License-Identifier: MIT
# The cost of metrics on the connection path: two forkd built-in echo servers of the same build,
# one scraped every second by Debian's Prometheus server (metrics-listen; a bash /dev/tcp loop
# when prometheus is not installed), one not scraped, measured interleaved in the same run.
# Collection itself (counters, the duration histogram) is always on; what differs is the scrape.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_parse_args "$@"
bench_init

port=$(free_port)
start_forkd forkd "$port" "handler = echo" || die "forkd did not start"
port=$(free_port)
metrics_port=$(free_port)
start_forkd forkd-scraped "$port" "handler = echo" "metrics-listen = 127.0.0.1:$metrics_port" ||
    die "forkd-scraped did not start"

if command -v prometheus >/dev/null; then
    web_port=$(free_port)
    cat >"$WORK/prometheus.yml" <<EOF2
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: forkd
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
EOF2
    env -i PATH=/usr/bin:/bin prometheus --config.file="$WORK/prometheus.yml" \
        --storage.tsdb.path="$WORK/tsdb" --web.listen-address="127.0.0.1:$web_port" \
        >"$WORK/prometheus.log" 2>&1 </dev/null &
    PIDS+=("$!")
    note "prometheus: pid $! scraping 127.0.0.1:$metrics_port every second"
else
    # The same request once a second, without Prometheus.
    (while sleep 1; do
        exec 3<>"/dev/tcp/127.0.0.1/$metrics_port" || continue
        printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
        cat <&3 >/dev/null
        exec 3<&-
    done) &
    PIDS+=("$!")
    note "no prometheus: a shell loop scrapes 127.0.0.1:$metrics_port every second"
fi

for name in "${SERVER_ORDER[@]}"; do probe "$name" || die "$name does not echo correctly"; done
run_matrix
bench_header "metrics bench (built-in echo, scraped every second vs not scraped)"
report forkd
