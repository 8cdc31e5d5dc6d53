// Package daemons supervises the helper processes Pantavisor runs next to
// its containers (pv-xconnect): each is started, restarted with a growing
// delay when it dies, and stopped or started again through GET /daemons
// and PUT /daemons/<name> {"action":"stop"|"start"}.
//
//	m := daemons.New(log, daemons.Spec{Name: "pv-xconnect", Command: cmd})
//	m.Run(ctx)          // starts them; returns once ctx ends and all are down
//	m.Action("pv-xconnect", "stop")
//
// One goroutine per daemon owns its process; List reads what it publishes.
// A daemon runs in its own process group, and stopping it signals the
// group: SIGTERM, a bounded wait, then SIGKILL.
package daemons

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
)

// Spec describes one managed daemon.
type Spec struct {
	Name string
	// Command returns the process to start, a new one each time.
	Command func() *exec.Cmd
}

// Options tune the restart policy; zero values take the defaults.
type Options struct {
	// MinBackoff is the first restart delay (default 1 s), doubled after
	// each death up to MaxBackoff (default 30 s); a daemon that ran for
	// Stable (default 60 s) restarts after MinBackoff again.
	MinBackoff, MaxBackoff, Stable time.Duration
	// StopGrace is the wait between SIGTERM and SIGKILL (default 5 s).
	StopGrace time.Duration
}

func (o *Options) defaults() {
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Stable <= 0 {
		o.Stable = time.Minute
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 5 * time.Second
	}
}

// Manager supervises a fixed set of daemons.
type Manager struct {
	log *slog.Logger
	opt Options
	ds  []*daemon
}

// daemon is one supervised process. Its goroutine (run) owns the process;
// mu guards what List reads and what Action asks for.
type daemon struct {
	spec Spec
	kick chan struct{} // wanted changed

	mu      sync.Mutex
	wanted  bool // respawn: the daemon should run
	pid     int
	started chan struct{} // closed and replaced on each start (tests await it)
}

// New returns a manager of specs; every daemon is wanted from the start.
func New(log *slog.Logger, o Options, specs ...Spec) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o.defaults()
	m := &Manager{log: log, opt: o}
	for _, s := range specs {
		m.ds = append(m.ds, &daemon{spec: s, kick: make(chan struct{}, 1), wanted: true, started: make(chan struct{})})
	}
	return m
}

// Run supervises the daemons until ctx ends, then stops them and returns.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, d := range m.ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.supervise(ctx, d)
		}()
	}
	wg.Wait()
}

// List implements ctrl.Daemons.
func (m *Manager) List() []ctrl.Daemon {
	out := []ctrl.Daemon{}
	for _, d := range m.ds {
		d.mu.Lock()
		out = append(out, ctrl.Daemon{Name: d.spec.Name, Pid: d.pid, Respawn: d.wanted})
		d.mu.Unlock()
	}
	return out
}

// Action implements ctrl.Daemons: "stop" disables respawn and stops the
// daemon, "start" enables respawn and starts it at once.
func (m *Manager) Action(name, action string) error {
	d := m.get(name)
	if d == nil {
		return ctrl.Errorf(ctrl.ErrNotFound, "Daemon not found")
	}
	var want bool
	switch action {
	case "start":
		want = true
	case "stop":
	default:
		return fmt.Errorf("daemon action %q: %w: want start or stop", action, ctrl.ErrInvalid)
	}
	d.mu.Lock()
	d.wanted = want
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	m.log.Info("daemon "+action, "daemon", name)
	return nil
}

// ErrNotRunning is returned by Signal when the daemon has no process.
var ErrNotRunning = errors.New("daemon not running")

// Signal sends sig to the daemon's process (not its group).
func (m *Manager) Signal(name string, sig syscall.Signal) error {
	d := m.get(name)
	if d == nil {
		return fmt.Errorf("daemon %s: %w", name, ErrNotRunning)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pid <= 0 {
		return fmt.Errorf("daemon %s: %w", name, ErrNotRunning)
	}
	return syscall.Kill(d.pid, sig)
}

// Started returns a channel closed at the daemon's next start.
func (m *Manager) Started(name string) <-chan struct{} {
	d := m.get(name)
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started
}

func (m *Manager) get(name string) *daemon {
	for _, d := range m.ds {
		if d.spec.Name == name {
			return d
		}
	}
	return nil
}

func (d *daemon) isWanted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.wanted
}

func (d *daemon) setPid(pid int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pid = pid
	if pid > 0 {
		close(d.started)
		d.started = make(chan struct{})
	}
}

// supervise is d's owner goroutine: start while wanted, restart on death
// after the backoff, stop when no longer wanted or when ctx ends.
func (m *Manager) supervise(ctx context.Context, d *daemon) {
	log := m.log.With("daemon", d.spec.Name)
	backoff := m.opt.MinBackoff
	for {
		for !d.isWanted() {
			select {
			case <-ctx.Done():
				return
			case <-d.kick:
			}
		}
		cmd := d.spec.Command()
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Setpgid = true
		cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
		if err := cmd.Start(); err != nil {
			log.Error("daemon start", "err", err)
			if !m.pause(ctx, d, &backoff) {
				return
			}
			continue
		}
		d.setPid(cmd.Process.Pid)
		log.Info("daemon started", "pid", cmd.Process.Pid)
		at := time.Now()
		exited := make(chan error, 1)
		// In embedded mode PID 1's reaper may collect the exit first: Wait
		// then fails (ECHILD through the pidfd), which still means gone.
		go func() { exited <- cmd.Wait() }()
		stopped := false
	wait:
		for {
			select {
			case err := <-exited:
				log.Warn("daemon died", "pid", cmd.Process.Pid, "err", err)
				break wait
			case <-d.kick:
				if !d.isWanted() {
					m.terminate(log, cmd, exited)
					stopped = true
					break wait
				}
			case <-ctx.Done():
				m.terminate(log, cmd, exited)
				d.setPid(0)
				return
			}
		}
		d.setPid(0)
		if stopped {
			backoff = m.opt.MinBackoff
			continue
		}
		if time.Since(at) >= m.opt.Stable {
			backoff = m.opt.MinBackoff
		}
		if !m.pause(ctx, d, &backoff) {
			return
		}
	}
}

// pause waits out the restart delay and doubles it; a stop or start
// request ends the wait early. It reports false when ctx ended.
func (m *Manager) pause(ctx context.Context, d *daemon, backoff *time.Duration) bool {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	*backoff = min(2**backoff, m.opt.MaxBackoff)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-d.kick:
		*backoff = m.opt.MinBackoff
	}
	return true
}

// terminate stops cmd's process group: SIGTERM, StopGrace, SIGKILL.
func (m *Manager) terminate(log *slog.Logger, cmd *exec.Cmd, exited <-chan error) {
	pid := cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	t := time.NewTimer(m.opt.StopGrace)
	defer t.Stop()
	select {
	case <-exited:
		log.Info("daemon stopped", "pid", pid)
		return
	case <-t.C:
	}
	log.Warn("daemon ignored SIGTERM: killed", "pid", pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-exited
}
