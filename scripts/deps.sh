#!/usr/bin/env bash
# Installs the Debian packages moor's build and tests need, if missing.
set -euo pipefail
pkgs=(
  busybox-static libseccomp-dev gcc make iproute2   # build, task rootfs, network tests
  qemu-system-x86 linux-image-amd64 cpio gzip       # hypervisor tasks: a real guest under TCG
  ovmf                                              # mode fml: UEFI firmware and its variable store
  containerd runc podman conmon catatonit           # real clients: containerd's shim, its CRI plugin, podman
  strace                                            # the crash tests: SIGKILL injected at a syscall
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
dpkg --configure -a
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
