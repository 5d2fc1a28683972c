#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds a fuzzer with clang in its own build directory and runs it for a bounded time
# (default 60 s). Exit status 0: no crash, leak or timeout found.
#   tests/fuzz/run-fuzz.sh [SECONDS] [BUILD_DIR] [TARGET]
# TARGET: control_request (the default) or proxy_header; its seeds are corpus/ and
# proxy_header_corpus/, its dictionary control_request.dict or proxy_header.dict.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-60}
build=${2:-"$here/../../build-fuzz"}
target=${3:-control_request}
CXX=${FUZZ_CXX:-clang++}

case $target in
control_request) seeds="$here/corpus"; max_len=70000 ;;
proxy_header) seeds="$here/proxy_header_corpus"; max_len=2048 ;;
*) echo "run-fuzz: unknown target $target" >&2; exit 2 ;;
esac

command -v "$CXX" >/dev/null || { echo "run-fuzz: $CXX not found (install clang)" >&2; exit 1; }
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target "fuzz_$target"

# The checked-in seeds stay untouched: new inputs go to a scratch corpus.
corpus="$build/corpus-$target"
mkdir -p "$corpus"
exec "$build/fuzz_$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=1024 -print_final_stats=1 -dict="$here/$target.dict" \
    "$corpus" "$seeds"
