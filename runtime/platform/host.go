package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/pantavisor/pantavisor-go/runtime/network"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/volume"
)

// Drivers holds the managed drivers of containers (runtime/drivers). Its
// methods block on the kernel; jobs call them off the Host's goroutine.
type Drivers interface {
	Ensure(platform string, refs state.DriverRefs) error
	Release(platform string)
}

// Exit tells that the init of a container Host started has exited.
type Exit struct {
	Platform  string
	container *lxc.Container
}

// Host carries out Engine actions on the real system: volume mounts
// (runtime/volume) and LXC containers (runtime/platform/lxc). Like the
// Engine it belongs to one goroutine, which also receives from Exits; the
// blocking part of each action is a Job that may run elsewhere.
type Host struct {
	log   *slog.Logger
	paths Paths
	st    *state.State
	rev   string
	// IPAM, when set, gives platforms in network pool mode their veth.
	IPAM *IPAM
	// Console, when set, receives each started container's console (the
	// log server subscribes it); otherwise the console is drained.
	Console func(platform string, f *os.File)
	// OnStart, when set, is told of each started container: its init pid,
	// a pidfd of init (nil when LXC gave none; OnStart closes it) and a
	// channel closed when it exits (file loggers follow it).
	OnStart func(platform string, pid int, pidfd *os.File, done <-chan struct{})
	// Drivers, when set, loads a platform's required and optional managed
	// drivers before its container starts (a failure fails the start)
	// and releases them once it stopped.
	Drivers Drivers

	mounts  map[string]*volume.Set
	running map[string]*lxc.Container
	made    map[string]state.Pool // pool bridges Host made, by bridge
	exports map[string]string     // platform → export mount point
	exits   chan Exit
}

// NewHost returns a Host running revision rev of st under paths.
func NewHost(log *slog.Logger, paths Paths, st *state.State, rev string) *Host {
	if log == nil {
		log = slog.Default()
	}
	return &Host{log: log, paths: paths, st: st, rev: rev,
		mounts: map[string]*volume.Set{}, running: map[string]*lxc.Container{}, exports: map[string]string{}, exits: make(chan Exit, 16),
		made: map[string]state.Pool{}}
}

// ShareExits makes h deliver its exits on old's channel, so containers
// adopted from old keep reporting theirs, and take over the pool bridges
// old made. Call it before h starts any.
func (h *Host) ShareExits(old *Host) {
	h.exits = old.exits
	for b, p := range old.made {
		h.made[b] = p
	}
	clear(old.made)
}

// Adopt moves the running container of name, its volumes and export from
// old to h and returns its init pid; ok is false when old runs no such
// container. h must share old's exits (ShareExits).
func (h *Host) Adopt(old *Host, name string) (pid int, ok bool) {
	c := old.running[name]
	if c == nil {
		return 0, false
	}
	delete(old.running, name)
	h.running[name] = c
	if set := old.mounts[name]; set != nil {
		delete(old.mounts, name)
		h.mounts[name] = set
	}
	if t := old.exports[name]; t != "" {
		delete(old.exports, name)
		h.exports[name] = t
	}
	return c.Pid(), true
}

// Exits delivers container exits; pass each to BeginExit (or Exited).
func (h *Host) Exits() <-chan Exit { return h.exits }

// Job is the blocking part of an action (mount, start, stop, unmount) or
// of an exit (releasing the container's LXC state). Host.Begin and
// Host.BeginExit hand it out on the Host's goroutine, any goroutine may
// Run it, and Host.End takes it back on the Host's goroutine: the owner of
// Host and Engine never waits for LXC or the kernel (issue 11).
type Job struct {
	// Action is what the job does; Platform names it.
	Action Action
	exit   bool // release of an exited container
	log    *slog.Logger

	layout  volume.Layout
	vol     volume.Platform
	spec    lxc.Spec
	exports string      // Paths.Exports of an exporter
	pool    *state.Pool // network pool to set up before the start
	made    bool        // the start made the pool's bridge
	c       *lxc.Container
	set     *volume.Set
	target  string // export mount point
	drivers Drivers
	refs    state.DriverRefs
	err     error
}

// Platform is the name of the platform the job works for.
func (j *Job) Platform() string { return j.Action.Platform }

// Exited turns an Exit into the engine's event, ignoring exits of
// containers Host has already stopped or replaced. It blocks while LXC
// releases the container: Host's owner uses BeginExit instead.
func (h *Host) Exited(e *Engine, x Exit) ([]Action, error) {
	j := h.BeginExit(x)
	if j == nil {
		return nil, nil
	}
	j.Run(context.Background())
	return h.End(e, j)
}

// BeginExit starts handling x: nil when the container is no longer
// Host's (stopped or replaced), else the job releasing it.
func (h *Host) BeginExit(x Exit) *Job {
	if h.running[x.Platform] != x.container {
		return nil
	}
	delete(h.running, x.Platform)
	h.unexport(x.Platform)
	return &Job{Action: Action{Kind: Stop, Platform: x.Platform}, exit: true, log: h.log, c: x.container, drivers: h.Drivers}
}

// Do performs a and reports the outcome to e. It returns follow-up actions
// (unmount after a failure, reboot, rollback). Reboot and Rollback are not
// performed here: they are returned to the caller unchanged. It blocks
// for as long as the action takes: Host's owner uses Begin instead.
func (h *Host) Do(ctx context.Context, e *Engine, a Action) ([]Action, error) {
	j, acts := h.Begin(e, a)
	if j == nil {
		return acts, nil
	}
	j.Run(ctx)
	return h.End(e, j)
}

// Begin takes what a needs from Host and e and returns the job that
// carries it out. Reboot and Rollback have no job: they come back as
// actions for the caller.
func (h *Host) Begin(e *Engine, a Action) (*Job, []Action) {
	j := &Job{Action: a, log: h.log}
	switch a.Kind {
	case Mount:
		var p *state.Platform
		if p, j.err = h.platform(a.Platform); j.err == nil {
			j.layout, j.vol = h.paths.Layout(), h.paths.Volume(p, h.rev, h.st.Device())
			j.vol.DM = DMManifests(h.st, p)
		}
	case Start:
		j.err = h.prepareStart(e, j)
	case Stop:
		h.unexport(a.Platform)
		j.drivers = h.Drivers
		j.c = h.running[a.Platform]
		delete(h.running, a.Platform)
	case Unmount:
		j.set = h.mounts[a.Platform]
		delete(h.mounts, a.Platform)
	default:
		return nil, []Action{a}
	}
	return j, nil
}

func (h *Host) prepareStart(e *Engine, j *Job) error {
	p, err := h.platform(j.Action.Platform)
	if err != nil {
		return err
	}
	info, err := e.Info(p.Name)
	if err != nil {
		return err
	}
	j.spec = h.paths.LXC(p, info.Group, h.rev)
	j.drivers, j.refs = h.Drivers, p.Drivers
	if h.IPAM != nil {
		if j.spec.Net, err = h.IPAM.Assign(p.Name, p.Network); err != nil {
			return err
		}
		if j.spec.Net != nil {
			pool, _ := h.IPAM.Pool(p.Network.Pool)
			j.pool = &pool
		}
	} else if p.Network != nil && p.Network.Mode == "pool" {
		return fmt.Errorf("%s: network mode pool: no IPAM (device.json network.pools)", p.Name)
	}
	if p.Exports {
		j.exports = h.paths.Exports
	}
	return nil
}

// Run does the blocking part of j: it touches neither Host nor Engine.
func (j *Job) Run(ctx context.Context) {
	if j.err != nil {
		return
	}
	name := j.Action.Platform
	switch {
	case j.exit:
		_ = j.c.Stop(context.Background()) // release liblxc state
		j.releaseDrivers()
	case j.Action.Kind == Mount:
		j.set, j.err = volume.MountPlatform(j.log, j.layout, j.vol)
	case j.Action.Kind == Start:
		if j.drivers != nil {
			if j.err = j.drivers.Ensure(name, j.refs); j.err != nil {
				j.releaseDrivers() // the optional ones it loaded
				return
			}
		}
		if j.pool != nil {
			// Idempotent: the bridge and NAT of the pool, made by the
			// first member to start (and remade if something removed them).
			if j.made, j.err = network.Setup(*j.pool); j.err != nil {
				j.releaseDrivers()
				return
			}
		}
		if j.c, j.err = lxc.Start(ctx, j.log, j.spec); j.err != nil {
			j.releaseDrivers()
		} else if j.exports != "" {
			var err error
			if j.target, err = exportRoot(j.exports, j.spec.LXCPath, name); err != nil {
				j.log.Warn("export", "platform", name, "err", err)
			}
		}
	case j.Action.Kind == Stop:
		if j.c != nil {
			j.err = j.c.Stop(ctx)
		}
		j.releaseDrivers()
	case j.Action.Kind == Unmount:
		if j.set != nil {
			j.err = j.set.Unmount()
		}
	}
}

// releaseDrivers drops the platform's driver holds (unloading what no
// other container needs).
func (j *Job) releaseDrivers() {
	if j.drivers != nil {
		j.drivers.Release(j.Action.Platform)
	}
}

// End reports the outcome of j to e and records what it made in Host. It
// returns follow-up actions, like Do.
func (h *Host) End(e *Engine, j *Job) ([]Action, error) {
	name := j.Action.Platform
	switch {
	case j.exit:
		return e.Exited(name)
	case j.Action.Kind == Mount:
		if j.err != nil {
			h.log.Error("mount failed", "platform", name, "err", j.err)
			return e.Failed(name, j.err)
		}
		h.mounts[name] = j.set
		return nil, e.Mounted(name)
	case j.Action.Kind == Start:
		if j.made {
			h.made[j.pool.Bridge] = *j.pool
		}
		if j.err != nil {
			h.log.Error("start failed", "platform", name, "err", j.err)
			return e.Failed(name, j.err)
		}
		h.started(name, j.c, j.target)
		return nil, e.Started(name, j.c.Pid())
	case j.Action.Kind == Stop:
		if j.err != nil {
			h.log.Warn("stop", "platform", name, "err", j.err)
		}
		return e.Stopped(name)
	}
	return nil, j.err // Unmount
}

func (h *Host) platform(name string) (*state.Platform, error) {
	for _, p := range h.st.Platforms() {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%q: %w", name, ErrUnknown)
}

// started records the running container c of name and hands its
// console, its pid and its exit on.
func (h *Host) started(name string, c *lxc.Container, export string) {
	h.running[name] = c
	if export != "" {
		h.exports[name] = export
	}
	if h.Console != nil {
		h.Console(name, c.Console())
	} else {
		go func() {
			_, _ = io.Copy(io.Discard, c.Console())
			c.Console().Close()
		}()
	}
	if pidfd := c.TakePidFd(); h.OnStart != nil {
		h.OnStart(name, c.Pid(), pidfd, c.Done())
	} else if pidfd != nil {
		pidfd.Close()
	}
	exits := h.exits
	go func() {
		<-c.Done()
		exits <- Exit{Platform: name, container: c}
	}()
}

// unexport removes the export of name, if any.
func (h *Host) unexport(name string) {
	if t := h.exports[name]; t != "" {
		delete(h.exports, name)
		if err := unexport(t); err != nil {
			h.log.Warn("export", "platform", name, "err", err)
		}
	}
}

// Close stops every container and unmounts every volume Host still holds,
// and removes the pool bridges (with their NAT) it made, without telling
// any engine (daemon shutdown).
func (h *Host) Close(ctx context.Context) error {
	var errs []error
	for name := range h.exports {
		h.unexport(name)
	}
	for name, c := range h.running {
		delete(h.running, name)
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for name, set := range h.mounts {
		delete(h.mounts, name)
		if err := set.Unmount(); err != nil {
			errs = append(errs, err)
		}
	}
	// The pool bridges and NAT tables made here go with the containers
	// (in App Engine they would stay on the host).
	for b, p := range h.made {
		delete(h.made, b)
		if err := network.Teardown(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
