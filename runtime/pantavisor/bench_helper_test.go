package pantavisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// MeasureUpdateNoReboot lets the external test package time a non-reboot
// update with runtime/pantavisor/updater (which imports this package).
var MeasureUpdateNoReboot = measureUpdateNoReboot

// measureUpdateNoReboot runs revision 0 with one container, then returns
// how long a plain start of that container takes (stopped through the
// API, started again until STARTED) and how long a non-reboot LOCAL_RUN
// changing only that container takes, from the command to the new
// revision's container STARTED.
func measureUpdateNoReboot(t testing.TB, newUpdater func(Env) (Updater, error)) (start, update time.Duration) {
	e := newCtEnv(t)
	groups := `"groups.json":[{"name":"app","restart_policy":"container","timeout":10}]`
	a := plat{name: "bu-a", run: `"group":"app"`}
	e.writeRev(t, "0", []plat{a}, groups, nil)
	e.writeRev(t, "locals/1", []plat{a}, groups, map[string]string{"_config/bu-a/etc/motd": "rev 1\n"})
	js, err := os.ReadFile(filepath.Join(e.storage, "trails", "locals", "1", ".pvr", "json"))
	must(t, err)
	must(t, os.RemoveAll(filepath.Join(e.storage, "trails", "locals")))

	in := e.start(t, "0", func(o *Options) {
		o.NewUpdater = newUpdater
		o.Env = append(o.Env, "PV_UPDATER_COMMIT_DELAY=1", "PV_BOOTLOADER_TYPE=uboot")
	})
	started := statusIs(map[string]string{"bu-a": "STARTED"})
	in.waitFor(t, "rev 0 started", started)
	e.waitInit(t, "0", "bu-a")

	// A plain start of the same container.
	if code, b := in.call(t, "PUT", "/containers/bu-a", strings.NewReader(`{"action":"stop"}`)); code != 200 {
		t.Fatalf("stop bu-a = %d %s", code, b)
	}
	in.waitFor(t, "bu-a stopped", statusIs(map[string]string{"bu-a": "STOPPED"}))
	t0 := time.Now()
	if code, b := in.call(t, "PUT", "/containers/bu-a", strings.NewReader(`{"action":"start"}`)); code != 200 {
		t.Fatalf("start bu-a = %d %s", code, b)
	}
	pollFast(t, in, "bu-a started", started)
	start = time.Since(t0)
	e.waitInit(t, "0", "bu-a")

	if code, b := in.call(t, "PUT", "/steps/locals/1", strings.NewReader(string(js))); code != 200 {
		t.Fatalf("PUT /steps/locals/1 = %d %s", code, b)
	}
	t0 = time.Now()
	if code, b := in.call(t, "POST", "/commands", strings.NewReader(`{"op":"LOCAL_RUN","payload":"locals/1"}`)); code != 200 {
		t.Fatalf("LOCAL_RUN = %d %s", code, b)
	}
	// The old container stops before the daemon switches its revision, so
	// bu-a STARTED on locals/1 is the new container.
	deadline := t0.Add(20 * time.Second)
	for in.d.Revision() != "locals/1" || !started(in.containers(t)) {
		if time.Now().After(deadline) {
			t.Fatalf("bu-a of locals/1 not STARTED after 20s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	update = time.Since(t0)
	// Not timed: the update must still succeed.
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, p := in.call(t, "GET", "/steps/locals/1/progress", nil)
		if strings.Contains(string(p), `"UPDATED"`) || strings.Contains(string(p), `"DONE"`) {
			break
		}
		if time.Now().After(deadline) || strings.Contains(string(p), `"ERROR"`) || strings.Contains(string(p), `"WONTGO"`) {
			t.Fatalf("progress of locals/1 = %s, want UPDATED", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.waitInit(t, "locals/1", "bu-a")
	// Stop now so that the next run can use the same container name.
	in.stop()
	for i := 0; ; i++ {
		m, _ := filepath.Glob("/sys/fs/cgroup/*/lxc*/bu-a")
		m2, _ := filepath.Glob("/sys/fs/cgroup/lxc*/bu-a")
		if len(m)+len(m2) == 0 {
			break
		}
		if i == 250 {
			t.Fatalf("cgroups of bu-a left behind: %q %q", m, m2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return start, update
}

// pollFast polls GET /containers every 2 ms until cond holds.
func pollFast(t testing.TB, in *instance, what string, cond func(map[string]ctInfo) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(in.containers(t)) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
