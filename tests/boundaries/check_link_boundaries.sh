#!/bin/sh
# SPDX-License-Identifier: MIT
# The link boundaries hold: a libc-only target (cmake/LibcOnly.cmake) that includes a header of
# libsystemd, Boost or nlohmann-json fails to build, one that links a non-libc-only target fails
# to configure, and the built binaries link what their folders say (readelf -d).
#   check_link_boundaries.sh SOURCE_DIR BUILD_DIR
set -eu
source_dir=$1
build_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "check_link_boundaries: $*" >&2; exit 1; }

# A scratch project that uses the same CMake module, once per forbidden thing.
probe() {  # probe NAME HEADER LINK_EXTRA
    mkdir -p "$scratch/$1"
    printf '#include <%s>\nint probe() { return 0; }\n' "$2" > "$scratch/$1/probe.cpp"
    cat > "$scratch/$1/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(probe LANGUAGES CXX)
include($source_dir/cmake/LibcOnly.cmake)
add_library(allowed INTERFACE)
forkd_libc_only(allowed)
add_library(not_libc_only INTERFACE)
add_library(probe STATIC probe.cpp)
forkd_libc_only(probe)
forkd_libc_only_link(probe allowed $3)
CMAKE
    cmake -S "$scratch/$1" -B "$scratch/$1/build" >"$scratch/$1/log" 2>&1 &&
        cmake --build "$scratch/$1/build" >>"$scratch/$1/log" 2>&1
}

probe plain cstdio "" || { cat "$scratch/plain/log" >&2; fail "a plain libc-only target does not build"; }
for header in systemd/sd-event.h systemd/sd-daemon.h nlohmann/json.hpp boost/program_options.hpp; do
    name=$(echo "$header" | tr '/.-' '___')
    if probe "$name" "$header" ""; then fail "a libc-only target may include <$header>"; fi
    grep -q "may not include <$header>" "$scratch/$name/log" || fail "no clear error for <$header>"
done
if probe link cstdio not_libc_only; then fail "a libc-only target may link a non-libc-only one"; fi
grep -q "is libc-only and may not link not_libc_only" "$scratch/link/log" || fail "no clear error for the link"

needed() { readelf -d "$1" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' '; }
# forkd-spawner runs the proxy handler's children on libevent, linked in (cmake/LibcOnly.cmake):
# it needs no libevent shared object, but must contain the bufferevents.
nm "$build_dir/daemon/forkd-spawner" | grep -q ' bufferevent_socket_new$' ||
    fail "forkd-spawner has no libevent linked in (the proxy handler's engine)"
spawner=$(needed "$build_dir/daemon/forkd-spawner")
for lib in $spawner; do
    case $lib in libc.so.*|ld-linux*) ;; *) fail "forkd-spawner links $lib (only libc): $spawner" ;; esac
done
# forkd-worker: libc and libevent_core, nothing else.
worker=$(needed "$build_dir/daemon/forkd-worker")
for lib in $worker; do
    case $lib in libc.so.*|ld-linux*|libevent_core*) ;; *) fail "forkd-worker links $lib (only libc, libevent_core): $worker" ;; esac
done
case $(needed "$build_dir/ctl/forkctl") in *libsystemd*) fail "forkctl links libsystemd" ;; esac
case $(needed "$build_dir/daemon/forkd") in *libsystemd*) ;; *) fail "forkd does not link libsystemd" ;; esac
echo "link boundaries hold: forkd-spawner needs $spawner; forkd-worker needs $worker"
