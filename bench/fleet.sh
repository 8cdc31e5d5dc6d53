#!/usr/bin/env bash
# bench/fleet.sh: the fleet load test of issue 16: one cmd/pvhub and
# FLEET_N (default 50) real App Engine devices on loopback; figures for
# registration, claim, an idle window (per device per hour: requests,
# connections, wire bytes, CPU; pvhub's CPU and RSS), one update to every
# device at once, and errors. See bench/fleetbench for what is measured.
#
#   bench/fleet.sh [fleetbench flags]   e.g. -n 5 -idle 30s
#
# Environment: FLEET_N, FLEET_IDLE (default 2m), FLEET_TIMEOUT (default
# 15m: the run fails past it). Needs root (a private mount namespace, as
# the App Engine suites); builds the App Engine package and pvhub first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
dir=$(mktemp -d /tmp/pv-fleet-XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p .cache/pvtest
go build -o .cache/pvtest/pvtest ./runtime/cmd/pvtest
echo "== building the App Engine package and pvhub"
.cache/pvtest/pvtest package "$dir/pkg" >"$dir/package.log" 2>&1 || { tail -20 "$dir/package.log"; exit 1; }
go build -o "$dir/pvhub" ./cmd/pvhub
go build -o "$dir/fleetbench" ./bench/fleetbench
uptime
unshare -m --propagation private "$dir/fleetbench" -pkg "$dir/pkg" -pvhub "$dir/pvhub" -dir "$dir/run" \
	-n "${FLEET_N:-50}" -idle "${FLEET_IDLE:-2m}" -timeout "${FLEET_TIMEOUT:-15m}" "$@"
uptime
