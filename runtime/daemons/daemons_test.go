package daemons

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
)

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// start runs a manager of one daemon running argv and waits for its start.
func start(t *testing.T, o Options, argv ...string) (*Manager, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	m := New(testLog(t), o, Spec{Name: "d", Command: func() *exec.Cmd { return exec.Command(argv[0], argv[1:]...) }})
	started := m.Started("d")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	await(t, started, "first start")
	t.Cleanup(func() { cancel(); <-done })
	return m, cancel, done
}

func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10 s", what)
	}
}

func list(m *Manager) ctrl.Daemon { return m.List()[0] }

// alive reports whether pid exists and is not a zombie of ours.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestRestartOnDeath(t *testing.T) {
	m, _, _ := start(t, Options{MinBackoff: 10 * time.Millisecond}, "sleep", "100")
	d := list(m)
	if d.Name != "d" || d.Pid <= 0 || !d.Respawn {
		t.Fatalf("List() = %+v, want d running with respawn", d)
	}
	again := m.Started("d")
	if err := syscall.Kill(d.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	await(t, again, "restart after SIGKILL")
	if n := list(m); n.Pid <= 0 || n.Pid == d.Pid || !n.Respawn {
		t.Errorf("List() after death = %+v, want a new pid (old %d)", n, d.Pid)
	}
}

func TestStopStart(t *testing.T) {
	m, _, _ := start(t, Options{}, "sleep", "100")
	pid := list(m).Pid
	if err := m.Action("d", "stop"); err != nil {
		t.Fatalf("Action(stop) = %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for list(m).Pid != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polls List, the API's view
	}
	if d := list(m); d.Pid != 0 || d.Respawn {
		t.Fatalf("List() after stop = %+v, want pid 0, no respawn", d)
	}
	if alive(pid) {
		t.Errorf("pid %d still alive after stop", pid)
	}
	if err := m.Signal("d", syscall.SIGHUP); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Signal() of a stopped daemon = %v, want ErrNotRunning", err)
	}
	again := m.Started("d")
	if err := m.Action("d", "start"); err != nil {
		t.Fatalf("Action(start) = %v", err)
	}
	await(t, again, "start")
	if d := list(m); d.Pid <= 0 || d.Pid == pid || !d.Respawn {
		t.Errorf("List() after start = %+v, want a new pid with respawn", d)
	}
}

func TestStopKillsStubbornDaemon(t *testing.T) {
	m, cancel, done := start(t, Options{StopGrace: 50 * time.Millisecond}, "sh", "-c", `trap "" TERM; while :; do sleep 1; done`)
	pid := list(m).Pid
	cancel()
	await(t, done, "Run returning after cancel")
	if alive(pid) {
		t.Errorf("pid %d alive after Run returned", pid)
	}
}

func TestActionErrors(t *testing.T) {
	m := New(nil, Options{}, Spec{Name: "d", Command: func() *exec.Cmd { return exec.Command("true") }})
	if err := m.Action("x", "stop"); !errors.Is(err, ctrl.ErrNotFound) {
		t.Errorf("Action(x) = %v, want ErrNotFound", err)
	}
	if err := m.Action("d", "restart"); !errors.Is(err, ctrl.ErrInvalid) {
		t.Errorf("Action(restart) = %v, want ErrInvalid", err)
	}
	if got := m.List(); len(got) != 1 || got[0].Pid != 0 || !got[0].Respawn {
		t.Errorf("List() before Run = %+v, want d, pid 0, respawn", got)
	}
}
