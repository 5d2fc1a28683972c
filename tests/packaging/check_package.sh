#!/bin/bash
# SPDX-License-Identifier: MIT
# Packaging check for forkd (ctest label "packaging"):
#   1. build the binary package from a copy of the source tree (the tree stays clean),
#   2. lint it: lintian --fail-on error,warning, and the unit's systemd-analyze security score,
#   3. install it into a fresh minimal Debian 12 root (debootstrap, cached between runs),
#   4. run forkd there in a chroot (private network and pid namespaces) and reach it with forkctl,
#   5. boot that root with systemd-nspawn and drive forkd.service, forkd@.service and
#      forkd.socket with systemctl and forkctl.
# Exit status: 0 passed, 1 failed, 77 skipped (no debootstrap, or Debian's archive unreachable).
#
# Environment:
#   FORKD_PACKAGING_CACHE  cache directory for the debootstrap root (/var/cache/forkd-packaging)
#   FORKD_DEBIAN_MIRROR    Debian mirror (default: the bookworm entry of this machine's apt sources)
#   FORKD_PACKAGING_KEEP   1: keep the work directory for inspection
#   FORKD_PACKAGING_DEB    test this already built forkd_*.deb instead of building one
set -euo pipefail

readonly SUITE=bookworm
readonly SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly CACHE=${FORKD_PACKAGING_CACHE:-/var/cache/forkd-packaging}
# Packages baked into the cached root: systemd to boot it, forkd's run-time libraries so that
# installing the .deb needs no network once the cache exists.
readonly ROOT_PACKAGES=systemd,systemd-sysv,libboost-program-options1.74.0,libncurses6
readonly SECURITY_THRESHOLD=25   # systemd-analyze's scale: 25 = an exposure of 2.5
readonly SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

started=$SECONDS
WORK=""
NSPAWN_PID=""

say() { printf '[packaging %3ds] %s\n' "$((SECONDS - started))" "$*"; }
fail() { printf 'packaging check FAILED: %s\n' "$*" >&2; exit 1; }
skip() { printf 'packaging check SKIPPED: %s\n' "$*" >&2; exit 77; }

cleanup() {
    local status=$?
    if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${FORKD_PACKAGING_KEEP:-0} == 1 || $status -ne 0 ]]; then
            echo "work directory kept: $WORK" >&2
        else
            rm -rf --one-file-system "$WORK"
        fi
    fi
}
trap cleanup EXIT

# --- preconditions -------------------------------------------------------------------------

# The first bookworm (not -security, not -updates) "deb" URI of the apt sources, both formats.
debian_mirror() {
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    local existing=()
    local f
    for f in "${files[@]}"; do [[ -f $f ]] && existing+=("$f"); done
    ((${#existing[@]})) || return 0
    awk -v suite="$SUITE" '
        function flush() {
            if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "" && !found) {
                split(uris, u, " "); print u[1]; found = 1
            }
            types = suites = uris = ""
        }
        FILENAME ~ /\.sources$/ {
            if (FNR == 1) flush()
            if ($0 ~ /^[ \t]*$/) { flush(); next }
            if ($0 ~ /^[ \t]*#/) next
            if ($1 == "Types:")  { $1 = ""; types = $0 }
            if ($1 == "URIs:")   { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
            if ($1 == "Suites:") { $1 = ""; suites = $0; sub(/^ +/, "", suites) }
            next
        }
        $1 == "deb" && !found {
            i = 2
            if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; found = 1 }
        }
        END { flush() }
    ' "${existing[@]}"
}

if ((EUID != 0)); then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n --preserve-env=FORKD_PACKAGING_CACHE,FORKD_DEBIAN_MIRROR,FORKD_PACKAGING_KEEP "$0" "$@"
    fi
    fail "needs root (debootstrap, chroot, systemd-nspawn); run it as root or with passwordless sudo"
fi
command -v debootstrap >/dev/null || skip "debootstrap is not installed (apt install debootstrap)"
for tool in dpkg-buildpackage lintian systemd-nspawn systemd-analyze unshare nsenter ip; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (see .ci/run for the packages)"
done

WORK=$(mktemp -d /tmp/forkd-packaging.XXXXXX)
ROOT=$WORK/root

# --- 1. build ------------------------------------------------------------------------------

# Only what git would ship (tracked plus untracked-but-not-ignored files): no build directories.
copy_source_tree() {
    mkdir -p "$WORK/src"
    if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$SRC" ls-files -z --cached --others --exclude-standard |
            tar -C "$SRC" --null --files-from=- --ignore-failed-read -cf - 2>/dev/null |
            tar -C "$WORK/src" -xf -
    else
        tar -C "$SRC" --exclude='./build*' --exclude='./obj-*' --exclude=./tests/packaging/cache \
            -cf - . | tar -C "$WORK/src" -xf -
    fi
}

if [[ -n ${FORKD_PACKAGING_DEB:-} ]]; then
    DEB=$(realpath "$FORKD_PACKAGING_DEB")
    [[ -f $DEB ]] || fail "FORKD_PACKAGING_DEB: no such file $DEB"
    LINT_TARGET=$DEB
    say "testing the prebuilt $DEB"
else
    say "building the package from a copy of $SRC"
    copy_source_tree
    if ! (cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
            dpkg-buildpackage -us -uc -b -Pnocheck) >"$WORK/build.log" 2>&1; then
        tail -n 60 "$WORK/build.log" >&2
        fail "dpkg-buildpackage failed (log: $WORK/build.log)"
    fi
    debs=("$WORK"/forkd_*_*.deb)
    [[ -f ${debs[0]} ]] || fail "dpkg-buildpackage produced no forkd_*.deb"
    DEB=${debs[0]}
    changes=("$WORK"/forkd_*.changes)
    LINT_TARGET=${changes[0]}
    say "built $(basename "$DEB")"
fi

# A newer build of the same tree (its version bumped), for the live-upgrade check: it is installed
# over the running package and must take over without dropping a connection. Built in place and
# without a clean after the first package was copied aside, so only common/version.cpp compiles
# again and the binaries relink (debhelper's stamps go, so that every step runs again).
BUMPED_VERSION=""
if [[ -z ${FORKD_PACKAGING_DEB:-} ]]; then
    cp "$DEB" "$WORK/forkd-first.deb"
    DEB=$WORK/forkd-first.deb
    version=$(sed -n '1s/^forkd (\([^)]*\)).*/\1/p' "$WORK/src/debian/changelog")
    BUMPED_VERSION="${version%.*}.$((${version##*.} + 1))"
    say "building a bumped $BUMPED_VERSION package for the live-upgrade check"
    sed -i "s/^project(forkd VERSION [0-9.]*/project(forkd VERSION $BUMPED_VERSION/" "$WORK/src/CMakeLists.txt"
    { printf 'forkd (%s) unstable; urgency=medium\n\n  * Packaging check: a newer build for the live-upgrade test.\n\n' "$BUMPED_VERSION"
      printf ' -- forkd developers <forkd@example.org>  %s\n\n' "$(date -R)"
      cat "$WORK/src/debian/changelog"; } >"$WORK/src/debian/changelog.new"
    mv "$WORK/src/debian/changelog.new" "$WORK/src/debian/changelog"
    rm -rf "$WORK/src/debian/debhelper-build-stamp" "$WORK/src/debian/.debhelper" "$WORK/src/debian/files" \
        "$WORK/src"/debian/*.debhelper.log
    if ! (cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
            dpkg-buildpackage -us -uc -b -nc -Pnocheck) >"$WORK/build-next.log" 2>&1; then
        tail -n 60 "$WORK/build-next.log" >&2
        fail "dpkg-buildpackage of the bumped version failed (log: $WORK/build-next.log)"
    fi
    next_debs=("$WORK"/forkd_"$BUMPED_VERSION"_*.deb)
    [[ -f ${next_debs[0]} ]] || fail "the bumped build produced no forkd_${BUMPED_VERSION}_*.deb"
    cp "${next_debs[0]}" "$WORK/forkd-next.deb"
fi

# --- 2. lint -------------------------------------------------------------------------------

say "lintian --fail-on error,warning"
lintian_out=$(lintian --fail-on error,warning "$LINT_TARGET" 2>&1) || {
    printf '%s\n' "$lintian_out" >&2
    fail "lintian reported errors or warnings"
}
printf '%s\n' "$lintian_out" | grep -v 'running with root privileges' || true

mkdir -p "$WORK/deb"
dpkg-deb -x "$DEB" "$WORK/deb"
for unit in forkd.service forkd@.service; do
    unit_file=$WORK/deb/lib/systemd/system/$unit
    [[ -f $unit_file ]] || fail "the package does not ship $unit"
    if ! systemd-analyze security --offline=true --threshold="$SECURITY_THRESHOLD" "$unit_file" \
            >"$WORK/security.txt" 2>&1; then
        cat "$WORK/security.txt" >&2
        fail "$unit: systemd-analyze security exposure above 2.5"
    fi
    say "$unit: $(grep -o 'Overall exposure level.*' "$WORK/security.txt")"
done
for path in usr/sbin/forkd usr/libexec/forkd/forkd-spawner usr/libexec/forkd/forkd-worker usr/bin/forkctl etc/forkd/forkd.conf \
            lib/systemd/system/forkd.socket \
            usr/lib/sysusers.d/forkd.conf usr/share/bash-completion/completions/forkctl \
            usr/share/man/man8/forkd.8.gz usr/share/man/man8/forkctl.8.gz \
            usr/share/man/man5/forkd.conf.5.gz; do
    [[ -e $WORK/deb/$path ]] || fail "the package does not ship /$path"
done

# --- 3. a fresh Debian 12 root with the package installed -----------------------------------

root_tarball() {
    local key tarball mirror
    key=$(printf '%s %s' "$SUITE" "$ROOT_PACKAGES" | sha256sum | cut -c1-12)
    tarball=$CACHE/$SUITE-minbase-$key.tar
    if [[ -f $tarball ]]; then
        echo "$tarball"
        return
    fi
    mirror=${FORKD_DEBIAN_MIRROR:-$(debian_mirror)}
    [[ -n $mirror ]] || skip "no Debian $SUITE mirror in this machine's apt sources (set FORKD_DEBIAN_MIRROR)"
    /usr/lib/apt/apt-helper download-file "$mirror/dists/$SUITE/Release" "$WORK/Release" >/dev/null 2>&1 ||
        skip "Debian's archive is unreachable ($mirror/dists/$SUITE/Release)"
    say "debootstrap $SUITE from $mirror (cached afterwards in $CACHE)" >&2
    mkdir -p "$CACHE"
    if ! debootstrap --variant=minbase --include="$ROOT_PACKAGES" "$SUITE" "$WORK/bootstrap" "$mirror" \
            >"$WORK/debootstrap.log" 2>&1; then
        tail -n 30 "$WORK/debootstrap.log" >&2
        fail "debootstrap failed (log: $WORK/debootstrap.log)"
    fi
    rm -rf "$WORK/bootstrap/var/cache/apt/archives/"*.deb
    tar -C "$WORK/bootstrap" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$WORK/bootstrap"
    echo "$tarball"
}

tarball=$(root_tarball)
say "fresh root from $tarball"
mkdir -p "$ROOT"
tar -C "$ROOT" --numeric-owner -xf "$tarball"

in_root() { chroot "$ROOT" /usr/bin/env -i PATH="$SYS_PATH" LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

say "apt install ./$(basename "$DEB") in the root"
cp "$DEB" "$ROOT/tmp/"
if ! in_root apt-get install -y "/tmp/$(basename "$DEB")" >"$WORK/install.log" 2>&1; then
    say "dependencies missing from the cached root: fetching them"
    in_root apt-get update >>"$WORK/install.log" 2>&1 || true
    if ! in_root apt-get install -y "/tmp/$(basename "$DEB")" >>"$WORK/install.log" 2>&1; then
        tail -n 30 "$WORK/install.log" >&2
        fail "installing the package into the root failed"
    fi
fi
in_root getent passwd forkd >/dev/null || fail "installing the package created no user forkd"
in_root getent group forkd >/dev/null || fail "installing the package created no group forkd"
[[ -L $ROOT/etc/systemd/system/multi-user.target.wants/forkd.service ]] ||
    fail "installing the package did not enable forkd.service"
[[ ! -e $ROOT/etc/systemd/system/sockets.target.wants/forkd.socket ]] ||
    fail "installing the package enabled forkd.socket"

# --- 4. forkd in a chroot -------------------------------------------------------------------

# Runs inside the root, by hand, without systemd: the package as an admin without systemd uses it.
cat >"$ROOT/tmp/chroot-check.sh" <<'EOF'
set -eu
echo_roundtrip() {
    local reply
    exec 3<>/dev/tcp/127.0.0.1/7007
    printf 'packaging\n' >&3
    IFS= read -r -t 10 reply <&3
    exec 3>&-
    [ "$reply" = packaging ] || { echo "echo returned '$reply'" >&2; return 1; }
}
forkd -t >/dev/null
forkd                      # daemon mode: returns once forkd serves
pid=$(cat /run/forkd/forkd.pid)
kill -0 "$pid"
echo_roundtrip
forkctl status
forkctl --json status | grep -q '"state": *"running"'
# The socket (0660, group forkd) admits members of the control group, who may change state;
# anyone else is turned away with "permission denied" (exit 4).
as_operator() { setpriv --reuid=nobody --regid=nogroup --groups=forkd "$@"; }
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
as_operator forkctl -s /run/forkd/forkd.sock status >/dev/null
as_operator forkctl -s /run/forkd/forkd.sock set log-level info
# A monitoring user reads through the read-only socket (forkctl falls back to it), but may not steer.
as_nobody forkctl -s /run/forkd/forkd.sock status >/dev/null
status=0; as_nobody forkctl -s /run/forkd/forkd.sock drain 2>/dev/null || status=$?
[ "$status" -eq 4 ] || { echo "forkctl drain as nobody exited $status, not 4" >&2; exit 1; }
forkctl reload
echo_roundtrip
forkctl stop
if kill -0 "$pid" 2>/dev/null; then echo "forkd still running after forkctl stop" >&2; exit 1; fi
[ ! -e /run/forkd/forkd.pid ] || { echo "pidfile left after stop" >&2; exit 1; }
EOF

say "chroot: forkd -t, forkd (daemon mode), echo, forkctl status/reload/stop"
# New pid, network and mount namespaces: loopback only, nothing on the host's ports, and every
# process started in there dies with the namespace.
if ! unshare --fork --pid --net --mount --propagation private \
        /bin/bash -c 'set -e; ip link set lo up; mount -t proc proc "$1/proc"; mount -t tmpfs tmpfs "$1/run"
                      chroot "$1" /usr/bin/env -i PATH="$2" LANG=C.UTF-8 /bin/bash -x /tmp/chroot-check.sh' \
        check "$ROOT" "$SYS_PATH" >"$WORK/chroot.log" 2>&1; then
    cat "$WORK/chroot.log" >&2
    fail "forkd in the chroot"
fi

# --- 5. forkd under systemd in a booted container -------------------------------------------

MACHINE=forkd-pkg-$$
say "booting the root with systemd-nspawn (machine $MACHINE)"
systemd-nspawn --quiet --boot --directory="$ROOT" --machine="$MACHINE" --register=no --keep-unit \
    --private-network --console=read-only </dev/null >"$WORK/nspawn.log" 2>&1 &
NSPAWN_PID=$!

LEADER=""
for _ in $(seq 1 100); do
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    for child in $(ps -o pid= --ppid "$NSPAWN_PID" 2>/dev/null); do
        if [[ $(cat "/proc/$child/comm" 2>/dev/null) == systemd ]]; then LEADER=$child; fi
    done
    [[ -n $LEADER ]] && break
    sleep 0.2
done
if [[ -z $LEADER ]]; then
    cat "$WORK/nspawn.log" >&2
    fail "systemd-nspawn did not boot the root"
fi

in_machine() {
    nsenter --target="$LEADER" --all /usr/bin/env -i PATH="$SYS_PATH" LANG=C.UTF-8 "$@"
}
machine_fail() {
    in_machine journalctl --no-pager -n 80 -u 'forkd*' >&2 || true
    fail "$*"
}

# Until systemd has its private socket, systemctl cannot even ask; then it reports the boot.
state=""
for _ in $(seq 1 240); do
    state=$(in_machine systemctl is-system-running 2>/dev/null || true)
    [[ $state == running || $state == degraded || $state == maintenance || $state == stopping ]] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    sleep 0.5
done
say "container booted: ${state:-no answer from systemd}"
[[ $state == running || $state == degraded ]] || machine_fail "the container did not finish booting ($state)"

# Live upgrade by the package: a connection held open through forkd.service and one through a
# forkd@ instance survive installing the bumped build over the running one; the same MainPIDs
# now report the new version and generation 1.
if [[ -n $BUMPED_VERSION ]]; then
    cp "$WORK/forkd-next.deb" "$ROOT/root/forkd-next.deb"
    cat >"$ROOT/root/upgrade-check.sh" <<'EOF'
set -eu
next=$1
systemctl is-active forkd.service
printf 'listen = 127.0.0.1:7011\nhandler = echo\n' >/etc/forkd/held.conf
systemctl start forkd@held.service
main_pid=$(systemctl show -p MainPID --value forkd.service)
held_pid=$(systemctl show -p MainPID --value forkd@held.service)
exec 4<>/dev/tcp/127.0.0.1/7007 5<>/dev/tcp/127.0.0.1/7011
printf 'before\n' >&4; IFS= read -r -t 10 reply <&4; [ "$reply" = before ]
printf 'before\n' >&5; IFS= read -r -t 10 reply <&5; [ "$reply" = before ]
DEBIAN_FRONTEND=noninteractive dpkg -i /root/forkd-next.deb
[ "$(systemctl show -p MainPID --value forkd.service)" = "$main_pid" ]
[ "$(systemctl show -p MainPID --value forkd@held.service)" = "$held_pid" ]
forkctl --json status | grep -q "\"version\": *\"$next\""
forkctl --json status | grep -q '"generation": *1'
forkctl -i held --json status | grep -q "\"version\": *\"$next\""
printf 'after\n' >&4; IFS= read -r -t 10 reply <&4; [ "$reply" = after ]
printf 'after\n' >&5; IFS= read -r -t 10 reply <&5; [ "$reply" = after ]
exec 4>&- 5>&-
journalctl -u forkd.service --no-pager -o cat | grep -q 'event=upgraded'
systemctl stop forkd@held.service
systemctl is-active forkd.service
EOF
    say "live upgrade: dpkg -i forkd $BUMPED_VERSION over the running one, connections held"
    if ! in_machine /bin/bash -x /root/upgrade-check.sh "$BUMPED_VERSION" >"$WORK/upgrade.log" 2>&1; then
        cat "$WORK/upgrade.log" >&2
        machine_fail "live upgrade by the package"
    fi
fi

cat >"$ROOT/root/systemd-check.sh" <<'EOF'
set -eu
echo_roundtrip() {
    local port=$1 reply
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'packaging\n' >&3
    IFS= read -r -t 10 reply <&3
    exec 3>&-
    [ "$reply" = packaging ] || { echo "echo on port $port returned '$reply'" >&2; return 1; }
}
first_line() {
    local port=$1 reply
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    IFS= read -r -t 10 reply <&3
    exec 3>&-
    printf '%s\n' "$reply"
}
in_journal() {  # the journal may lag a moment behind the daemon
    local unit=$1 pattern=$2
    for _ in $(seq 1 50); do
        journalctl -u "$unit" --no-pager -o cat | grep -q -- "$pattern" && return 0
        sleep 0.1
    done
    echo "$unit: no '$pattern' in the journal" >&2
    return 1
}
# Started at boot because the package enabled it.
systemctl is-active forkd.service
forkctl status
echo_roundtrip 7007
in_journal forkd.service 'event=connection-end'
# Structured entries (stderr is the journal's stream): one connection's fields in -o json.
entry=$(journalctl -u forkd.service --no-pager -o json FORKD_EVENT=connection-end | tail -n 1)
for field in '"FORKD_CONN_ID":"' '"REMOTE_ADDR":"127.0.0.1"' '"REMOTE_PORT":"' '"FORKD_DURATION_USEC":"' \
             '"FORKD_EXIT":"' '"FORKD_BYTES_IN":"10"' '"FORKD_BYTES_OUT":"10"' '"PRIORITY":"6"' \
             '"MESSAGE":"event=connection-end '; do
    case $entry in *"$field"*) ;; *) echo "connection-end entry without $field: $entry" >&2; exit 1 ;; esac
done
forkctl metrics | grep -q '^forkd_connections_accepted_total [1-9]'
systemctl reload forkd.service
systemctl is-active forkd.service
in_journal forkd.service 'event=reload result=ok'
forkctl --json status | grep -q '"state": *"running"'
echo_roundtrip 7007

# A handler's stderr line carries its connection's FORKD_CONN_ID: one connection's whole story.
printf '%s\n' 'listen = 127.0.0.1:7011' 'exec = /bin/sh -c "echo from-the-handler >&2; echo served"' \
    >/etc/forkd/stderr.conf
systemctl start forkd@stderr.service
[ "$(first_line 7011)" = served ]
in_journal forkd@stderr.service 'event=connection-end'
stderr_entry=$(journalctl -u forkd@stderr.service --no-pager -o json FORKD_EVENT=handler-stderr | tail -n 1)
case $stderr_entry in *'"FORKD_CONN_ID":"1"'*) ;; *) echo "handler-stderr without FORKD_CONN_ID: $stderr_entry" >&2; exit 1 ;; esac
journalctl -u forkd@stderr.service --no-pager -o cat FORKD_CONN_ID=1 | grep -q 'event=handler-stderr id=1 line=from-the-handler'
journalctl -u forkd@stderr.service --no-pager -o cat FORKD_CONN_ID=1 | grep -q 'event=connection-end id=1'
systemctl stop forkd@stderr.service

# Inside the sandbox an exec'd handler still switches to its configured user.
printf 'listen = 127.0.0.1:7009\nexec = /usr/bin/id -un\nuser = forkd\n' >/etc/forkd/whoami.conf
systemctl start forkd@whoami.service
[ "$(first_line 7009)" = forkd ] || { echo "the handler did not run as forkd" >&2; exit 1; }
systemctl stop forkd@whoami.service
# ... and the sandbox applies to it: /etc is read-only (ProtectSystem=strict).
printf '%s\n' 'listen = 127.0.0.1:7010' \
    'exec = /bin/sh -c "/usr/bin/touch /etc/forkd-probe 2>/dev/null && echo writable || echo read-only"' \
    >/etc/forkd/probe.conf
systemctl start forkd@probe.service
[ "$(first_line 7010)" = read-only ] || { echo "the handler could write to /etc" >&2; exit 1; }
systemctl stop forkd@probe.service

# An instance beside it; stopping the instance must not take the shared /run/forkd with it.
printf 'listen = 127.0.0.1:7008\nhandler = echo\n' >/etc/forkd/second.conf
systemctl start forkd@second.service
systemctl is-active forkd@second.service
forkctl -i second status
[ -e /run/forkd/second.pid ] && [ -S /run/forkd/second.sock ]
echo_roundtrip 7008
systemctl stop forkd@second.service
forkctl status >/dev/null

systemctl stop forkd.service
if systemctl is-active --quiet forkd.service; then echo "forkd.service active after stop" >&2; exit 1; fi
[ ! -e /run/forkd/forkd.pid ] || { echo "pidfile left after stop" >&2; exit 1; }

# Socket activation: forkd.socket owns the listener, forkd.service starts on the first client.
sed -i 's/^listen = .*/listen = systemd/' /etc/forkd/forkd.conf
systemctl start forkd.socket
echo_roundtrip 7007
systemctl is-active forkd.service
forkctl status
systemctl stop forkd.socket forkd.service
EOF

say "systemd: forkd.service is-active, forkctl status, reload, forkd@second, stop, forkd.socket"
if ! in_machine /bin/bash -x /root/systemd-check.sh >"$WORK/systemd.log" 2>&1; then
    cat "$WORK/systemd.log" >&2
    machine_fail "forkd under systemd"
fi
failed_units=$(in_machine systemctl list-units --failed --plain --no-legend 'forkd*' 2>&1 || true)
[[ -z $failed_units ]] || machine_fail "failed units: $failed_units"

in_machine systemctl poweroff >/dev/null 2>&1 || true
for _ in $(seq 1 150); do
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    sleep 0.2
done
if kill -0 "$NSPAWN_PID" 2>/dev/null; then
    kill -KILL "$NSPAWN_PID"
fi
wait "$NSPAWN_PID" 2>/dev/null || true
NSPAWN_PID=""

say "packaging check passed in $((SECONDS - started))s"
