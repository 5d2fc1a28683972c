#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the control-request fuzzer with clang in its own build directory and runs it for a
# bounded time (default 60 s). Exit status 0: no crash, leak or timeout found.
#   tests/fuzz/run-fuzz.sh [SECONDS] [BUILD_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-60}
build=${2:-"$here/../../build-fuzz"}
CXX=${FUZZ_CXX:-clang++}

command -v "$CXX" >/dev/null || { echo "run-fuzz: $CXX not found (install clang)" >&2; exit 1; }
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target fuzz_control_request

# The checked-in seeds stay untouched: new inputs go to a scratch corpus.
corpus="$build/corpus"
mkdir -p "$corpus"
exec "$build/fuzz_control_request" -max_total_time="$seconds" -max_len=70000 -timeout=10 \
    -rss_limit_mb=1024 -print_final_stats=1 -dict="$here/control_request.dict" \
    "$corpus" "$here/corpus"
