package watchdog

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
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

func TestOpenAll(t *testing.T) {
	// watchdog1 is there first, watchdog0 (/dev/watchdog) comes later:
	// both are armed with the timeout and petted, each once opened
	dir := t.TempDir()
	touch := func(n string) {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var log []string
	open := openAll(dir, nil, func(p string) (Device, error) {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
		n := filepath.Base(p)
		log = append(log, "open "+n)
		return namedDev{n, &log}, nil
	})
	if _, err := open(); err == nil {
		t.Fatal("opened an empty /dev")
	}
	touch("watchdog")
	touch("watchdog1")
	w := New(Always, 15*time.Second, open, nil)
	w.Start()
	touch("watchdog0")
	w.Pet()
	w.Stop()
	want := "open watchdog1 watchdog1:timeout=15s watchdog1:pet " +
		"open watchdog0 watchdog0:timeout=15s watchdog1:pet watchdog0:pet " +
		"watchdog0:magic-close watchdog1:magic-close"
	if g := strings.Join(log, " "); g != want {
		t.Errorf("got  %q\nwant %q", g, want)
	}
}

func TestOpenAllLegacy(t *testing.T) {
	// no numbered nodes: /dev/watchdog alone
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "watchdog"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var log []string
	d, err := openAll(dir, nil, func(p string) (Device, error) { return namedDev{filepath.Base(p), &log}, nil })()
	if err != nil {
		t.Fatal(err)
	}
	d.Keepalive()
	if g := strings.Join(log, " "); g != "watchdog:pet" {
		t.Errorf("got %q, want watchdog:pet", g)
	}
}

// namedDev logs what is done to it under its name.
type namedDev struct {
	name string
	log  *[]string
}

func (d namedDev) SetTimeout(t time.Duration) (time.Duration, error) {
	*d.log = append(*d.log, d.name+":timeout="+t.String())
	return t, nil
}
func (d namedDev) Keepalive() error { *d.log = append(*d.log, d.name+":pet"); return nil }
func (d namedDev) Close(magic bool) error {
	*d.log = append(*d.log, d.name+":magic-close")
	return nil
}
