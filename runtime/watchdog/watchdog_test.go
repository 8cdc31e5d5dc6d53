package watchdog

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// fakeDev records what the watchdog does to the device.
type fakeDev struct {
	log *[]string
	max time.Duration // the driver's largest timeout
}

func (d fakeDev) SetTimeout(t time.Duration) (time.Duration, error) {
	if d.max != 0 && t > d.max {
		t = d.max
	}
	*d.log = append(*d.log, "timeout="+t.String())
	return t, nil
}
func (d fakeDev) Keepalive() error { *d.log = append(*d.log, "pet"); return nil }
func (d fakeDev) Close(magic bool) error {
	if magic {
		*d.log = append(*d.log, "magic-close")
	} else {
		*d.log = append(*d.log, "close")
	}
	return nil
}

func TestModes(t *testing.T) {
	// each phase of a boot, in order; "|" separates the phases in want
	phases := []struct {
		name string
		do   func(*Watchdog)
	}{
		{"init", (*Watchdog).Start},
		{"run", (*Watchdog).Pet},
		{"wait", func(w *Watchdog) { w.Running(); w.Pet() }},
		{"wait", (*Watchdog).Pet},
		{"reboot", func(w *Watchdog) { w.Shutdown(); w.Pet() }},
	}
	for _, tc := range []struct {
		mode Mode
		want string
	}{
		{Disabled, "||||"},
		{Shutdown, "||||open timeout=15s pet pet"},
		{Startup, "open timeout=15s pet|pet|magic-close||open timeout=15s pet pet"},
		{Always, "open timeout=15s pet|pet|pet|pet|pet pet"},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			var log []string
			w := New(tc.mode, 15*time.Second, func() (Device, error) {
				log = append(log, "open")
				return fakeDev{log: &log}, nil
			}, slog.New(slog.DiscardHandler))
			var got []string
			for _, p := range phases {
				log = nil
				p.do(w)
				got = append(got, strings.Join(log, " "))
			}
			if g := strings.Join(got, "|"); g != tc.want {
				t.Errorf("mode %s: got %q, want %q", tc.mode, g, tc.want)
			}
		})
	}
}

func TestLateDevice(t *testing.T) {
	// the driver is a module: the device appears after a few rounds
	var log []string
	present := false
	w := New(Always, 15*time.Second, func() (Device, error) {
		if !present {
			return nil, errors.New("no such device")
		}
		return fakeDev{log: &log, max: 10 * time.Second}, nil
	}, nil)
	w.Start()
	w.Pet()
	if len(log) != 0 {
		t.Fatalf("petted a missing device: %q", log)
	}
	present = true
	w.Pet()
	w.Stop()
	if g := strings.Join(log, " "); g != "timeout=10s pet magic-close" {
		t.Errorf("got %q, want the driver's timeout, a pet and a magic close", g)
	}
}

func TestParseMode(t *testing.T) {
	for _, n := range []string{"disabled", "shutdown", "startup", "always"} {
		m, err := ParseMode(n)
		if err != nil || m.String() != n {
			t.Errorf("ParseMode(%q) = %v, %v", n, m, err)
		}
	}
	if _, err := ParseMode("sometimes"); !errors.Is(err, ErrMode) {
		t.Errorf("ParseMode(sometimes) = %v, want ErrMode", err)
	}
}
