#!/usr/bin/env bash
# bench/containers-stop.sh: GET /containers latency while a container that
# ignores its stop signal is being stopped (issue 11). Runs
# BenchmarkContainersDuringStubbornStop (runtime/pantavisor, real LXC, as
# root): each iteration starts the container, asks PUT /containers/<n>
# stop and polls GET /containers until it is STOPPED (the stop timeout,
# 5 s, then SIGKILL); it prints p50, p99 and max of those requests in ms.
#
#   bench/containers-stop.sh [iterations]   (default 5)
#
# Goal: p99 under 5 ms. The machine is shared: look at the load.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
n=${1:-5}
uptime
go test -count=1 -run '^$' -bench '^BenchmarkContainersDuringStubbornStop$' -benchtime "${n}x" ./runtime/pantavisor/ 2>&1 |
	awk '/^BenchmarkContainersDuringStubbornStop/ {
		for (i = 3; i < NF; i++) if ($(i+1) ~ /-ms$/) printf "%s %s\n", $(i+1), $i
		found = 1
	}
	/^(FAIL|panic)/ { print; bad = 1 }
	END { exit (found && !bad) ? 0 : 1 }'
