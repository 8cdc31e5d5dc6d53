// Package hook runs Pantavisor's system hooks (spec §12): the executables
// in <libdir>/pantavisor/pv/hooks/system.d/, in alphabetical order, at
// fixed points of the device's life:
//
//	system-start                       INIT; a failure is fatal
//	system-install-update              before pv_try is armed (plain backends)
//	system-before-install-update       around the backend's asset install
//	system-after-install-update        (uboot-ab, rpiab); a failure fails the install
//	system-boot-done                   after a commit; logged only
//	system-done                        logged only
//
// Every hook gets the environment of pantavisor plus PV_OP (the point),
// PV_REV, PV_TRY, PV_TRYBOOT ("1" on the try boot, else "0"),
// PV_OBJ_STORAGE, PV_TRAILS_STORAGE and PV_STATUS. Each executable has its
// own timeout; a hook that outlives it is killed and counts as failed.
//
//	r := hook.New(hook.Options{Dir: "/lib/pantavisor/pv/hooks/system.d", Log: log})
//	bl, _ := bootloader.Open(bootloader.Options{…, Hooks: r.Hooks(envFunc)})
//	err := r.Run(ctx, hook.SystemStart, env)
package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// Hook points.
const (
	SystemStart               = "system-start"
	SystemInstallUpdate       = "system-install-update"
	SystemBeforeInstallUpdate = "system-before-install-update"
	SystemAfterInstallUpdate  = "system-after-install-update"
	SystemBootDone            = "system-boot-done"
	SystemDone                = "system-done"
)

// DefaultTimeout bounds one hook executable.
const DefaultTimeout = 30 * time.Second

// ErrFailed is wrapped by the error of a hook that exited non-zero, could
// not be started or timed out.
var ErrFailed = errors.New("hook failed")

// Fatal reports whether a failure at point op must fail the caller's
// operation (system-start, the install points); system-boot-done and
// system-done are logged only.
func Fatal(op string) bool {
	switch op {
	case SystemBootDone, SystemDone:
		return false
	}
	return true
}

// Env is the update context handed to the hooks.
type Env struct {
	Rev           string // PV_REV: the running revision
	Try           string // PV_TRY: the revision being tried ("" for none)
	TryBoot       bool   // PV_TRYBOOT: this boot runs Try
	ObjStorage    string // PV_OBJ_STORAGE: <storage>/objects
	TrailsStorage string // PV_TRAILS_STORAGE: <storage>/trails
	Status        string // PV_STATUS: progress status of the update ("" for none)
}

// vars renders e and op as environment entries.
func (e Env) vars(op string) []string {
	tb := "0"
	if e.TryBoot {
		tb = "1"
	}
	return []string{"PV_OP=" + op, "PV_REV=" + e.Rev, "PV_TRY=" + e.Try, "PV_TRYBOOT=" + tb,
		"PV_OBJ_STORAGE=" + e.ObjStorage, "PV_TRAILS_STORAGE=" + e.TrailsStorage, "PV_STATUS=" + e.Status}
}

// Options configure a Runner.
type Options struct {
	// Dir is the hooks directory, normally
	// <PV_SYSTEM_LIBDIR>/pantavisor/pv/hooks/system.d. A missing
	// directory means no hooks.
	Dir string
	// Timeout bounds each executable (0 = DefaultTimeout).
	Timeout time.Duration
	// BaseEnv is the environment the PV_* variables are added to
	// (nil = os.Environ()).
	BaseEnv []string
	Log     *slog.Logger
}

// Runner runs the hooks of one directory.
type Runner struct {
	o   Options
	log *slog.Logger
}

// New returns a Runner for o.
func New(o Options) *Runner {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{o: o, log: log}
}

// List returns the hook executables in the order they run: regular files
// (or links to them) with an execute bit, sorted by name.
func (r *Runner) List() ([]string, error) {
	ents, err := os.ReadDir(r.o.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hooks dir: %w", err)
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(r.o.Dir, e.Name())
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Run runs every hook for point op with env, stopping at the first
// failure, which it returns wrapping ErrFailed with the hook's name, exit
// status and output. Callers decide with Fatal whether it matters.
func (r *Runner) Run(ctx context.Context, op string, env Env) error {
	hooks, err := r.List()
	if err != nil {
		return err
	}
	base := r.o.BaseEnv
	if base == nil {
		base = os.Environ()
	}
	vars := append(append([]string(nil), base...), env.vars(op)...)
	for _, h := range hooks {
		if err := r.runOne(ctx, h, op, vars); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) runOne(ctx context.Context, path, op string, vars []string) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = vars
	cmd.Dir = r.o.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	r.log.Debug("hook", "op", op, "hook", filepath.Base(path), "took", time.Since(start), "err", err)
	if err == nil {
		return nil
	}
	text := bytes.TrimSpace(out.Bytes())
	if len(text) > 512 {
		text = text[len(text)-512:]
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s %s: %w: timed out after %v: %s", op, filepath.Base(path), ErrFailed, r.o.Timeout, text)
	}
	// %v, not %w: an *exec.ExitError in the chain would be taken for the
	// daemon's own exit status (the multi-call main exits with it).
	return fmt.Errorf("%s %s: %w: %v: %s", op, filepath.Base(path), ErrFailed, err, text)
}

// Hooks returns a bootloader.Hooks-compatible function: it runs point op
// with the env that env() returns at that moment, returns the failure of
// a fatal point and only logs that of system-boot-done and system-done.
func (r *Runner) Hooks(env func() Env) func(op string) error {
	return func(op string) error {
		var e Env
		if env != nil {
			e = env()
		}
		err := r.Run(context.Background(), op, e)
		if err != nil && !Fatal(op) {
			r.log.Warn("hook failed", "op", op, "err", err)
			return nil
		}
		return err
	}
}
