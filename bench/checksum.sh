#!/usr/bin/env bash
# bench/checksum.sh: boot-time object checksums (PV_SECUREBOOT_CHECKSUM)
# against Go's raw sha256 on the same machine. Runs
# BenchmarkChecksumRevision (RUN's check of a revision of 4 x 32 MiB
# objects in the page cache, one goroutine) and BenchmarkSHA256Raw
# (crypto/sha256 over 32 MiB in memory) with GOMAXPROCS=1, interleaved,
# and prints the medians: wall-clock MB/s, and MB per CPU second, which is
# what one core does when the shared machine's neighbours steal it.
#
#   bench/checksum.sh [rounds]   (default 7)
#
# Goal: >= 900 MB/s on one core with SHA extensions (sha_ni below).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
n=${1:-7}
uptime
grep -qw sha_ni /proc/cpuinfo && echo "cpu: sha_ni present" || echo "cpu: no sha_ni (sha256 without SHA extensions)"
go test -count="$n" -cpu 1 -run '^$' -bench '^(BenchmarkChecksumRevision|BenchmarkSHA256Raw)$' -benchtime 10x ./runtime/pantavisor/ 2>&1 |
	awk '/^Benchmark/ { wall[$1] = wall[$1] " " $5; cpu[$1] = cpu[$1] " " $7; found = 1 }
	/^(FAIL|panic)/ { print; bad = 1 }
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return a[int((n + 1) / 2)]
	}
	END {
		for (b in wall) printf "%-28s median %8s MB/s wall  %8s MB/cpu-s\n", b, median(wall[b]), median(cpu[b])
		exit (found && !bad) ? 0 : 1
	}'
