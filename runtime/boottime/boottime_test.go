package boottime

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartTicks(t *testing.T) {
	// A command name with spaces and a parenthesis, as a process may
	// choose (prctl PR_SET_NAME).
	stat := "1 (pv) init) S 0 1 1 0 -1 4194560 1650 0 12 0 3 9 0 0 20 0 7 0 152 1234 567 18446744073709551615"
	n, err := StartTicks(stat)
	if err != nil || n != 152 {
		t.Fatalf("StartTicks = %d, %v; want 152", n, err)
	}
	for _, bad := range []string{"", "1 init S 0", "1 (init) S 0 1", "1 (init) S 0 1 1 0 -1 4 1 0 1 0 3 9 0 0 20 0 7 0 x 1"} {
		if _, err := StartTicks(bad); err == nil {
			t.Errorf("StartTicks(%q): no error", bad)
		}
	}
}

func TestUptime(t *testing.T) {
	d, err := Uptime("12.34 40.00\n")
	if err != nil || d != 12340*time.Millisecond {
		t.Fatalf("Uptime = %v, %v", d, err)
	}
	for _, bad := range []string{"", "x 1", "-1 2", "NaN 1"} {
		if _, err := Uptime(bad); err == nil {
			t.Errorf("Uptime(%q): no error", bad)
		}
	}
}

func TestTimelineString(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tl := At(t0, 1520*time.Millisecond)
	tl.mark("storage", "prepare", t0.Add(50*time.Millisecond))
	tl.mark("storage", "device", t0.Add(180*time.Millisecond))
	tl.mark("storage", "device", t0.Add(190*time.Millisecond)) // nor those of a step
	tl.mark("nope", "orphan", t0.Add(190*time.Millisecond))    // a step of no phase is not shown
	tl.MarkAt("storage", t0.Add(210*time.Millisecond))
	tl.MarkAt("bsp", t0.Add(350*time.Millisecond))
	tl.MarkAt("storage", t0.Add(900*time.Millisecond)) // later marks of a name do not count
	tl.MarkAt("containers started", t0.Add(620*time.Millisecond))
	tl.MarkAt("READY", t0.Add(800*time.Millisecond))
	want := "boot: storage 0.21s (prepare 0.05s, device 0.18s), bsp 0.35s, containers started 0.62s, READY 0.80s (since /init; /init at 1.52s since kernel start)"
	if got := tl.String(); got != want {
		t.Errorf("String =\n %s\nwant\n %s", got, want)
	}
	if d, ok := tl.Since("bsp"); !ok || d != 350*time.Millisecond {
		t.Errorf("Since(bsp) = %v, %v", d, ok)
	}
	if _, ok := tl.Since("nope"); ok {
		t.Error("Since(nope) found")
	}
	if _, ok := tl.Since("device"); ok {
		t.Error("Since(device) found a step")
	}
	var nilTL *Timeline
	nilTL.Mark("x") // must not panic
	nilTL.MarkIn("x", "y")
	if !strings.HasPrefix(nilTL.String(), "boot:") {
		t.Error("nil String")
	}
}

// TestStartHere reads this process's own /proc entries: /init's start is
// before now and not before the kernel's.
func TestStartHere(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	tl := Start()
	if tl.atInit < 0 {
		t.Fatal("Start did not read /proc")
	}
	if tl.start.After(time.Now()) {
		t.Errorf("start %v is in the future", tl.start)
	}
	tl.Mark("now")
	if d, _ := tl.Since("now"); d < 0 {
		t.Errorf("mark before start: %v", d)
	}
}

func FuzzStartTicks(f *testing.F) {
	f.Add("1 (init) S 0 1 1 0 -1 4194560 1650 0 12 0 3 9 0 0 20 0 7 0 152 1234")
	f.Add("1 (a) b) S")
	f.Add(")")
	f.Fuzz(func(t *testing.T, s string) {
		StartTicks(s)
	})
}

func FuzzUptime(f *testing.F) {
	f.Add("12.34 40.00\n")
	f.Add("1e400")
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := Uptime(s); err == nil && d < 0 {
			t.Errorf("Uptime(%q) = %v", s, d)
		}
	})
}

func TestElapsed(t *testing.T) {
	tl := At(time.Now().Add(-time.Minute), -1)
	if e := tl.Elapsed(); e < time.Minute {
		t.Errorf("Elapsed = %v, want ≥ 1m", e)
	}
	var none *Timeline
	if none.Elapsed() != 0 {
		t.Error("nil Elapsed")
	}
}

func TestStartAt(t *testing.T) {
	if _, err := os.Stat("/proc/uptime"); err != nil {
		t.Skip("no /proc")
	}
	t0 := time.Now().Add(-2 * time.Second)
	tl := StartAt(t0)
	if tl.atInit < 0 || !tl.start.Equal(t0) {
		t.Fatalf("StartAt: atInit %v start %v", tl.atInit, tl.start)
	}
	if e := tl.Elapsed(); e < 2*time.Second {
		t.Errorf("Elapsed = %v", e)
	}
}
