# SPDX-License-Identifier: MIT
# Shared by forkd's bench scripts (sourced, not run). Bash 5; needs ss (iproute2) and jq.
# Every process is started in the background, recorded by pid and stopped by pid on exit.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=$(cd "$BENCH_DIR/../.." && pwd)

BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR/build-bench}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-0.5}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-"1 8 64"}
PAYLOAD=${PAYLOAD:-64}
SERVERS=${SERVERS:-}          # comma-separated subset of the script's servers; empty = all
KEEP=${KEEP:-}                # directory to copy raw results and server logs into
COUNT=${COUNT:-200}           # run-ctl-bench.sh: control requests per measurement
LOADGEN_ARGS=()               # a script's extra forkd_loadgen arguments for probe and measure

bench_usage() {
    cat <<EOF
usage: $(basename "$0") [-b BUILD_DIR] [-B REF_BUILD_DIR] [-d SECONDS] [-r ROUNDS] [-c "1 8 64"] [-p BYTES] [-s SERVERS] [-n COUNT] [-k DIR]
  -b  build directory holding forkd, forkctl, forkd_loadgen, forkd_bench_floor (default $BUILD_DIR)
  -B  another build of forkd (say, the previous commit's) run as server "forkd-ref" beside "forkd", a
      reference the report gives ratios against: a change measured against what it changes
  -d  seconds per measurement (default $DURATION, of which the first $WARMUP s are not counted)
  -r  rounds; every round runs each server once per concurrency, in rotated order (default $ROUNDS)
  -c  concurrency levels (default "$CONCURRENCY")
  -p  payload bytes per connection (default $PAYLOAD)
  -s  comma-separated servers to run (default: all available)
  -n  run-ctl-bench.sh: control requests per measurement (default $COUNT)
  -k  keep raw results (JSON lines) and server logs in DIR
EOF
}

bench_parse_args() {
    local opt
    while getopts "b:B:d:r:c:p:s:n:k:h" opt; do
        case $opt in
        b) BUILD_DIR=$OPTARG ;;
        B) REF_BUILD_DIR=$OPTARG ;;
        d) DURATION=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        c) CONCURRENCY=$OPTARG ;;
        p) PAYLOAD=$OPTARG ;;
        s) SERVERS=$OPTARG ;;
        n) COUNT=$OPTARG ;;
        k) KEEP=$OPTARG ;;
        h) bench_usage; exit 0 ;;
        *) bench_usage >&2; exit 2 ;;
        esac
    done
    BUILD_DIR=$(cd "$BUILD_DIR" && pwd) || { echo "no build directory $BUILD_DIR" >&2; exit 2; }
    if [[ -n ${REF_BUILD_DIR:-} ]]; then
        REF_BUILD_DIR=$(cd "$REF_BUILD_DIR" && pwd) || { echo "no build directory $REF_BUILD_DIR" >&2; exit 2; }
    fi
}

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

bench_init() {
    command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
    command -v ss >/dev/null || die "ss is needed (apt-get install iproute2)"
    LOADGEN=$BUILD_DIR/tests/bench/forkd_loadgen
    FLOOR=$BUILD_DIR/tests/bench/forkd_bench_floor
    FORKD=$BUILD_DIR/daemon/forkd
    FORKD_REF=${REF_BUILD_DIR:+$REF_BUILD_DIR/daemon/forkd}
    FORKCTL=$BUILD_DIR/ctl/forkctl
    [[ -x $LOADGEN ]] || die "$LOADGEN not built (cmake --build $BUILD_DIR --target forkd_loadgen)"
    WORK=$(mktemp -d /tmp/forkd-bench.XXXXXX)
    RESULTS=$WORK/results.jsonl
    : >"$RESULTS"
    PIDS=()
    USED_PORTS=" "
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# Stops what this script started (by pid, newest first), keeps results if asked, removes the temp dir.
bench_cleanup() {
    local i
    set +e  # a failing step must not leave the rest of the processes running
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    if [[ -n $KEEP && -d ${WORK:-} ]]; then
        mkdir -p "$KEEP" && cp -r "$WORK"/. "$KEEP"/ && note "raw results and logs kept in $KEEP"
    fi
    [[ -n ${WORK:-} ]] && rm -rf "$WORK"
}

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 30; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    return 0
}

# A TCP port below the ephemeral range (so client ports never collide with it) that nothing uses.
free_port() {
    local port tries
    for ((tries = 0; tries < 200; tries++)); do
        port=$((20000 + RANDOM % 12000))
        [[ $USED_PORTS == *" $port "* ]] && continue
        if [[ -z $(ss -Htan "( sport = :$port or dport = :$port )") ]]; then
            USED_PORTS+="$port "
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# start_server NAME PORT COMMAND...: runs it in the background, waits until PORT listens.
declare -A SERVER_PORT=() SERVER_PID=()
SERVER_ORDER=()
start_server() {
    local name=$1 port=$2 pid i
    shift 2
    # The same small environment for every server, so that no handler pays for a locale or a
    # long environment that another does not get (cat with LANG set loads locale data).
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            note "$name exited at start-up; its stderr:"
            sed 's/^/#   /' "$WORK/$name.err" >&2
            return 1
        fi
        if [[ -n $(ss -Hltn "( sport = :$port )") ]]; then
            SERVER_PORT[$name]=$port
            SERVER_PID[$name]=$pid
            SERVER_ORDER+=("$name")
            note "$name: pid $pid on 127.0.0.1:$port"
            return 0
        fi
        sleep 0.05
    done
    note "$name did not listen on port $port within 5 s"
    return 1
}

wanted() { [[ -z $SERVERS || ",$SERVERS," == *",$1,"* ]]; }

# A quick correctness probe before measuring: one echo connection must come back intact.
probe() {
    local name=$1
    "$LOADGEN" --mode "${LOADGEN_MODE:-echo}" --port "${SERVER_PORT[$name]}" --count 3 --duration 5 --payload "$PAYLOAD" --json \
        ${LOADGEN_ARGS[@]+"${LOADGEN_ARGS[@]}"} >"$WORK/probe.json" ||
        { note "$name fails the echo probe: $(cat "$WORK/probe.json")"; return 1; }
}

# CPU ticks a server has used: its own plus those of every child it has reaped (a child's
# cutime includes its own reaped children, e.g. socat's cat), plus its live children's (forkd's
# spawner, which forks and reaps the built-in handlers). Fields 14-17 of /proc/PID/stat.
process_ticks() {
    local stat fields
    stat=$(<"/proc/$1/stat") 2>/dev/null || { echo 0; return; }
    read -ra fields <<<"${stat##*) }"
    echo $((fields[11] + fields[12] + fields[13] + fields[14]))
}
cpu_ticks() {
    local total child
    total=$(process_ticks "$1")
    for child in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        total=$((total + $(process_ticks "$child")))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# One measurement, appended to $RESULTS with the server's CPU time per connection (master and
# children, whole run including the warm-up): a figure that machine noise disturbs far less
# than connections/s, since it counts work done rather than time waited.
measure() {  # measure NAME CONCURRENCY
    local name=$1 conc=$2 pid=${SERVER_PID[$1]} before after line
    before=$(cpu_ticks "$pid")
    line=$("$LOADGEN" --mode "${LOADGEN_MODE:-echo}" --port "${SERVER_PORT[$name]}" --concurrency "$conc" --duration "$DURATION" \
        --warmup "$WARMUP" --payload "$PAYLOAD" --label "$name" --json ${LOADGEN_ARGS[@]+"${LOADGEN_ARGS[@]}"}) ||
        note "$name c=$conc: no successful connection"
    sleep 0.2  # the last handlers exit and are reaped
    after=$(cpu_ticks "$pid")
    # The ticks cover the warm-up too: divide by every connection made, measured or not.
    jq -c --argjson ticks $((after - before)) --argjson hz "$CLK_TCK" --argjson warm "$WARMUP" '
        . + {cpu_us_per_conn: (if .ok > 0
             then $ticks / $hz * 1e6 / (.ok * (1 + $warm / .elapsed_s)) else null end)}' <<<"$line" >>"$RESULTS"
}

# Each round visits every concurrency level; within it the servers run in an order rotated by
# one per round, so slow drifts of a shared, noisy machine fall on every server alike.
run_matrix() {
    local round conc i n=${#SERVER_ORDER[@]} name
    for ((round = 0; round < ROUNDS; round++)); do
        for conc in $CONCURRENCY; do
            for ((i = 0; i < n; i++)); do
                name=${SERVER_ORDER[(i + round) % n]}
                measure "$name" "$conc"
                note "round $((round + 1))/$ROUNDS c=$conc $name: $(tail -n1 "$RESULTS" | jq -r '"\(.per_s)/s p99 \(.p99_ms) ms errors \(.errors) cpu \(.cpu_us_per_conn | floor) us/conn"')"
            done
        done
    done
}

# report REF...: markdown table of medians over rounds, with ratios against the REF servers.
report() {
    local refs
    refs=$(printf '%s\n' "$@" | jq -R . | jq -s .)
    jq -s -r --argjson refs "$refs" --argjson order "$(printf '%s\n' "${SERVER_ORDER[@]}" | jq -R . | jq -s .)" '
      def median: sort | if length == 0 then null
                         elif length % 2 == 1 then .[length / 2 | floor]
                         else (.[length / 2 - 1] + .[length / 2]) / 2 end;
      def fmt(d): if . == null then "-"
                  elif d == 0 then round | tostring
                  else (. * pow(10; d) | round | tostring) as $s
                       | ("0" * ([d + 1 - ($s | length), 0] | max) + $s) as $p
                       | $p[0:($p | length) - d] + "." + $p[($p | length) - d:] end;
      (group_by([.label, .concurrency]) | map({
          label: .[0].label, c: .[0].concurrency,
          rate: (map(.per_s) | median), lo: (map(.per_s) | min), hi: (map(.per_s) | max),
          p99: (map(.p99_ms) | median), errors: (map(.errors) | add), n: length,
          cpu: (map(.cpu_us_per_conn | select(. != null)) | median) })) as $rows
      | ($rows | map({key: "\(.label)/\(.c)", value: .rate}) | from_entries) as $rate
      | "| server | concurrency | conn/s (median) | min-max | p99 ms (median) | errors | server CPU us/conn | "
        + ($refs | map("x " + .) | join(" | ")) + " |",
        "|---|---:|---:|---:|---:|---:|---:|" + ($refs | map("---:") | join("|")) + "|",
        ($rows | sort_by(.c, (.label as $l | $order | index($l)))[]
         | . as $r
         | "| \(.label) | \(.c) | \(.rate | fmt(0)) | \(.lo | fmt(0))-\(.hi | fmt(0)) | \(.p99 | fmt(2)) | \(.errors) | \(.cpu | fmt(0)) | "
           + ($refs | map($rate["\(.)/\($r.c)"] as $ref
                          | if $ref == null or $ref == 0 then "-" else ($r.rate / $ref | fmt(2)) end)
              | join(" | ")) + " |")
    ' "$RESULTS"
}

bench_header() {
    echo "$1: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
    echo "each cell: median of $ROUNDS rounds x ${DURATION} s (first ${WARMUP} s not counted), payload $PAYLOAD B, servers interleaved in rotated order"
    echo
}

# --- the servers -------------------------------------------------------------------------------

forkd_conf() {  # forkd_conf NAME PORT KEY=VALUE...: writes $WORK/NAME.conf, echoes its path
    local name=$1 port=$2 conf=$WORK/$1.conf
    shift 2
    {
        echo "listen = 127.0.0.1:$port"
        echo "pidfile = $WORK/$name.pid"
        echo "control-socket = $WORK/$name.sock"
        echo "max-connections = 0"
        echo "log-level = warning"
        printf '%s\n' "$@"
    } >"$conf"
    echo "$conf"
}

start_forkd() {  # start_forkd NAME PORT CONFIG-LINES...  (NAME forkd-ref or *-ref: the -B build's forkd)
    local name=$1 port=$2 conf binary=$FORKD
    shift 2
    [[ $name == *-ref ]] && binary=${FORKD_REF:-}
    [[ -x $binary ]] || { note "skipping $name: $binary not built"; return 0; }
    conf=$(forkd_conf "$name" "$port" "$@")
    start_server "$name" "$port" env -u NOTIFY_SOCKET -u JOURNAL_STREAM -u WATCHDOG_USEC "$binary" -f -c "$conf"
}

# forkd and, with -B, the reference build beside it, each on a port of its own: start_forkds CONFIG-LINES...
start_forkds() {
    local name
    for name in forkd ${FORKD_REF:+forkd-ref}; do
        wanted "$name" || continue
        start_forkd "$name" "$(free_port)" "$@" || die "$name did not start"
    done
}

# xinetd: cps defaults to "50 10" (more than 50 connections/s disables the service for 10 s) and
# per_source/instances may be limited by the distribution's defaults: all are lifted here.
# Logging of each connection is switched off (as forkd's is at log-level warning), and so is
# libwrap's per-connection hosts.allow/deny check (NOLIBWRAP) unless XINETD_LIBWRAP=1.
xinetd_conf() {  # xinetd_conf NAME PORT SERVICE-LINES...
    local name=$1 port=$2 flags=NOLIBWRAP
    shift 2
    [[ ${XINETD_LIBWRAP:-} == 1 ]] && flags=
    cat >"$WORK/$name.conf" <<EOF
defaults
{
    instances      = UNLIMITED
    per_source     = UNLIMITED
    cps            = 1000000 1
    log_type       = FILE $WORK/$name.svclog
    log_on_success =
    log_on_failure =
}
EOF
    printf '%s\n' "$@" | sed "s/@PORT@/$port/; s/@FLAGS@/$flags/" >>"$WORK/$name.conf"
    echo "$WORK/$name.conf"
}

start_xinetd() {  # start_xinetd NAME PORT SERVICE-LINES...
    local name=$1 port=$2 conf
    command -v xinetd >/dev/null || { note "skipping $name: xinetd not installed"; return 0; }
    conf=$(xinetd_conf "$@")
    start_server "$name" "$port" xinetd -dontfork -filelog "$WORK/$name.log" -f "$conf" -pidfile "$WORK/$name.pid"
}

# tcpserver: -c (default 40 simultaneous) and -b (backlog 20) raised; no DNS (-H, -l 0) and no
# ident (-R) lookups per connection, which it does by default.
start_tcpserver() {  # start_tcpserver NAME PORT PROGRAM...
    local name=$1 port=$2
    shift 2
    command -v tcpserver >/dev/null || { note "skipping $name: tcpserver (ucspi-tcp) not installed"; return 0; }
    start_server "$name" "$port" tcpserver -q -H -R -l 0 -c 10000 -b 4096 127.0.0.1 "$port" "$@"
}
