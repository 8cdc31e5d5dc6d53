package platform

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/volume"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// drive runs ticks and actions until cond holds or the deadline passes.
func drive(t *testing.T, ctx context.Context, e *Engine, h *Host, cond func() bool) []Action {
	t.Helper()
	var failures []Action
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached; platforms %+v", e.Platforms())
		}
		todo := e.Tick()
		for len(todo) > 0 {
			a := todo[0]
			todo = todo[1:]
			more, err := h.Do(ctx, e, a)
			if err != nil {
				t.Fatalf("Do(%v) error = %v", a, err)
			}
			for _, m := range more {
				if m.Kind == Reboot || m.Kind == Rollback {
					failures = append(failures, m)
					continue
				}
				todo = append(todo, m)
			}
		}
		select {
		case x := <-h.Exits():
			more, err := h.Exited(e, x)
			if err != nil {
				t.Fatalf("Exited(%s) error = %v", x.Platform, err)
			}
			for _, m := range more {
				if m.Kind == Reboot || m.Kind == Rollback {
					failures = append(failures, m)
					continue
				}
				if _, err := h.Do(ctx, e, m); err != nil {
					t.Fatalf("Do(%v) error = %v", m, err)
				}
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	return failures
}

func TestHostRealContainers(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: running containers needs root")
	}
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	if err := lxc.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	img, err := rootfs.Build(rootfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := Paths{
		Storage: filepath.Join(dir, "storage"), Volumes: filepath.Join(dir, "volumes"),
		Configs: filepath.Join(dir, "configs"), Run: filepath.Join(dir, "run"), Logs: filepath.Join(dir, "logs"),
	}
	st := mkState(t, map[string]string{
		"hnet": `"group":"root"`,
		"happ": `"group":"app","auto_recovery":{"policy":"always","max_retries":2,"retry_delay":0}`,
	}, "")
	trail := filepath.Join(paths.Storage, "trails", "1")
	for _, name := range []string{"hnet", "happ"} {
		d := filepath.Join(trail, name)
		must(t, os.MkdirAll(d, 0o755))
		data, _ := os.ReadFile(img)
		must(t, os.WriteFile(filepath.Join(d, "root.squashfs"), data, 0o644))
		conf := rootfs.LXCConf(rootfs.Conf{Name: name})
		must(t, os.WriteFile(filepath.Join(d, "lxc.container.conf"), []byte(conf), 0o644))
	}
	must(t, os.MkdirAll(filepath.Join(trail, "_config", "happ", "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(trail, "_config", "happ", "etc", "motd"), []byte("configured\n"), 0o644))

	e, err := New(st, Options{Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHost(quiet(), paths, st, "1")
	ctx := context.Background()
	defer h.Close(ctx)
	started := func(n string) func() bool {
		return func() bool { i, _ := e.Info(n); return i.Status == Started }
	}
	if f := drive(t, ctx, e, h, func() bool { return started("hnet")() && started("happ")() }); len(f) != 0 {
		t.Fatalf("failures while starting: %v", f)
	}
	first, _ := e.Info("happ")
	if _, err := lxcProbe(first.Pid, "etc/motd"); err != nil {
		t.Errorf("config overlay in app: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(first.Pid), "cgroup")); err != nil || !strings.Contains(string(got), "/lxc/happ") {
		t.Errorf("app cgroup = %q, %v, want /lxc/happ", got, err)
	}

	// Crash happ: auto-recovery restarts it with a new init.
	must(t, killPid(first.Pid))
	drive(t, ctx, e, h, func() bool {
		i, _ := e.Info("happ")
		return i.Status == Started && i.Pid != first.Pid
	})
	if i, _ := e.Info("happ"); i.Retries != 1 {
		t.Errorf("retries after one crash = %d, want 1", i.Retries)
	}
	if _, err := os.Stat(filepath.Join(paths.Logs, "1", "happ", "lxc", "lxc.log")); err != nil {
		t.Errorf("lxc log: %v", err)
	}

	// Crash hnet (no auto-recovery): the tick fails with a reboot.
	n, _ := e.Info("hnet")
	must(t, killPid(n.Pid))
	failures := drive(t, ctx, e, h, func() bool { i, _ := e.Info("hnet"); return i.Status == Stopped })
	if len(failures) != 1 || failures[0].Kind != Reboot || failures[0].Platform != "hnet" {
		t.Errorf("failures after net crash = %v, want reboot hnet", failures)
	}

	// Stop everything: no mounts, loops or cgroups remain.
	for _, a := range e.StopAll() {
		more, err := h.Do(ctx, e, a)
		if err != nil {
			t.Errorf("Do(%v) error = %v", a, err)
		}
		for _, m := range more {
			h.Do(ctx, e, m)
		}
	}
	if err := h.Close(ctx); err != nil {
		t.Errorf("Close() error = %v", err)
	}
	var leaks []string
	for i := 0; i < 100; i++ {
		if leaks, _ = volume.OwnLeaks(dir); len(leaks) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(leaks) != 0 {
		t.Errorf("Leaks() = %q, want none", leaks)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// lxcProbe reads a file in the root of process pid.
func lxcProbe(pid int, rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "root", rel))
}
