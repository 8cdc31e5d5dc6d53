#!/usr/bin/env bash
# bench/targets.sh: the per-target figures of the image builder (issue 12),
# measured the way test.docker.sh's image test builds and boots, but into a
# private directory, so the shared out/ and artifact cache are not touched.
#
#   bench/targets.sh [target...]       (default x64-uefi arm64-qemu arm-qemu malta-qemu)
#
# For each target it prints:
#   - cold build with a warm package cache: mkimage -offline with a fresh
#     cache holding only the verified packages and locks of PV_CACHE
#     (hard links, as test.docker.sh does) and no artifacts, so the runtime
#     link, initrd, squashfs, containers and image are all made (the Go
#     build cache stays warm); wall and CPU seconds (user+system of mkimage
#     and everything it ran);
#   - no-change rebuild: mkimage again into the same output (wall);
#   - the image size (apparent and allocated), the compressed initrd
#     (trails/0/.pv/pv-initrd.img) and the Pantavisor binary (work/bin);
#   - QEMU start → kernel runs /init → "rev=0 status=READY" (every container
#     of trails/0 STARTED) under TCG, from mkimage/boottest's
#     TestBootBIOSAndUEFI: one line per firmware (GRUB targets boot SeaBIOS
#     and OVMF at once, so those two share the CPUs); rpiab targets from
#     TestBootRaspi (raspi3b / raspi2b).
#
# Environment: BENCH_DIR (default /tmp/pv-bench-targets-$(id -un)), PV_CACHE
# (the warm cache, default ~/.cache/pantavisor-mkimage; its locks/ must hold
# each target's lock: build it once with build.docker.sh), BENCH_RUNS (how
# many times each measure is taken, default 1; with more, each run is
# printed and the median follows). The machine is shared: the load is
# printed first and last.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dir=${BENCH_DIR:-/tmp/pv-bench-targets-$(id -un)}
cache=${PV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pantavisor-mkimage}
runs=${BENCH_RUNS:-1}
export PATH=/usr/local/go/bin:$PATH
[ $# -gt 0 ] || set -- x64-uefi arm64-qemu arm-qemu malta-qemu
mkdir -p "$dir"

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# report <label> <unit> <file of one number per run>: the median, and the
# runs when there are several.
report() {
	local more=
	[ "$runs" -gt 1 ] && more="  (median of $(paste -sd' ' "$3"))"
	printf '  %-34s %9s %s%s\n' "$1" "$(median <"$3")" "$2" "$more"
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# timed <log> <cmd...>: run cmd with its output in log; sets wall and cpu
# (user+system of cmd and its children, from bash's time).
timed() {
	local log=$1 t
	shift
	local TIMEFORMAT='%R %U %S'
	if ! t=$({ time "$@" >"$log" 2>&1; } 2>&1); then
		echo "bench: $* failed:" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	wall=$(awk '{ print $1 }' <<<"$t")
	cpu=$(awk '{ printf "%.2f", $2 + $3 }' <<<"$t")
}

# secs: a Go duration (1m2.3s, 950ms, 20.9s) in seconds.
secs() {
	awk '{ s = 0; d = $1
		if (match(d, /^[0-9.]+m[^s]/)) { s += substr(d, 1, index(d, "m") - 1) * 60; d = substr(d, index(d, "m") + 1) }
		if (d ~ /ms$/) s += substr(d, 1, length(d) - 2) / 1000; else if (d ~ /s$/) s += substr(d, 1, length(d) - 1)
		printf "%.1f\n", s }'
}

uptime
echo "== bench/targets.sh: $* ($(nproc) cores, $(go env GOVERSION), $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'), runs $runs)"
CGO_ENABLED=0 go build -trimpath -tags=nethttpomithttp2 -o "$dir/mkimage" ./mkimage/cmd/mkimage

for target in "$@"; do
	echo "== $target"
	t=$dir/$target
	rm -rf "$t"
	mkdir -p "$t"
	for i in $(seq "$runs"); do
		rm -rf "$t/cache" "$t/out"
		mkdir -p "$t/cache"
		# the verified packages are shared (hard links); built artifacts are not
		# src: Debian source packages a target builds its boot loader from
		# (verified downloads, like deb/); the build itself is an artifact
		for d in deb locks src; do [ ! -e "$cache/$d" ] || cp -al "$cache/$d" "$t/cache/"; done
		timed "$t/cold.log" "$dir/mkimage" -repo "$repo" -offline -cache "$t/cache" -out "$t/out" "$target"
		echo "$wall" >>"$t/cold-wall"
		echo "$cpu" >>"$t/cold-cpu"
		timed "$t/rebuild.log" "$dir/mkimage" -repo "$repo" -offline -cache "$t/cache" -out "$t/out" "$target"
		echo "$wall" >>"$t/rebuild-wall"
	done
	report "cold build, warm package cache" "s wall" "$t/cold-wall"
	report "  (CPU)" "s user+sys" "$t/cold-cpu"
	report "no-change rebuild" "s wall" "$t/rebuild-wall"

	img=$(ls "$t/out/$target"-pv-*MiB.img)
	work=$t/out/work
	printf '  %-34s %9s MiB apparent, %s MiB allocated\n' "image $(basename "$img")" \
		"$(mib "$(stat -c %s "$img")")" "$(mib "$(($(stat -c '%b * %B' "$img")))")"
	# rpiab: the initrd is in the boot image (work/bsp/pantavisor), its
	# download the .img.xz
	initrd=$work/storage/trails/0/.pv/pv-initrd.img
	[ -e "$initrd" ] || initrd=$work/bsp/pantavisor
	printf '  %-34s %9s MiB\n' "compressed initrd" "$(mib "$(stat -L -c %s "$initrd")")"
	[ -e "$img.xz" ] && printf '  %-34s %9s MiB\n' "$(basename "$img").xz" "$(mib "$(stat -c %s "$img.xz")")"
	printf '  %-34s %9s MiB\n' "pantavisor binary" "$(mib "$(stat -c %s "$work/bin/pantavisor")")"

	# what the image test waits for: READY with every container STARTED
	expect=
	for c in "$work"/storage/trails/0/*/run.json; do
		c=$(basename "$(dirname "$c")")
		[ "$c" != bsp ] && expect="${expect}platform=$c status=STARTED;"
	done
	test=TestBootBIOSAndUEFI
	grep -q '^type = "rpiab"' "targets/$target.toml" && test=TestBootRaspi
	for i in $(seq "$runs"); do
		if ! PV_TEST_EXPECT=$expect PV_TEST_MARKER='rev=0 status=READY' PV_TEST_IMAGE=$img \
			go test -count=1 -v -timeout 30m -run "^$test\$" ./mkimage/boottest/ >"$t/boot.log" 2>&1; then
			echo "bench: boot of $target failed:" >&2
			tail -30 "$t/boot.log" >&2
			exit 1
		fi
		# "<fw>: "… rev=0 status=READY …" after <d> (kernel ran /init after <d>)"
		sed -n 's/.*: \([A-Za-z0-9-]*\): ".*" after \([0-9.ms]*\) (kernel ran \/init after \([0-9.ms]*\))$/\1 \3 \2/p' "$t/boot.log" |
			while read -r fw init ready; do
				echo "$(secs <<<"$init")" >>"$t/init-$fw"
				echo "$(secs <<<"$ready")" >>"$t/ready-$fw"
			done
	done
	for f in "$t"/init-*; do
		[ -e "$f" ] || { echo "bench: no boot figures in $t/boot.log" >&2; exit 1; }
		fw=${f##*/init-}
		report "QEMU TCG $fw: start → /init" "s" "$f"
		report "QEMU TCG $fw: start → READY" "s" "$t/ready-$fw"
	done
done
uptime
