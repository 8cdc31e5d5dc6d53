#!/usr/bin/env bash
# bench/size.sh: what the x64-uefi initrd and image are made of (issue 20).
#
#   bench/size.sh [out-dir]      (default out/x64-uefi, a build of build.docker.sh)
#
# It prints:
#   - the compressed initrd and, compressed alone with the same xz settings,
#     its parts: the pantavisor program, the shared libraries, the kernel
#     modules, the rest (the parts add up to a little more than the whole);
#   - the pantavisor program's code by Go package (text symbols of a build
#     with symbols and the builder's flags; the shipped one is stripped);
#   - the image: apparent and allocated size, the .img.xz as
#     mkimage/imager makes it (xz -T0 -1, 16 MiB blocks), and the objects
#     of trails/0 that fill it (kernel, initrd, addons, modules, firmware,
#     container roots), largest first.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/x64-uefi}
export PATH=/usr/local/go/bin:$PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
trail=$out/work/storage/trails/0
initrd=$trail/.pv/pv-initrd.img
[ -e "$initrd" ] || { echo "size: no $initrd (build x64-uefi first)" >&2; exit 1; }

echo "== initrd $(mib "$(stat -L -c %s "$initrd")") MiB compressed"
# unpack: xz, or zstd ([initrd] compression), whose frame is followed by
# up to 3 zero bytes of padding zstd reads as a bad frame: drop them until
# it decodes (its checksum tells)
if [ "$(head -c 4 "$initrd" | od -An -tx1 | tr -d ' \n')" = 28b52ffd ]; then
	n=$(stat -L -c %s "$initrd")
	for pad in 3 2 1 0; do
		head -c $((n - pad)) "$initrd" | zstd -dcq >"$tmp/initrd.cpio" 2>/dev/null && break
		[ $pad = 0 ] && { echo "size: zstd cannot read $initrd" >&2; exit 1; }
	done
else
	xz -dc "$initrd" >"$tmp/initrd.cpio"
fi
mkdir "$tmp/root"
(cd "$tmp/root" && cpio -idm --quiet <"$tmp/initrd.cpio" 2>/dev/null)
echo "   $(mib "$(stat -c %s "$tmp/initrd.cpio")") MiB as cpio"
(cd "$tmp/root" && find . -type f -o -type l) | sed 's|^\./||' >"$tmp/all"
grep '^usr/bin/pantavisor$' "$tmp/all" >"$tmp/prog" || true
grep -E '\.so(\.|$)' "$tmp/all" >"$tmp/libs" || true
grep '^lib/modules/' "$tmp/all" >"$tmp/mods" || true
cat "$tmp/prog" "$tmp/libs" "$tmp/mods" | sort | comm -23 <(sort "$tmp/all") - >"$tmp/rest"
for p in prog:pantavisor libs:"shared libraries" mods:"kernel modules" rest:"the rest"; do
	f=$tmp/${p%%:*}
	raw=$(cd "$tmp/root" && xargs -a "$f" -d '\n' stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
	z=$(tar -C "$tmp/root" -c --sort=name -T "$f" 2>/dev/null | xz -T0 --block-size=4MiB --check=crc32 --x86 --lzma2=preset=6,dict=4MiB -c | wc -c)
	printf '   %-20s %4d files %7s MiB raw %7s MiB xz\n' "${p#*:}" "$(wc -l <"$f")" "$(mib "$raw")" "$(mib "$z")"
done
echo "   largest files:"
(cd "$tmp/root" && find . -type f -printf '%s %p\n') | sort -rn | awk 'NR <= 8' | while read -r s p; do printf '     %7s MiB %s\n' "$(mib "$s")" "${p#./}"; done

echo "== pantavisor code by Go package (text symbols, KiB; builder flags, with symbols)"
go build -trimpath -buildvcs=false -tags=nethttpomithttp2 -o "$tmp/pantavisor" ./runtime/cmd/pantavisor
go tool nm -size "$tmp/pantavisor" | awk '$3 == "T" || $3 == "t" {
	n = $4; sub(/^go:(itab\.)?/, "", n); sub(/^type:(eq\.)?/, "", n); gsub(/^[*\[\]]+/, "", n)
	p = n; if (match(n, /^.*\/[^.\/]*/)) p = substr(n, 1, RLENGTH); else { split(n, a, "."); p = a[1] }
	s[p] += $2; t += $2 }
	END { for (k in s) printf "%8.0f %s\n", s[k] / 1024, k; printf "%8.0f %s\n", t / 1024, "(all text)" }' | sort -rn | awk 'NR <= 25'

img=$(ls "$out"/x64-uefi-pv-*MiB.img)
echo "== image $(basename "$img"): $(mib "$(stat -c %s "$img")") MiB apparent, $(mib "$(($(stat -c '%b * %B' "$img")))") MiB allocated"
xz -T0 -1 --check=crc64 --block-size=16MiB -c "$img" | wc -c >"$tmp/xz"
echo "   .img.xz (xz -T0 -1, as mkimage/imager): $(mib "$(cat "$tmp/xz")") MiB"
echo "   trails/0 objects (already compressed):"
for f in "$trail"/bsp/* "$trail"/*/root.squashfs; do
	[ -f "$f" ] || continue
	printf '     %7s MiB %s\n' "$(mib "$(stat -L -c %s "$f")")" "${f#"$trail"/}"
done | sort -rn
