#!/usr/bin/env bash
# bench/boot.sh: boot figures of x64-uefi under QEMU TCG (issue 20): QEMU
# start → kernel runs /init → "rev=0 status=READY", with SeaBIOS and OVMF,
# medians of repeated first boots, QEMU's CPU time beside the wall time,
# and the boot timeline Pantavisor prints on the console
# ("boot: storage …, bsp …, containers started …, READY … (since /init)").
#
#   bench/boot.sh                  this tree's image against main's
#   bench/boot.sh <image>...       just these images (label=path allowed)
#   BENCH_FW=uboot BENCH_ARCH=arm64 bench/boot.sh out/arm64-qemu/arm64-qemu-pv-1024MiB.img
#
# Without arguments it builds x64-uefi from this tree and from BENCH_BASE
# (a git revision, default main; a detached worktree under BENCH_DIR) into
# private output directories (the shared out/ is not touched; the package
# and artifact cache PV_CACHE is shared, as build.docker.sh does), then
# boots them in turn, run after run, so both share the machine's load.
#
# Environment: BENCH_DIR (default /tmp/pv-bench-boot-$(id -un)), BENCH_BASE,
# BENCH_RUNS (boots per image and firmware, default 5), BENCH_FW (default
# bios,uefi), BENCH_ARCH (of the images given, default amd64), PV_CACHE.
# The machine is shared: the load is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dir=${BENCH_DIR:-/tmp/pv-bench-boot-$(id -un)}
cache=${PV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pantavisor-mkimage}
export PATH=/usr/local/go/bin:$PATH
mkdir -p "$dir"

# build <src> <out>: x64-uefi from checkout src into out; prints the image.
build() {
	local src=$1 out=$2
	(cd "$src" && CGO_ENABLED=0 go build -trimpath -tags=nethttpomithttp2 -o "$out.mkimage" ./mkimage/cmd/mkimage)
	if ! "$out.mkimage" -repo "$src" -cache "$cache" -out "$out" x64-uefi >"$out.log" 2>&1; then
		echo "bench: build in $src failed:" >&2
		tail -20 "$out.log" >&2
		exit 1
	fi
	ls "$out"/x64-uefi-pv-*MiB.img
}

uptime
echo "== bench/boot.sh ($(nproc) cores, $(go env GOVERSION), $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'))"
if [ $# -eq 0 ]; then
	base=${BENCH_BASE:-main}
	rm -rf "$dir/base-src"
	git worktree prune
	git worktree add -f --detach "$dir/base-src" "$base" >/dev/null
	trap 'git worktree remove -f "$dir/base-src"' EXIT
	set -- "base($base)=$(build "$dir/base-src" "$dir/out-base")" "this=$(build "$repo" "$dir/out-this")"
fi
go run ./bench/bootbench -runs "${BENCH_RUNS:-5}" -fw "${BENCH_FW:-bios,uefi}" -arch "${BENCH_ARCH:-amd64}" "$@"
uptime
