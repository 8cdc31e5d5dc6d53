package platform

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

var (
	// ErrUnknown is returned for a platform name not in the engine.
	ErrUnknown = errors.New("container not found")
	// ErrSystemPolicy refuses user stop/start/restart of a platform whose
	// restart_policy is system.
	ErrSystemPolicy = errors.New("restart_policy system: controlled by system transitions only")
	// ErrTransition is returned for an event that does not fit the status.
	ErrTransition = errors.New("invalid status transition")
	// ErrSignal is returned for a ready signal a platform may not send.
	ErrSignal = errors.New("signal not expected from this platform")
)

// ActionKind says what the daemon must do.
type ActionKind int

// Actions.
const (
	// Mount the platform's volumes, then report Mounted (or Failed).
	Mount ActionKind = iota
	// Start loads drivers, copies the config overlay and starts the
	// container, then reports Started (or Failed).
	Start
	// Stop the container, then report Stopped.
	Stop
	// Unmount the platform's volumes (it entered STOPPED).
	Unmount
	// Reboot: the tick failed outside an update.
	Reboot
	// Rollback: the tick failed while testing an update.
	Rollback
)

var actionNames = [...]string{"mount", "start", "stop", "unmount", "reboot", "rollback"}

func (k ActionKind) String() string { return actionNames[k] }

// Action is one thing for the daemon to do.
type Action struct {
	Kind     ActionKind
	Platform string
	Reason   string
}

// Platform is the lifecycle of one platform. Its fields other than the
// configuration are owned by the Engine.
type Platform struct {
	Name, Group   string
	Goal          Status
	RestartPolicy string
	Recovery      *state.AutoRecovery
	Timeout       time.Duration

	status           Status
	pending          bool // an action was handed out and not reported back
	retries          int
	userStopped      bool
	restartAfterStop bool
	pid              int
	// missing are the required xconnect services no platform of the
	// revision exports: the platform stays BLOCKED (state.MissingServices).
	missing      []string
	blockedAt    time.Time
	startingAt   time.Time
	startedAt    time.Time
	goalAt       time.Time
	recoverAt    time.Time
	backoffUntil time.Time
}

func (p *Platform) set(to Status) error {
	if !allowed(p.status, to) {
		return fmt.Errorf("%s: %w %s → %s", p.Name, ErrTransition, p.status, to)
	}
	p.status = to
	return nil
}

// Options configure an Engine.
type Options struct {
	// Clock defaults to SystemClock.
	Clock Clock
	// Updating is set while a new revision is being tested: failures then
	// roll back instead of rebooting.
	Updating bool
	// GoalsTimeout is used for groups without a timeout (0 = DefaultGoalsTimeout).
	GoalsTimeout time.Duration
	Log          *slog.Logger
}

// Engine drives the platforms of one revision. It is not safe for
// concurrent use: one goroutine owns it and serialises events and ticks.
type Engine struct {
	clock    Clock
	updating bool
	log      *slog.Logger
	groups   []*Group
	byName   map[string]*Platform
}

// New builds the engine of st: groups in order, platforms INSTALLED.
func New(st *state.State, o Options) (*Engine, error) {
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.GoalsTimeout <= 0 {
		o.GoalsTimeout = DefaultGoalsTimeout
	}
	groups, err := assign(st, o.GoalsTimeout, o.Log)
	if err != nil {
		return nil, err
	}
	e := &Engine{clock: o.Clock, updating: o.Updating, log: o.Log, groups: groups, byName: map[string]*Platform{}}
	for _, g := range groups {
		for _, p := range g.Members {
			e.byName[p.Name] = p
			if sp := st.Platform(p.Name); sp != nil {
				p.missing = st.MissingServices(sp)
			}
		}
	}
	return e, nil
}

// Groups returns the groups in start order.
func (e *Engine) Groups() []*Group { return e.groups }

// SetUpdating switches between update (rollback) and normal (reboot) mode.
func (e *Engine) SetUpdating(u bool) { e.updating = u }

func (e *Engine) get(name string) (*Platform, error) {
	p, ok := e.byName[name]
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, ErrUnknown)
	}
	return p, nil
}

// achieved reports whether p is at its goal.
func (p *Platform) achieved() bool { return p.status == p.Goal }

// timedOut reports whether p's goal timer ran out: only while it is between
// STARTING and its goal, or blocked by a missing required service (so the
// next groups start and an update under test fails).
func (p *Platform) timedOut(now time.Time) bool {
	if len(p.missing) > 0 {
		return !p.blockedAt.IsZero() && now.Sub(p.blockedAt) > p.Timeout
	}
	return p.status >= Starting && p.status < p.Goal && !p.startingAt.IsZero() && now.Sub(p.startingAt) > p.Timeout
}

// groupDone reports whether every member reached its goal or timed out.
func groupDone(g *Group, now time.Time) bool {
	for _, p := range g.Members {
		if !p.achieved() && !p.timedOut(now) {
			return false
		}
	}
	return true
}

// Tick advances every platform that can move and returns what to do.
func (e *Engine) Tick() []Action {
	now := e.clock.Now()
	var acts []Action
	open := true // every earlier group is done
	for _, g := range e.groups {
		for _, p := range g.Members {
			acts = append(acts, e.advance(p, open, now)...)
		}
		open = open && groupDone(g, now)
	}
	return acts
}

func (e *Engine) advance(p *Platform, open bool, now time.Time) []Action {
	if p.pending {
		return nil
	}
	switch p.status {
	case Recovering:
		if now.Before(p.recoverAt) {
			return nil
		}
		_ = p.set(Installed)
	case Stopped:
		if p.backoffUntil.IsZero() || now.Before(p.backoffUntil) || p.userStopped {
			return nil
		}
		p.backoffUntil = time.Time{}
		p.retries = 0
		_ = p.set(Installed)
	}
	switch p.status {
	case Installed, Blocked:
		if len(p.missing) > 0 {
			if p.status == Installed {
				_ = p.set(Blocked)
				p.blockedAt = now
				e.log.Error("container blocked: required xconnect services are exported by no container",
					"platform", p.Name, "missing", strings.Join(p.missing, ", "))
			}
			return nil
		}
		if !open {
			if p.status == Installed {
				_ = p.set(Blocked)
			}
			return nil
		}
		p.pending = true
		return []Action{{Kind: Mount, Platform: p.Name}}
	case Mounted:
		if p.Goal == Mounted {
			return nil
		}
		_ = p.set(Starting)
		p.startingAt = now
		p.pending = true
		return []Action{{Kind: Start, Platform: p.Name}}
	}
	return nil
}

// Mounted reports that the Mount action of name succeeded.
func (e *Engine) Mounted(name string) error {
	p, err := e.get(name)
	if err != nil {
		return err
	}
	if !p.pending {
		return fmt.Errorf("%s: %w: no mount pending", name, ErrTransition)
	}
	if err := p.set(Mounted); err != nil {
		return err
	}
	p.pending = false
	if p.Goal == Mounted {
		p.goalAt = e.clock.Now()
	}
	return nil
}

// Started reports that the container of name runs with init pid.
func (e *Engine) Started(name string, pid int) error {
	p, err := e.get(name)
	if err != nil {
		return err
	}
	if err := p.set(Started); err != nil {
		return err
	}
	now := e.clock.Now()
	p.pending, p.pid, p.startedAt = false, pid, now
	if p.Goal == Started {
		p.goalAt = now
	}
	return nil
}

// Ready handles the "ready" signal of name (POST /signal).
func (e *Engine) Ready(name string) error {
	p, err := e.get(name)
	if err != nil {
		return err
	}
	if p.Goal != Ready || p.status != Started {
		return fmt.Errorf("%s: %w (goal %s, status %s)", name, ErrSignal, p.Goal, p.status)
	}
	_ = p.set(Ready)
	p.goalAt = e.clock.Now()
	return nil
}

// Failed reports that a Mount or Start action of name failed; it is
// handled like an exit.
func (e *Engine) Failed(name string, cause error) ([]Action, error) {
	return e.exit(name, fmt.Sprintf("%s failed: %v", name, cause))
}

// Exited reports that the init of name died.
func (e *Engine) Exited(name string) ([]Action, error) {
	return e.exit(name, name+" exited")
}

func (e *Engine) exit(name, reason string) ([]Action, error) {
	p, err := e.get(name)
	if err != nil {
		return nil, err
	}
	if p.status == Stopping {
		// Our own stop finished early: same as Stopped.
		return e.Stopped(name)
	}
	if err := p.set(Stopped); err != nil {
		return nil, err
	}
	now := e.clock.Now()
	p.pending, p.pid, p.goalAt = false, 0, time.Time{}
	acts := []Action{{Kind: Unmount, Platform: name}}
	if p.userStopped {
		return acts, nil
	}
	if !Recovers(p.Recovery) {
		return append(acts, e.failure(name, reason)), nil
	}
	if p.Recovery.ResetWindow > 0 && !p.startedAt.IsZero() && now.Sub(p.startedAt) >= p.Recovery.ResetWindow {
		p.retries = 0
	}
	p.retries++
	if p.Recovery.MaxRetries > 0 && p.retries > p.Recovery.MaxRetries {
		p.retries = p.Recovery.MaxRetries
		out, wait := OnExhausted(p.Recovery, e.updating)
		switch out {
		case ExhaustRollback:
			acts = append(acts, Action{Kind: Rollback, Platform: name, Reason: reason + ", retries exhausted"})
		case ExhaustReboot:
			acts = append(acts, Action{Kind: Reboot, Platform: name, Reason: reason + ", retries exhausted"})
		case ExhaustWait:
			p.backoffUntil = now.Add(wait)
		case ExhaustNever:
			e.log.Warn("platform retries exhausted, leaving it stopped", "platform", name)
		}
		return acts, nil
	}
	if d := Delay(p.Recovery, p.retries); d > 0 {
		_ = p.set(Recovering)
		p.recoverAt = now.Add(d)
	} else {
		_ = p.set(Installed)
	}
	return acts, nil
}

func (e *Engine) failure(name, reason string) Action {
	if e.updating {
		return Action{Kind: Rollback, Platform: name, Reason: reason}
	}
	return Action{Kind: Reboot, Platform: name, Reason: reason}
}

// Stopped reports that a Stop action of name completed.
func (e *Engine) Stopped(name string) ([]Action, error) {
	p, err := e.get(name)
	if err != nil {
		return nil, err
	}
	if p.status != Stopping {
		return nil, fmt.Errorf("%s: %w: stopped while %s, not STOPPING", name, ErrTransition, p.status)
	}
	_ = p.set(Stopped)
	p.pending, p.pid, p.goalAt = false, 0, time.Time{}
	acts := []Action{{Kind: Unmount, Platform: name}}
	if p.restartAfterStop {
		p.restartAfterStop = false
		_ = p.set(Installed)
	}
	return acts, nil
}

// userControl checks that name may be controlled through the API.
func (e *Engine) userControl(name string) (*Platform, error) {
	p, err := e.get(name)
	if err != nil {
		return nil, err
	}
	if p.RestartPolicy == state.RestartSystem {
		return nil, fmt.Errorf("%s: %w", name, ErrSystemPolicy)
	}
	return p, nil
}

// stop moves p towards STOPPED; it returns the Stop action when a
// container or its volumes may be up.
func (p *Platform) stop() []Action {
	switch p.status {
	case Stopped, Stopping:
		return nil
	case Installed, Blocked, Recovering:
		if !p.pending {
			_ = p.set(Stopped)
			return nil
		}
	}
	_ = p.set(Stopping) // from any running status, or a pending mount
	p.pending = false
	return []Action{{Kind: Stop, Platform: p.Name}}
}

// UserStop handles PUT /containers/<name> {"action":"stop"}: user_stopped
// is set, so auto-recovery leaves the platform alone.
func (e *Engine) UserStop(name string) ([]Action, error) {
	p, err := e.userControl(name)
	if err != nil {
		return nil, err
	}
	p.userStopped = true
	p.restartAfterStop = false
	return p.stop(), nil
}

// UserStart handles "start": user_stopped clears, retries reset, the
// platform goes back to INSTALLED.
func (e *Engine) UserStart(name string) error {
	p, err := e.userControl(name)
	if err != nil {
		return err
	}
	if p.status != Stopped {
		return fmt.Errorf("%s: %w: %s, not STOPPED", name, ErrTransition, p.status)
	}
	p.userStopped, p.retries, p.backoffUntil = false, 0, time.Time{}
	return p.set(Installed)
}

// UserRestart handles "restart": stop, then INSTALLED with counters reset.
func (e *Engine) UserRestart(name string) ([]Action, error) {
	p, err := e.userControl(name)
	if err != nil {
		return nil, err
	}
	p.userStopped, p.retries, p.backoffUntil = false, 0, time.Time{}
	if p.status == Stopped {
		return nil, p.set(Installed)
	}
	acts := p.stop()
	if p.status == Stopped {
		return nil, p.set(Installed)
	}
	p.restartAfterStop = true
	return acts, nil
}

// StopPlatform stops name for a system transition (an update replaces
// it): unlike UserStop it works for any restart policy and does not set
// user_stopped.
func (e *Engine) StopPlatform(name string) ([]Action, error) {
	p, err := e.get(name)
	if err != nil {
		return nil, err
	}
	p.restartAfterStop = false
	return p.stop(), nil
}

// Adopt takes over name as already running with init pid, in status
// (STARTED or READY): a container a non-reboot transition keeps from the
// previous revision. Its goal and stability timers start now.
func (e *Engine) Adopt(name string, pid int, status Status) error {
	p, err := e.get(name)
	if err != nil {
		return err
	}
	if p.status != Installed || (status != Started && status != Ready) {
		return fmt.Errorf("%s: %w: adopt %s while %s", name, ErrTransition, status, p.status)
	}
	if status == Ready && p.Goal != Ready {
		status = Started
	}
	now := e.clock.Now()
	p.status, p.pid, p.startingAt, p.startedAt = status, pid, now, now
	if p.achieved() {
		p.goalAt = now
	}
	return nil
}

// StopAll stops every platform (update transition or shutdown).
func (e *Engine) StopAll() []Action {
	var acts []Action
	for i := len(e.groups) - 1; i >= 0; i-- {
		for _, p := range e.groups[i].Members {
			p.restartAfterStop = false
			acts = append(acts, p.stop()...)
		}
	}
	return acts
}
