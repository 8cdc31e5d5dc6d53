#!/usr/bin/env bash
# test.docker.sh: run Pantavisor's tests.
#
#   ./test.docker.sh                 install dependencies, vet, run every Go test under -race
#                                    (unit, fuzz seeds, real LXC), every App Engine suite and
#                                    the image tests of x64-uefi, arm64-qemu, arm-qemu,
#                                    malta-qemu, rpi64ab and rpi (three at a time)
#   ./test.docker.sh install-deps    install the Debian packages the tests need
#   ./test.docker.sh go [pkgs...]    run the Go tests only (default ./...)
#   ./test.docker.sh image [target]  build the image (default x64-uefi), rebuild it with no
#                                    change (timed; same bytes), rebuild it from a fresh
#                                    artifact cache (same bytes: reproducible), then boot it
#                                    in qemu (TCG) with SeaBIOS and with OVMF (U-Boot
#                                    targets: U-Boot) until the revision is READY with its
#                                    containers STARTED, and run the update cycle (install,
#                                    try, commit, rollback, power cut: TestUpdateCycle) and,
#                                    on GRUB targets, a pvr clone/post from the host through
#                                    a hostfwd to pvr-sdk and OpenSSH commands through a
#                                    hostfwd to the debug ssh on 8222 (TestPvrSDK)
#   ./test.docker.sh images          the image tests of every bootable target, as the
#                                    no-argument path runs them (three at a time)
#   ./test.docker.sh ls              list the App Engine test suites (tests/<group>/<n>)
#   ./test.docker.sh run [group[:n]] [-i] [-m] [-o]
#                                    run App Engine suites: -i interactive shell with the
#                                    instance running, -m stop before starting Pantavisor,
#                                    -o overwrite the golden output
#   ./test.docker.sh add <group>     create tests/<group>/<next n>/ from a template
#   ./test.docker.sh package <out> [-arch amd64|arm64]
#                                    assemble the App Engine install package
#
# run also takes -v (show script stderr), -k (keep instance dirs), -j N
# (parallel instances; PVTEST_JOBS for the no-argument path). PV_SKIP_IMAGE=1
# leaves the image test out of the no-argument path.
#
# No Docker engine is needed: everything runs natively as root.
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
export PATH=$PATH:/usr/local/go/bin

gotests() {
	local pkgs=("$@")
	[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
	echo "== go vet"
	go vet "${pkgs[@]}"
	# the 32-bit targets (armhf, mipsel) differ in syscall types: fail here
	# rather than halfway through an image build
	echo "== go build (GOARCH=arm, mipsle)"
	for a in arm mipsle; do CGO_ENABLED=0 GOARCH=$a go build "${pkgs[@]}"; done
	# One run, under the race detector (cgo: liblxc and the race runtime
	# both need it), root-only tests included where this runs as root.
	echo "== go test -race"
	CGO_ENABLED=1 go test -race -count=1 -timeout 25m "${pkgs[@]}"
}

# imagetest builds, rebuilds and boots one target's image (see the header).
imagetest() {
	local target=${1:-x64-uefi}
	echo "== image: build $target"
	./build.docker.sh "$target"
	local dir=out/$target
	local img imgs
	imgs=("$dir/$target"-pv-*MiB.img)
	if [ ${#imgs[@]} -ne 1 ]; then
		echo "image: expected one $dir/$target-pv-*MiB.img, found: ${imgs[*]} (./build.docker.sh $target clean)" >&2
		return 1
	fi
	img=${imgs[0]}
	local sums
	sums=$(sha256sum "$img" "$dir/$target.pvr.tgz" "$dir/$target.spdx.json")

	echo "== image: SBOM (SPDX 2.3 schema, tools-golang, covers trails/0 and the initrd)"
	PV_SBOM_OUT=$PWD/$dir go test -count=1 -v -run '^TestBuiltImage$' ./mkimage/sbom/ | grep -E 'packages|^(ok|FAIL|---)'

	echo "== image: no-change rebuild"
	local t0 t1
	t0=$(date +%s%N)
	PV_OFFLINE=1 ./build.docker.sh "$target" >/dev/null
	t1=$(date +%s%N)
	echo "    no-change rebuild took $(((t1 - t0) / 1000000)) ms (build.docker.sh, offline)"
	if ! sha256sum --quiet -c <<<"$sums"; then
		echo "image: the no-change rebuild changed the outputs" >&2
		return 1
	fi

	echo "== image: rebuild from a fresh artifact cache (reproducible)"
	local cache=${PV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pantavisor-mkimage}
	local scratch
	scratch=$(mktemp -d /tmp/pv-repro.XXXXXX)
	mkdir -p "$scratch/cache"
	# the verified packages are shared (hard links); built artifacts are not
	# src: the Debian source packages a boot loader is built from
	for d in deb locks src; do [ ! -e "$cache/$d" ] || cp -al "$cache/$d" "$scratch/cache/"; done
	out/mkimage -init "${PV_INIT:-pantavisor}" -offline -cache "$scratch/cache" -out "$scratch/out" "$target" >"$scratch/build.log" 2>&1 || {
		tail -20 "$scratch/build.log" >&2
		rm -rf "$scratch"
		return 1
	}
	local a b outs=("$img" "$dir/$target.pvr.tgz" "$dir/$target.spdx.json")
	# a boot loader built from source (bootloader.source) is an output too
	[ ! -e "$dir/$target.pflash.img" ] || outs+=("$dir/$target.pflash.img")
	# rpiab targets: Raspberry Pi Imager's .img.xz and os_list too
	[ ! -f "$img.xz" ] || outs+=("$img.xz" "$dir/os_list_$(basename "$img" .img).json")
	for f in "${outs[@]}"; do
		a=$(sha256sum <"$f")
		b=$(sha256sum <"$scratch/out/$(basename "$f")")
		if [ "$a" != "$b" ]; then
			echo "image: $(basename "$f") differs when rebuilt from scratch (not reproducible): kept in $scratch" >&2
			return 1
		fi
	done
	rm -rf "$scratch"
	echo "    same bytes: $(for f in "${outs[@]}"; do basename "$f"; done | paste -sd' ')"

	echo "== image: boot (qemu TCG: SeaBIOS and OVMF, or U-Boot)"
	local marker='rev=0 status=READY' expect= c
	if [ "${PV_INIT:-pantavisor}" = smoke ]; then
		marker=PV-SMOKE-OK
	else
		# every container of trails/0 must be STARTED; the default network
		# container must get its DHCP lease from qemu's user network
		for c in $(ls "$dir/work/storage/trails/0/"); do
			[ "$c" != bsp ] && [ -f "$dir/work/storage/trails/0/$c/run.json" ] && expect="${expect}platform=$c status=STARTED;"
		done
		# (QEMU's raspi machines have no NIC the image's kernel drives)
		[ -f "$dir/work/storage/trails/0/pv-network/run.json" ] && [ -z "${PVR_MERGE_SRC:-}" ] &&
			! grep -q '^type = "rpiab"' "targets/$target.toml" &&
			expect="${expect}pv-network: eth0 10.0.2.15/"
	fi
	echo "    waiting for: $marker;$expect"
	# U-Boot targets run the boot tests that do not depend on GRUB or PC
	# firmware (U-Boot is the firmware of an ARM virt machine), the update
	# cycle included.
	local run=()
	if grep -q '^type = "uboot"' "targets/$target.toml"; then
		run=(-run '^(TestBootBIOSAndUEFI|TestTryMissingRevision|TestUpdateCycle)$')
	fi
	# rpiab targets: the image's structure, its boot on QEMU's raspi3b /
	# raspi2b, the A/B switch on its partitions (loop devices), /dev/vcio
	# from our pv-vcio module answered by QEMU's mailbox
	if grep -q '^type = "rpiab"' "targets/$target.toml"; then
		run=(-run '^(TestRpiImage|TestBootRaspi|TestRpiABSwitch|TestRaspiVcio)$')
	fi
	# PV_IMAGE_TESTS overrides the list (a go test -run pattern)
	[ -z "${PV_IMAGE_TESTS:-}" ] || run=(-run "$PV_IMAGE_TESTS")
	PV_TEST_EXPECT=$expect PV_TEST_MARKER=$marker PV_TEST_IMAGE=$PWD/$img go test -count=1 -v -timeout 45m "${run[@]}" ./mkimage/boottest/
}

# imagelanes runs the image tests of every bootable target three at a
# time: most of an image test is one QEMU thread (TCG, one vCPU), often
# waiting on its guest. Three workers take targets from one queue,
# longest first (x64-uefi about 20 min, malta-qemu, rpi and arm64-qemu
# about 12, rpi64ab 8, arm-qemu 5), so the stage lasts about as long as
# its longest worker. Each line is prefixed with its target; a failure
# ends its worker, the others drain the queue, and the result is a
# failure.
imagelanes() {
	local rc=0 pids=() q
	q=$(mktemp /tmp/pv-imagequeue.XXXXXX)
	printf '%s\n' x64-uefi malta-qemu rpi arm64-qemu rpi64ab arm-qemu >"$q"
	for _ in 1 2 3; do
		lane "$q" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	rm -f "$q"
	return $rc
}

# lane tests the targets it takes from the queue file $1 until it is empty.
lane() {
	local t rc t0
	while t=$(flock "$1" sh -c 'head -n1 "$1" && sed -i 1d "$1"' _ "$1") && [ -n "$t" ]; do
		t0=$(date +%s)
		rc=0
		# a process of its own: set -e holds inside it
		"$0" image "$t" 2>&1 | sed -u "s/^/[$t] /" || rc=$?
		echo "[$t] image test: $([ $rc = 0 ] && echo passed || echo FAILED) in $(($(date +%s) - t0)) s"
		[ $rc = 0 ] || return 1
	done
}

suites() {
	find tests -mindepth 3 -maxdepth 3 -name test.json 2>/dev/null | sed 's|^tests/||; s|/test.json$||' | sort -V
}

cmd=${1:-all}
[ $# -gt 0 ] && shift
case $cmd in
all)
	scripts/install-deps.sh test
	gotests
	if [ -n "$(suites)" ]; then "$0" run ${PVTEST_JOBS:+-j "$PVTEST_JOBS"}; fi
	[ -n "${PV_SKIP_IMAGE:-}" ] || imagelanes
	;;
image) imagetest "$@" ;;
images) imagelanes ;;
install-deps) exec scripts/install-deps.sh test ;;
go) gotests "$@" ;;
ls | run | add)
	# run needs the runtime's build and test dependencies (idempotent, quick when present)
	[ "$cmd" = run ] && scripts/install-deps.sh test
	mkdir -p .cache/pvtest
	go build -o .cache/pvtest/pvtest ./runtime/cmd/pvtest
	# one suite run per host at a time: runs from two checkouts would share
	# LXC's cgroup names (lxc.monitor/<name>) and fail with ERANGE
	[ "$cmd" = run ] && exec flock /run/pantavisor-suites.lock .cache/pvtest/pvtest "$cmd" "$@"
	exec .cache/pvtest/pvtest "$cmd" "$@"
	;;
package)
	go build -o .cache/pvtest/pvtest ./runtime/cmd/pvtest
	exec .cache/pvtest/pvtest package "$@"
	;;
*)
	sed -n '2,33p' "$0" >&2
	exit 2
	;;
esac
