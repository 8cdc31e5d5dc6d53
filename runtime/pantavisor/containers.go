package pantavisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
// platform.Engine and platform.Host per loaded revision and serialises
// ticks, container exits and API calls with a mutex.
type Containers struct {
	log     *slog.Logger
	paths   platform.Paths
	clock   platform.Clock
	timeout func() int // PV_UPDATER_GOALS_TIMEOUT seconds
	devmeta *metadata.Store
	logs    consoleSubscriber

	changed chan struct{}

	mu       sync.Mutex
	rev      string
	st       *state.State
	engine   *platform.Engine
	host     *platform.Host
	updating bool
	failure  *platform.Action // a reboot/rollback the FSM has not taken yet
	failures []error          // every failure since SetUpdating(true)
	last     map[string]string
	watchEnd chan struct{}
	wake     *time.Timer // wakeForRecoveryLocked
	// sharedVolumes is the volumes dir while it is a shared bind mount.
	sharedVolumes string
	watchWG       sync.WaitGroup
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
}

// NewContainers returns a container manager; Load gives it a revision.
func NewContainers(o ContainersOptions) *Containers {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = platform.SystemClock{}
	}
	return &Containers{log: o.Log, paths: o.Paths, clock: o.Clock, timeout: o.GoalsTimeout,
		devmeta: o.DevMeta, logs: o.Logs, changed: make(chan struct{}, 1), last: map[string]string{}}
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
	}
	// Exporters show their root file system in /exports/<plat> (under the
	// run dir in appengine mode, to keep the host's / alone).
	paths.Exports = "/exports"
	if env.Mode == AppEngine {
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
		GoalsTimeout: func() int { return int(c.Duration(config.UpdaterGoalsTimeout).Seconds()) }}
	if s, ok := logs.(consoleSubscriber); ok {
		o.Logs = s
	}
	return NewContainers(o)
}

// Load builds the engine of st (revision rev). Containers of an earlier
// Load must have been stopped.
func (m *Containers) Load(rev string, st *state.State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, h, err := m.buildLocked(rev, st)
	if err != nil {
		return err
	}
	m.stopWatchLocked()
	m.shareVolumesLocked()
	m.installLocked(rev, st, e, h)
	return nil
}

// buildLocked makes the engine and host of revision rev.
func (m *Containers) buildLocked(rev string, st *state.State) (*platform.Engine, *platform.Host, error) {
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
	if m.logs != nil {
		logs := m.logs
		h.Console = func(name string, f *os.File) { logs.Subscribe(f, name, "lxc/console.log", logserver.Info) }
		h.OnStart = m.startLoggers
	}
	return e, h, nil
}

// installLocked makes e and h the running revision's and watches h's
// exits (the previous watcher must be stopped).
func (m *Containers) installLocked(rev string, st *state.State, e *platform.Engine, h *platform.Host) {
	m.rev, m.st, m.engine, m.host, m.failure = rev, st, e, h, nil
	m.last = map[string]string{}
	m.watchEnd = make(chan struct{})
	m.watchWG.Add(1)
	go m.watch(h, e, m.watchEnd)
	m.log.Info("containers loaded", "rev", rev, "platforms", len(st.Platforms()), "groups", len(e.Groups()))
}

// StopPlatforms stops the named platforms of the running revision (an
// update replaces or removes them); unknown names are skipped.
func (m *Containers) StopPlatforms(ctx context.Context, names []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.engine == nil {
		return nil
	}
	for _, n := range names {
		acts, err := m.engine.StopPlatform(n)
		if err != nil {
			continue // not in the running revision
		}
		m.doLocked(ctx, acts)
	}
	m.reportLocked()
	return nil
}

// Transition makes rev the loaded revision without a reboot. Platforms
// of rev not in restart that run in the previous revision keep running
// (they are adopted with their container and volumes); every other
// container of the previous revision is stopped; the next WAIT tick
// starts the rest of rev.
func (m *Containers) Transition(ctx context.Context, rev string, st *state.State, restart []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, h, err := m.buildLocked(rev, st)
	if err != nil {
		return fmt.Errorf("transition to %s: %w", rev, err)
	}
	oldE, oldH := m.engine, m.host
	m.stopWatchLocked()
	m.shareVolumesLocked()
	var kept []string
	if oldE != nil {
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
		// Whatever the previous revision still runs goes.
		oldH.ShutdownAll(ctx)
		m.doLocked(ctx, oldE.StopAll())
		if err := oldH.Close(ctx); err != nil {
			m.log.Warn("transition: stop", "err", err)
		}
	}
	m.installLocked(rev, st, e, h)
	m.log.Info("transition", "rev", rev, "kept", kept, "restarted", restart)
	m.reportLocked()
	m.notify()
	return nil
}

// watch feeds container exits of h to e until end closes.
func (m *Containers) watch(h *platform.Host, e *platform.Engine, end chan struct{}) {
	defer m.watchWG.Done()
	for {
		select {
		case <-end:
			return
		case x := <-h.Exits():
			m.mu.Lock()
			if m.host == h {
				acts, err := h.Exited(e, x)
				if err != nil {
					m.log.Warn("container exit", "platform", x.Platform, "err", err)
				}
				if len(acts) > 0 {
					m.log.Warn("container exited", "platform", x.Platform)
				}
				m.doLocked(context.Background(), acts)
				m.reportLocked()
			}
			m.mu.Unlock()
			m.notify()
		}
	}
}

func (m *Containers) stopWatchLocked() {
	if m.watchEnd != nil {
		close(m.watchEnd)
		m.watchEnd = nil
		m.mu.Unlock()
		m.watchWG.Wait()
		m.mu.Lock()
	}
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

// doLocked performs actions and their follow-ups; reboot and rollback are
// remembered for Step.
func (m *Containers) doLocked(ctx context.Context, acts []platform.Action) {
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
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
		more, err := m.host.Do(ctx, m.engine, a)
		if err != nil {
			m.log.Warn("container action", "action", a.Kind, "platform", a.Platform, "err", err)
		}
		acts = append(acts, more...)
	}
}

// Step implements PlatformManager: one engine tick and its actions.
func (m *Containers) Step(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.engine == nil {
		return nil
	}
	for {
		acts := m.engine.Tick()
		if len(acts) == 0 {
			break
		}
		m.doLocked(ctx, acts)
		// A mount that reached its goal may unblock the next group at once.
	}
	m.reportLocked()
	m.wakeForRecoveryLocked()
	if f := m.failure; f != nil {
		m.failure = nil
		return fmt.Errorf("%w: %s (%s)", ErrContainerFailed, f.Reason, f.Kind)
	}
	return nil
}

// wakeForRecoveryLocked wakes the FSM when the first RECOVERING platform
// may retry, so a retry_delay shorter than the WAIT tick is honoured.
func (m *Containers) wakeForRecoveryLocked() {
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
// then by force after the lxc stop timeout) and every volume unmounted.
func (m *Containers) Stop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.engine == nil {
		return nil
	}
	m.host.ShutdownAll(ctx)
	m.doLocked(ctx, m.engine.StopAll())
	err := m.host.Close(ctx)
	m.reportLocked()
	m.stopWatchLocked()
	m.unshareVolumesLocked()
	return err
}

// shareVolumesLocked makes the volumes dir a shared mount, so that
// unmounting a platform's volumes also reaches the (slave) copies in the
// mount namespaces of containers started while they were mounted;
// otherwise those copies keep the loop devices busy until the other
// containers exit.
func (m *Containers) shareVolumesLocked() {
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

// unshareVolumesLocked undoes shareVolumesLocked once nothing is mounted.
func (m *Containers) unshareVolumesLocked() {
	if m.sharedVolumes == "" {
		return
	}
	if err := unix.Unmount(m.sharedVolumes, unix.MNT_DETACH); err != nil {
		m.log.Warn("volumes dir: unmount", "err", err)
	}
	m.sharedVolumes = ""
}

// reportLocked logs and publishes status changes of platforms, groups and
// the revision.
func (m *Containers) reportLocked() {
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

// RevisionStatus returns the revision status (devmeta pantavisor.status):
// the lowest status of the platforms that have not reached their goal,
// READY when all have (or there are none); "" before a revision is loaded.
func (m *Containers) RevisionStatus() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.engine == nil {
		return ""
	}
	return m.engine.Status().String()
}

// Containers implements ctrl.Containers (GET /containers).
func (m *Containers) Containers() ([]ctrl.Container, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.engine == nil {
		return nil, ctrl.Errorf(ctrl.ErrInternal, "State not loaded yet")
	}
	out := []ctrl.Container{}
	for _, p := range m.engine.Platforms() {
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
		out = append(out, c)
	}
	return out, nil
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

// Groups implements ctrl.Containers (GET /groups).
func (m *Containers) Groups() ([]ctrl.Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.engine == nil {
		return nil, ctrl.Errorf(ctrl.ErrInternal, "State not loaded yet")
	}
	out := []ctrl.Group{}
	for _, g := range m.engine.Groups() {
		o := ctrl.Group{Name: g.Name, StatusGoal: g.Goal.String(), RestartPolicy: g.RestartPolicy,
			Status: m.engine.GroupStatus(g.Name).String()}
		if a := g.Recovery; a != nil {
			o.AutoRecovery = &ctrl.GroupRecovery{MaxRetries: a.MaxRetries,
				StableTimeout: int(a.StableTimeout.Seconds()), BackoffPolicy: backoffPolicy(a)}
		}
		out = append(out, o)
	}
	return out, nil
}

// ContainerAction implements ctrl.Containers (PUT /containers/<name>).
func (m *Containers) ContainerAction(name, action string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
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
	m.doLocked(context.Background(), acts)
	m.reportLocked()
	m.notify()
	return nil
}

// Signal implements ctrl.Containers (POST /signal).
func (m *Containers) Signal(plat, typ, payload string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.engine == nil {
		return ctrl.Errorf(ctrl.ErrInternal, "State not loaded yet")
	}
	switch typ {
	case "ready":
		if err := m.engine.Ready(plat); err != nil {
			m.log.Warn("signal", "platform", plat, "type", typ, "err", err)
			return ctrl.Errorf(ctrl.ErrInternal, "Signal not expected from this platform")
		}
		m.log.Info("container ready", "platform", plat)
	case "alive":
		return nil
	default:
		return ctrl.Errorf(ctrl.ErrInvalid, "Signal has bad format")
	}
	m.reportLocked()
	m.notify()
	return nil
}

// containerDrivers implements ctrl.Drivers over the loaded revision
// (GET /drivers for the caller). Loading modules is not implemented:
// every driver reports UNKNOWN.
type containerDrivers struct{ m *Containers }

// Drivers lists the drivers plat references.
func (d containerDrivers) Drivers(plat string) ([]ctrl.Driver, error) {
	m := d.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st == nil {
		return nil, ctrl.Errorf(ctrl.ErrInternal, "State not loaded yet")
	}
	p := m.st.Platform(plat)
	if p == nil {
		return nil, nil
	}
	var out []ctrl.Driver
	for _, l := range []struct {
		typ   string
		names []string
	}{{"REQUIRED", p.Drivers.Required}, {"OPTIONAL", p.Drivers.Optional}, {"MANUAL", p.Drivers.Manual}} {
		for _, n := range l.names {
			out = append(out, ctrl.Driver{Name: n, Type: l.typ, Status: "UNKNOWN"})
		}
	}
	return out, nil
}

// Load refuses: loading modules is not implemented.
func (containerDrivers) Load(plat, name string, load bool) error {
	return ctrl.Errorf(ctrl.ErrNotImplemented, "driver loading not implemented")
}

func secondsDuration(n int) time.Duration { return time.Duration(n) * time.Second }
