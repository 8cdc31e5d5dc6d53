#!/usr/bin/env bash
# bench/xconnect-start.sh: time from a consumer container's start to its
# xconnect unix link being usable from inside it (issue 19). Runs
# BenchmarkXConnectStartToUsable (runtime/cmd/pantavisor, the daemon
# binary, real LXC, as root): a provider serving an echo socket and a
# consumer requiring it; each iteration stops the consumer, starts it with
# PUT /containers/xcons and dials /run/pv/raw.sock in its root every 1 ms
# until the provider echoes. Prints the median, min and max in ms:
#   start-ms  from the start request
#   init-ms   from the start of the consumer's init process (10 ms ticks)
#   graph-ms  from the start request to the new pid in GET /xconnect-graph
#
#   bench/xconnect-start.sh [iterations]   (default 10)
#
# The machine is shared: look at the load.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
n=${1:-10}
uptime
go test -count=1 -run '^$' -bench '^BenchmarkXConnectStartToUsable$' -benchtime "${n}x" ./runtime/cmd/pantavisor/ 2>&1 |
	awk '/^BenchmarkXConnectStartToUsable/ && $2 ~ /^[0-9]+$/ {
		for (i = 3; i < NF; i++) if ($(i+1) ~ /-ms$/) printf "%s %s\n", $(i+1), $i
		found = 1
	}
	/^(FAIL|panic)|--- FAIL/ { print; bad = 1 }
	/Fatal|xconnect_test.go/ && bad { print }
	END { exit (found && !bad) ? 0 : 1 }'
