#!/bin/bash
# SPDX-License-Identifier: MIT
# Live upgrade (issue 17): time from the upgrade request to the first new connection the new
# image serves, with 0 and with 2,000 held connections (goals: < 50 ms and < 200 ms), and client
# failures of a short-connection load across 10 upgrades in a row. No other super-server
# upgrades in place, so the reference is what a package update did before: a systemctl-restart-
# style stop and start of the same forkd, measured in the same run (held connections end there).
# Held connections use the built-in echo; the load runs against an exec'd handler too, which
# the master itself accepts. See README.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
ROUNDS=${ROUNDS:-3}
HELD=${HELD:-2000}
UPGRADES=${UPGRADES:-10}
bench_parse_args "$@"
bench_init
[[ -x $FORKD && -x $FORKCTL ]] || die "forkd and forkctl must be built in $BUILD_DIR"
TIMER=$BENCH_DIR/upgrade_timer.py
ulimit -n "$(ulimit -Hn)"

# forkd runs from a copy, as an installed one would; an upgrade re-executes that path.
mkdir -p "$WORK/bin"
cp "$FORKD" "$BUILD_DIR/daemon/forkd-spawner" "$WORK/bin/"
BIN=$WORK/bin/forkd

start_one() {  # start_one NAME HANDLER-LINES...: echoes the pid
    local name=$1 port conf
    shift
    port=$(free_port)
    conf=$(forkd_conf "$name" "$port" "shutdown-timeout = 1" "$@")
    start_server "$name" "$port" "$BIN" -f -c "$conf" >&2 || die "$name did not start"
}

measure_takeover() {  # measure_takeover NAME MODE HELD
    local name=$1 mode=$2 held=$3 line pid
    line=$(python3 "$TIMER" "$mode" "$BIN" "$WORK/$name.conf" "$WORK/$name.sock" \
        "${SERVER_PORT[$name]}" "$held" "${SERVER_PID[$name]}")
    pid=$(jq -r .pid <<<"$line")
    if [[ $pid != "${SERVER_PID[$name]}" ]]; then PIDS+=("$pid"); SERVER_PID[$name]=$pid; fi
    jq -c --arg n "$name" '. + {server: $n}' <<<"$line" >>"$RESULTS"
    note "$name $mode held=$held: $(jq -r '"\(.ms) ms, served \(.served), held connections lost \(.held_lost)"' <<<"$line")"
}

start_one builtin "handler = echo"
for ((round = 0; round < ROUNDS; round++)); do
    for held in 0 "$HELD"; do
        # As dpkg does: the new file written and synced, then renamed over the old one.
        cp "$FORKD" "$WORK/bin/forkd.new" && sync "$WORK/bin/forkd.new" && mv "$WORK/bin/forkd.new" "$BIN"
        measure_takeover builtin upgrade "$held"
        measure_takeover builtin restart "$held"
    done
done

# Short connections flat out while the daemon upgrades (or restarts) $UPGRADES times in a row.
load_across() {  # load_across NAME MODE
    local name=$1 mode=$2 port=${SERVER_PORT[$1]} loadpid i line
    "$LOADGEN" --port "$port" --concurrency 8 --duration 120 --timeout 10 --payload 64 --label "$name-$mode" \
        --json >"$WORK/load-$name-$mode.json" &
    loadpid=$!
    PIDS+=("$loadpid")
    sleep 0.5
    for ((i = 0; i < UPGRADES; i++)); do
        line=$(python3 "$TIMER" "$mode" "$BIN" "$WORK/$name.conf" "$WORK/$name.sock" "$port" 0 "${SERVER_PID[$name]}")
        pid=$(jq -r .pid <<<"$line")
        if [[ $pid != "${SERVER_PID[$name]}" ]]; then PIDS+=("$pid"); SERVER_PID[$name]=$pid; fi
    done
    kill -INT "$loadpid" 2>/dev/null || true
    wait "$loadpid" 2>/dev/null || true
    note "$name: $UPGRADES x $mode under load: $(jq -r '"\(.ok) ok, \(.errors) errors"' "$WORK/load-$name-$mode.json" 2>/dev/null || echo "no summary")"
    jq -c --arg m "$mode" --arg n "$name" '. + {load_mode: $m, server: $n}' "$WORK/load-$name-$mode.json" >>"$RESULTS" 2>/dev/null || true
}
start_one exec "handler = exec" "exec = /bin/cat"
for name in builtin exec; do
    load_across "$name" upgrade
    load_across "$name" restart
done

echo "## live upgrade vs stop+start (median of $ROUNDS rounds), ms from the request to the first new connection served"
jq -rs --argjson h "$HELD" '
  def med: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
  [.[] | select(.held != null)] | group_by([.mode, .held]) | map({mode: .[0].mode, held: .[0].held,
     ms: (map(.ms) | med), lost: (map(.held_lost) | max)})
  | .[] | "\(.mode)\theld=\(.held)\t\(.ms) ms\tmost held connections lost in a round: \(.lost)"' "$RESULTS"
echo "## client failures of the short-connection load across $UPGRADES takeovers"
jq -rs '.[] | select(.load_mode) | "\(.server)\t\(.load_mode)\t\(.ok) ok\t\(.errors) errors"' "$RESULTS"
