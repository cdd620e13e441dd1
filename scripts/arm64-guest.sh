#!/usr/bin/env bash
# Fetches what the arm64 guest test boots under TCG, into DIR (default
# bin/arm64-guest): Debian's arm64 kernel (vmlinuz and its modules, with a
# modules.dep made by depmod) and busybox-static for arm64. The packages
# come from Debian's archive through apt, with an apt state of their own in
# DIR: nothing is installed with dpkg (an arm64 kernel's postinst would put
# it into this host's /boot and boot loader) and the host's apt lists are
# left as they are. Does nothing when DIR has them already.
set -euo pipefail
dir=${1:-"$(dirname "$0")/../bin/arm64-guest"}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[ -f "$dir/vmlinuz" ] && [ -f "$dir/busybox" ] && [ -f "$dir/release" ] && exit 0
state="$dir/apt"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
touch "$state/status"
opts=(-o APT::Architectures=arm64 -o APT::Architecture=arm64
  -o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache"
  -o Dir::State::status="$state/status" -o Debug::NoLocking=1 -qq)
apt-get "${opts[@]}" update
# linux-image-arm64 names the current kernel's package.
kpkg=$(apt-cache "${opts[@]}" depends linux-image-arm64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "arm64-guest: no kernel package behind linux-image-arm64" >&2; exit 1; }
(cd "$state/debs" && apt-get "${opts[@]}" download "$kpkg" busybox-static 2>/dev/null)
rm -rf "$dir/root" && mkdir -p "$dir/root"
for deb in "$state"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
release=${kpkg#linux-image-}
depmod -b "$dir/root" "$release"
cp "$dir/root/boot/vmlinuz-$release" "$dir/vmlinuz"
cp "$dir/root/bin/busybox" "$dir/busybox"
# Keep of the modules what a container app's guest loads (moor's
# guestModules), and depmod's indexes.
mods="$dir/root/lib/modules/$release"
keep=$(modprobe -d "$dir/root" -S "$release" -a --show-depends virtio_pci virtio_console 9pnet_virtio 9p overlay | awk '$1 == "insmod" {print $2}')
find "$mods/kernel" -type f | grep -vxF "$keep" | xargs rm -f
find "$mods/kernel" -type d -empty -delete
rm -rf "$dir/root/boot" "$dir/root/usr" "$dir/root/bin" "$dir/root/etc" "$state"
echo "$release" > "$dir/release"
