// Package pantavisor is the daemon: it loads the configuration, opens
// storage, serves the control socket and runs the main state machine
// (INIT, RUN, WAIT, COMMAND, ROLLBACK, REBOOT, POWEROFF, BLOCK_REBOOT,
// ERROR, EXIT) of spec §1.
//
//	d, err := pantavisor.New(pantavisor.Options{ConfigFile: f, Cmdline: c, Env: os.Environ(), Log: log})
//	exit, err := d.Run(ctx) // ExitReboot (0) or ExitPoweroff (3)
//
// Containers and updates plug in through the PlatformManager and Updater
// interfaces. NewPlatforms runs real LXC containers (*Containers: one
// platform.Engine and platform.Host per revision, ticked on every WAIT
// round and on container events; consoles and file loggers go to the log
// server; GET /containers, /groups, /drivers, PUT /containers/<n> and POST
// /signal are served from it); runtime/pantavisor/updater.New plugs in
// runtime/update:
//
//	d, err := pantavisor.New(pantavisor.Options{…,
//		NewPlatforms: pantavisor.NewPlatforms, NewUpdater: updater.New})
//
// The running revision's signatures are verified in RUN and those of a
// PUT /steps revision before it is kept (PV_SECUREBOOT_MODE, spec §9).
//
// The revision status (the lowest status of the platforms that have not
// reached their goal; READY when all have, or there are none) is logged on
// every change and published as devmeta pantavisor.status, as the docs
// promise. The FSM state (RUN, WAIT, UPDATE, …) is published as devmeta
// pantavisor.state, an addition of ours: pvtest waits for status READY
// and state WAIT.
package pantavisor

import (
	"context"
	"fmt"
	"github.com/pantavisor/pantavisor-go/runtime/watchdog"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/boottime"
	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/daemons"
	"github.com/pantavisor/pantavisor-go/runtime/logserver"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// Mode is the init mode.
type Mode string

// Init modes (PV_SYSTEM_INIT_MODE; pv_embedded, pv_standalone,
// pv_appengine cmdline words).
const (
	Embedded   Mode = "embedded"
	Standalone Mode = "standalone"
	AppEngine  Mode = "appengine"
)

// ParseMode parses an init mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(s)); m {
	case Embedded, Standalone, AppEngine:
		return m, nil
	}
	return "", fmt.Errorf("init mode %q: want embedded, standalone or appengine", s)
}

// Exit is how the daemon wants the process to end (spec §10).
type Exit int

// Exit statuses of the App Engine contract.
const (
	// ExitReboot asks the supervisor to restart pantavisor (reboot).
	ExitReboot Exit = 0
	// ExitPoweroff means poweroff, or a SIGTERM/SIGINT stop.
	ExitPoweroff Exit = 3
)

// Clock is the time source of the FSM (injectable in tests).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// PlatformManager drives the containers of the running revision (issue 4).
type PlatformManager interface {
	// Load installs the running revision's platforms (st is parsed and
	// validated; trails/<rev> holds its files).
	Load(rev string, st *state.State) error
	// Step drives containers toward their goals (one WAIT tick).
	Step(ctx context.Context) error
	// Stop stops every container, leniently then by force.
	Stop(ctx context.Context) error
	// Changed fires when a container becomes STARTED, READY or STOPPED.
	Changed() <-chan struct{}
	// RevisionStatus is the revision status (devmeta pantavisor.status).
	RevisionStatus() string
	// Running is the loaded state (nil before Load) and the init pids of
	// its running containers (the xconnect graph).
	Running() (*state.State, map[string]int)
	// Containers serves /containers, /groups and /signal.
	ctrl.Containers
	// Drivers serves /drivers; nil answers 501.
	Drivers() ctrl.Drivers

	// What the updater drives (runtime/update.Containers).

	// StopPlatforms stops the named platforms and returns once they are down.
	StopPlatforms(ctx context.Context, names []string) error
	// Transition makes rev the loaded revision without a reboot,
	// restarting the named platforms and keeping the others running.
	Transition(ctx context.Context, rev string, st *state.State, restart []string) error
	// GoalsReached reports whether every group reached its goal, and the
	// groups whose goal timed out.
	GoalsReached() (bool, []string)
	// Failures is the container failure since SetUpdating(true), if any.
	Failures() error
	// Stable reports whether every container with a stable_timeout survived it.
	Stable() bool
	// SetUpdating says whether a revision is under test.
	SetUpdating(on bool)
}

// Next is the FSM state an updater asks for.
type Next = command.Next

// Updater answers.
const (
	Stay     = command.Stay     // keep waiting
	Reboot   = command.Reboot   // reboot into the update
	Rollback = command.Rollback // the update failed
)

// Updater drives updates (issue 5).
type Updater interface {
	// Resume continues the update found at boot (spec §4).
	Resume(rev, try string) error
	// Step is one WAIT tick of the update.
	Step(ctx context.Context) (Next, error)
	// Run handles LOCAL_RUN, LOCAL_RUN_COMMIT, MAKE_FACTORY, TRY_ONCE, LOCAL_APPLY.
	Run(ctx context.Context, c command.Command) (Next, error)
	// Updating reports whether an update exists.
	Updating() bool
	// ContainerFailed records a container failure (of the update under
	// test, if any) and says where to go: Rollback or Reboot.
	ContainerFailed(err error) Next
	// WaitHub holds the update under test in INPROGRESS (a remote update
	// whose Hub has not answered yet); HubFailed fails it with a Hub
	// message and says where to go (spec §4, network rollback).
	WaitHub(wait bool)
	HubFailed(msg string, err error) Next
	// Running is the running revision; it changes on an update that
	// needs no reboot.
	Running() string
	// Keep is the one rule for what GC keeps and PUT /steps may not
	// replace: the running revision, the boot loader's committed pv_rev
	// and pv_try, and the update in flight (spec §12). Any goroutine.
	Keep() storage.GCKeep
	// GC runs the garbage collector with Keep's rule (RUN_GC,
	// /storage/gc); Step runs it below the threshold. Any goroutine.
	GC() (int64, error)
	// ObjectsUploaded notes a PUT /objects: the threshold GC waits
	// PV_STORAGE_GC_THRESHOLD_DEFERTIME. Any goroutine.
	ObjectsUploaded()
	// Hold adds shas to what Keep keeps until the next Hold (the objects
	// of a remote download, which no trail links yet). Any goroutine.
	Hold(shas []string)
}

// LogServer is the log server's life cycle (runtime/logserver).
type LogServer interface {
	Start(ctx context.Context) error
	Close() error
	// Handler receives the daemon's own log records.
	Handler() slog.Handler
	// SetRevision moves the log files to the running revision's.
	SetRevision(rev string)
	// StartUpdate and StopUpdate capture the logs of an update.
	StartUpdate(rev string)
	StopUpdate()
	// Subscribe logs what r yields as platform's source (container
	// consoles and log files).
	Subscribe(r io.Reader, platform, source string, level logserver.Level)
}

// Options configures the daemon.
type Options struct {
	// ConfigFile is --config (default /etc/pantavisor.config; "" for none).
	ConfigFile string
	// Cmdline replaces /proc/cmdline (--cmdline).
	Cmdline string
	// Args are the program's argument words (pv_appengine, pv_embedded,
	// pv_standalone, pv_debug).
	Args []string
	// Env is the process environment (PV_*/PH_* override the config).
	Env []string
	Log *slog.Logger
	// Clock defaults to the wall clock.
	Clock Clock
	// ProcRoot is /proc (caller identity); tests may change it.
	ProcRoot string
	// BuildInfo is served at /buildinfo.
	BuildInfo string
	// Version is published as pantavisor.version.
	Version string
	// HubHTTP is the Pantacor Hub client's HTTP client; nil is the
	// default (system CAs). Tests give one trusting their Hub.
	HubHTTP *http.Client
	// Platforms and Updater are optional (issues 4, 5); NewPlatforms and
	// NewUpdater build them in INIT, once storage and config exist.
	Platforms    PlatformManager
	Updater      Updater
	NewPlatforms func(Env) (PlatformManager, error)
	NewUpdater   func(Env) (Updater, error)
	// Booted asks the boot loader which revision this boot runs and
	// which one is tried, for boot loaders that do not say it on the
	// kernel command line (rpiab: the firmware only flags a tryboot). It
	// runs once storage and config exist, before anything uses the
	// revision, and only when the command line has no pv_rev.
	Booted func(Env) (rev, try string, err error)
	// LogServer makes the log server; nil uses runtime/logserver.
	LogServer func(runDir, logDir, rev string, log *slog.Logger) (LogServer, error)
	// NoLogServer runs without a log server.
	NoLogServer bool
	// FreeSpace overrides the usable storage bytes (tests: full disk).
	FreeSpace func() (int64, error)
	// Prepare runs in INIT once the configuration and mode are known and
	// before storage is opened: the embedded PID 1 mounts the kernel file
	// systems and the storage device here. get reads a configuration key.
	Prepare func(ctx context.Context, mode Mode, get func(config.Key) string) error
	// Settle runs once, before RUN mounts the revision's BSP (or when Run
	// returns first): the embedded PID 1 waits there for the initrd's
	// modules Prepare left loading once storage was mounted (the BSP's
	// volumes need loop and squashfs; its coldplug must find the
	// initrd's drivers loaded, not half way).
	Settle func()
	// SysctlRoot is where INIT writes the PV_SYSCTL_* keys in embedded
	// and standalone modes: /proc/sys for the device's init (PID 1); ""
	// writes none (a daemon that is not the init must not change the
	// kernel it runs on).
	SysctlRoot string
	// SystemReboot reboots or powers off the machine (embedded only).
	SystemReboot func(poweroff bool) error
	// Watchdog opens the watchdog device PV_WDT_MODE drives; nil is
	// every /dev/watchdogN in embedded mode and none in App Engine mode.
	Watchdog watchdog.Opener
	// SSHAddr is the debug ssh server's address (PV_DEBUG_SSH); "" is
	// sshd.DefaultAddr, :8222.
	SSHAddr string
	// Pventer is the command that enters a container for ssh logins,
	// before its arguments; nil is this binary's pventer applet.
	Pventer []string
	// Daemons are the managed daemons (GET /daemons), given the pv-ctrl
	// socket path; they start once the revision runs. nil: none.
	Daemons func(ctrlSocket string) []daemons.Spec
	// Boot is the timeline of this boot, started as early as the program
	// could (nil: one started by New). Embedded mode prints it on the
	// console once the revision is READY.
	Boot *boottime.Timeline
}
