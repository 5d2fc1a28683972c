#!/bin/bash
# SPDX-License-Identifier: MIT
# The cost of proxy-protocol per connection: short echo connections through haproxy to forkd's
# built-in echo, without a PROXY header (the reference) and with send-proxy (v1) and
# send-proxy-v2, all in the same run and through the same haproxy process. The CPU column is
# forkd's own (master, spawner and handlers), per connection: what reading the header costs it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_parse_args "$@"
bench_init
command -v haproxy >/dev/null || die "haproxy is needed (apt-get install haproxy)"

plain_port=$(free_port)
proxied_port=$(free_port)
start_forkd forkd-plain "$plain_port" "handler = echo" || die "forkd-plain did not start"
start_forkd forkd-proxied "$proxied_port" "handler = echo" "proxy-protocol = yes" ||
    die "forkd-proxied did not start"
plain_pid=${SERVER_PID[forkd-plain]}
proxied_pid=${SERVER_PID[forkd-proxied]}
SERVER_ORDER=()  # only the paths through haproxy are measured

front_plain=$(free_port)
front_v1=$(free_port)
front_v2=$(free_port)
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend plain
    bind 127.0.0.1:$front_plain
    default_backend plain
frontend v1
    bind 127.0.0.1:$front_v1
    default_backend v1
frontend v2
    bind 127.0.0.1:$front_v2
    default_backend v2
backend plain
    server forkd 127.0.0.1:$plain_port
backend v1
    server forkd 127.0.0.1:$proxied_port send-proxy
backend v2
    server forkd 127.0.0.1:$proxied_port send-proxy-v2
CFG
haproxy -c -q -f "$WORK/haproxy.cfg" || die "haproxy rejects the generated config"
start_server haproxy "$front_v2" haproxy -db -f "$WORK/haproxy.cfg" || die "haproxy did not start"
SERVER_ORDER=()
# Each path through haproxy, measured with the CPU of the forkd behind it.
register() {  # register NAME FRONT-PORT FORKD-PID
    SERVER_PORT[$1]=$2
    SERVER_PID[$1]=$3
    SERVER_ORDER+=("$1")
}
register haproxy+forkd "$front_plain" "$plain_pid"
register haproxy+forkd-proxy-v1 "$front_v1" "$proxied_pid"
register haproxy+forkd-proxy-v2 "$front_v2" "$proxied_pid"
for name in "${SERVER_ORDER[@]}"; do probe "$name" || die "$name does not echo correctly"; done

run_matrix
bench_header "PROXY protocol bench (haproxy in front of forkd's built-in echo)"
report haproxy+forkd
