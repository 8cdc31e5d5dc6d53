package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/volume"
)

// Exit tells that the init of a container Host started has exited.
type Exit struct {
	Platform  string
	container *lxc.Container
}

// Host carries out Engine actions on the real system: volume mounts
// (runtime/volume) and LXC containers (runtime/platform/lxc). Like the
// Engine it belongs to one goroutine, which also receives from Exits.
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
	// OnStart, when set, is told of each started container: its init pid
	// and a channel closed when it exits (file loggers follow it).
	OnStart func(platform string, pid int, done <-chan struct{})

	mounts  map[string]*volume.Set
	running map[string]*lxc.Container
	exports map[string]string // platform → export mount point
	exits   chan Exit
}

// NewHost returns a Host running revision rev of st under paths.
func NewHost(log *slog.Logger, paths Paths, st *state.State, rev string) *Host {
	if log == nil {
		log = slog.Default()
	}
	return &Host{log: log, paths: paths, st: st, rev: rev,
		mounts: map[string]*volume.Set{}, running: map[string]*lxc.Container{}, exports: map[string]string{}, exits: make(chan Exit, 16)}
}

// ShareExits makes h deliver its exits on old's channel, so containers
// adopted from old keep reporting theirs. Call it before h starts any.
func (h *Host) ShareExits(old *Host) { h.exits = old.exits }

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

// Exits delivers container exits; pass each to Exited.
func (h *Host) Exits() <-chan Exit { return h.exits }

// Exited turns an Exit into the engine's event, ignoring exits of
// containers Host has already stopped or replaced.
func (h *Host) Exited(e *Engine, x Exit) ([]Action, error) {
	if h.running[x.Platform] != x.container {
		return nil, nil
	}
	delete(h.running, x.Platform)
	h.unexport(x.Platform)
	_ = x.container.Stop(context.Background()) // release liblxc state
	return e.Exited(x.Platform)
}

// Do performs a and reports the outcome to e. It returns follow-up actions
// (unmount after a failure, reboot, rollback). Reboot and Rollback are not
// performed here: they are returned to the caller unchanged.
func (h *Host) Do(ctx context.Context, e *Engine, a Action) ([]Action, error) {
	switch a.Kind {
	case Mount:
		p, err := h.platform(a.Platform)
		if err == nil {
			var set *volume.Set
			set, err = volume.MountPlatform(h.log, h.paths.Layout(), h.paths.Volume(p, h.rev))
			if err == nil {
				h.mounts[a.Platform] = set
				return nil, e.Mounted(a.Platform)
			}
		}
		h.log.Error("mount failed", "platform", a.Platform, "err", err)
		return e.Failed(a.Platform, err)
	case Start:
		c, err := h.start(ctx, e, a.Platform)
		if err != nil {
			h.log.Error("start failed", "platform", a.Platform, "err", err)
			return e.Failed(a.Platform, err)
		}
		return nil, e.Started(a.Platform, c.Pid())
	case Stop:
		h.unexport(a.Platform)
		if c := h.running[a.Platform]; c != nil {
			delete(h.running, a.Platform)
			if err := c.Stop(ctx); err != nil {
				h.log.Warn("stop", "platform", a.Platform, "err", err)
			}
		}
		return e.Stopped(a.Platform)
	case Unmount:
		set := h.mounts[a.Platform]
		delete(h.mounts, a.Platform)
		if set == nil {
			return nil, nil
		}
		return nil, set.Unmount()
	}
	return []Action{a}, nil
}

func (h *Host) platform(name string) (*state.Platform, error) {
	for _, p := range h.st.Platforms() {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%q: %w", name, ErrUnknown)
}

func (h *Host) start(ctx context.Context, e *Engine, name string) (*lxc.Container, error) {
	p, err := h.platform(name)
	if err != nil {
		return nil, err
	}
	info, err := e.Info(name)
	if err != nil {
		return nil, err
	}
	spec := h.paths.LXC(p, info.Group, h.rev)
	if h.IPAM != nil {
		if spec.Net, err = h.IPAM.Assign(p.Name, p.Network); err != nil {
			return nil, err
		}
	}
	c, err := lxc.Start(ctx, h.log, spec)
	if err != nil {
		return nil, err
	}
	h.running[name] = c
	if p.Exports && h.paths.Exports != "" {
		target, err := exportRoot(h.paths.Exports, spec.LXCPath, name)
		if err != nil {
			h.log.Warn("export", "platform", name, "err", err)
		} else {
			h.exports[name] = target
		}
	}
	if h.Console != nil {
		h.Console(name, c.Console())
	} else {
		go func() { _, _ = io.Copy(io.Discard, c.Console()) }()
	}
	if h.OnStart != nil {
		h.OnStart(name, c.Pid(), c.Done())
	}
	go func() {
		<-c.Done()
		h.exits <- Exit{Platform: name, container: c}
	}()
	return c, nil
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

// ShutdownAll stops every running container at once (each leniently,
// then by force), so a shutdown takes one stop timeout, not one per
// container. The engine is told afterwards through the Stop actions, which
// then find the containers already down.
func (h *Host) ShutdownAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range h.running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Stop(ctx) // the result is kept for the Stop action
		}()
	}
	wg.Wait()
}

// Close stops every container and unmounts every volume Host still holds,
// without telling any engine (daemon shutdown).
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
	return errors.Join(errs...)
}
