package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/hook"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// Defaults of the configuration keys the updater reads.
const (
	DefaultCommitDelay     = 25 * time.Second  // PV_UPDATER_COMMIT_DELAY
	DefaultGoalsTimeout    = 120 * time.Second // PV_UPDATER_GOALS_TIMEOUT
	DefaultRevisionRetries = 10                // PV_REVISION_RETRIES
	DefaultGCDeferTime     = 600 * time.Second // PV_STORAGE_GC_THRESHOLD_DEFERTIME
)

// MaxLogs is the largest share of .pv/logs copied into the progress.
const MaxLogs = 4096

// Errors callers test with errors.Is.
var (
	// ErrBusy: an update is still in progress.
	ErrBusy = errors.New("an update is in progress")
	// ErrRollback: Resume found the tried revision failed; the daemon
	// must roll back.
	ErrRollback = errors.New("update failed: roll back")
	// ErrFailed wraps the status message of an update that failed.
	ErrFailed = errors.New("update failed")
	// ErrUnsupported: an operation this updater does not handle.
	ErrUnsupported = errors.New("unsupported operation")
	// ErrNeedsReboot: LOCAL_APPLY of a revision that only a reboot can
	// run (a BSP change, a container whose restart policy is system).
	ErrNeedsReboot = errors.New("the revision needs a reboot")
	// ErrBadPayload: a command payload is not a usable revision.
	ErrBadPayload = errors.New("bad command payload")
)

// Next is the daemon state the updater asks for.
type Next = command.Next

// Answers of Step and Run.
const (
	Stay     = command.Stay     // keep waiting
	Reboot   = command.Reboot   // reboot into the update
	Rollback = command.Rollback // the update failed: roll back
)

// Clock is the time source of the commit delay, goal timeout and GC defer.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Containers is what the updater needs from the container side; the
// daemon implements it over the platform engine (see the package doc).
type Containers interface {
	// Stop stops the named platforms of the running revision, leniently
	// and then by force, and returns when they are down.
	Stop(ctx context.Context, names []string) error
	// Transition makes rev (st, already materialised) the running
	// revision without a reboot: the named platforms (changed or added)
	// are loaded from rev and started; platforms only in the old
	// revision stay stopped; the others keep running.
	Transition(ctx context.Context, rev string, st *state.State, names []string) error
	// Goals reports whether every group reached its status goal, and
	// the groups whose goal timed out.
	Goals() (reached bool, timedOut []string)
	// Failed returns the failure of a container (crash, auto-recovery
	// exhausted) since SetUpdating(true), nil when there is none.
	Failed() error
	// Stable reports whether every container with a stable_timeout has
	// survived it.
	Stable() bool
	// SetUpdating tells the container side that a revision is under
	// test: failures must roll back instead of rebooting.
	SetUpdating(updating bool)
}

// LogCapture captures the error logs of an update into
// trails/<rev>/.pv/logs (*logserver.Server implements it).
type LogCapture interface {
	StartUpdate(rev string)
	StopUpdate()
}

// Options configure an Updater.
type Options struct {
	Storage    *storage.Storage       // required
	Bootloader *bootloader.Bootloader // required
	// Containers is the container side; nil makes every transition a
	// reboot and treats goals as reached and containers as stable.
	Containers Containers
	// Logs captures update logs; nil captures none.
	Logs  LogCapture
	Clock Clock // nil: wall clock
	// CommitDelay is PV_UPDATER_COMMIT_DELAY: how long TESTING lasts.
	CommitDelay time.Duration
	// GoalsTimeout is PV_UPDATER_GOALS_TIMEOUT: the goal timeout of a
	// group without its own; the updater gives up on INPROGRESS after the
	// sum of the group timeouts even when the container side reports no
	// timeout.
	GoalsTimeout time.Duration
	// RevisionRetries is PV_REVISION_RETRIES.
	RevisionRetries int
	// Verify checks a revision's signatures (PV_SECUREBOOT_MODE) before
	// it is installed: a state changed on storage since its upload is
	// refused (WONTGO) instead of run. nil checks none.
	Verify func(*state.State) error
	GC     GCPolicy
	Log    *slog.Logger
}

// Updater is the update object of the daemon: at most one update exists
// at a time. It is not safe for concurrent use: the daemon's FSM
// goroutine owns it, except Updating, Running, Remote, Progress, Keep,
// GC, HookEnv and ObjectsUploaded, which may be called from any
// goroutine. The owner writes every field those read under mu.
type Updater struct {
	o     Options
	st    *storage.Storage
	bl    *bootloader.Bootloader
	c     Containers
	clock Clock
	log   *slog.Logger

	mu         chan struct{} // guards the fields below and those of upd
	running    string
	current    *state.State // parsed state of running (lazy)
	upd        *update
	lastUpload time.Time
	remote     bool
	// held are the objects of a remote download in flight (Hold): no
	// trail links them until the revision is staged.
	held []string
	// try and done mirror the boot loader's pv_try and pv_rev, which only
	// the owner changes (through bootInstall, bootCommit, bootFail): the
	// readers on other goroutines read these copies.
	try, done string
}

type phase int

const (
	phaseInstalling phase = iota // LOCAL_RUN in progress
	phaseReboot                  // installed, reboot pending
	phaseInprogress              // waiting for the group goals
	phaseTesting                 // commit delay / stability
	phaseFinal                   // DONE, UPDATED, WONTGO or ERROR
)

// update is the one update in flight.
type update struct {
	rev       string
	st        *state.State
	p         progress.Progress
	phase     phase
	installed bool // pv_try armed or containers changed: failure rolls back
	tryBoot   bool // running rev on its try boot: success commits
	tryOnce   bool
	deadline  time.Time // INPROGRESS gives up
	commitAt  time.Time // TESTING ends
	waitHub   bool      // see WaitHub
}

// New returns an Updater; call Resume before anything else.
func New(o Options) (*Updater, error) {
	if o.Storage == nil || o.Bootloader == nil {
		return nil, errors.New("update: storage and bootloader are required")
	}
	if o.Clock == nil {
		o.Clock = wallClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CommitDelay <= 0 {
		o.CommitDelay = DefaultCommitDelay
	}
	if o.GoalsTimeout <= 0 {
		o.GoalsTimeout = DefaultGoalsTimeout
	}
	if o.RevisionRetries <= 0 {
		o.RevisionRetries = DefaultRevisionRetries
	}
	if o.GC.DeferTime <= 0 {
		o.GC.DeferTime = DefaultGCDeferTime
	}
	u := &Updater{o: o, st: o.Storage, bl: o.Bootloader, c: o.Containers, clock: o.Clock,
		log: o.Log, mu: make(chan struct{}, 1), running: o.Bootloader.Rev(),
		try: o.Bootloader.Try(), done: o.Bootloader.Done()}
	return u, nil
}

func (u *Updater) lock()   { u.mu <- struct{}{} }
func (u *Updater) unlock() { <-u.mu }

// set runs f, which writes fields other goroutines read, under the lock.
func (u *Updater) set(f func()) {
	u.lock()
	defer u.unlock()
	f()
}

// bootInstall arms rev in the boot loader (pv_try).
func (u *Updater) bootInstall(rev string) (forceReboot bool, err error) {
	defer u.syncBoot()
	return u.bl.Install(rev, u.st.TrailDir(rev))
}

// bootCommit makes rev the boot loader's pv_rev and clears pv_try.
func (u *Updater) bootCommit(rev string) error {
	defer u.syncBoot()
	return u.bl.PreCommit(rev)
}

// bootFail clears pv_try.
func (u *Updater) bootFail() error {
	defer u.syncBoot()
	return u.bl.Fail()
}

// syncBoot copies the boot loader's variables for the other goroutines.
// Between a boot loader write and this copy Keep may see the old values:
// the update in flight (published before Install, made final only after
// PreCommit or Fail) keeps the revision either way.
func (u *Updater) syncBoot() {
	try, done := u.bl.Try(), u.bl.Done()
	u.set(func() { u.try, u.done = try, done })
}

// Updating reports whether an update is in progress (not yet final).
func (u *Updater) Updating() bool {
	u.lock()
	defer u.unlock()
	return u.upd != nil && u.upd.phase != phaseFinal
}

// Running returns the revision running now: the booted one, or the
// target of a non-reboot transition once it happened.
func (u *Updater) Running() string {
	u.lock()
	defer u.unlock()
	return u.running
}

// Remote reports whether GO_REMOTE switched the device to remote mode.
func (u *Updater) Remote() bool {
	u.lock()
	defer u.unlock()
	return u.remote
}

// Progress returns the revision and progress of the current or last
// update; ok is false when there was none since the boot.
func (u *Updater) Progress() (rev string, p progress.Progress, ok bool) {
	u.lock()
	defer u.unlock()
	if u.upd == nil {
		return "", progress.Progress{}, false
	}
	return u.upd.rev, u.upd.p, true
}

func (u *Updater) setRunning(rev string, st *state.State) {
	u.set(func() { u.running, u.current = rev, st })
}

// currentState parses the running revision's state (cached).
func (u *Updater) currentState() (*state.State, error) {
	if u.current != nil {
		return u.current, nil
	}
	data, err := u.st.StateJSON(u.Running())
	if err != nil {
		return nil, err
	}
	st, err := state.Parse(data)
	if err != nil {
		return nil, err
	}
	u.set(func() { u.current = st })
	return st, nil
}

// write stores d's progress with status s and message msg.
func (u *Updater) write(d *update, s progress.Status, msg string) error {
	p := progress.New(s, msg)
	p.Retries = d.p.Retries
	if s.Final() {
		if u.o.Logs != nil {
			u.o.Logs.StopUpdate()
		}
		p.Logs = u.readLogs(d.rev)
	}
	u.set(func() { d.p = p })
	u.log.Info("update progress", "rev", d.rev, "status", s, "msg", msg)
	if err := u.st.WriteProgress(d.rev, p); err != nil {
		u.log.Error("write progress", "rev", d.rev, "err", err)
		return fmt.Errorf("progress of %s: %w", d.rev, err)
	}
	return nil
}

// readLogs returns up to MaxLogs bytes of trails/<rev>/.pv/logs.
func (u *Updater) readLogs(rev string) string {
	f, err := os.Open(filepath.Join(u.st.TrailDir(rev), ".pv", "logs"))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, MaxLogs))
	return string(b)
}

func (u *Updater) setUpdating(on bool) {
	if u.c != nil {
		u.c.SetUpdating(on)
	}
}

// goalsDeadline is how long INPROGRESS may last for st: the sum of its
// groups' goal timeouts (GoalsTimeout for groups without one).
func (u *Updater) goalsDeadline(st *state.State) time.Time {
	var total time.Duration
	if st != nil {
		for _, g := range st.EffectiveGroups() {
			if g.Timeout > 0 {
				total += g.Timeout
			} else {
				total += u.o.GoalsTimeout
			}
		}
	}
	if total < u.o.GoalsTimeout {
		total = u.o.GoalsTimeout
	}
	return u.clock.Now().Add(total)
}

// HookEnv is the environment of the system hooks now: PV_REV is the
// running revision, PV_TRY the revision being installed or tried (also
// during the install hooks, before pv_try is written). The daemon's hook
// function for bootloader.Options.Hooks calls it (through a variable set
// once New returned, as the boot loader is opened first).
func (u *Updater) HookEnv() hook.Env {
	u.lock()
	defer u.unlock()
	e := hook.Env{Rev: u.running, Try: u.try, TryBoot: u.try != "" && u.try == u.bl.Rev(),
		ObjStorage:    filepath.Join(u.st.Root(), "objects"),
		TrailsStorage: filepath.Join(u.st.Root(), "trails")}
	if d := u.upd; d != nil {
		e.Status = string(d.p.Status)
		e.TryBoot = e.TryBoot || d.tryBoot
		if d.phase != phaseFinal {
			e.Try = d.rev // the revision being installed or tried
		}
	}
	return e
}
