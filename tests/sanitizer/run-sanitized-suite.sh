#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The unit, integration and fault suites again, on a build with AddressSanitizer and
# UndefinedBehaviorSanitizer (FORKD_SANITIZE=ON) in build-asan/. CI runs it after the normal suite
# (.ci/run, README). Every process (forkd, forkd-spawner, a handler before its exec, forkctl, the
# tests) writes its reports to build-asan/sanitizer/; the run fails on a test failure or on any
# report there. ASan's notice that it ignores __asan_handle_no_return in the exec launcher's clone
# (which runs on its own stack) is not a report and does not match.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=build-asan
reports=$PWD/$build/sanitizer

# Unoptimised, assertions on, line tables only: the sanitizers need no more for their stack
# traces, and a test unit compiles in a third of the time it takes at -O1 -g1 (7 s against 21 s).
cmake -S . -B "$build" -DFORKD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1"
cmake --build "$build" -j2

# World-writable (sticky) because handlers that dropped to another user report there too.
rm -rf "$reports"
mkdir -m 1777 "$reports"
status=0
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:verify_asan_link_order=0:log_path=$reports/asan \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan \
FORKD_SOAK_SECONDS=${FORKD_SOAK_SECONDS:-30} \
  ctest --test-dir "$build" -L 'unit|integration|fault' --output-on-failure -j2 || status=$?

if grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$reports"/* 2>/dev/null; then
  echo "run-sanitized-suite: sanitizer reports above (in $reports)" >&2
  grep -h -A30 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$reports"/* >&2 || true
  exit 1
fi
exit "$status"
