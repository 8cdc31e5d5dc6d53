#!/usr/bin/env bash
# bench/gokrazy.sh: our cold build against gokrazy's, in the same run
# (issue 20), on a private copy of everything under BENCH_DIR (out/, the
# package cache and the Go caches of the user are only read).
#
#   bench/gokrazy.sh
#
# It builds gokrazy's gok (pinned below, from the Go module proxy) and a
# gokrazy instance like our x64-uefi: a PC (amd64) image with gokrazy's
# amd64 kernel package, no Raspberry Pi firmware, its default programs
# (dhcp, ntp, randomd, heartbeat) and a hello program, written whole to a
# 1.5 GiB image file (gok overwrite --full). Then, run after run, it times:
#   - gokrazy, empty Go build cache (a fresh GOCACHE each run), warm
#     module cache: gok overwrite --full;
#   - ours, empty Go build cache, warm package cache: go build of mkimage,
#     then mkimage x64-uefi -offline on a private cache holding the
#     packages of PV_CACHE but no artifacts (bench/rebuild.sh BENCH_COLD=1);
#   - ours, warm Go build cache (the user's), cold artifacts: mkimage alone
#     (bench/rebuild.sh BENCH_COLD=1's "cold artifacts" line);
#   - gokrazy, warm Go build cache (a private one kept in BENCH_DIR).
# It prints each run, then the medians of wall and CPU time (user+sys of
# the whole process tree) and the ratios ours/gokrazy, and our stages in
# the median empty-cache run (mkimage's own table).
#
# BENCH_BOOT=1 then boots the gokrazy image BENCH_RUNS times under QEMU
# TCG (SeaBIOS, -m 1024, console=ttyS0 rootdelay=0: bench/bootbench, as
# bench/boot.sh does) and prints QEMU start → the hello program's line on
# the serial console, and the kernel's own time to running /gokrazy/init.
#
# Environment: BENCH_DIR (default /tmp/pv-bench-gok-$(id -un)), PV_CACHE
# (the warm package cache, default ~/.cache/pantavisor-mkimage), BENCH_RUNS
# (default 3), BENCH_BOOT. The machine is shared: the load is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dir=${BENCH_DIR:-/tmp/pv-bench-gok-$(id -un)}
cache=${PV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pantavisor-mkimage}
export PATH=/usr/local/go/bin:$PATH
mkdir -p "$dir"
. bench/lib.sh

# Versions the module proxy serves. gok is built from a module of ours
# that requires it: "go install …@version" also asks the proxy for the
# module's version list (for deprecation notices), which it may refuse.
tools_version=v0.0.0-20260109180632-8ed49b4fafc7
gokrazy_version=v0.0.0-20260418085648-c38c3134b8a7
kernel_version=v0.0.0-20260705070735-de680abf072b
storage_bytes=1610612736 # gok wants ≥ 1.2 GB: boot, two roots, /perm
instance=$dir/parent/pvbench

setup_gok() {
	mkdir -p "$dir/gok-src" "$dir/bin"
	cat >"$dir/gok-src/go.mod" <<-EOF
		module pvbench/gok

		go 1.24

		require github.com/gokrazy/tools $tools_version
	EOF
	printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/gokrazy/tools/cmd/gok"\n' >"$dir/gok-src/tools.go"
	(cd "$dir/gok-src" && go mod tidy && go build -o "$dir/bin/gok" github.com/gokrazy/tools/cmd/gok)

	# the hello program, a local module (a replace in the builddir)
	mkdir -p "$dir/hello"
	printf 'module example.com/hello\n\ngo 1.24\n' >"$dir/hello/go.mod"
	cat >"$dir/hello/main.go" <<-'EOF'
		package main

		import (
		    "fmt"
		    "os"
		)

		// gokrazy keeps its programs' output in a buffer: the boot figure
		// waits for this line on the console
		func main() {
		    if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		        fmt.Fprintln(c, "hello from gokrazy")
		    }
		    fmt.Println("hello from gokrazy")
		}
	EOF

	# One builddir/go.mod for every package, versions pinned: gok would
	# otherwise "go get" each package at @latest.
	rm -rf "$instance"
	mkdir -p "$instance/builddir"
	cat >"$instance/config.json" <<-EOF
		{
		    "Hostname": "pvbench",
		    "Update": {"HTTPPassword": "pvbench"},
		    "Environment": ["GOOS=linux", "GOARCH=amd64"],
		    "Packages": ["example.com/hello"],
		    "KernelPackage": "github.com/gokrazy/kernel.amd64",
		    "FirmwarePackage": "",
		    "EEPROMPackage": "",
		    "SerialConsole": "ttyS0,115200",
		    "KernelExtraArgs": ["rootdelay=0"]
		}
	EOF
	cat >"$instance/builddir/go.mod" <<-EOF
		module gokrazy/build/pvbench

		go 1.24

		require (
		    example.com/hello v0.0.0
		    github.com/gokrazy/gokrazy $gokrazy_version
		    github.com/gokrazy/kernel.amd64 $kernel_version
		)

		replace example.com/hello => $dir/hello
	EOF
	(cd "$instance/builddir" && go mod download)
}

gok_build() { # <GOCACHE>
	rm -f "$dir/gokrazy.img"
	GOCACHE=$1 "$dir/bin/gok" --parent_dir "$dir/parent" -i pvbench \
		overwrite --full "$dir/gokrazy.img" --target_storage_bytes "$storage_bytes"
}

ours_cold() { # <GOCACHE>: what a cold build does, mkimage included
	local t0
	t0=$(now)
	GOCACHE=$1 CGO_ENABLED=0 go build -trimpath -tags=nethttpomithttp2 -o "$dir/mkimage" ./mkimage/cmd/mkimage
	echo "go build mkimage: $(secs "$t0" "$(now)")s"
	GOCACHE=$1 "$dir/mkimage" -repo "$repo" -out "$dir/out" -offline -cache "$dir/cold-cache" x64-uefi
}

ours_artifacts() { # mkimage with the user's Go build cache
	"$dir/mkimage" -repo "$repo" -out "$dir/out" -offline -cache "$dir/cold-cache" x64-uefi
}

# fresh: the private state a cold run starts from
fresh() {
	rm -rf "$dir/gocache" "$dir/out"
	coldcache "$cache" "$dir/cold-cache"
}

uptime
echo "== bench/gokrazy.sh ($(nproc) cores, $(go env GOVERSION), $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')," \
	"gok $tools_version, gokrazy $gokrazy_version, kernel.amd64 $kernel_version)"
setup_gok >"$dir/setup.log" 2>&1 || { tail -20 "$dir/setup.log" >&2; exit 1; }
# warm-ups, not timed: the modules gok needs, the kept warm GOCACHE of
# gokrazy, and ours for this tree (the user's GOCACHE)
gok_build "$dir/gocache-warm" >"$dir/warmup-gok.log" 2>&1 || { tail -20 "$dir/warmup-gok.log" >&2; exit 1; }
CGO_ENABLED=0 go build -trimpath -tags=nethttpomithttp2 -o "$dir/mkimage" ./mkimage/cmd/mkimage
fresh
ours_artifacts >"$dir/warmup-ours.log" 2>&1 || { tail -20 "$dir/warmup-ours.log" >&2; exit 1; }

runs=${BENCH_RUNS:-3}
for k in gok-cold ours-cold ours-warm gok-warm; do : >"$dir/t-$k"; done
for i in $(seq "$runs"); do
	rm -rf "$dir/gocache"
	timed "gokrazy, empty GOCACHE $i" gok_build "$dir/gocache"
	echo "$last $lastcpu" >>"$dir/t-gok-cold"
	fresh
	timed "ours, empty GOCACHE $i" ours_cold "$dir/gocache"
	echo "$last $lastcpu $i" >>"$dir/t-ours-cold"
	fresh
	timed "ours, cold artifacts $i" ours_artifacts
	echo "$last $lastcpu" >>"$dir/t-ours-warm"
	timed "gokrazy, warm GOCACHE $i" gok_build "$dir/gocache-warm"
	echo "$last $lastcpu" >>"$dir/t-gok-warm"
done
rm -rf "$dir/gocache"

med() { cut -d' ' -f"$2" "$dir/t-$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
printf '%-40s %8s %8s   (medians of %s, load: %s)\n' "" wall cpu "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
for pair in "gok-cold ours-cold empty GOCACHE" "gok-warm ours-warm warm GOCACHE, cold artifacts"; do
	read -r g o what <<<"$pair"
	printf '%-40s %7ss %7ss\n' "gokrazy, $what" "$(med "$g" 1)" "$(med "$g" 2)"
	printf '%-40s %7ss %7ss\n' "ours, $what" "$(med "$o" 1)" "$(med "$o" 2)"
	printf '%-40s %8s %8s\n' "ours/gokrazy" "$(ratio "$(med "$o" 1)" "$(med "$g" 1)")" "$(ratio "$(med "$o" 2)" "$(med "$g" 2)")"
done

# our stages in the median empty-cache run
i=$(sort -n "$dir/t-ours-cold" | sed -n "$(((runs + 1) / 2))p" | cut -d' ' -f3)
echo
echo "ours, empty GOCACHE, run $i:"
grep '^go build mkimage:' "$dir/ours, empty GOCACHE $i.log"
stages "$dir/ours, empty GOCACHE $i.log" >"$dir/stages-ours"
stage_order "$dir/ours, empty GOCACHE $i.log" | while read -r s; do
	awk -F'|' -v s="$s" '$1 == s { printf "  %-14s %8ss\n", $1, $2 }' "$dir/stages-ours"
done

if [ "${BENCH_BOOT:-}" = 1 ]; then
	echo
	rm -rf "$dir/console"
	mkdir -p "$dir/console"
	# "READY" below is the hello line; bootbench knows /init only, so its
	# start→/init is 0 here: the kernel's clock at /gokrazy/init follows
	go run ./bench/bootbench -runs "$runs" -fw bios -marker "hello from gokrazy" -console "$dir/console" "gokrazy=$dir/gokrazy.img"
	echo "kernel start → Run /gokrazy/init, median: $(sed -n 's/^\[ *\([0-9.]*\)\] Run \/gokrazy\/init as init process.*/\1/p' "$dir"/console/*.log | median)s"
fi
