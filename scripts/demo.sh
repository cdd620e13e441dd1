#!/usr/bin/env bash
# A busybox task through its whole life, by name and by anchor PID:
# create → created → start → running → exec → stop → stopped → delete,
# then a foreground run that exits with the task's status.
set -euo pipefail
moor=$(realpath "${1:-bin/moor}")
ns=demo
id=demo
work=$(mktemp -d /tmp/moor-demo.XXXXXX)
m() { "$moor" --namespace "$ns" "$@"; }
cleanup() { m delete --force "$id" >/dev/null 2>&1 || true; m delete --force hello >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "a busybox bundle in $work"
mkdir -p "$work/rootfs/bin" "$work/rootfs/proc" "$work/rootfs/dev" "$work/rootfs/sys" "$work/rootfs/tmp"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for a in $("$work/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$work/rootfs/bin/$a"; done
m spec --bundle "$work"
# The anchor traps SIGTERM, as a well-behaved PID 1 does.
sed -i 's|^\(\s*\)"sh"$|\1"sh", "-c", "trap \\"echo bye; exit 0\\" TERM; echo hello from $(hostname); while :; do sleep 0.1; done"|' "$work/config.json"

say "moor create $id"
m create --bundle "$work" "$id"
pid=$(m state "$id" | sed -n 's/^  "pid": \([0-9]*\),/\1/p')
m state "$id"
echo "anchor $pid: $(grep NSpid /proc/$pid/status)   (host PID, then PID 1 in its own namespace)"
echo "cgroup:   $(grep memory /proc/$pid/cgroup)"
echo "memory.limit_in_bytes: $(cat /sys/fs/cgroup/memory/$ns/$id/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/$ns/$id/memory.max)"

say "moor start $pid   (by anchor PID)"
m start "$pid"
m list
say "moor ps $id; moor exec $id ps"
m ps "$id"
m exec "$id" ps

say "moor stop $pid   (SIGTERM, then SIGKILL after --timeout)"
m stop --timeout 5s "$pid"
m state "$id" | grep '"status"'

say "moor delete $id"
m delete "$id"
m list
if [ -e "/sys/fs/cgroup/memory/$ns/$id" ] || [ -e "/run/moor/$ns/$id" ]; then echo "left behind!"; exit 1; fi
echo "nothing left: no cgroup, no state"

say "moor run hello   (foreground: exits with the task's status)"
sed -i 's|"sh", "-c", ".*"$|"sh", "-c", "echo hello; exit 3"|' "$work/config.json"
rc=0; m run --bundle "$work" hello || rc=$?
echo "exit status $rc"
