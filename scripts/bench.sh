#!/usr/bin/env bash
# make bench: moor beside runc and crun on this machine, in one run.
# Installs what it needs from Debian (runc, crun, containerd; the build and test deps come
# from scripts/deps.sh), builds the benchmark like moor itself (static, cgo,
# seccomp) and runs it as root. It prints a table and, last, one JSON line.
# Beside Debian's runc it measures runc_same_lib: runc of the release whose
# libcontainer moor links, built once into bin/ by the Go toolchain.
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
# runc as its Makefile's `make static` builds it (cgo, seccomp, static,
# urfave_cli_no_docs, netgo osusergo), less libpathrs (a Rust library that
# moor does not link either), and linked like moor (not PIE, stripped), so
# that the two differ only in their own code.
runc_version=$(go list -m -f '{{.Version}}' github.com/opencontainers/runc)
same_lib=bin/runc-$runc_version/runc
if [ ! -x "$same_lib" ]; then
  GOBIN=$PWD/$(dirname "$same_lib") CGO_ENABLED=1 go install -trimpath \
    -tags "seccomp urfave_cli_no_docs netgo osusergo" \
    -ldflags "-s -w -extldflags -static -X main.gitCommit=$runc_version" \
    "github.com/opencontainers/runc@$runc_version"
fi
exec bin/moorbench --moor "$moor" --runc-same-lib "$PWD/$same_lib" "$@"
