package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// fakeClock is a manual clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// scripted is the test implementation of Containers: it records what the
// updater asks and answers what the test sets.
type scripted struct {
	stopped     []string
	started     []string
	transitions []string
	reached     bool
	timedOut    []string
	failed      error
	stable      bool
	updating    bool
	stopErr     error
}

func newScripted() *scripted { return &scripted{reached: true, stable: true} }

func (s *scripted) Stop(ctx context.Context, names []string) error {
	s.stopped = append(s.stopped, names...)
	return s.stopErr
}

func (s *scripted) Transition(ctx context.Context, rev string, st *state.State, names []string) error {
	s.transitions = append(s.transitions, rev)
	s.started = append(s.started, names...)
	return nil
}

func (s *scripted) Goals() (bool, []string) { return s.reached, s.timedOut }
func (s *scripted) Failed() error           { return s.failed }
func (s *scripted) Stable() bool            { return s.stable }
func (s *scripted) SetUpdating(u bool)      { s.updating = u }

// logCapture records the capture calls.
type logCapture struct{ calls []string }

func (l *logCapture) StartUpdate(rev string) { l.calls = append(l.calls, "start "+rev) }
func (l *logCapture) StopUpdate()            { l.calls = append(l.calls, "stop") }

// device is a storage dir and a boot loader env that survive "reboots";
// the updater, boot loader object and containers are rebuilt by boot.
type device struct {
	t       *testing.T
	dir     string
	blType  string
	st      *storage.Storage
	clock   *fakeClock
	hooks   []string
	hookErr map[string]error

	bl     *bootloader.Bootloader
	c      *scripted
	logs   *logCapture
	u      *Updater
	booted string
}

func sha(content string) string {
	h := sha256.Sum256([]byte(content))
	return hex.EncodeToString(h[:])
}

// baseState is revision 1: a BSP, a system platform "os" and two app
// platforms (restart_policy container through the default app group).
func baseState() map[string]any {
	return map[string]any{
		"#spec":                  state.Spec,
		"bsp/run.json":           map[string]any{"linux": "kernel.img", "initrd": "pantavisor"},
		"bsp/kernel.img":         "kernel-1",
		"bsp/pantavisor":         "initrd-1",
		"os/run.json":            map[string]any{"name": "os", "config": "lxc.container.conf", "root-volume": "root.squashfs", "group": "root", "restart_policy": "system"},
		"os/lxc.container.conf":  "os-conf-1",
		"os/root.squashfs":       "os-root-1",
		"app/run.json":           map[string]any{"name": "app", "config": "lxc.container.conf", "root-volume": "root.squashfs", "group": "app"},
		"app/lxc.container.conf": "app-conf-1",
		"app/root.squashfs":      "app-root-1",
		"web/run.json":           map[string]any{"name": "web", "config": "lxc.container.conf", "root-volume": "root.squashfs", "group": "app"},
		"web/lxc.container.conf": "web-conf-1",
		"web/root.squashfs":      "web-root-1",
	}
}

// with returns a copy of base with kv applied (nil deletes).
func with(base map[string]any, kv map[string]any) map[string]any {
	m := map[string]any{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range kv {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// addRev stores the objects of m (string values are object contents)
// and writes revision rev's state JSON, as pvtx would.
func (d *device) addRev(rev string, m map[string]any) {
	d.t.Helper()
	out := map[string]any{}
	for k, v := range m {
		if s, ok := v.(string); ok && k != "#spec" {
			if _, err := d.st.PutObject(sha(s), strings.NewReader(s)); err != nil {
				d.t.Fatal(err)
			}
			v = sha(s)
		}
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := d.st.WriteStateJSON(rev, strings.NewReader(string(b))); err != nil {
		d.t.Fatal(err)
	}
	if err := d.st.WriteProgress(rev, progress.New(progress.StatusNew, progress.MsgReady)); err != nil {
		d.t.Fatal(err)
	}
}

// newDevice returns a device whose committed, running revision is 1.
func newDevice(t *testing.T, blType string) *device {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := &device{t: t, dir: dir, blType: blType, st: st, clock: &fakeClock{now: time.Unix(1_700_000_000, 0)},
		hookErr: map[string]error{}}
	d.addRev("1", baseState())
	data, _ := st.StateJSON("1")
	s1, err := state.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Materialize("1", s1); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteProgress("1", progress.New(progress.Done, progress.MsgDone)); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDone("1"); err != nil {
		t.Fatal(err)
	}
	bl := d.openBL("")
	if err := bl.PreCommit("1"); err != nil {
		t.Fatal(err)
	}
	if err := d.boot(); err != nil {
		t.Fatalf("first boot: %v", err)
	}
	d.hooks = nil
	return d
}

func (d *device) openBL(cmdline string) *bootloader.Bootloader {
	d.t.Helper()
	bl, err := bootloader.Open(bootloader.Options{Type: d.blType, Storage: d.dir, Cmdline: cmdline,
		Hooks: func(h string) error { d.hooks = append(d.hooks, h); return d.hookErr[h] }})
	if err != nil {
		d.t.Fatal(err)
	}
	return bl
}

// env reads a boot loader variable as the boot script would.
func (d *device) env(key string) string {
	d.t.Helper()
	v, err := d.openBL("").Env().Get(key)
	if err != nil {
		d.t.Fatal(err)
	}
	return v
}

// boot simulates a (re)boot: the boot script picks the revision with its
// pv_trying latch, then pantavisor starts afresh and resumes. The in-memory
// updater of the previous boot is discarded (power loss or reboot alike).
func (d *device) boot() error {
	d.t.Helper()
	raw := d.openBL("")
	rev, _ := raw.Env().Get(bootloader.VarRev)
	try, _ := raw.Env().Get(bootloader.VarTry)
	trying, _ := raw.Env().Get(bootloader.VarTrying)
	ch := bootloader.Choose(rev, try, trying)
	if ch.Trying != trying {
		if err := raw.Env().Set(bootloader.VarTrying, ch.Trying); err != nil {
			d.t.Fatal(err)
		}
	}
	d.booted = ch.Boot
	cmdline := "pv_rev=" + ch.Boot
	if try != "" {
		cmdline += " pv_try=" + try
	}
	d.bl = d.openBL(cmdline)
	d.c = newScripted()
	d.logs = &logCapture{}
	u, err := New(Options{Storage: d.st, Bootloader: d.bl, Containers: d.c, Logs: d.logs, Clock: d.clock})
	if err != nil {
		d.t.Fatal(err)
	}
	d.u = u
	if err := d.st.SetCurrent(ch.Boot); err != nil {
		d.t.Fatal(err)
	}
	return u.Resume(d.bl.Rev(), d.bl.Try())
}

// progressOf reads rev's progress file.
func (d *device) progressOf(rev string) progress.Progress {
	d.t.Helper()
	p, err := d.st.Progress(rev)
	if err != nil {
		d.t.Fatalf("progress of %s: %v", rev, err)
	}
	return p
}

func (d *device) wantProgress(rev string, s progress.Status, msg string) {
	d.t.Helper()
	p := d.progressOf(rev)
	if p.Status != s || p.Msg != msg || p.Progress != s.Progress() {
		d.t.Errorf("progress of %s = %s %q %d, want %s %q %d", rev, p.Status, p.Msg, p.Progress, s, msg, s.Progress())
	}
}

// wantEnv checks pv_rev and pv_try.
func (d *device) wantEnv(rev, try string) {
	d.t.Helper()
	if got := d.env(bootloader.VarRev); got != rev {
		d.t.Errorf("pv_rev = %q, want %q", got, rev)
	}
	if got := d.env(bootloader.VarTry); got != try {
		d.t.Errorf("pv_try = %q, want %q", got, try)
	}
}

// step runs one WAIT tick and checks the answer.
func (d *device) step(want Next) {
	d.t.Helper()
	got, err := d.u.Step(context.Background())
	if got != want {
		d.t.Fatalf("Step = %v (err %v), want %v", got, err, want)
	}
}

// testAndCommit drives a running update from INPROGRESS to its end.
func (d *device) testAndCommit() {
	d.t.Helper()
	d.step(Stay) // INPROGRESS → TESTING
	d.clock.Advance(DefaultCommitDelay - time.Second)
	d.step(Stay) // still testing
	d.clock.Advance(time.Second)
	d.step(Stay) // final
}

// allObjectsOf checks that every object of rev is stored and valid.
func (d *device) wantObjectsOf(rev string) {
	d.t.Helper()
	data, err := d.st.StateJSON(rev)
	if err != nil {
		d.t.Fatalf("state of %s: %v", rev, err)
	}
	s, err := state.Parse(data)
	if err != nil {
		d.t.Fatal(err)
	}
	for k, o := range s.Objects() {
		if err := d.st.VerifyObject(o); err != nil {
			d.t.Errorf("object %s of %s: %v", k, rev, err)
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, os.ErrNotExist)
}

func (d *device) trailFile(rev, name string) string {
	return filepath.Join(d.st.TrailDir(rev), name)
}

func removeFile(p string) error { return os.Remove(p) }

// addRevB is addRev for benchmarks: the revision is also materialised.
func (d *device) addRevB(b *testing.B, rev string, m map[string]any) {
	out := map[string]any{}
	for k, v := range m {
		if s, ok := v.(string); ok && k != "#spec" {
			if !d.st.HasObject(sha(s)) {
				if _, err := d.st.PutObject(sha(s), strings.NewReader(s)); err != nil {
					b.Fatal(err)
				}
			}
			v = sha(s)
		}
		out[k] = v
	}
	data, err := json.Marshal(out)
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.st.WriteStateJSON(rev, strings.NewReader(string(data))); err != nil {
		b.Fatal(err)
	}
	if err := d.st.Materialize(rev, st); err != nil {
		b.Fatal(err)
	}
}

// openBLB opens a grub env with pv_rev=50 committed.
func openBLB(b *testing.B, dir string) *bootloader.Bootloader {
	bl, err := bootloader.Open(bootloader.Options{Type: "grub", Storage: dir, Cmdline: "pv_rev=50"})
	if err != nil {
		b.Fatal(err)
	}
	if err := bl.PreCommit("50"); err != nil {
		b.Fatal(err)
	}
	return bl
}
