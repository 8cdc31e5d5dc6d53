#!/usr/bin/env bash
# bench/rebuild.sh: time an image build the way build.docker.sh runs it
# (install-deps, tool checks, go build of mkimage, mkimage), but into a
# private output directory, so it never touches the shared out/.
#
#   bench/rebuild.sh [target]          (default x64-uefi)
#
# It prints:
#   - the fixed costs: scripts/install-deps.sh build, go build of mkimage
#     (both when nothing changed);
#   - optionally (BENCH_COLD=1) a cold-artifact build: a private cache with
#     the package cache (deb/, unpacked/, locks/ hard-linked from PV_CACHE)
#     but no artifacts/ (initrd, squashfs, containers... are all made);
#     BENCH_ONLINE=1 makes that build resolve packages with apt (no -offline);
#   - a first build into a fresh output directory, then a no-change rebuild,
#     with a per-stage table;
#   - the sha256 of the image and the .pvr.tgz of each build: they must be
#     identical (exit 1 otherwise).
#
# Environment: BENCH_DIR (default /tmp/pv-bench-$(id -un)), PV_CACHE (the
# warm cache, default ~/.cache/pantavisor-mkimage), BENCH_COLD, BENCH_ONLINE,
# BENCH_COLD_RUNS (cold-artifact builds, default 1: each is printed, then
# the medians of wall and CPU time, and the stages of the median run),
# BENCH_RUNS (no-change rebuilds and whole sequences to time, default 3:
# each is printed, then the median; the machine is shared, look at the load).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
target=${1:-x64-uefi}
dir=${BENCH_DIR:-/tmp/pv-bench-$(id -un)}
cache=${PV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pantavisor-mkimage}
export PATH=/usr/local/go/bin:$PATH
mkdir -p "$dir"

. bench/lib.sh

sums() {
	local out=$1
	sha256sum "$out"/"$target"-pv-*MiB.img "$out/$target.pvr.tgz" 2>/dev/null | awk '{ print $1 }' | paste -sd' '
}

mkimage_run() { # <out> [mkimage flags...]
	local out=$1
	shift
	"$dir/mkimage" -repo "$repo" -out "$out" "$@" "$target"
}

whole() { # what build.docker.sh does for "image", with a private out dir
	scripts/install-deps.sh build
	for tool in go apt-get apt-cache dpkg grub-mkimage mkfs.ext4 debugfs mksquashfs qemu-system-x86_64; do
		command -v "$tool" >/dev/null
	done
	CGO_ENABLED=0 go build -trimpath -tags=nethttpomithttp2 -o "$dir/mkimage" ./mkimage/cmd/mkimage
	mkimage_run "$dir/out" -offline -cache "$cache"
}

echo "== bench $target ($(nproc) cores, $(go env GOVERSION), $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'))"
CGO_ENABLED=0 go build -trimpath -tags=nethttpomithttp2 -o "$dir/mkimage" ./mkimage/cmd/mkimage
timed "install-deps.sh build (no change)" scripts/install-deps.sh build
timed "go build mkimage (no change)" env CGO_ENABLED=0 go build -trimpath -tags=nethttpomithttp2 -o "$dir/mkimage" ./mkimage/cmd/mkimage

declare -A sum
rm -f "$dir/stages-cold"
if [ "${BENCH_COLD:-}" = 1 ]; then
	flags=(-offline)
	label="cold artifacts, offline"
	if [ "${BENCH_ONLINE:-}" = 1 ]; then
		flags=()
		label="cold artifacts, apt online"
	fi
	: >"$dir/t-cold"
	cruns=${BENCH_COLD_RUNS:-1}
	for i in $(seq "$cruns"); do
		rm -rf "$dir/out-cold"
		coldcache "$cache" "$dir/cold-cache"
		timed "mkimage: $label $i" mkimage_run "$dir/out-cold" -cache "$dir/cold-cache" "${flags[@]}"
		echo "$last $lastcpu" >>"$dir/t-cold"
		stages "$dir/mkimage: $label $i.log" >"$dir/stages-cold.$i"
		sum[cold$i]=$(sums "$dir/out-cold")
	done
	# the stages of the run with the median wall time
	mid=$(awk '{ print NR, $1 }' "$dir/t-cold" | sort -k2 -n | awk -v m=$(( (cruns + 1) / 2 )) 'NR == m { print $1 }')
	cp "$dir/stages-cold.$mid" "$dir/stages-cold"
	printf '%-36s %7ss wall %7ss cpu  (load: %s)\n' "median cold artifacts ($cruns)" \
		"$(cut -d' ' -f1 "$dir/t-cold" | median)" "$(cut -d' ' -f2 "$dir/t-cold" | median)" "$(cut -d' ' -f1-3 /proc/loadavg)"
fi

rm -rf "$dir/out"
timed "mkimage: fresh out dir" mkimage_run "$dir/out" -offline -cache "$cache"
stages "$dir/mkimage: fresh out dir.log" >"$dir/stages-1"
sum[first]=$(sums "$dir/out")
runs=${BENCH_RUNS:-3}
: >"$dir/t-rebuild"
: >"$dir/t-whole"
for i in $(seq "$runs"); do
	timed "mkimage: no-change rebuild $i" mkimage_run "$dir/out" -offline -cache "$cache"
	echo "$last" >>"$dir/t-rebuild"
	stages "$dir/mkimage: no-change rebuild $i.log" >"$dir/stages-2.$i"
done
cp "$dir/stages-2.$(( (runs + 1) / 2 ))" "$dir/stages-2"
sum[rebuild]=$(sums "$dir/out")
for i in $(seq "$runs"); do
	timed "whole build (as build.docker.sh) $i" whole
	echo "$last" >>"$dir/t-whole"
done
sum[whole]=$(sums "$dir/out")
printf '%-36s %7ss wall  (load: %s)\n' "median no-change mkimage" "$(median <"$dir/t-rebuild")" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-36s %7ss wall\n' "median whole build.docker.sh" "$(median <"$dir/t-whole")"

echo
printf '%-14s %10s %10s %10s\n' stage cold fresh-out "rebuild #$(( (runs + 1) / 2 ))"
touch "$dir/stages-cold"
stage_order "$dir/mkimage: fresh out dir.log" | while read -r s; do
	c=$(awk -F'|' -v s="$s" '$1 == s { print $2 }' "$dir/stages-cold")
	f=$(awk -F'|' -v s="$s" '$1 == s { print $2 }' "$dir/stages-1")
	r=$(awk -F'|' -v s="$s" '$1 == s { print $2 }' "$dir/stages-2")
	printf '%-14s %10s %10s %10s\n' "$s" "${c:--}" "$f" "$r"
done

echo
fail=0
for k in "${!sum[@]}"; do
	echo "sha256 $k: ${sum[$k]}"
	[ "${sum[$k]}" = "${sum[first]}" ] || fail=1
done
if [ $fail = 1 ]; then
	echo "bench: outputs differ between builds" >&2
	exit 1
fi
echo "outputs identical"
