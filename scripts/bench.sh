#!/usr/bin/env bash
# make bench: moor beside runc and crun on this machine, in one run.
# Installs what it needs from Debian (runc, crun, containerd; the build and test deps come
# from scripts/deps.sh), builds the benchmark like moor itself (static, cgo,
# seccomp) and runs it as root. It prints a table and, last, one JSON line.
# Usage: scripts/bench.sh [path/to/moor] [moorbench flags, e.g. --rounds 30]
set -euo pipefail
moor=$(realpath "${1:-bin/moor}")
shift || true
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (it makes namespaces, cgroups and mounts)" >&2
  exit 1
fi
pkgs=(runc crun busybox-static qemu-system-x86 linux-image-amd64 containerd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cd "$(dirname "$0")/.."
# The benchmark binary is also the init of its in-process tasks: build it as
# moor is built, and keep it apart from the state roots (they go to $TMPDIR).
go build -trimpath -tags "seccomp netgo osusergo" -ldflags "-s -w -extldflags -static" \
  -o bin/moorbench ./bench/cmd/moorbench
exec bin/moorbench --moor "$moor" "$@"
