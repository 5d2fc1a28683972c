#!/bin/bash
# SPDX-License-Identifier: MIT
# Admission control: the cost of turning a denied client away, with one deny rule and with
# 10,000 rules (the match is the last rule written, so a linear scan would walk them all), and
# forkd's sustained refusal rate under a connect flood against xinetd refusing by only_from, in
# the same run. A client connects, sends nothing and reads until the server closes
# (forkd_loadgen --mode refused). See README.md for the method.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
CONCURRENCY="8 64"
bench_parse_args "$@"
bench_init
LOADGEN_MODE=refused

# 10,000 deny rules for networks no client uses (10.0.0.0/24 .. 10.39.15.0/24), then the one
# that matches the loopback client.
many_rules=()
for ((i = 0; i < 10000; i++)); do many_rules+=("deny = 10.$((i / 256)).$((i % 256)).0/24"); done

if wanted forkd-1-rule; then
    start_forkd forkd-1-rule "$(free_port)" "handler = echo" "deny = 127.0.0.0/8" || die "forkd-1-rule did not start"
fi
if wanted forkd-10k-rules; then
    start_forkd forkd-10k-rules "$(free_port)" "handler = echo" "${many_rules[@]}" "deny = 127.0.0.0/8" ||
        die "forkd-10k-rules did not start"
fi
if wanted xinetd; then
    # The client (127.0.0.1) is not in only_from: xinetd refuses it.
    port=$(free_port)
    start_xinetd xinetd "$port" \
        'service echo' '{' \
        '    type        = INTERNAL UNLISTED' '    id          = echo-stream' \
        '    socket_type = stream' '    protocol    = tcp' '    bind        = 127.0.0.1' \
        '    port        = @PORT@' '    wait        = no' '    user        = root' \
        '    only_from   = 127.0.0.2' \
        '    flags       = @FLAGS@' '}' || die "xinetd did not start"
fi
((${#SERVER_ORDER[@]} > 0)) || die "no server to measure"
for name in "${SERVER_ORDER[@]}"; do
    "$LOADGEN" --mode refused --port "${SERVER_PORT[$name]}" --count 3 --duration 5 --json >"$WORK/probe.json" ||
        die "$name does not refuse the client: $(cat "$WORK/probe.json")"
done

run_matrix
bench_header "admission bench (a denied client: forkd with 1 rule and with 10,000 rules, xinetd only_from)"
refs=()
for ref in forkd-1-rule xinetd; do [[ -n ${SERVER_PORT[$ref]:-} ]] && refs+=("$ref"); done
report "${refs[@]}"
