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
	if [ -n "$(suites)" ]; then exec "$0" run; fi
	;;
install-deps) exec scripts/install-deps.sh test ;;
go) gotests "$@" ;;
ls) suites ;;
run)
	if [ -z "$(suites)" ]; then
		echo "test.docker.sh: no App Engine suites under tests/ yet"
		exit 0
	fi
	exec go run ./tests/runner "$@"
	;;
add)
	group=${1:?usage: test.docker.sh add <group>}
	n=0
	while [ -e "tests/$group/$n" ]; do n=$((n + 1)); done
	mkdir -p "tests/$group/$n"
	cat >"tests/$group/$n/test.json" <<JSON
{
	"#spec": "pv-test@1",
	"description": "describe what this test proves",
	"setup": {},
	"test-script": "pvcontrol ls"
}
JSON
	: >"tests/$group/$n/output"
	echo "tests/$group/$n"
	;;
*)
	sed -n '2,17p' "$0" >&2
	exit 2
	;;
esac
