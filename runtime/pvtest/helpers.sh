# pvtest helpers: sourced by every ready-script, test-script and -i shell.
# The instance is described by PVTEST_* variables (see pvtest_env).

pvcontrol() { "$PVTEST_BIN/pvcontrol" -s "$PVTEST_SOCKET" "$@"; }
pvtx() { PVTXDIR="$PVTEST_INSTANCE/pvtx" PVCONTROL_SOCKET="$PVTEST_SOCKET" "$PVTEST_BIN/pvtx" "$@"; }
pventer() { PV_LXC_PATH="$PVTEST_RUNDIR/lxc" "$PVTEST_BIN/pventer" "$@"; }

# json_get PATH: print the value at PATH ("a/b/0", "[name=x]/status")
# of the JSON on stdin; strings raw, anything else as compact JSON.
json_get() { "$PVTEST_TOOL" json "$@"; }

# pv_pid: pid of the running pantavisor daemon (empty when down).
pv_pid() { "$PVTEST_TOOL" children "$PVTEST_APPENGINE_PID" 2>/dev/null; }

# pv_log FILE: a log file of the running revision (pantavisor/pantavisor.log, …).
pv_log() { cat "$PVTEST_STORAGE/logs/current/$1"; }

# pv_sleep SECONDS (fractions allowed).
pv_sleep() { sleep "$1"; }

# _run CMD...: one argument is a shell snippet (eval'd, so helpers and
# pipes work); several are a command and its arguments.
_run() {
	if [ $# -eq 1 ]; then
		eval "$1"
	else
		"$@"
	fi
}

# wait_for_value TIMEOUT EXPECTED CMD...: run CMD until its stdout is EXPECTED.
# CMD may be one quoted snippet: wait_for_value 10 DONE 'pvcontrol steps progress 0 | json_get status'.
wait_for_value() {
	_t=$1 _want=$2
	shift 2
	_end=$(($(date +%s) + _t))
	while :; do
		_got=$(_run "$@" 2>/dev/null)
		[ "$_got" = "$_want" ] && return 0
		if [ "$(date +%s)" -ge "$_end" ]; then
			echo "wait_for_value: '$*' gave '$_got', want '$_want' (after ${_t}s)" >&2
			return 1
		fi
		sleep 0.2
	done
}

# wait_for_match TIMEOUT PATTERN CMD...: like wait_for_value with a case pattern (A|B).
wait_for_match() {
	_t=$1 _pat=$2
	shift 2
	_end=$(($(date +%s) + _t))
	while :; do
		_got=$(_run "$@" 2>/dev/null)
		eval "case \"\$_got\" in $_pat) return 0 ;; esac"
		if [ "$(date +%s)" -ge "$_end" ]; then
			echo "wait_for_match: '$*' gave '$_got', want $_pat (after ${_t}s)" >&2
			return 1
		fi
		sleep 0.2
	done
}

_progress_status() { pvcontrol steps progress "$1" | json_get status; }
_container_status() { pvcontrol containers ls | json_get "[name=$1]/status"; }
_daemon_status() {
	_m=$(pvcontrol devmeta ls) || return
	echo "$(echo "$_m" | json_get pantavisor.status)/$(echo "$_m" | json_get pantavisor.state)"
}

# wait_for_progress REV PATTERN [TIMEOUT=60]: e.g. wait_for_progress locals/x 'DONE|UPDATED'
wait_for_progress() { wait_for_match "${3:-60}" "$2" _progress_status "$1"; }

# wait_for_status CONTAINER PATTERN [TIMEOUT=60]: e.g. wait_for_status control 'STARTED|READY'
wait_for_status() { wait_for_match "${3:-60}" "$2" _container_status "$1"; }

# wait_for_ready [TIMEOUT=60]: the daemon answers, the revision status
# (devmeta pantavisor.status) is READY and its FSM waits (pantavisor.state).
wait_for_ready() { wait_for_value "${1:-60}" READY/WAIT _daemon_status; }

# wait_for_down [TIMEOUT=30]: the daemon process is gone.
wait_for_down() { wait_for_value "${1:-30}" "" pv_pid; }

# _wait_new_daemon OLDPID [TIMEOUT=60]: a daemon other than OLDPID runs and is ready.
_wait_new_daemon() {
	_old=$1
	_end=$(($(date +%s) + ${2:-60}))
	while :; do
		_p=$(pv_pid)
		[ -n "$_p" ] && [ "$_p" != "$_old" ] && break
		if [ "$(date +%s)" -ge "$_end" ]; then
			echo "pvtest: pantavisor did not boot again" >&2
			return 1
		fi
		sleep 0.2
	done
	wait_for_ready "${2:-60}"
}

# pv_crash: kill -9 the daemon; the boot loop treats it as a reboot. Waits
# for the next boot to be ready.
pv_crash() {
	_old=$(pv_pid)
	[ -n "$_old" ] || { echo "pv_crash: pantavisor is not running" >&2; return 1; }
	kill -9 "$_old"
	_wait_new_daemon "$_old" "$@"
}

# pv_reboot: REBOOT_DEVICE and wait for the next boot to be ready.
pv_reboot() {
	_old=$(pv_pid)
	pvcontrol cmd reboot >/dev/null || return 1
	_wait_new_daemon "$_old" "$@"
}

# pv_poweroff: POWEROFF_DEVICE and wait for the App Engine to stop.
pv_poweroff() {
	pvcontrol cmd poweroff >/dev/null || return 1
	_end=$(($(date +%s) + ${1:-30}))
	while kill -0 "$PVTEST_APPENGINE_PID" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$_end" ]; then
			echo "pv_poweroff: App Engine still running" >&2
			return 1
		fi
		sleep 0.2
	done
}

# pv_boots: number of boots so far (from the App Engine log).
pv_boots() { grep -c 'msg=booting' "$PVTEST_INSTANCE/appengine.log"; }

# pv_start: start the App Engine (for -m shells).
pv_start() {
	"$PVTEST_BIN/pv-appengine" -prefix "$PVTEST_PREFIX" -d 0 ${PVTEST_CMDLINE:+-c "$PVTEST_CMDLINE"} \
		>>"$PVTEST_INSTANCE/appengine.log" 2>&1 &
	PVTEST_APPENGINE_PID=$!
	export PVTEST_APPENGINE_PID
	wait_for_ready "$@"
}

# ctrl_error CMD...: run a pvcontrol command and print "<http status> <message>"
# of its failure (nothing when it succeeds).
ctrl_error() { "$@" 2>&1 >/dev/null | sed -n 's/^pvcontrol: pv-ctrl: status \([0-9]*\): \(.*\)$/\1 \2/p'; }

# ctrl_http [-host H] METHOD PATH [BODY]: raw request on pv-ctrl, prints "<status> <body>".
ctrl_http() {
	if [ "$1" = -host ]; then
		"$PVTEST_TOOL" http -host "$2" "$PVTEST_SOCKET" "$3" "$4" ${5+"$5"}
	else
		"$PVTEST_TOOL" http "$PVTEST_SOCKET" "$1" "$2" ${3+"$3"}
	fi
}
