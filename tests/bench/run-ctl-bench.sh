#!/bin/bash
# SPDX-License-Identifier: MIT
# Latency of `forkctl status` (and of the bare control request) while 64 clients run short echo
# connections flat out against the same forkd; the same measured on an idle forkd for contrast.
# Issue 4's target: p99 of `forkctl status` at most 10 ms under that load. See README.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
CONCURRENCY=64
ROUNDS=1
bench_parse_args "$@"
bench_init
[[ -x $FORKD ]] || die "$FORKD not built"
[[ -x $FORKCTL ]] || die "$FORKCTL not built"
load_conc=${CONCURRENCY%% *}

port=$(free_port)
start_forkd forkd "$port" "handler = echo" || die "forkd did not start"
sock=$WORK/forkd.sock
for ((i = 0; i < 100; i++)); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || die "no control socket at $sock"
probe forkd || die "forkd does not echo correctly"
"$FORKCTL" -s "$sock" status >/dev/null || die "forkctl status fails on an idle forkd"

# One measurement: COUNT sequential calls, each timed from spawn (or connect) to exit (or close).
measure_ctl() {  # measure_ctl SCENARIO LABEL LOADGEN-ARGS...
    local scenario=$1 label=$2
    shift 2
    "$LOADGEN" --concurrency 1 --count "$COUNT" --duration 120 --timeout 10 --label "$label" --json "$@" |
        jq -c --arg s "$scenario" '. + {scenario: $s}' >>"$RESULTS"
    note "$scenario $label: $(tail -n1 "$RESULTS" | jq -r '"p50 \(.p50_ms) ms p99 \(.p99_ms) ms max \(.max_ms) ms errors \(.errors)"')"
}

measure_all() {  # measure_all SCENARIO
    measure_ctl "$1" "forkctl status" --mode command -- "$FORKCTL" -s "$sock" status
    measure_ctl "$1" "forkctl --json status" --mode command -- "$FORKCTL" -s "$sock" --json status
    measure_ctl "$1" "status request (socket only)" --mode request --unix "$sock" \
        --request '{"version":1,"command":"status"}' --expect '"ok":true'
    measure_ctl "$1" "/bin/true (spawn floor)" --mode command -- /bin/true
}

for ((round = 0; round < ROUNDS; round++)); do
    measure_all idle
    # The load: flat out, bounded by --duration, ended by SIGTERM once the calls are done.
    "$LOADGEN" --port "$port" --concurrency "$load_conc" --duration 600 --warmup 1 --payload "$PAYLOAD" \
        --label "echo load" --json >"$WORK/load.json" &
    load_pid=$!
    PIDS+=("$load_pid")
    sleep 1.5
    measure_all "under load"
    kill -TERM "$load_pid"
    wait "$load_pid" || true
    jq -c '. + {scenario: "load"}' "$WORK/load.json" >>"$RESULTS"
    note "load: $(jq -r '"\(.per_s) echo conn/s, p99 \(.p99_ms) ms, errors \(.errors)"' "$WORK/load.json")"
done

echo "control bench: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
echo "$ROUNDS round(s) of $COUNT sequential calls per cell; load = $load_conc clients, short echo connections (payload $PAYLOAD B) flat out"
echo
jq -s -r '
  def fmt: (. * 100 | round) / 100 | tostring;
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  "| call | forkd | calls | p50 ms | p99 ms | max ms | errors |",
  "|---|---|---:|---:|---:|---:|---:|",
  (map(select(.scenario != "load")) | group_by([.label, .scenario]) | sort_by(.[0].label, .[0].scenario) | .[]
   | "| \(.[0].label) | \(.[0].scenario) | \(map(.ok) | add) | \(map(.p50_ms) | median | fmt) | \(map(.p99_ms) | median | fmt) | \(map(.max_ms) | max | fmt) | \(map(.errors) | add) |"),
  "",
  (map(select(.scenario == "load")) | "background load: \(map(.per_s) | median | round) echo conn/s (median over rounds), echo p99 \(map(.p99_ms) | median | fmt) ms, \(map(.errors) | add) errors")
' "$RESULTS"
