package pantavisor

import (
	"context"
	"errors"
	"fmt"
	"github.com/pantavisor/pantavisor-go/runtime/drivers"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/logserver"
	"github.com/pantavisor/pantavisor-go/runtime/metadata"
	"github.com/pantavisor/pantavisor-go/runtime/platform"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"golang.org/x/sys/unix"
)

// ErrContainerFailed is what Step returns when a container failed without
// recovery (or ran out of retries): the FSM reboots, or rolls back while
// an update is tested.
var ErrContainerFailed = errors.New("container failed")

// consoleSubscriber is the part of the log server containers need.
type consoleSubscriber interface {
	Subscribe(r io.Reader, platform, source string, level logserver.Level)
}

// Containers is the PlatformManager of real LXC containers: it owns one
// platform.Engine and platform.Host per loaded revision.
//
// One goroutine, the supervisor (run), owns them and everything below
// "owned by the supervisor": API calls, ticks and container exits reach it
// as requests and events. It never waits for LXC or the kernel: each
// action's blocking part (platform.Job) runs in a goroutine of its own and
// comes back as an event; a platform's jobs run one at a time, in order
// (its lane). Readers (GET /containers, /groups) get the snapshot the
// supervisor publishes after every change, so a container that takes the
// whole stop timeout to die stalls neither them, nor signals, nor the FSM
// (issue 11).
type Containers struct {
	log     *slog.Logger
	paths   platform.Paths
	clock   platform.Clock
	timeout func() int // PV_UPDATER_GOALS_TIMEOUT seconds
	devmeta *metadata.Store
	logs    consoleSubscriber
	drivers *drivers.Manager
	drvSecs []string
	ipam    *platform.IPAM // owned by the supervisor
	loggers LoggerOptions

	changed chan struct{}
	reqs    chan func()  // run by the supervisor
	done    chan jobDone // finished jobs
	snap    atomic.Pointer[snapshot]

	// Owned by the supervisor.
	rev      string
	st       *state.State
	engine   *platform.Engine
	host     *platform.Host
	updating bool
	failure  *platform.Action // a reboot/rollback the FSM has not taken yet
	failures []error          // every failure since SetUpdating(true)
	last     map[string]string
	wake     *time.Timer // wakeForRecovery
	// exitsHeld stops the supervisor from taking exits while a transition
	// moves containers between hosts, or after Stop.
	exitsHeld bool
	lanes     map[string]*lane
	idle      []idleWaiter
	retired   map[*platform.Host]bool // hosts handed to Close
	// transitioning holds API calls (deferred) while Transition moves
	// containers from one host to the next; install runs them.
	transitioning bool
	deferred      []func()
	// sharedVolumes is the volumes dir while it is a shared bind mount.
	sharedVolumes string
}

// lane serialises the jobs of one platform: at most one runs, the rest
// wait their turn (a stop waits for the start before it).
type lane struct {
	busy  bool
	queue []queued
}

// queued is a job waiting in a lane: begin makes it (nil: nothing to do)
// when its turn comes, for host h and engine e, to run under ctx.
type queued struct {
	ctx   context.Context
	h     *platform.Host
	e     *platform.Engine
	begin func() *platform.Job
}

// jobDone is a finished job with the host, engine and context it was
// begun with.
type jobDone struct {
	ctx    context.Context
	host   *platform.Host
	engine *platform.Engine
	job    *platform.Job
}

// idleWaiter is closed once none of names (every platform when nil) has
// a job running or waiting.
type idleWaiter struct {
	names []string
	ch    chan struct{}
}

// snapshot is what readers see: built by the supervisor, never changed.
type snapshot struct {
	st         *state.State
	containers []ctrl.Container
	groups     []ctrl.Group
	status     string
	pids       map[string]int // init pid of each running container
}

// ContainersOptions configures NewContainers.
type ContainersOptions struct {
	Paths platform.Paths
	// Clock is the engine's clock (nil = wall clock).
	Clock   platform.Clock
	DevMeta *metadata.Store
	// Logs receives each container's console as <plat>/lxc/console.log.
	Logs consoleSubscriber
	// GoalsTimeout returns the default group timeout in seconds.
	GoalsTimeout func() int
	Log          *slog.Logger
	// Drivers loads the managed drivers containers reference; nil: none
	// (GET /drivers reports them UNKNOWN, loads fail). DriverSections
	// are the board's sections of bsp/drivers.json (drivers.Sections).
	Drivers        *drivers.Manager
	DriverSections []string
	// IPAMLeases is the file the addresses of network pool members are
	// kept in across restarts ("" = kept in memory only).
	IPAMLeases string
	// Loggers are the file loggers' settings (PV_LOG_LOGGERS,
	// PV_LOG_MAXSIZE).
	Loggers LoggerOptions
}

// NewContainers returns a container manager; Load gives it a revision.
func NewContainers(o ContainersOptions) *Containers {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = platform.SystemClock{}
	}
	m := &Containers{log: o.Log, paths: o.Paths, clock: o.Clock, timeout: o.GoalsTimeout,
		devmeta: o.DevMeta, logs: o.Logs, drivers: o.Drivers, drvSecs: o.DriverSections, loggers: o.Loggers, changed: make(chan struct{}, 1), last: map[string]string{},
		reqs: make(chan func()), done: make(chan jobDone), lanes: map[string]*lane{}}
	m.ipam = platform.NewIPAM(nil)
	if o.IPAMLeases != "" {
		if err := m.ipam.LoadLeases(o.IPAMLeases); err != nil {
			m.log.Warn("network", "err", err)
		}
	}
	m.snap.Store(&snapshot{})
	go m.run()
	return m
}

// run is the supervisor: it serves requests, finished jobs and exits.
// It lives as long as the process (a daemon has one Containers).
func (m *Containers) run() {
	for {
		var exits <-chan platform.Exit
		if m.host != nil && !m.exitsHeld {
			exits = m.host.Exits()
		}
		select {
		case f := <-m.reqs:
			f()
		case d := <-m.done:
			m.finish(d)
		case x := <-exits:
			m.exited(x)
		}
	}
}

// call runs f on the supervisor and returns when it is done. f must not
// block.
func (m *Containers) call(f func()) {
	done := make(chan struct{})
	m.reqs <- func() {
		defer close(done)
		f()
	}
	<-done
}

// awaitIdle waits until none of names (every platform when nil) has a
// job running or waiting, or ctx ends.
func (m *Containers) awaitIdle(ctx context.Context, names []string) error {
	ch := make(chan struct{})
	m.call(func() {
		m.idle = append(m.idle, idleWaiter{names: names, ch: ch})
		m.checkIdle()
	})
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkIdle wakes the idle waiters whose lanes are free.
func (m *Containers) checkIdle() {
	free := func(names []string) bool {
		if names == nil {
			for _, l := range m.lanes {
				if l.busy {
					return false
				}
			}
			return true
		}
		for _, n := range names {
			if l := m.lanes[n]; l != nil && l.busy {
				return false
			}
		}
		return true
	}
	kept := m.idle[:0]
	for _, w := range m.idle {
		if free(w.names) {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	m.idle = kept
}

// lxcPaths returns the lxcpath and lxc.rootfs.mount of the containers:
// with PV_SYSTEM_USRDIR set, upstream's <usr>/var/lib/lxc and
// <usr>/lib/lxc/rootfs; unset, <run dir>/lxc and liblxc's default (the
// initrd's /usr may be read-only, and App Engine keeps the host's alone).
func lxcPaths(c *config.Config, runDir string) (lxcpath, rootfsMount string) {
	if c.Source(config.SystemUsrDir) == config.Default {
		return filepath.Join(runDir, "lxc"), ""
	}
	usr := c.Get(config.SystemUsrDir)
	return filepath.Join(usr, "var", "lib", "lxc"), filepath.Join(usr, "lib", "lxc", "rootfs")
}

// NewPlatforms is the Options.NewPlatforms of a daemon running real LXC
// containers.
func NewPlatforms(env Env) (PlatformManager, error) {
	return containersFromEnv(env), nil
}

// containersFromEnv builds the daemon's container manager from INIT's Env.
func containersFromEnv(env Env) *Containers {
	logs := env.Logs
	c := env.Config
	voldir := c.Get(config.DiskVolDir)
	confdir := c.Get(config.SystemConfDir)
	paths := platform.Paths{
		Storage:     env.Storage.Root(),
		Volumes:     voldir,
		Configs:     confdir,
		Run:         env.RunDir,
		Logs:        env.Storage.LogDir,
		LXCLogLevel: c.Get(config.LXCLogLevel),
		AppEngine:   env.Mode == AppEngine,
		NoAutodev:   c.Bool(config.DisableAutodev),
		HooksDir:    filepath.Join(c.Get(config.SystemLibDir), "pv", "hooks_lxc-mount.d"),
		MediaDir:    mediaDir(env.Mode, c, env.RunDir),
	}
	paths.LXCPath, paths.RootfsMount = lxcPaths(c, env.RunDir)
	// Exporters show their root file system in <PV_DISK_EXPORTSDIR>/<plat>
	// (by default under the run dir in appengine mode, to keep the host's
	// / alone).
	paths.Exports = c.Get(config.DiskExportsDir)
	if env.Mode == AppEngine && c.Source(config.DiskExportsDir) == config.Default {
		paths.Exports = filepath.Join(env.RunDir, "exports")
	}
	if env.Mode != AppEngine && c.Bool(config.LogAutoDevLog) {
		paths.DevLog = filepath.Join(env.RunDir, "pv-ctrl-log")
	}
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		paths.KernelRelease = strings.TrimSpace(string(rel))
	}
	if x := c.Get(config.LXCExtraConf); x != "" {
		for _, l := range strings.Split(x, ";") {
			if l = strings.TrimSpace(l); l != "" {
				paths.ExtraConf = append(paths.ExtraConf, l)
			}
		}
	}
	o := ContainersOptions{Paths: paths, Clock: env.Clock, DevMeta: env.DevMeta, Log: env.Log,
		GoalsTimeout: func() int { return int(c.Duration(config.UpdaterGoalsTimeout).Seconds()) },
		IPAMLeases:   filepath.Join(env.Storage.Root(), "cache", "ipam.json"),
		Loggers:      loggerOptions(c, env.Log)}
	o.Drivers, o.DriverSections = driverManager(env, paths.KernelRelease), drivers.Sections(env.Cmdline, c.Get(config.BootloaderFITConfig))
	if logs != nil && c.Bool(config.LogCapture) {
		o.Logs = logs
	}
	return NewContainers(o)
}

// Load builds the engine of st (revision rev). Containers of an earlier
// Load must have been stopped.
func (m *Containers) Load(rev string, st *state.State) error {
	var err error
	m.call(func() {
		var e *platform.Engine
		var h *platform.Host
		if e, h, err = m.build(rev, st); err != nil {
			return
		}
		m.shareVolumes()
		m.install(rev, st, e, h)
	})
	return err
}

// build makes the engine and host of revision rev.
func (m *Containers) build(rev string, st *state.State) (*platform.Engine, *platform.Host, error) {
	o := platform.Options{Clock: m.clock, Log: m.log, Updating: m.updating}
	if m.timeout != nil {
		if n := m.timeout(); n > 0 {
			o.GoalsTimeout = secondsDuration(n)
		}
	}
	e, err := platform.New(st, o)
	if err != nil {
		return nil, nil, err
	}
	h := platform.NewHost(m.log, m.paths, st, rev)
	if m.drivers != nil {
		m.drivers.SetRevision(st.Drivers(), m.drvSecs)
		h.Drivers = m.drivers
	}
	if dev := st.Device(); dev != nil && len(dev.Pools) > 0 {
		if err := m.ipam.SetPools(dev.Pools); err != nil {
			m.log.Warn("network", "err", err)
		}
	} else if err := m.ipam.SetPools(nil); err != nil {
		m.log.Warn("network", "err", err)
	}
	h.IPAM = m.ipam
	if m.logs != nil {
		logs := m.logs
		h.Console = func(name string, f *os.File) { logs.Subscribe(f, name, "lxc/console.log", logserver.Info) }
		h.OnStart = m.startLoggers
	}
	return e, h, nil
}

// install makes e and h the running revision's; the supervisor takes
// h's exits from now on.
func (m *Containers) install(rev string, st *state.State, e *platform.Engine, h *platform.Host) {
	m.rev, m.st, m.engine, m.host, m.failure = rev, st, e, h, nil
	// Platforms that left the revision give their addresses back.
	names := make([]string, 0, len(st.Platforms()))
	for _, p := range st.Platforms() {
		names = append(names, p.Name)
	}
	if err := m.ipam.Retain(names); err != nil {
		m.log.Warn("network", "err", err)
	}
	m.exitsHeld = false
	m.last = map[string]string{}
	m.log.Info("containers loaded", "rev", rev, "platforms", len(st.Platforms()), "groups", len(e.Groups()))
	m.publish()
	m.transitioning = false
	for _, f := range m.deferred {
		f()
	}
	m.deferred = nil
}

// callAPI runs f on the supervisor like call, but after a transition
// under way: API calls act on the engine installed by then.
func (m *Containers) callAPI(f func()) {
	done := make(chan struct{})
	g := func() {
		defer close(done)
		f()
	}
	m.reqs <- func() {
		if m.transitioning {
			m.deferred = append(m.deferred, g)
			return
		}
		g()
	}
	<-done
}

// StopPlatforms stops the named platforms of the running revision (an
// update replaces or removes them) and returns once they are down;
// unknown names are skipped.
func (m *Containers) StopPlatforms(ctx context.Context, names []string) error {
	loaded := false
	m.call(func() {
		if m.engine == nil {
			return
		}
		loaded = true
		for _, n := range names {
			acts, err := m.engine.StopPlatform(n)
			if err != nil {
				continue // not in the running revision
			}
			m.dispatch(ctx, m.host, m.engine, acts)
		}
		m.changedState()
	})
	if !loaded {
		return nil
	}
	return m.awaitIdle(ctx, names)
}

// Transition makes rev the loaded revision without a reboot. Platforms
// of rev not in restart that run in the previous revision keep running
// (they are adopted with their container and volumes); every other
// container of the previous revision is stopped; the next WAIT tick
// starts the rest of rev.
func (m *Containers) Transition(ctx context.Context, rev string, st *state.State, restart []string) error {
	// Adopting moves containers between hosts: no job may be on the way.
	if err := m.awaitIdle(ctx, nil); err != nil {
		return fmt.Errorf("transition to %s: %w", rev, err)
	}
	var (
		e, oldE *platform.Engine
		h, oldH *platform.Host
		kept    []string
		err     error
	)
	m.call(func() {
		if e, h, err = m.build(rev, st); err != nil {
			return
		}
		oldE, oldH = m.engine, m.host
		m.shareVolumes()
		if oldE == nil {
			return
		}
		// Exits of adopted containers must reach the new host: hold them
		// in the shared channel until it is installed; API calls wait too.
		m.exitsHeld, m.transitioning = true, true
		h.ShareExits(oldH)
		again := map[string]bool{}
		for _, n := range restart {
			again[n] = true
		}
		for _, p := range st.Platforms() {
			if again[p.Name] {
				continue
			}
			info, err := oldE.Info(p.Name)
			if err != nil || (info.Status != platform.Started && info.Status != platform.Ready) {
				continue
			}
			if pid, ok := h.Adopt(oldH, p.Name); ok {
				if err := e.Adopt(p.Name, pid, info.Status); err != nil {
					m.log.Warn("transition: adopt", "platform", p.Name, "err", err)
				}
				kept = append(kept, p.Name)
			}
		}
		// Whatever the previous revision still runs goes (in parallel:
		// each platform's stop is a job of its own).
		m.dispatch(ctx, oldH, oldE, oldE.StopAll())
		m.changedState()
	})
	if err != nil {
		return fmt.Errorf("transition to %s: %w", rev, err)
	}
	if oldE != nil {
		if err := m.awaitIdle(ctx, nil); err != nil {
			m.log.Warn("transition: stop", "err", err)
		}
		// No job or event touches oldH any more.
		m.call(func() { m.retire(oldH) })
		if err := oldH.Close(ctx); err != nil {
			m.log.Warn("transition: stop", "err", err)
		}
	}
	m.call(func() {
		m.install(rev, st, e, h)
		m.log.Info("transition", "rev", rev, "kept", kept, "restarted", restart)
		m.changedState()
	})
	m.notify()
	return nil
}

// notify wakes the FSM (WAIT re-runs at once).
func (m *Containers) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Changed implements PlatformManager.
func (m *Containers) Changed() <-chan struct{} { return m.changed }

// dispatch hands acts of engine e to their platforms' lanes on host h;
// reboot and rollback are remembered for Step.
func (m *Containers) dispatch(ctx context.Context, h *platform.Host, e *platform.Engine, acts []platform.Action) {
	for _, a := range acts {
		switch a.Kind {
		case platform.Reboot, platform.Rollback:
			m.log.Error("container failure", "platform", a.Platform, "reason", a.Reason, "action", a.Kind)
			if m.failure == nil {
				f := a
				m.failure = &f
			}
			if m.updating {
				m.failures = append(m.failures, fmt.Errorf("%w: %s", ErrContainerFailed, a.Reason))
			}
			continue
		}
		m.enqueue(ctx, h, e, a.Platform, func() *platform.Job {
			j, _ := h.Begin(e, a)
			return j
		})
	}
}

// enqueue adds the job begin makes to the lane of name and starts it if
// the lane is free.
func (m *Containers) enqueue(ctx context.Context, h *platform.Host, e *platform.Engine, name string, begin func() *platform.Job) {
	l := m.lanes[name]
	if l == nil {
		l = &lane{}
		m.lanes[name] = l
	}
	l.queue = append(l.queue, queued{ctx: ctx, h: h, e: e, begin: begin})
	m.next(name)
}

// next starts the first waiting job of name's lane unless one runs.
func (m *Containers) next(name string) {
	l := m.lanes[name]
	for !l.busy && len(l.queue) > 0 {
		q := l.queue[0]
		l.queue = l.queue[1:]
		if m.retired[q.h] {
			continue // its host is being closed
		}
		j := q.begin()
		if j == nil {
			continue
		}
		l.busy = true
		// Readers see the status Begin set (STOPPING, STARTING) before the
		// job's effects can be seen: a halt signal, a console line.
		if m.engine != nil {
			m.publish()
		}
		go func() {
			j.Run(q.ctx)
			m.done <- jobDone{ctx: q.ctx, host: q.h, engine: q.e, job: j}
		}()
	}
	if !l.busy {
		delete(m.lanes, name) // idle lanes are not kept
	}
}

// finish takes a job back: its outcome goes to its engine, follow-ups go
// first in its lane.
func (m *Containers) finish(d jobDone) {
	name := d.job.Platform()
	if m.retired[d.host] {
		m.log.Warn("container action ended after shutdown", "action", d.job.Action.Kind, "platform", name)
		m.lanes[name].busy = false
		m.next(name)
		m.checkIdle()
		return
	}
	more, err := d.host.End(d.engine, d.job)
	if err != nil {
		m.log.Warn("container action", "action", d.job.Action.Kind, "platform", name, "err", err)
	}
	// Follow-ups of this platform (unmount after a stop or failure) go
	// before what waits in its lane: they finish what this job did.
	l := m.lanes[name]
	l.busy = false
	var front []queued
	var rest []platform.Action
	for _, a := range more {
		if a.Kind == platform.Reboot || a.Kind == platform.Rollback || a.Platform != name {
			rest = append(rest, a)
			continue
		}
		front = append(front, queued{ctx: d.ctx, h: d.host, e: d.engine, begin: func() *platform.Job {
			j, _ := d.host.Begin(d.engine, a)
			return j
		}})
	}
	l.queue = append(front, l.queue...)
	m.dispatch(d.ctx, d.host, d.engine, rest)
	m.next(name)
	m.checkIdle()
	if d.engine == m.engine {
		m.changedState()
	}
	m.notify()
}

// exited takes a container exit: releasing the container is a job of the
// platform's lane; its end tells the engine.
func (m *Containers) exited(x platform.Exit) {
	h, e := m.host, m.engine
	m.enqueue(context.Background(), h, e, x.Platform, func() *platform.Job {
		j := h.BeginExit(x)
		if j != nil {
			m.log.Warn("container exited", "platform", x.Platform)
		}
		return j
	})
}

// Step implements PlatformManager: one engine tick; its actions run in
// the background and wake the FSM (Changed) as they end.
func (m *Containers) Step(ctx context.Context) error {
	var err error
	m.call(func() {
		if m.engine == nil {
			return
		}
		m.dispatch(ctx, m.host, m.engine, m.engine.Tick())
		m.changedState()
		m.wakeForRecovery()
		if f := m.failure; f != nil {
			m.failure = nil
			err = fmt.Errorf("%w: %s (%s)", ErrContainerFailed, f.Reason, f.Kind)
		}
	})
	return err
}

// wakeForRecovery wakes the FSM when the first RECOVERING platform may
// retry, so a retry_delay shorter than the WAIT tick is honoured.
func (m *Containers) wakeForRecovery() {
	var next time.Duration
	for _, p := range m.engine.Platforms() {
		if d := p.RecoverPending; d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	if next == 0 {
		return
	}
	if m.wake != nil {
		m.wake.Stop()
	}
	m.wake = time.AfterFunc(next, m.notify)
}

// Stop implements PlatformManager: every container is stopped (leniently,
// then by force after the lxc stop timeout, all at once) and every volume
// unmounted.
func (m *Containers) Stop(ctx context.Context) error {
	loaded := false
	m.call(func() {
		if m.engine == nil {
			return
		}
		loaded = true
		m.dispatch(ctx, m.host, m.engine, m.engine.StopAll())
		m.changedState()
	})
	if !loaded {
		return nil
	}
	var h *platform.Host
	for h == nil {
		if err := m.awaitIdle(ctx, nil); err != nil {
			m.log.Warn("stop", "err", err)
		}
		// Take the host once no job is left: an API call may have
		// started one since.
		m.call(func() {
			if len(m.lanes) > 0 && ctx.Err() == nil {
				return
			}
			m.changedState()
			h = m.host
			m.retire(h)
			m.engine, m.host, m.exitsHeld = nil, nil, true
		})
	}
	err := h.Close(ctx) // whatever the engine did not know of
	m.call(m.unshareVolumes)
	return err
}

// retire marks h as handed to Close: jobs of h that end later (only when
// a stop ran out of time) are dropped.
func (m *Containers) retire(h *platform.Host) {
	if m.retired == nil {
		m.retired = map[*platform.Host]bool{}
	}
	m.retired[h] = true
}

// shareVolumes makes the volumes dir a shared mount, so that
// unmounting a platform's volumes also reaches the (slave) copies in the
// mount namespaces of containers started while they were mounted;
// otherwise those copies keep the loop devices busy until the other
// containers exit.
func (m *Containers) shareVolumes() {
	dir := m.paths.Volumes
	if dir == "" || m.sharedVolumes != "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		m.log.Warn("volumes dir", "err", err)
		return
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		m.log.Warn("volumes dir: bind", "err", err)
		return
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		m.log.Warn("volumes dir: make shared", "err", err)
	}
	m.sharedVolumes = dir
}

// unshareVolumes undoes shareVolumes once nothing is mounted.
func (m *Containers) unshareVolumes() {
	if m.sharedVolumes == "" {
		return
	}
	if err := unix.Unmount(m.sharedVolumes, unix.MNT_DETACH); err != nil {
		m.log.Warn("volumes dir: unmount", "err", err)
	}
	m.sharedVolumes = ""
}

// changedState logs status changes of platforms, groups and the
// revision, publishes the revision status in devmeta and a new snapshot
// for readers.
func (m *Containers) changedState() {
	if m.engine == nil {
		return
	}
	m.report()
	m.publish()
}

func (m *Containers) report() {
	e := m.engine
	set := func(key, val string) bool {
		if m.last[key] == val {
			return false
		}
		m.last[key] = val
		return true
	}
	for _, p := range e.Platforms() {
		if set("p/"+p.Name, p.Status.String()) {
			m.log.Info("container status", "platform", p.Name, "status", p.Status, "goal", p.Goal)
		}
	}
	for _, g := range e.Groups() {
		if s := e.GroupStatus(g.Name).String(); set("g/"+g.Name, s) {
			m.log.Info("group status", "group", g.Name, "status", s, "goal", g.Goal)
		}
	}
	if s := e.Status().String(); set("rev", s) {
		m.log.Info("revision status", "rev", m.rev, "status", s)
		if m.devmeta != nil {
			if err := m.devmeta.Set("pantavisor.status", []byte(s)); err != nil {
				m.log.Warn("devmeta", "err", err)
			}
		}
	}
}

// publish stores a new snapshot of the engine for readers (GET
// /containers, /groups, /drivers, the revision status).
func (m *Containers) publish() {
	e := m.engine
	sn := &snapshot{st: m.st, status: e.Status().String(), containers: []ctrl.Container{}, groups: []ctrl.Group{},
		pids: map[string]int{}}
	for _, p := range e.Platforms() {
		if p.Pid > 0 && (p.Status == platform.Started || p.Status == platform.Ready) {
			sn.pids[p.Name] = p.Pid
		}
		c := ctrl.Container{Name: p.Name, Group: p.Group, Status: p.Status.String(),
			StatusGoal: p.Goal.String(), RestartPolicy: p.RestartPolicy, Roles: roles(m.st.Platform(p.Name))}
		if a := p.AutoRecovery; a != nil {
			c.AutoRecovery = &ctrl.ContainerRecovery{Policy: a.Policy, MaxRetries: a.MaxRetries,
				CurrentRetries: p.Retries, StableTimeout: int(a.StableTimeout.Seconds()),
				IsStable: strconv.FormatBool(p.Stable), BackoffPolicy: backoffPolicy(a)}
		}
		if p.RestartPolicy == state.RestartContainer {
			c.UserStopped = strconv.FormatBool(p.UserStopped)
		}
		sn.containers = append(sn.containers, c)
	}
	for _, g := range e.Groups() {
		o := ctrl.Group{Name: g.Name, StatusGoal: g.Goal.String(), RestartPolicy: g.RestartPolicy,
			Status: e.GroupStatus(g.Name).String()}
		if a := g.Recovery; a != nil {
			o.AutoRecovery = &ctrl.GroupRecovery{MaxRetries: a.MaxRetries,
				StableTimeout: int(a.StableTimeout.Seconds()), BackoffPolicy: backoffPolicy(a)}
		}
		sn.groups = append(sn.groups, o)
	}
	m.snap.Store(sn)
}

// Running returns the loaded revision's state (nil before Load) and the
// init pid of each of its running containers, from the same snapshot.
func (m *Containers) Running() (*state.State, map[string]int) {
	sn := m.snap.Load()
	return sn.st, sn.pids
}

// RevisionStatus returns the revision status (devmeta pantavisor.status):
// the lowest status of the platforms that have not reached their goal,
// READY when all have (or there are none); "" before a revision is loaded.
func (m *Containers) RevisionStatus() string { return m.snap.Load().status }

// Containers implements ctrl.Containers (GET /containers) from the
// latest snapshot.
func (m *Containers) Containers() ([]ctrl.Container, error) {
	sn := m.snap.Load()
	if sn.st == nil {
		return nil, ctrl.Errorf(ctrl.ErrInternal, "State not loaded yet")
	}
	return sn.containers, nil
}

func roles(p *state.Platform) []string {
	if p == nil || p.Roles == nil {
		return []string{}
	}
	return p.Roles
}

func backoffPolicy(a *state.AutoRecovery) string {
	if a.BackoffPolicy == "" {
		return state.BackoffReboot
	}
	return a.BackoffPolicy
}

// Groups implements ctrl.Containers (GET /groups) from the latest
// snapshot.
func (m *Containers) Groups() ([]ctrl.Group, error) {
	sn := m.snap.Load()
	if sn.st == nil {
		return nil, ctrl.Errorf(ctrl.ErrInternal, "State not loaded yet")
	}
	return sn.groups, nil
}

// ContainerAction implements ctrl.Containers (PUT /containers/<name>).
// A stop answers once the container is down, as it did while the manager
// held its lock across the stop, so `pvcontrol containers stop` followed by
// `start` works; the wait is the caller's, the supervisor keeps serving.
// Start and restart answer when the action is under way.
func (m *Containers) ContainerAction(name, action string) error {
	var err error
	m.callAPI(func() { err = m.containerAction(name, action) })
	if err == nil && action == "stop" {
		return m.awaitIdle(context.Background(), []string{name})
	}
	return err
}

func (m *Containers) containerAction(name, action string) error {
	if m.engine == nil {
		return ctrl.Errorf(ctrl.ErrInternal, "State not loaded yet")
	}
	var acts []platform.Action
	var err error
	switch action {
	case "stop":
		acts, err = m.engine.UserStop(name)
	case "start":
		err = m.engine.UserStart(name)
	case "restart":
		acts, err = m.engine.UserRestart(name)
	default:
		return ctrl.Errorf(ctrl.ErrInvalid, "Invalid action '%s': want stop, start or restart", action)
	}
	switch {
	case errors.Is(err, platform.ErrUnknown):
		return ctrl.Errorf(ctrl.ErrNotFound, "Container not found")
	case errors.Is(err, platform.ErrSystemPolicy):
		return ctrl.Errorf(ctrl.ErrForbidden, "Container %s has restart_policy system", name)
	case err != nil:
		return ctrl.Errorf(ctrl.ErrInvalid, "%v", err)
	}
	m.log.Info("container action", "platform", name, "action", action)
	m.dispatch(context.Background(), m.host, m.engine, acts)
	m.changedState()
	m.notify()
	return nil
}

// Signal implements ctrl.Containers (POST /signal).
func (m *Containers) Signal(plat, typ, payload string) error {
	var err error
	m.callAPI(func() { err = m.signal(plat, typ) })
	return err
}

func (m *Containers) signal(plat, typ string) error {
	if m.engine == nil {
		return ctrl.Errorf(ctrl.ErrInternal, "State not loaded yet")
	}
	switch typ {
	case "ready":
		if err := m.engine.Ready(plat); err != nil {
			m.log.Debug("signal", "platform", plat, "type", typ, "err", err) // any container may send it: no warning to flood the log with
			return ctrl.Errorf(ctrl.ErrInternal, "Signal not expected from this platform")
		}
		m.log.Info("container ready", "platform", plat)
	case "alive":
		// A heartbeat that changes no status: the seeds say no more of
		// it ("signal container is alive (watchdog)").
		return nil
	default:
		return ctrl.Errorf(ctrl.ErrInvalid, "Signal has bad format")
	}
	m.changedState()
	m.notify()
	return nil
}

// driverManager is the managed drivers of a daemon: modules come from
// the BSP's modules squashfs on /lib/modules/<release> (embedded mode;
// App Engine loads none into its host's kernel), parameters from user
// and device metadata.
func driverManager(env Env, release string) *drivers.Manager {
	o := drivers.Options{Log: env.Log}
	if env.Mode == Embedded && release != "" {
		o.Kernel = drivers.Kmod(filepath.Join("/lib/modules", release), "/sys", env.ModulesPending, env.Log)
		o.Pending = env.ModulesPending
	}
	o.Meta = func(kind, key string) (string, bool) {
		s := env.UsrMeta
		if kind == "device-meta" {
			s = env.DevMeta
		}
		if s == nil {
			return "", false
		}
		v, ok := s.Get(key)
		return string(v), ok
	}
	return drivers.New(o)
}

// containerDrivers implements ctrl.Drivers over the loaded revision: the
// caller's drivers, loaded and unloaded through the drivers manager.
type containerDrivers struct{ m *Containers }

// Drivers implements PlatformManager: the /drivers backend.
func (m *Containers) Drivers() ctrl.Drivers { return containerDrivers{m} }

// refs returns the drivers plat references in the loaded revision.
func (d containerDrivers) refs(plat string) (state.DriverRefs, bool, error) {
	st := d.m.snap.Load().st
	if st == nil {
		return state.DriverRefs{}, false, ctrl.Errorf(ctrl.ErrInternal, "State not loaded yet")
	}
	p := st.Platform(plat)
	if p == nil {
		return state.DriverRefs{}, false, nil
	}
	return p.Drivers, true, nil
}

// Drivers lists the drivers plat references with their real status.
func (d containerDrivers) Drivers(plat string) ([]ctrl.Driver, error) {
	refs, ok, err := d.refs(plat)
	if err != nil || !ok {
		return nil, err
	}
	mgr := d.m.drivers
	if mgr == nil {
		mgr = drivers.New(drivers.Options{}) // no aliases: UNKNOWN
	}
	var out []ctrl.Driver
	for _, s := range mgr.Status(refs) {
		out = append(out, ctrl.Driver{Name: s.Name, Type: s.Type, Status: s.Status})
	}
	return out, nil
}

// Load loads or unloads the manual drivers of plat (name "" = all).
func (d containerDrivers) Load(plat, name string, load bool) error {
	refs, ok, err := d.refs(plat)
	if err != nil {
		return err
	}
	if !ok || d.m.drivers == nil {
		return ctrl.Errorf(ctrl.ErrNotFound, "Driver not found")
	}
	if err := d.m.drivers.Manual(plat, refs, name, load); err != nil {
		if errors.Is(err, drivers.ErrNotManual) {
			return ctrl.Errorf(ctrl.ErrNotFound, "Driver not found")
		}
		return ctrl.Errorf(ctrl.ErrInvalid, "%s", err.Error())
	}
	return nil
}

func secondsDuration(n int) time.Duration { return time.Duration(n) * time.Second }
