// Package boottime measures the phases of a boot from the moment the
// kernel started /init (this process) and prints them as one console
// line:
//
//	boot: storage 0.21s (prepare 0.05s, modules 0.06s, device 0.17s, fs 0.18s), bsp 0.35s, containers started 0.62s, READY 0.80s (since /init; /init at 1.52s since kernel start)
//
// A phase's steps (MarkIn) are shown in parentheses after it, on the
// same line.
//
// The start is the moment the program began (StartAt with a time taken
// at package initialisation), placed on the kernel's clock through
// /proc/uptime. PID 1's /proc/self/stat start time cannot serve: it is
// when the kernel created its init task, long before it ran /init.
package boottime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every architecture Linux supports in practice.
const clockTicks = 100

// Timeline is the marks of one boot. Its methods are safe for concurrent
// use: the daemon and the container supervisor both mark.
type Timeline struct {
	// start is when /init started, on the monotonic clock.
	start time.Time
	// atInit is how long after the kernel's start /init started; < 0
	// when unknown (no /proc).
	atInit time.Duration

	mu    sync.Mutex
	marks []mark
}

type mark struct {
	phase string // "" for a phase, the phase a step belongs to
	name  string
	at    time.Duration
}

// Start returns a Timeline that counts from the start of this process:
// /proc/self/stat's start time for an ordinary process, now for PID 1
// (see the package comment), or now when /proc cannot be read.
func Start() *Timeline {
	now := time.Now()
	if os.Getpid() == 1 {
		return StartAt(now)
	}
	t := &Timeline{start: now, atInit: -1}
	stat, err1 := os.ReadFile("/proc/self/stat")
	up, err2 := os.ReadFile("/proc/uptime")
	if err1 != nil || err2 != nil {
		return t
	}
	started, err1 := StartTicks(string(stat))
	uptime, err2 := Uptime(string(up))
	if err1 != nil || err2 != nil {
		return t
	}
	t.atInit = time.Duration(started) * time.Second / clockTicks
	if since := uptime - t.atInit; since > 0 {
		t.start = now.Add(-since)
	}
	return t
}

// StartAt returns a Timeline that counts from start, the moment /init
// began (a time taken when the program initialised); /proc/uptime tells
// how long after the kernel's start that was.
func StartAt(start time.Time) *Timeline {
	t := &Timeline{start: start, atInit: -1}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if up, err := Uptime(string(b)); err == nil {
			if at := up - time.Since(start); at >= 0 {
				t.atInit = at
			}
		}
	}
	return t
}

// At returns a Timeline that counts from start, /init having started
// atInit after the kernel (< 0: unknown); for tests.
func At(start time.Time, atInit time.Duration) *Timeline {
	return &Timeline{start: start, atInit: atInit}
}

// Mark records that phase name ended now. Only the first mark of a name
// counts (a container restarting later is not the boot). A nil Timeline
// ignores marks.
func (t *Timeline) Mark(name string) {
	t.MarkAt(name, time.Now())
}

// MarkAt records that phase name ended at when.
func (t *Timeline) MarkAt(name string, when time.Time) {
	t.mark("", name, when)
}

// MarkIn records that step name of phase ended now; the line shows it
// in parentheses after the phase (once the phase is marked). Only the
// first mark of a step counts.
func (t *Timeline) MarkIn(phase, name string) {
	t.mark(phase, name, time.Now())
}

func (t *Timeline) mark(phase, name string, when time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.marks {
		if m.phase == phase && m.name == name {
			return
		}
	}
	t.marks = append(t.marks, mark{phase, name, when.Sub(t.start)})
}

// Elapsed is the time since /init started (0 for a nil Timeline).
func (t *Timeline) Elapsed() time.Duration {
	if t == nil {
		return 0
	}
	return time.Since(t.start)
}

// Since returns how long after /init's start phase name ended, and
// whether it did.
func (t *Timeline) Since(name string) (time.Duration, bool) {
	if t == nil {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.marks {
		if m.phase == "" && m.name == name {
			return m.at, true
		}
	}
	return 0, false
}

// String is the console line: the marks in the order they were made,
// in seconds since /init started.
func (t *Timeline) String() string {
	if t == nil {
		return "boot: no timeline"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	b.WriteString("boot:")
	n := 0
	for _, m := range t.marks {
		if m.phase != "" {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		fmt.Fprintf(&b, " %s %.2fs", m.name, m.at.Seconds())
		steps := 0
		for _, s := range t.marks {
			if s.phase != m.name {
				continue
			}
			if steps == 0 {
				b.WriteString(" (")
			} else {
				b.WriteString(", ")
			}
			steps++
			fmt.Fprintf(&b, "%s %.2fs", s.name, s.at.Seconds())
		}
		if steps > 0 {
			b.WriteByte(')')
		}
	}
	b.WriteString(" (since /init")
	if t.atInit >= 0 {
		fmt.Fprintf(&b, "; /init at %.2fs since kernel start", t.atInit.Seconds())
	}
	b.WriteByte(')')
	return b.String()
}

// StartTicks returns field 22 (starttime) of a /proc/<pid>/stat line:
// clock ticks from the kernel's start to the process's. The command name
// (field 2) is in parentheses and may hold spaces and parentheses, so
// the fields are counted after its last ')'.
func StartTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("boottime: /proc stat: no command name")
	}
	// After ") " come fields 3 (state) onwards; starttime is field 22.
	f := strings.Fields(stat[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("boottime: /proc stat: %d fields after the command name, want at least 20", len(f))
	}
	n, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("boottime: /proc stat starttime: %w", err)
	}
	return n, nil
}

// Uptime returns the first number of /proc/uptime: seconds since the
// kernel's start.
func Uptime(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("boottime: /proc/uptime: empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || !(v >= 0 && v <= 1e9) {
		return 0, fmt.Errorf("boottime: /proc/uptime: bad number %q", f[0])
	}
	return time.Duration(v * float64(time.Second)), nil
}
