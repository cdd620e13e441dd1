#!/usr/bin/env bash
# Installs the Debian packages moor's build and tests need, if missing.
set -euo pipefail
pkgs=(
  busybox-static libseccomp-dev gcc make iproute2   # build, task rootfs, network tests
  qemu-system-x86 linux-image-amd64 cpio gzip       # hypervisor tasks: a real guest under TCG
  qemu-system-arm                                   # arm64 guests (qemu-system-aarch64, machine virt)
  ovmf                                              # mode fml: UEFI firmware and its variable store
  containerd runc podman conmon catatonit           # real clients: containerd's shim, its CRI plugin, podman
  strace                                            # the crash tests: SIGKILL injected at a syscall
  mmdebstrap                                        # the image tests: a Debian root with python3, cached in bin/images
)
# Debian's arm64 kernel and busybox for the arm64 guest test, fetched into
# bin/arm64-guest (not installed); a fixture that cannot be fetched fails
# here, not later as a skipped test.
"$(dirname "$0")/arm64-guest.sh"
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
dpkg --configure -a
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
