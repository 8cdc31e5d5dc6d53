package pantavisor

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/watchdog"
)

// wdtRecorder is a watchdog device that records what the daemon does.
type wdtRecorder struct {
	mu  sync.Mutex
	ops []string
}

func (r *wdtRecorder) add(op string) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *wdtRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.ops, " ")
}

func (r *wdtRecorder) SetTimeout(t time.Duration) (time.Duration, error) {
	r.add("timeout=" + t.String())
	return t, nil
}
func (r *wdtRecorder) Keepalive() error { r.add("pet"); return nil }
func (r *wdtRecorder) Close(magic bool) error {
	if magic {
		r.add("magic-close")
	} else {
		r.add("close")
	}
	return nil
}

// TestWatchdogModes runs the daemon with each PV_WDT_MODE through a
// REBOOT_DEVICE command: what reached the device, in order (repeated pets
// squeezed to one).
func TestWatchdogModes(t *testing.T) {
	for _, tc := range []struct {
		mode      string
		running   string // after INIT and RUN
		afterExit string // after the reboot command (App Engine: no machine reset)
	}{
		{"disabled", "", ""},
		{"shutdown", "", "timeout=7s pet magic-close"},
		{"startup", "timeout=7s pet magic-close", "timeout=7s pet magic-close timeout=7s pet magic-close"},
		{"always", "timeout=7s pet", "timeout=7s pet magic-close"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			rec := &wdtRecorder{}
			in := start(t, newStorage(t), func(o *Options) {
				o.Env = append(o.Env, "PV_WDT_MODE="+tc.mode, "PV_WDT_TIMEOUT=7")
				o.Watchdog = func() (watchdog.Device, error) { return rec, nil }
			})
			if got := squeeze(rec.String()); got != tc.running {
				t.Errorf("running: device saw %q, want %q", got, tc.running)
			}
			if code, b := in.call(t, "POST", "/commands", strings.NewReader(`{"op":"REBOOT_DEVICE","payload":"x"}`)); code != 200 {
				t.Fatalf("reboot: %d %s", code, b)
			}
			in.wait(t)
			if got := squeeze(rec.String()); got != tc.afterExit {
				t.Errorf("after exit: device saw %q, want %q", got, tc.afterExit)
			}
		})
	}
}

// squeeze folds runs of "pet" into one: how many ticks passed varies.
func squeeze(s string) string {
	var out []string
	for _, w := range strings.Fields(s) {
		if w == "pet" && len(out) > 0 && out[len(out)-1] == "pet" {
			continue
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}
