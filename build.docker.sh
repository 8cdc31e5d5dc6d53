#!/usr/bin/env bash
# build.docker.sh: build a Pantavisor image for a target recipe.
#
#   ./build.docker.sh [target] [step]          (default: x64-uefi all)
#
# Steps (upstream's secondary targets where they apply):
#   all        the whole pipeline (default)
#   init       the runtime programs only (out/<target>/work/bin)
#   image      up to the initrd and its addons (out/<target>/work/bsp/pantavisor,
#              *.cpio.xz4 or *.cpio.zst4)
#   trail      up to the storage tree with trails/0 (out/<target>/work/storage)
#   sbom       up to the SPDX 2.3 SBOM out/<target>/<target>.spdx.json (what
#              trails/0 holds and where each part came from; sbom/README.md)
#   boottest   ./test.docker.sh image <target>: build, rebuild checks, qemu boots
#   deps       install the build dependencies only
#   clean, init-clean, image-clean, trail-clean
#              remove the target's outputs, or one step's (cached artifacts of
#              the step included, so the next build redoes it)
#
# Targets are targets/<target>.toml (schema: targets/README.md). Outputs:
#   out/<target>/<target>-pv-<size>MiB.img   flashable image (GPT, GRUB UEFI+BIOS, ext4 storage)
#   out/<target>/<target>.pvr.tgz            BSP update (pvr export of bsp/)
#   out/<target>/work/                       staged initrd inputs, storage tree, bsp/
#
# There is no Docker engine on our build machines, so this builds natively
# on Debian/Ubuntu (installing missing packages through
# scripts/install-deps.sh); a Docker builder is not implemented yet.
#
# Environment (upstream build options where they exist):
#   PVR_MERGE_SRC=<checkout>/.pvr | <export.tgz> | <clone URL> | <device ip>
#                              reference device: its containers (all non-bsp
#                              keys) replace the recipe's default containers;
#                              a clone URL is cloned first (not with PV_OFFLINE=1)
#   PANTAVISOR_DEBUG=yes|no    add (yes) or leave out (no) the debug addon;
#                              unset: as the recipe's addons say
#   PV_PVS_CERT_PEM=<file>     CA certificate(s) the device trusts for pvs
#                              signatures (default: the public developer CA, ca/)
#   PV_PVS_PUB_PEM=<file>      public key(s) for signatures without x5c
#   PVR_SIG_KEY, PVR_X5C_PATH  key and certificate chain trails/0 is signed with
#                              (default: the developer signer of ca/)
#   MAKEFLAGS="V=s -j1"        V=s|V=1|V=99: verbose (debug log, commands);
#                              -jN: at most N parallel compile jobs
#   PV_BUILD_INTERACTIVE=true|false
#                              builds never prompt; false also closes stdin so
#                              no tool can wait for input (automation)
#   PV_INIT=pantavisor|smoke   what /init runs (default pantavisor, the daemon
#                              in embedded mode; smoke = a boot probe on
#                              runtime/embedded that reports what GRUB chose and
#                              powers off: the pv_try rollback test needs it)
#   PV_OFFLINE=1               do not refresh the Debian indexes (use the cache)
#   PV_CACHE=<dir>             package/artifact cache (default ~/.cache/pantavisor-mkimage)
#   SOURCE_DATE_EPOCH          time stamp of every output (default 1700000000)
#   PV_MERGE_SBOM=<dir>|<file>  SPDX JSON SBOMs (*.json) merged into the
#                              image's: external document references plus
#                              their packages (a document named after a
#                              container is contained by that container)
#   PV_FACTORY_AUTOTOK=<token> the factory pantahub.config gets
#                              factory.autotok=<token>: a new device claims
#                              itself on Pantacor Hub (embedded targets)
#   PV_BUILD_TLS_USE_HOST_CACERTS=default|<file>
#                              CA certificates for HTTPS fetches (the Go
#                              module proxy): default is the host's store,
#                              which a native build uses anyway; a file is
#                              passed as SSL_CERT_FILE
#   PVR_USE_SRC_BSP=yes|no     yes: trails/0 takes the BSP of PVR_MERGE_SRC
#                              (kernel, initrd, volumes) instead of building
#                              one; its initrd must trust PVR_SIG_KEY's CA
#   PV_BUILD_PANTAVISOR_BUILDER_PREFIX,
#   PV_BUILD_PANTAVISOR_BUILDER_VERSION:
#                              not supported: the build stops if set (see
#                              the message for why).
set -euo pipefail
# relative paths are relative to the caller's directory
for v in PVR_MERGE_SRC PV_MERGE_SBOM PV_BUILD_TLS_USE_HOST_CACERTS PV_PVS_CERT_PEM PV_PVS_PUB_PEM PVR_SIG_KEY PVR_X5C_PATH; do
	if [ -n "${!v:-}" ] && [ -e "${!v}" ]; then
		export "$v=$(realpath "${!v}")"
	fi
done
cd "$(dirname "$0")"

target=${1:-x64-uefi}
step=${2:-all}
case $step in
all | init | image | trail | sbom | boottest | deps | clean | init-clean | image-clean | trail-clean) ;;
pv_lxc | config-check | config-update | *-codecheck)
	echo "build.docker.sh: $step: not a step of the Go build (LXC is linked into pantavisor; recipes are checked on every build)" >&2
	exit 2
	;;
*)
	echo "usage: $0 [target] [all|init|image|trail|sbom|boottest|deps|clean|init-clean|image-clean|trail-clean]" >&2
	exit 2
	;;
esac
case ${PV_BUILD_INTERACTIVE:-true} in
true) ;;
false) exec </dev/null ;;
*)
	echo "build.docker.sh: PV_BUILD_INTERACTIVE=$PV_BUILD_INTERACTIVE: want true or false" >&2
	exit 2
	;;
esac

if [ ! -f "targets/$target.toml" ]; then
	echo "build.docker.sh: no recipe targets/$target.toml; targets:" >&2
	ls targets/*.toml | sed 's|targets/||; s|\.toml$||; s|^|  |' >&2
	exit 2
fi

# Options of upstream's table that this build cannot honour stop it:
# silently ignoring them would build something else than asked.
for v in PV_BUILD_PANTAVISOR_BUILDER_PREFIX PV_BUILD_PANTAVISOR_BUILDER_VERSION; do
	if [ -n "${!v:-}" ]; then
		echo "build.docker.sh: $v=${!v}: not supported: this build runs natively, there is no pantavisor-builder container image to pick; unset it" >&2
		exit 2
	fi
done
case ${PVR_USE_SRC_BSP:-no} in
no | "") ;;
yes)
	if [ -z "${PVR_MERGE_SRC:-}" ]; then
		echo "build.docker.sh: PVR_USE_SRC_BSP=yes takes the BSP of PVR_MERGE_SRC: set it" >&2
		exit 2
	fi
	;;
*)
	echo "build.docker.sh: PVR_USE_SRC_BSP=$PVR_USE_SRC_BSP: want yes or no" >&2
	exit 2
	;;
esac
case ${PV_BUILD_TLS_USE_HOST_CACERTS:-} in
"" | default) ;; # a native build uses the host's CA store
*)
	if [ ! -f "$PV_BUILD_TLS_USE_HOST_CACERTS" ]; then
		echo "build.docker.sh: PV_BUILD_TLS_USE_HOST_CACERTS=$PV_BUILD_TLS_USE_HOST_CACERTS: no such file" >&2
		exit 2
	fi
	export SSL_CERT_FILE=$PV_BUILD_TLS_USE_HOST_CACERTS
	;;
esac

# cleaning needs no tools
cache=${PV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pantavisor-mkimage}
work=out/$target/work
case $step in
clean | init-clean | image-clean | trail-clean)
	case $step in
	clean) rm -rf "out/$target" ;;
	init-clean) rm -rf "$work/bin" "$work/bin-static" ;;
	image-clean) rm -rf "$work/bsp/pantavisor" "$work"/bsp/*.cpio* "$cache"/artifacts/cpio-* ;;
	trail-clean) rm -rf "$work/storage" ;;
	esac
	echo "build.docker.sh: $step done"
	exit 0
	;;
esac

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	echo "build.docker.sh: a Docker engine answers, but the Docker builder is not implemented yet; building natively"
fi

echo "==> dependencies"
scripts/install-deps.sh build
export PATH=/usr/local/go/bin:$PATH
# The image build's own needs (install-deps.sh provides them; e2fsprogs
# gives debugfs, used by the boot test to edit grubenv).
missing=()
for tool in go apt-get apt-cache dpkg grub-mkimage mkfs.ext4 debugfs mksquashfs qemu-system-x86_64; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
for f in /usr/lib/grub/x86_64-efi/moddep.lst /usr/lib/grub/i386-pc/boot.img /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/keyrings/debian-archive-keyring.gpg; do
	[ -e "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "build.docker.sh: missing: ${missing[*]}" >&2
	echo "  (Debian: grub-efi-amd64-bin grub-pc-bin e2fsprogs squashfs-tools qemu-system-x86 ovmf debian-archive-keyring)" >&2
	exit 1
fi

mkdir -p out
# Built as mkimage builds the runtime's static programs (-trimpath, no
# cgo, net/http without HTTP/2: mkimage speaks HTTP/1.1 to Debian mirrors,
# registries and devices): one standard library in the Go build cache for
# both (an empty cache compiles net, crypto/tls, net/http... once, not
# twice); -trimpath also makes a program whose bytes, an input of every
# artifact, do not depend on where the checkout is.
CGO_ENABLED=0 go build -trimpath -tags=nethttpomithttp2 -o out/mkimage ./mkimage/cmd/mkimage

args=(-init "${PV_INIT:-pantavisor}")
[ "${PV_OFFLINE:-}" = 1 ] && args+=(-offline)
[ -n "${PV_CACHE:-}" ] && args+=(-cache "$PV_CACHE")
# MAKEFLAGS-style verbosity and parallelism (upstream: MAKEFLAGS="V=s -j1")
for w in ${MAKEFLAGS:-} ${V:+V=$V}; do
	case $w in
	V=s | V=1 | V=99) args+=(-v) ;;
	-j[0-9]*) export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=${w#-j}" ;;
	esac
done
case $step in
deps) echo "dependencies are installed" ;;
all) out/mkimage "${args[@]}" "$target" ;;
init) out/mkimage "${args[@]}" -until runtime "$target" ;;
image) out/mkimage "${args[@]}" -until addons "$target" ;;
trail) out/mkimage "${args[@]}" -until trails/0 "$target" ;;
sbom) out/mkimage "${args[@]}" -until sbom "$target" ;;
boottest)
	# build, no-change rebuild, reproducibility and qemu boots: one place
	exec ./test.docker.sh image "$target"
	;;
esac
