#!/usr/bin/env bash
# test.docker.sh: run Pantavisor's tests.
#
#   ./test.docker.sh                 install dependencies, vet, run every Go test (unit, fuzz
#                                    seeds, real-LXC integration) and every App Engine suite
#   ./test.docker.sh install-deps    install the Debian packages the tests need
#   ./test.docker.sh go [pkgs...]    run the Go tests only (default ./...)
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
# (parallel instances; PVTEST_JOBS for the no-argument path).
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
	echo "== go test"
	go test -count=1 -timeout 25m "${pkgs[@]}"
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
	if [ -n "$(suites)" ]; then exec "$0" run ${PVTEST_JOBS:+-j "$PVTEST_JOBS"}; fi
	;;
install-deps) exec scripts/install-deps.sh test ;;
go) gotests "$@" ;;
ls | run | add)
	# run needs the runtime's build and test dependencies (idempotent, quick when present)
	[ "$cmd" = run ] && scripts/install-deps.sh test
	mkdir -p .cache/pvtest
	go build -o .cache/pvtest/pvtest ./runtime/cmd/pvtest
	exec .cache/pvtest/pvtest "$cmd" "$@"
	;;
package)
	go build -o .cache/pvtest/pvtest ./runtime/cmd/pvtest
	exec .cache/pvtest/pvtest package "$@"
	;;
*)
	sed -n '2,23p' "$0" >&2
	exit 2
	;;
esac
