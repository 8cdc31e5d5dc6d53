# bench/lib.sh: helpers the build benches share (bench/rebuild.sh,
# bench/gokrazy.sh); sourced, with $dir set to the bench's private dir.

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# cpu: user+system seconds used so far by this shell's finished children
# (the timed commands and everything they waited for), from the output of
# the times builtin (run in this shell, not in a subshell).
cpu() { awk 'NR == 2 { gsub(/s/, ""); split($1, u, "m"); split($2, s, "m"); printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$dir/times"; }

# timed <label> <cmd...>: run cmd, print its wall and CPU time (kept in
# $last and $lastcpu), keep its output in $dir/<label>.log. A function
# as cmd runs in this shell: its children are counted.
timed() {
	local label=$1 t0 t1 c0 c1
	shift
	times >"$dir/times"
	c0=$(cpu)
	t0=$(now)
	if ! "$@" >"$dir/$label.log" 2>&1; then
		echo "bench: $label failed:" >&2
		tail -20 "$dir/$label.log" >&2
		exit 1
	fi
	t1=$(now)
	times >"$dir/times"
	c1=$(cpu)
	last=$(secs "$t0" "$t1")
	lastcpu=$(secs "$c0" "$c1")
	printf '%-36s %7ss wall %7ss cpu\n' "$label" "$last" "$lastcpu"
}

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# stages <log>: the per-stage durations mkimage printed ("<stage> done in <d>").
stages() {
	sed -n 's/^    \(.*\) done in \([0-9.]*\)\(µs\|ms\|s\) .*/\1|\2|\3/p' "$1" |
		awk -F'|' '{ v = $2; if ($3 == "ms") v /= 1000; if ($3 == "µs") v /= 1e6; printf "%s|%.3f\n", $1, v }'
}

# stage_order <log>: the stage names in mkimage's own order (its summary),
# whichever finished first (stages run side by side).
stage_order() {
	sed -n '/^==> summary/,$p' "$1" | sed -n 's/^    \(.*[^ ]\)  *[0-9][0-9.]*s$/\1/p'
}

# coldcache <warm cache> <dir>: a fresh mkimage cache in dir with the
# warm cache's packages (deb/, unpacked/, locks/ hard-linked) and no
# artifacts/, so every artifact is made again.
coldcache() {
	local d
	rm -rf "$2"
	mkdir -p "$2"
	for d in deb unpacked locks; do
		if [ -d "$1/$d" ]; then cp -al "$1/$d" "$2/$d"; fi
	done
}
