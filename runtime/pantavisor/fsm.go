package pantavisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"golang.org/x/sys/unix"
)

// State is a state of the main FSM (spec §1).
type State int

// The FSM states.
const (
	StateInit State = iota
	StateRun
	StateWait
	StateCommand
	StateRollback
	StateReboot
	StatePoweroff
	StateBlockReboot
	StateError
	StateExit
)

var stateNames = [...]string{"INIT", "RUN", "WAIT", "COMMAND", "ROLLBACK", "REBOOT",
	"POWEROFF", "BLOCK_REBOOT", "ERROR", "EXIT"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "UNKNOWN"
	}
	return stateNames[s]
}

// Tick is the WAIT period (BlockTick for BLOCK_REBOOT).
const (
	Tick      = 2 * time.Second
	BlockTick = 1 * time.Second
	// stopGrace is how long containers get to stop leniently.
	stopGrace = 5 * time.Second
)

// State returns the current FSM state.
func (d *Daemon) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

func (d *Daemon) setState(s State) {
	d.mu.Lock()
	old := d.state
	d.state = s
	d.mu.Unlock()
	if old == s {
		return
	}
	d.log.Debug("fsm", "from", old, "to", s)
	// pantavisor.state follows the FSM once RUN published the defaults
	// (COMMAND is too short-lived to be worth a write); pantavisor.status
	// is the revision status, published by the platform manager.
	if d.devmeta != nil && s != StateCommand && old != StateRun && old != StateInit {
		if err := d.devmeta.Set("pantavisor.state", []byte(s.String())); err != nil {
			d.log.Warn("devmeta", "err", err)
		}
	}
}

// Run runs the FSM until the device reboots or powers off. Cancelling ctx
// (SIGTERM/SIGINT) is a lenient stop that returns ExitPoweroff.
func (d *Daemon) Run(ctx context.Context) (Exit, error) {
	defer d.settle()
	var cmd command.Command
	exit := ExitReboot
	var runErr error
	s := StateInit
	for {
		d.setState(s)
		d.petWatchdog() // a hung FSM resets the board (PV_WDT_MODE)
		switch s {
		case StateInit:
			if err := d.init(ctx); err != nil {
				d.holdFailedInit(ctx, err)
				d.shutdown()
				return ExitPoweroff, fmt.Errorf("init: %w", err)
			}
			s = StateRun
		case StateRun:
			if err := d.run(); err != nil {
				d.log.Error("run", "rev", d.rev, "err", err)
				runErr = err
				s = StateRollback
				break
			}
			d.setState(StateWait)
			d.wdt.Running()
			d.publishDevmeta()
			d.startRemote(ctx)
			d.startHelpers(ctx)
			close(d.ready)
			s = StateWait
		case StateWait:
			if err := d.lateFailed(); err != nil {
				d.log.Error("run", "rev", d.rev, "err", err) // as RUN's own checksum failure
				runErr = err
				s = StateRollback
				break
			}
			s, cmd = d.wait(ctx)
		case StateCommand:
			s = d.command(ctx, cmd)
		case StateRollback:
			// pv_try stays set so the bootloader falls back (spec §1).
			s = StateReboot
			if d.rev == "0" {
				s = StateError
			}
		case StateError:
			d.log.Error("error state: rebooting", "rev", d.rev)
			s = StateReboot
		case StateReboot, StatePoweroff:
			if s == StatePoweroff {
				exit = ExitPoweroff
			}
			s = StateBlockReboot
		case StateBlockReboot:
			d.holdReboot(exit) // the debug shell (no hub client yet)
			d.finish(ctx, exit)
			s = StateExit
		case StateExit:
			d.setState(StateExit)
			if runErr != nil && ctx.Err() == nil {
				d.log.Error("exit after failed revision", "err", runErr)
			}
			return exit, nil
		}
		if ctx.Err() != nil && s != StateExit && s != StateBlockReboot {
			d.log.Info("stop requested")
			exit = ExitPoweroff
			s = StateBlockReboot
		}
	}
}

// run is FSM RUN after a boot: load the revision, current links, factory
// handling, platforms.
func (d *Daemon) run() error {
	if d.mode == Standalone {
		d.log.Info("standalone mode: the revision is not run", "rev", d.rev)
		return nil
	}
	data, err := d.store.StateJSON(d.rev)
	if err != nil {
		return fmt.Errorf("revision %s: state JSON not found: %w", d.rev, err)
	}
	rev, err := parseRevision(d.rev, data, d.mode == AppEngine)
	if err != nil {
		return fmt.Errorf("revision %s: %w", d.rev, err)
	}
	if err := d.verify(rev.state); err != nil {
		return fmt.Errorf("revision %s: secureboot: %w", d.rev, err)
	}
	late, err := d.checkObjects(d.rev, rev.state)
	if err != nil {
		return fmt.Errorf("revision %s: %w", d.rev, err)
	}
	if late != nil {
		d.late = late
		go late.run(d.log)
	}
	d.mu.Lock()
	d.current = rev
	d.mu.Unlock()
	if err := d.linkCurrent(); err != nil {
		return err
	}
	// OEM configuration of the revision (spec §1 RUN 7, §8).
	if p := d.conf.OEMPath(d.store.TrailDir(d.rev)); p != "" {
		if err := d.conf.LoadOEM(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("oem config", "path", p, "err", err)
		}
	}
	if d.updater != nil {
		if err := d.updater.Resume(d.rev, d.try); err != nil {
			return fmt.Errorf("resume update: %w", err)
		}
	} else if err := d.factory(); err != nil {
		return err
	}
	d.petWatchdog()
	d.settle()
	d.mountBSP(rev.state)
	d.petWatchdog()
	d.boot.Mark("bsp")
	if d.platforms != nil {
		err := d.mountDisks(rev.state)
		if err == nil {
			err = d.platforms.Load(d.rev, rev.state)
		}
		if err != nil {
			err = fmt.Errorf("platforms: %w", err)
			if d.updater != nil {
				d.updater.ContainerFailed(err) // records ERROR in the update's progress
			}
			return err
		}
	}
	return nil
}

// lateFailed returns the late checksum's mismatch once the check ended,
// and then forgets the check; nil while it runs, after it passed, or
// without one (FSM goroutine).
func (d *Daemon) lateFailed() error {
	c := d.late
	if c == nil {
		return nil
	}
	select {
	case <-c.done:
	default:
		return nil
	}
	d.late = nil
	if c.err != nil {
		return fmt.Errorf("revision %s: %w", d.rev, c.err)
	}
	return nil
}

// transitioned makes rev the running revision after a non-reboot
// transition (the updater already loaded its containers and moved
// trails/current).
func (d *Daemon) transitioned(rev string) {
	data, err := d.store.StateJSON(rev)
	if err != nil {
		d.log.Error("transition", "rev", rev, "err", err)
		return
	}
	r, err := parseRevision(rev, data, d.mode == AppEngine)
	if err != nil {
		d.log.Error("transition", "rev", rev, "err", err)
		return
	}
	d.mu.Lock()
	d.rev, d.current = rev, r
	d.mu.Unlock()
	if err := d.linkCurrent(); err != nil {
		d.log.Warn("transition", "err", err)
	}
	if d.logs != nil {
		d.logs.SetRevision(rev)
	}
	d.log.Info("running revision", "rev", rev)
	d.publishDevmeta()
}

// linkCurrent points trails/current and logs/current at the revision.
func (d *Daemon) linkCurrent() error {
	if err := d.store.SetCurrent(d.rev); err != nil {
		return fmt.Errorf("current link: %w", err)
	}
	link := filepath.Join(d.logDir, "current")
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(d.rev, tmp); err != nil {
		return fmt.Errorf("logs current link: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("logs current link: %w", err)
	}
	return nil
}

// factory auto-commits revision "0" (spec §2): a boot of rev 0 whose
// progress is not DONE gets DONE/"Factory revision" and .pv/done.
func (d *Daemon) factory() error {
	if d.rev != "0" {
		return nil
	}
	if p, err := d.store.Progress("0"); err == nil && p.Status == progress.Done {
		return nil
	}
	if err := d.store.WriteProgress("0", progress.New(progress.Done, progress.MsgFactory)); err != nil {
		return fmt.Errorf("factory: %w", err)
	}
	if err := d.store.SetDone("0"); err != nil {
		return fmt.Errorf("factory: %w", err)
	}
	return nil
}

// wait is one WAIT round: drive platforms and the update, then sleep a
// tick or until a command or container event arrives.
func (d *Daemon) wait(ctx context.Context) (State, command.Command) {
	if d.sshDue() {
		d.syncSSH()
	}
	if p := d.platforms; p != nil {
		if err := p.Step(ctx); err != nil {
			d.log.Error("platforms", "err", err)
			if d.updater != nil && d.updater.ContainerFailed(err) == Rollback {
				return StateRollback, command.Command{}
			}
			return StateReboot, command.Command{}
		}
	}
	if d.checkHub() == Rollback {
		return StateRollback, command.Command{}
	}
	d.bootProgress()
	d.systemDone(ctx)
	// The update under test is neither committed nor failed while the
	// late checksum runs: its outcome decides first.
	if u := d.updater; u != nil && d.late == nil {
		next, err := u.Step(ctx)
		if err != nil {
			d.log.Error("update", "err", err)
		}
		switch next {
		case Reboot:
			return StateReboot, command.Command{}
		case Rollback:
			return StateRollback, command.Command{}
		}
	}
	var changed, lateDone <-chan struct{}
	if d.platforms != nil {
		changed = d.platforms.Changed()
	}
	if d.late != nil {
		lateDone = d.late.done
	}
	select {
	case <-ctx.Done():
		return StatePoweroff, command.Command{}
	case c := <-d.cmds:
		return StateCommand, c
	case <-changed:
		d.reconcileXConnect()
	case <-lateDone:
	case <-d.clock.After(Tick):
	}
	return StateWait, command.Command{}
}

// command is FSM COMMAND: run one queued /commands op.
func (d *Daemon) command(ctx context.Context, c command.Command) State {
	d.log.Info("command", "op", c.Op, "payload", c.Payload)
	switch c.Op {
	case command.OpReboot:
		return StateReboot
	case command.OpPoweroff:
		return StatePoweroff
	case command.OpRunGC:
		if n, err := d.gc(); err != nil {
			d.log.Error("gc", "err", err)
		} else {
			d.log.Info("gc", "reclaimed", n)
		}
	case command.OpUpdateMetadata:
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.Payload), &m); err == nil {
			for k, v := range m {
				var s string
				if json.Unmarshal(v, &s) == nil {
					v = []byte(s)
				}
				if err := d.devmeta.Set(k, v); err != nil {
					d.log.Error("update metadata", "key", k, "err", err)
				}
			}
		}
	case command.OpEnableSSH:
		d.conf.Set(config.DebugSSH.Name(), "1", config.Command)
	case command.OpDisableSSH:
		d.conf.Set(config.DebugSSH.Name(), "0", config.Command)
	case command.OpUnclaim:
		d.unclaim(ctx)
	case command.OpGoRemote:
		d.mu.Lock()
		d.goRemote = true
		d.mu.Unlock()
		d.publishDevmeta()
		d.startRemote(ctx)
	case command.OpLocalRun, command.OpLocalRunCommit, command.OpMakeFactory, command.OpTryOnce, command.OpLocalApply:
		if d.updater == nil {
			break
		}
		// An update starts from a running revision known to be intact.
		if d.late != nil {
			<-d.late.done
			if err := d.lateFailed(); err != nil {
				d.log.Error("run", "rev", d.rev, "err", err)
				return StateRollback
			}
		}
		next, err := d.updater.Run(ctx, c)
		if err != nil {
			d.log.Error("command", "op", c.Op, "err", err)
		}
		if next == Stay {
			if rev := d.updater.Running(); rev != "" && rev != d.rev {
				d.transitioned(rev)
			}
		}
		switch next {
		case Reboot:
			return StateReboot
		case Rollback:
			return StateRollback
		}
	}
	return StateWait
}

// CommandState implements ctrl.Commands.
func (d *Daemon) CommandState() command.State {
	local := d.local()
	return command.State{
		Local:         local,
		Updating:      d.updater != nil && d.updater.Updating(),
		RemoteAllowed: d.conf.Bool(config.ControlRemote),
		Remote:        !local,
		Claimed:       d.claimed(),
		Unclaimed:     d.conf.Get(config.HubCredsID) == "", // no credentials
		DebugShell:    d.debugShellOpen(),
	}
}

// Queue implements ctrl.Commands: one command waits for the FSM at a time.
func (d *Daemon) Queue(c command.Command) error {
	switch c.Op {
	case command.OpLocalRun, command.OpLocalRunCommit, command.OpMakeFactory, command.OpTryOnce, command.OpLocalApply:
		if d.updater == nil {
			return fmt.Errorf("%s: %w: no updater in this build", c.Op, ctrl.ErrNotImplemented)
		}
	case command.OpDeferReboot:
		return d.deferReboot()
	case command.OpXConnectGraph:
		if d.helpers == nil {
			return fmt.Errorf("%s: %w: no pv-xconnect in this build", c.Op, ctrl.ErrNotImplemented)
		}
		d.reconcileXConnect()
		return nil
	}
	select {
	case d.cmds <- c:
		return nil
	default:
		return fmt.Errorf("%s: %w", c.Op, ctrl.ErrBusy)
	}
}

// finish is REBOOT/POWEROFF: stop containers, ctrl and logs, sync, and in
// embedded mode reboot the machine. Appengine just returns (exit status).
func (d *Daemon) finish(ctx context.Context, exit Exit) {
	d.log.Info("shutting down", "poweroff", exit == ExitPoweroff)
	// Armed until the machine resets: a hang from here on resets it.
	d.wdt.Shutdown()
	if d.mode != Embedded || d.opt.SystemReboot == nil {
		defer d.wdt.Stop() // only the daemon ends: disarm (magic close)
	}
	d.stopRemote()
	d.stopHelpers()
	if p := d.platforms; p != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*stopGrace)
		if err := p.Stop(sctx); err != nil {
			d.log.Error("stop platforms", "err", err)
		}
		cancel()
	}
	d.petWatchdog()
	d.shutdown()
	syscall.Sync()
	d.petWatchdog()
	if d.mode != AppEngine && d.opt.SystemReboot != nil {
		if err := d.opt.SystemReboot(exit == ExitPoweroff); err != nil {
			d.log.Error("reboot", "err", err)
		}
	}
}

// shutdown closes the debug ssh server, the control socket and the log
// server.
func (d *Daemon) shutdown() {
	d.stopSSH()
	if d.srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := d.srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			d.log.Warn("ctrl: shutdown", "err", err)
		}
		cancel()
		d.srv.Close()
	}
	if d.logs != nil {
		d.logsClosed.Store(true)
		d.logs.Close()
	}
	for _, b := range d.binds {
		if err := unix.Unmount(b, unix.MNT_DETACH); err != nil {
			d.log.Warn("unmount", "path", b, "err", err)
		}
	}
	d.binds = nil
	d.closeDisks()
}
