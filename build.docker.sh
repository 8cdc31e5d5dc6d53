#!/usr/bin/env bash
# build.docker.sh: build a Pantavisor image for a target recipe.
#
#   ./build.docker.sh [target] [image|boottest|deps]     (default: x64-uefi image)
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
#   PV_INIT=pantavisor|smoke   what /init runs (default pantavisor, the daemon
#                              in embedded mode; smoke = a boot probe on
#                              runtime/embedded that reports what GRUB chose and
#                              powers off: the pv_try rollback test needs it)
#   PV_OFFLINE=1               do not refresh the Debian indexes (use the cache)
#   PV_CACHE=<dir>             package/artifact cache (default ~/.cache/pantavisor-mkimage)
#   SOURCE_DATE_EPOCH          time stamp of every output (default 1700000000)
#   PVR_MERGE_SRC=<checkout>/.pvr | <export.tgz>
#                              reference device: its containers (all non-bsp
#                              keys) replace the recipe's default containers;
#                              clone URLs fail (the build is offline)
#   PVR_USE_SRC_BSP, PV_MERGE_SBOM, PV_PVS_PUB_PEM, PV_PVS_CERT_PEM:
#                              not implemented yet: the build stops if set.
set -euo pipefail
# a relative PVR_MERGE_SRC is relative to the caller's directory
if [ -n "${PVR_MERGE_SRC:-}" ] && [ -e "$PVR_MERGE_SRC" ]; then
	PVR_MERGE_SRC=$(realpath "$PVR_MERGE_SRC")
	export PVR_MERGE_SRC
fi
cd "$(dirname "$0")"

target=${1:-x64-uefi}
step=${2:-image}

if [ ! -f "targets/$target.toml" ]; then
	echo "build.docker.sh: no recipe targets/$target.toml; targets:" >&2
	ls targets/*.toml | sed 's|targets/||; s|\.toml$||; s|^|  |' >&2
	exit 2
fi

for v in PVR_USE_SRC_BSP PV_MERGE_SBOM PV_PVS_PUB_PEM PV_PVS_CERT_PEM PV_FACTORY_AUTOTOK; do
	if [ -n "${!v:-}" ]; then
		echo "build.docker.sh: $v is not implemented yet in the Go build; unset it" >&2
		exit 2
	fi
done
if [ -n "${PANTAVISOR_DEBUG:-}" ]; then
	echo "build.docker.sh: note: PANTAVISOR_DEBUG: the debug addon (busybox) comes from the recipe's addons list"
fi

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
go build -o out/mkimage ./mkimage/cmd/mkimage

args=(-init "${PV_INIT:-pantavisor}")
[ "${PV_OFFLINE:-}" = 1 ] && args+=(-offline)
[ -n "${PV_CACHE:-}" ] && args+=(-cache "$PV_CACHE")

case $step in
deps)
	echo "dependencies are installed"
	;;
image)
	out/mkimage "${args[@]}" "$target"
	;;
boottest)
	# build, no-change rebuild, reproducibility and qemu boots: one place
	exec ./test.docker.sh image "$target"
	;;
*)
	echo "usage: $0 [target] [image|boottest|deps]" >&2
	exit 2
	;;
esac
