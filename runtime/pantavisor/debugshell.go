package pantavisor

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
)

// shellSeat says where the debug shell is offered: on the primary console
// of the embedded PID 1. Tests point it at a pseudo terminal.
var shellSeat = struct {
	pid1    func() bool
	console string // "" = the kernel's primary console
	shell   string // "" = /bin/sh (the debug addon's busybox)
}{pid1: func() bool { return os.Getpid() == 1 }}

// debugShell is the console debug shell and the reboot hold it causes
// (spec §1: REBOOT waits in BLOCK_REBOOT while the shell is open).
type debugShell struct {
	sh *debugshell.Shell

	mu         sync.Mutex
	deferUntil time.Time     // DEFER_REBOOT: hold at least until then
	deferred   chan struct{} // a DEFER_REBOOT arrived (buffer 1)
}

// startDebugShell offers the debug shell beside the boot when PV_DEBUG_SHELL
// is on and this is PID 1 in embedded or standalone mode (spec §1:
// standalone is "only a debug shell and ssh"); without /bin/sh (no debug
// addon) it says so once at info level.
func (d *Daemon) startDebugShell(ctx context.Context) {
	if (d.mode != Embedded && d.mode != Standalone) || d.conf == nil || !shellSeat.pid1() || !d.conf.Bool(config.DebugShell) {
		return
	}
	env := append([]string(nil), debugshell.DefaultEnv...)
	if t := os.Getenv("TERM"); t != "" {
		env = append(env, "TERM="+t) // the kernel's, for init (the last one wins)
	}
	sh, err := debugshell.Start(ctx, debugshell.Options{Console: shellSeat.console, Shell: shellSeat.shell,
		Autologin: d.conf.Bool(config.DebugShellAutologin), Env: env, Log: d.log})
	if errors.Is(err, debugshell.ErrNoShell) {
		d.log.Info("no debug shell: the initrd has no shell (debug addon)")
		return
	}
	if err != nil {
		d.log.Warn("debug shell", "err", err)
		return
	}
	d.shell = &debugShell{sh: sh, deferred: make(chan struct{}, 1)}
}

// debugShellOpen reports whether a debug shell is open (the debug_shell
// wakelock, DEFER_REBOOT allowed).
func (d *Daemon) debugShellOpen() bool {
	return d.shell != nil && d.shell.sh.Open()
}

// deferReboot is DEFER_REBOOT: a held reboot waits PV_DEBUG_SHELL_TIMEOUT
// more from now (ctrl rejects it with 409 when no shell is open). It does
// not go through the command queue: the FSM does not read it in
// BLOCK_REBOOT.
func (d *Daemon) deferReboot() error {
	s := d.shell
	if s == nil {
		return nil
	}
	until := d.clock.Now().Add(d.conf.Duration(config.DebugShellTimeout))
	s.mu.Lock()
	s.deferUntil = until
	s.mu.Unlock()
	select {
	case s.deferred <- struct{}{}:
	default:
	}
	d.log.Info("reboot deferred by the debug shell", "until", until.Format(time.TimeOnly))
	return nil
}

// holdFailedInit gives a failed INIT to the debug shell: it is offered
// (if it was not yet: storage not found is what it is for) and the end of
// PID 1, a kernel panic and reboot, waits as a reboot does.
func (d *Daemon) holdFailedInit(ctx context.Context, err error) {
	if d.shell == nil {
		d.startDebugShell(ctx)
	}
	if d.shell == nil {
		return
	}
	d.log.Error("init failed", "err", err)
	d.holdReboot(ExitReboot)
}

// holdReboot is BLOCK_REBOOT: while the debug shell is open the reboot or
// poweroff waits for it to close, at most PV_DEBUG_SHELL_TIMEOUT (0: no
// limit) from now or from the last DEFER_REBOOT, whichever is later; then
// the shell is hung up and the reboot proceeds.
func (d *Daemon) holdReboot(exit Exit) {
	s := d.shell
	if s == nil {
		return
	}
	<-s.sh.Decided() // a countdown still running is a shell maybe wanted
	s.sh.Stop()      // no new shell once the machine is going down
	if !s.sh.Open() {
		return
	}
	what := "reboot"
	if exit == ExitPoweroff {
		what = "poweroff"
	}
	timeout := d.conf.Duration(config.DebugShellTimeout)
	until := func() time.Time {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := d.clock.Now().Add(timeout)
		if s.deferUntil.After(t) {
			t = s.deferUntil
		}
		return t
	}
	deadline := until()
	if timeout > 0 {
		s.sh.Say("debug shell: %s pending: waiting until the shell is closed (exit or Ctrl-D), %s at most; DEFER_REBOOT (pvcontrol cmd defer-reboot, from a mgmt container) restarts the wait", what, timeout)
	} else {
		s.sh.Say("debug shell: %s pending: waiting until the shell is closed (exit or Ctrl-D)", what)
	}
	d.log.Warn("debug shell open: "+what+" held", "timeout", timeout)
	for {
		select {
		case <-s.sh.Idle():
			d.log.Info("debug shell exited: " + what + " proceeds")
			return
		case <-s.deferred:
			deadline = until()
			s.sh.Say("debug shell: %s deferred until %s", what, deadline.Format(time.TimeOnly))
		case <-d.clock.After(BlockTick):
			d.petWatchdog() // BLOCK_REBOOT is an FSM state: its ticks pet as WAIT's do
			if timeout > 0 && !d.clock.Now().Before(deadline) {
				s.sh.Say("debug shell: %s: waited %s, closing the shell", what, timeout)
				d.log.Warn("debug shell: hold timed out: closing it", "timeout", timeout)
				s.sh.Close(time.Second)
				return
			}
		}
	}
}
