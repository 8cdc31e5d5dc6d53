package pantavisor

import (
	"context"
	"errors"
	"fmt"
	"github.com/pantavisor/pantavisor-go/runtime/watchdog"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pantavisor/pantavisor-go/runtime/boottime"
	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/daemons"
	"github.com/pantavisor/pantavisor-go/runtime/disk"
	"github.com/pantavisor/pantavisor-go/runtime/hook"
	"github.com/pantavisor/pantavisor-go/runtime/logserver"
	"github.com/pantavisor/pantavisor-go/runtime/metadata"
	"github.com/pantavisor/pantavisor-go/runtime/remote"
	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/sshd"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
	"github.com/pantavisor/pantavisor-go/runtime/volume"
	"golang.org/x/sys/unix"
)

// Daemon is one pantavisor instance.
type Daemon struct {
	opt   Options
	log   *slog.Logger
	clock Clock
	mode  Mode

	conf    *config.Config
	store   *storage.Storage
	usrmeta *metadata.Store
	devmeta *metadata.Store
	disks   *disk.Set       // device.json disks that are up
	metaOn  map[string]bool // pv--usrmeta/pv--devmeta moved onto their disk
	logs    LogServer
	ln      net.Listener
	srv     *http.Server

	runDir string
	root   string
	logDir string
	rev    string // pv_rev: the running revision
	// revOnCmdline: the boot loader named pv_rev on the command line;
	// otherwise Options.Booted asks it in INIT.
	revOnCmdline bool
	try          string // pv_try

	platforms PlatformManager // nil until issue 4
	updater   Updater         // nil until issue 5

	binds []string // bind mounts to undo on shutdown

	shell *debugShell // console debug shell (embedded PID 1), nil when off

	wdt *watchdog.Watchdog // PV_WDT_MODE; nil before INIT read the config

	hub   *hubClient // the Pantacor Hub client in remote mode (owned by the FSM goroutine)
	watch hubWatch   // the network rollback's view of the update (FSM goroutine)
	// logQueue is the log backlog for the Hub (set before the log server
	// starts; see tapLog), logsDropped what overflowed it.
	logQueue    chan remote.LogEntry
	logsDropped atomic.Int64
	logPushOn   atomic.Bool // a Hub client runs (startRemote/stopRemote)

	hooks      *hook.Runner // system hooks (hooks.go)
	doneHooked string       // the revision system-done ran for (FSM goroutine)

	ssh       *sshd.Server // debug ssh server, nil when off (owned by the FSM goroutine)
	sshFailed bool         // it could not listen; retried after DISABLE_SSH

	// helpers are the managed daemons (pv-xconnect), nil when none;
	// helpersStop ends them and helpersDone is closed once they are down.
	helpers     *daemons.Manager
	helpersStop context.CancelFunc
	helpersDone chan struct{}

	cmds  chan command.Command
	ready chan struct{}

	// late is the running revision's checksum that runs beside the
	// container start, nil when none runs (owned by the FSM goroutine).
	late *lateCheck

	settled   sync.Once          // Options.Settle ran
	boot      *boottime.Timeline // the boot's phases (Options.Boot)
	bootShown bool               // the timeline line was printed (owned by the FSM goroutine)

	mu       sync.Mutex
	current  *revision
	state    State
	coldplug *coldplug // the BSP's driver loading, nil before RUN or without modules
	// modsPending is closed once the BSP's modules image, mounted after
	// its late checksum, is in place (or is known not to be); nil when
	// nothing is pending.
	modsPending chan struct{}
	goRemote    bool
	// logsClosed is set when the log server closes (see switchHandler).
	logsClosed atomic.Bool
}

// New parses the options; the work happens in Run.
func New(o Options) (*Daemon, error) {
	d := &Daemon{opt: o, log: o.Log, clock: o.Clock, boot: o.Boot,
		cmds: make(chan command.Command, 1), ready: make(chan struct{})}
	if d.boot == nil {
		d.boot = boottime.Start()
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.clock == nil {
		d.clock = realClock{}
	}
	if o.Cmdline == "" {
		if b, err := os.ReadFile("/proc/cmdline"); err == nil {
			d.opt.Cmdline = strings.TrimSpace(string(b))
		}
	}
	d.rev = "0"
	for _, w := range strings.Fields(d.opt.Cmdline) {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case "pv_rev":
			if v != "" {
				d.rev, d.revOnCmdline = v, true
			}
		case "pv_try":
			d.try = v
		}
	}
	if err := ctrl.ValidRevision(d.rev); err != nil {
		return nil, fmt.Errorf("pv_rev: %w", err)
	}
	if d.try != "" {
		if err := ctrl.ValidRevision(d.try); err != nil {
			return nil, fmt.Errorf("pv_try: %w", err)
		}
	}
	return d, nil
}

// settle runs Options.Settle once.
func (d *Daemon) settle() {
	if d.opt.Settle != nil {
		d.settled.Do(d.opt.Settle)
	}
}

// Ready is closed once INIT and RUN are done and the FSM is waiting.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Mode returns the init mode (known after INIT).
func (d *Daemon) Mode() Mode { return d.mode }

// Socket returns the control socket path (known after INIT).
func (d *Daemon) Socket() string { return filepath.Join(d.runDir, "pv-ctrl") }

// Revision returns the running revision.
func (d *Daemon) Revision() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rev
}

// modeFromWords returns the mode forced by a pv_<mode> word.
func modeFromWords(words []string) (Mode, bool) {
	var m Mode
	for _, w := range words {
		switch w {
		case "pv_embedded":
			m = Embedded
		case "pv_standalone":
			m = Standalone
		case "pv_appengine":
			m = AppEngine
		}
	}
	return m, m != ""
}

// storagePath maps a configured path under /storage onto the storage
// mount point (appengine runs with its storage elsewhere).
func (d *Daemon) storagePath(key config.Key) string {
	v := d.conf.Get(key)
	if rest, ok := strings.CutPrefix(v, "/storage/"); ok && d.root != "/storage" {
		return filepath.Join(d.root, rest)
	}
	return v
}

// init is FSM INIT: config, mode, storage, run dir, logserver, metadata
// and the control socket.
func (d *Daemon) init(ctx context.Context) error {
	c, err := config.Load(config.Options{ConfigFile: d.opt.ConfigFile, Cmdline: d.opt.Cmdline, Env: d.opt.Env, Log: d.log})
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d.conf = c
	words := append(strings.Fields(d.opt.Cmdline), d.opt.Args...)
	if m, ok := modeFromWords(words); ok {
		d.mode = m
	} else if d.mode, err = ParseMode(c.Get(config.SystemInitMode)); err != nil {
		return fmt.Errorf("PV_SYSTEM_INIT_MODE: %w", err)
	}
	d.runDir = c.Get(config.SystemRunDir)
	if d.mode == AppEngine && c.Source(config.SystemRunDir) == config.Default {
		d.runDir = "/run/pantavisor/pv"
	}
	d.root = filepath.Clean(c.Get(config.StorageMntPoint))
	volume.SetLoopIndexBase(c.Int(config.LoopIndexBase))
	d.startWatchdog()
	if d.opt.Prepare != nil {
		if err := d.opt.Prepare(ctx, d.mode, c.Get); err != nil {
			return fmt.Errorf("prepare %s: %w", d.mode, err)
		}
	}
	d.boot.Mark("storage")
	d.log.Info("init", "mode", d.mode, "storage", d.root, "run", d.runDir, "rev", d.rev, "try", d.try)
	d.applySysctls()
	d.startDebugShell(ctx)
	d.containerBridge()

	if d.store, err = storage.Open(d.root); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	// What a power cut left of writes in flight goes before the socket
	// accepts any upload (GC would keep it for 10 minutes).
	if n, err := d.store.RemoveTemporaries(); err != nil {
		d.log.Warn("storage: remove temporaries", "err", err)
	} else if n > 0 {
		d.log.Info("storage: removed temporaries of interrupted writes", "bytes", n)
	}
	// Hub credentials live in storage (spec §8 step 5).
	if err := c.LoadPHConfig(filepath.Join(d.root, "config", "pantahub.config")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("pantahub.config", "err", err)
	}
	if err := d.bootedRevision(); err != nil {
		return err
	}
	d.logDir = d.storagePath(config.LogDir)
	d.store.LogDir = d.logDir
	d.store.Log = d.log
	if n, pct := c.Size(config.StorageGCReserved); pct {
		d.store.ReservedPercent = int(n)
	} else if v := c.Int(config.StorageGCReserved); v > 0 {
		d.store.ReservedPercent = v
	}
	if free := d.opt.FreeSpace; free != nil {
		var mu sync.Mutex
		d.store.Reserve = func(n int64) error {
			mu.Lock()
			defer mu.Unlock()
			f, err := free()
			if err != nil {
				return err
			}
			if n > f {
				return fmt.Errorf("%d bytes wanted, %d free", n, f)
			}
			return nil
		}
	}
	if err := os.MkdirAll(d.runDir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	for _, hint := range []string{"challenge", "device-id", "pantahub-host"} {
		p := filepath.Join(d.runDir, hint)
		if _, err := os.Stat(p); err != nil {
			if err := os.WriteFile(p, nil, 0o444); err != nil {
				return fmt.Errorf("run dir: %w", err)
			}
		}
	}
	if err := os.MkdirAll(d.logDir, 0o755); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	d.mountLogTemp()
	if err := d.startLogs(ctx); err != nil {
		return err
	}
	d.captureDmesg(Kmsg)
	if d.usrmeta, err = metadata.Open(d.storagePath(config.CacheUsrMetaDir), d.log); err != nil {
		return fmt.Errorf("user-meta: %w", err)
	}
	if d.devmeta, err = metadata.Open(d.storagePath(config.CacheDevMetaDir), d.log); err != nil {
		return fmt.Errorf("device-meta: %w", err)
	}
	for _, m := range []struct {
		s    *metadata.Store
		name string
	}{{d.usrmeta, "user-meta"}, {d.devmeta, "device-meta"}} {
		if err := m.s.Mirror(d.runDir, m.name); err != nil {
			return fmt.Errorf("%s mirror: %w", m.name, err)
		}
		// $RUN/<name> shows the cache dir: a bind mount as upstream (mgmt
		// containers bind it below /pantavisor, where a symlink would not
		// resolve), a symlink where mounting is not allowed.
		if err := d.bindMeta(m.s.Dir(), filepath.Join(d.runDir, m.name)); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	for _, kv := range d.usrmeta.List() {
		if config.IsKey(kv.Key) {
			c.Set(kv.Key, string(kv.Value), config.Metadata)
		}
	}
	d.hooks = d.newHooks()
	if err := d.plugins(); err != nil {
		return err
	}
	if err := d.startCtrl(); err != nil {
		return err
	}
	return d.systemStart(ctx)
}

// bootedRevision asks the boot loader (Options.Booted) for the running
// and tried revisions when the command line did not name them.
func (d *Daemon) bootedRevision() error {
	if d.revOnCmdline || d.opt.Booted == nil {
		return nil
	}
	rev, try, err := d.opt.Booted(Env{Mode: d.mode, RunDir: d.runDir, Storage: d.store,
		Config: d.conf, Cmdline: d.opt.Cmdline, Clock: d.clock, Log: d.log})
	if err != nil {
		return fmt.Errorf("boot loader: %w", err)
	}
	if err := ctrl.ValidRevision(rev); err != nil {
		return fmt.Errorf("boot loader: pv_rev: %w", err)
	}
	if try != "" {
		if err := ctrl.ValidRevision(try); err != nil {
			return fmt.Errorf("boot loader: pv_try: %w", err)
		}
	}
	d.mu.Lock()
	d.rev, d.try = rev, try
	d.mu.Unlock()
	d.log.Info("boot loader", "rev", rev, "try", try)
	return nil
}

// mountLogTemp is PV_STORAGE_LOGTEMPSIZE (upstream's storage.logtempsize):
// the log dir on a tmpfs of that size (bytes or % of RAM, as tmpfs
// takes it), so logs spare the storage's flash and go at reboot.
// Shutdown unmounts it after the log server closed. A failure keeps
// the logs on storage.
func (d *Daemon) mountLogTemp() {
	if d.conf.Get(config.StorageLogTempSize) == "" {
		return
	}
	n, pct := d.conf.Size(config.StorageLogTempSize)
	opts := fmt.Sprintf("size=%d,mode=0755", n)
	if pct {
		opts = fmt.Sprintf("size=%d%%,mode=0755", n)
	}
	if err := unix.Mount("pv-logtemp", d.logDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		d.log.Warn("PV_STORAGE_LOGTEMPSIZE: logs stay on storage", "dir", d.logDir, "err", err)
		return
	}
	d.binds = append(d.binds, d.logDir)
}

// bindMeta makes dst show src: a bind mount, else a symlink.
func (d *Daemon) bindMeta(src, dst string) error {
	if fi, err := os.Lstat(dst); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		os.Remove(dst)
	}
	if err := os.MkdirAll(dst, 0o755); err == nil {
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err == nil {
			d.binds = append(d.binds, dst)
			return nil
		}
		os.Remove(dst)
	}
	if _, err := os.Lstat(dst); err == nil {
		return nil // a non-empty directory we could not mount on: keep it
	}
	if err := os.Symlink(src, dst); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	return nil
}

// Env is what the platform manager and updater factories get from INIT.
type Env struct {
	Mode    Mode
	Rev     string // pv_rev
	Try     string // pv_try
	RunDir  string
	Storage *storage.Storage
	Config  *config.Config
	DevMeta *metadata.Store
	UsrMeta *metadata.Store
	// Cmdline is the kernel command line in use.
	Cmdline string
	// Platforms is the platform manager, for NewUpdater (nil before).
	Platforms PlatformManager
	// Logs is the log server (nil without one); containers subscribe
	// their consoles to it.
	Logs LogServer
	// Hooks runs the system hooks; the updater hands it to the boot
	// loader (install and boot-done points).
	Hooks *hook.Runner
	// Verify checks a revision's signatures (PV_SECUREBOOT_MODE); the
	// updater checks every revision it runs again.
	Verify func(*state.State) error
	Clock  Clock
	Log    *slog.Logger
	// WaitDrivers returns once the kernel has the named modules or the
	// BSP's coldplug, which runs beside the container start, finished
	// without them: a container that needs a driver calls it before it
	// starts (Daemon.WaitDrivers).
	WaitDrivers func(ctx context.Context, modules ...string) error
	// ModulesPending returns a channel closed once the BSP's modules are
	// on /lib/modules (they are mounted beside the container start), or
	// nil when they are not pending: the managed drivers wait for it.
	ModulesPending func() <-chan struct{}
}

// plugins sets up the platform manager and the updater.
func (d *Daemon) plugins() error {
	if d.mode == Standalone {
		return nil // no containers, no updates: a console to debug from (seeds §6.11.2)
	}
	env := Env{Mode: d.mode, Rev: d.rev, Try: d.try, RunDir: d.runDir, Storage: d.store,
		Config: d.conf, DevMeta: d.devmeta, UsrMeta: d.usrmeta, Logs: d.logs, Clock: d.clock, Log: d.log, Cmdline: d.opt.Cmdline, Hooks: d.hooks, Verify: d.verify,
		WaitDrivers: d.WaitDrivers, ModulesPending: d.modulesPending}
	d.platforms, d.updater = d.opt.Platforms, d.opt.Updater
	if d.platforms == nil && d.opt.NewPlatforms != nil {
		p, err := d.opt.NewPlatforms(env)
		if err != nil {
			return fmt.Errorf("platforms: %w", err)
		}
		d.platforms = p
	}
	env.Platforms = d.platforms
	if d.updater == nil && d.opt.NewUpdater != nil {
		u, err := d.opt.NewUpdater(env)
		if err != nil {
			return fmt.Errorf("updater: %w", err)
		}
		d.updater = u
	}
	return nil
}

// startLogs starts the log server (Options.LogServer, else runtime/logserver).
func (d *Daemon) startLogs(ctx context.Context) error {
	if d.opt.NoLogServer {
		return nil
	}
	var ls LogServer
	var err error
	if d.opt.LogServer != nil {
		ls, err = d.opt.LogServer(d.runDir, d.logDir, d.rev, d.log)
	} else {
		ls, err = logserver.New(d.logOptions())
	}
	if err != nil {
		return fmt.Errorf("logserver: %w", err)
	}
	if err := ls.Start(ctx); err != nil {
		return fmt.Errorf("logserver: %w", err)
	}
	d.logs = ls
	if d.logsToStdout() {
		// The log server prints our records on stdout itself (the
		// console of an image): teeing would print each one twice.
		d.log = slog.New(switchHandler{ls.Handler(), d.log.Handler(), &d.logsClosed})
	} else {
		d.log = slog.New(teeHandler{d.log.Handler(), ls.Handler()})
	}
	d.store.Log = d.log
	return nil
}

// startCtrl listens on $RUN/pv-ctrl and serves the control API.
func (d *Daemon) startCtrl() error {
	o := ctrl.Options{
		Log:        d.log,
		UserMeta:   userMetaAPI{newMetaAPI(d.usrmeta), d.conf},
		DeviceMeta: newMetaAPI(d.devmeta),
		Steps: newStepsAPI(d.store, d.inUse, func(b []byte) (*state.State, error) {
			rev, err := parseRevision("", b, d.mode == AppEngine)
			if err != nil {
				return nil, err
			}
			return rev.state, nil
		}, d.verify),
		Objects:   objectsAPI{d.store, d.gc, d.objectUploaded},
		Config:    cfgAPI{d.conf},
		Commands:  d,
		Platforms: d,
		Extras:    extrasAPI{d},
		BuildInfo: d.opt.BuildInfo,
		AppEngine: d.mode == AppEngine,
		ProcRoot:  d.opt.ProcRoot,
	}
	if d.opt.Daemons != nil {
		d.helpers = daemons.New(d.log, daemons.Options{}, d.opt.Daemons(d.Socket())...)
		o.Daemons = d.helpers
	}
	if d.platforms != nil {
		o.Containers = d.platforms
		if dr := d.platforms.Drivers(); dr != nil {
			o.Drivers = dr
		}
	}
	ln, err := ctrl.Listen(d.Socket())
	if err != nil {
		return fmt.Errorf("ctrl: %w", err)
	}
	d.ln = ln
	d.srv = ctrl.NewServer(ctrl.New(o))
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("ctrl: serve", "err", err)
		}
	}()
	return nil
}

// Caller implements ctrl.Platforms over the running revision.
func (d *Daemon) Caller(name string) (known, mgmt bool) {
	d.mu.Lock()
	cur := d.current
	d.mu.Unlock()
	if cur == nil {
		return false, false
	}
	return cur.Caller(name)
}

// verify checks st's signatures in PV_SECUREBOOT_MODE (spec §9).
func (d *Daemon) verify(st *state.State) error {
	v, err := signature.New(signature.Options{
		Mode:          d.conf.Get(config.SecurebootMode),
		EtcDir:        d.conf.Get(config.SystemEtcDir),
		TrustStore:    d.conf.Get(config.SecurebootTruststore),
		OEMTrustStore: d.conf.Get(config.SecurebootOEMTruststore),
		OEMName:       d.conf.Get(config.OEMName),
		Log:           d.log,
	})
	if err != nil {
		return err
	}
	return v.Verify(st)
}

// inUse says which revisions PUT /steps may not replace: the updater's
// Keep, the one rule GC also follows. Without an updater nothing is
// installed by this daemon: the running revision and pv_try are all it
// knows of.
func (d *Daemon) inUse() storage.Keeper {
	if d.updater != nil {
		return d.updater
	}
	return storage.GCKeep{Running: d.Revision(), Update: d.try}
}

// gc runs the garbage collector (RUN_GC, /storage/gc) through the
// updater. Without one, the boot loader's committed revision is unknown
// and GC could delete the revision a reboot falls back to: it refuses.
func (d *Daemon) gc() (int64, error) {
	if d.updater == nil {
		return 0, fmt.Errorf("gc: %w: no updater in this build knows the boot loader's committed revision", ctrl.ErrNotImplemented)
	}
	return d.updater.GC()
}

// objectUploaded defers the threshold GC (spec §12).
func (d *Daemon) objectUploaded() {
	if d.updater != nil {
		d.updater.ObjectsUploaded()
	}
}

// local reports whether the device is in local mode (spec §1 RUN 8).
func (d *Daemon) local() bool {
	if !d.conf.Bool(config.ControlRemote) {
		return true
	}
	d.mu.Lock()
	goRemote := d.goRemote
	d.mu.Unlock()
	if goRemote || d.conf.Bool(config.ControlRemoteAlways) {
		return false
	}
	return strings.HasPrefix(d.Revision(), "locals/")
}

// revisionStatus is devmeta pantavisor.status (spec §7): the platform
// manager's revision status, or READY for a running revision when there is
// no platform manager (nothing to start).
func (d *Daemon) revisionStatus() string {
	if d.platforms != nil {
		return d.platforms.RevisionStatus()
	}
	if d.Revision() != "" {
		return "READY"
	}
	return ""
}

// publishDevmeta writes the default device metadata (spec §12).
func (d *Daemon) publishDevmeta() {
	mode := "remote"
	if d.local() {
		mode = "local"
	}
	dev := metadata.Device{Version: d.opt.Version, Revision: d.Revision(), Mode: mode, Status: d.revisionStatus()}
	if u, err := d.store.Usage(); err == nil {
		dev.Storage = &metadata.Usage{Total: u.Total, Free: u.Free, Reserved: u.Reserved, RealFree: u.RealFree}
	}
	kvs, err := dev.Defaults()
	if err != nil {
		d.log.Warn("devmeta", "err", err)
	}
	kvs = append(kvs, metadata.KV{Key: "pantavisor.state", Value: []byte(d.State().String())})
	if err := d.devmeta.Publish(kvs); err != nil {
		d.log.Warn("devmeta", "err", err)
	}
}

// startWatchdog applies PV_WDT_MODE (INIT): the embedded daemon drives
// every watchdog of /dev (watchdog.OpenAll), App Engine none unless
// Options.Watchdog names one.
func (d *Daemon) startWatchdog() {
	open := d.opt.Watchdog
	if open == nil && d.mode == Embedded {
		open = watchdog.OpenAll("/dev", d.log)
	}
	mode, err := watchdog.ParseMode(d.conf.Get(config.WDTMode))
	if err != nil || !d.conf.Bool(config.WDTEnabled) || open == nil {
		mode = watchdog.Disabled
	}
	d.wdt = watchdog.New(mode, d.conf.Duration(config.WDTTimeout), open, d.log)
	d.wdt.Start()
}

// petWatchdog is the FSM's kick (a no-op before INIT).
func (d *Daemon) petWatchdog() {
	if d.wdt != nil {
		d.wdt.Pet()
	}
}
