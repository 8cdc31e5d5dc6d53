#!/usr/bin/env bash
# install-deps.sh: make this Debian/Ubuntu machine able to build, run and test
# Pantavisor. Idempotent: installs only what is missing. Called by
# build.docker.sh and test.docker.sh; safe to run by hand.
#
#   scripts/install-deps.sh [build|test|all]   (default: all)
set -euo pipefail

what=${1:-all}
gomin=1.21

need_go() {
	if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
		export PATH=/usr/local/go/bin:$PATH
	fi
	if ! command -v go >/dev/null 2>&1; then
		echo "install-deps: Go >= $gomin is required (https://go.dev/doc/install); put it on PATH or in /usr/local/go" >&2
		exit 1
	fi
	local v
	v=$(go env GOVERSION | sed 's/^go//')
	if [ "$(printf '%s\n%s\n' "$gomin" "$v" | sort -V | head -1)" != "$gomin" ]; then
		echo "install-deps: Go $v is older than $gomin" >&2
		exit 1
	fi
}

# Debian packages per purpose. The runtime needs liblxc (cgo), the tests need
# real LXC, squashfs and a static busybox for container rootfs, the image
# builder needs the cross toolchains, e2fsprogs, grub and qemu to boot-test.
# With CI=true a test whose tool is missing fails (internal/testenv), so
# every tool a Go test looks for is here: mksquashfs (squashfs-tools),
# mkfs.ext4/debugfs/dumpe2fs/e2fsck (e2fsprogs), sfdisk (fdisk), losetup
# (mount), partx/blkid (util-linux), logger (bsdutils), ip (iproute2), nft
# (nftables: the NAT of container network pools), xz and zstd (the
# initrd's compressors, mkimage/initrd; a Go encoder stands in without them),
# grub-editenv/grub-mkimage/grub-script-check (grub-common), fw_setenv
# (libubootenv-tool), mkfs.vfat (dosfstools), mcopy (mtools), gcc
# (build-essential), qemu-system-x86_64 (qemu-system-x86), mkimage
# (u-boot-tools), the U-Boot firmware of the arm boot tests (u-boot-qemu)
# and ssh/scp/ssh-keygen of the debug ssh tests (openssh-client); toybox:
# the App Engine network fixture's sntp (pv-network's time sync);
# malta-qemu builds U-Boot from source (mkimage/ubootbuild: dpkg-source from
# dpkg-dev, patch, bison, flex, bc, libssl-dev for its host tools, Debian's
# mipsel cross gcc) and boots it in qemu-system-mipsel (qemu-system-mips).
# The tests alone need chromium: the pvr-sdk web UI runs in headless Chromium
# (runtime/pvrsdk TestWebUIBrowser); and dbus-daemon (with dbus-send from
# dbus-bin): the xconnect dbus tests run a real bus (runtime/xconnect, the
# xc-dbus fixture of tests/xconnect/3); and wpasupplicant: pv-network's
# Wi-Fi configurations are read by the real wpa_supplicant
# (mkimage/container TestWifiConf, TestNetworkWifi); and cryptsetup-bin:
# runtime/dmverity checks its hash devices against the real veritysetup.
runtime_pkgs="build-essential pkg-config lxc lxc-dev libcap-dev squashfs-tools e2fsprogs busybox-static util-linux mount bsdutils fdisk iproute2 nftables xz-utils zstd bzip2 cpio openssh-client toybox"
image_pkgs="libubootenv-tool u-boot-tools u-boot-qemu gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross gcc-mipsel-linux-gnu libc6-dev-mipsel-cross qemu-system-x86 qemu-system-arm qemu-system-mips bison flex bc libssl-dev patch ovmf seabios grub-efi-amd64-bin grub-pc-bin grub-common mtools dosfstools dpkg-dev"
test_pkgs="chromium dbus-daemon dbus-bin wpasupplicant cryptsetup-bin"

case $what in
build) pkgs="$runtime_pkgs $image_pkgs" ;;
test) pkgs="$runtime_pkgs $image_pkgs $test_pkgs" ;;
all) pkgs="$runtime_pkgs $image_pkgs $test_pkgs" ;;
*) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

need_go

# One dpkg-query for all packages (a satisfied check costs ~30 ms, not one
# process per package): the names whose status is "installed".
declare -A installed=()
while read -r name status; do
	[ "$status" = installed ] && installed[${name%%:*}]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $pkgs 2>/dev/null || true)
missing=()
for p in $pkgs; do
	[ -n "${installed[$p]:-}" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing Debian packages; run as root:" >&2
		echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=900 update -qq
	apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
