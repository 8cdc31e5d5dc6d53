// Package updater plugs runtime/update into the daemon: New is an
// Options.NewUpdater that opens the boot loader (PV_BOOTLOADER_TYPE) and
// drives the daemon's *pantavisor.Containers through update's container
// interface.
//
//	d, err := pantavisor.New(pantavisor.Options{…,
//		NewPlatforms: pantavisor.NewPlatforms, NewUpdater: updater.New})
//
// It is a package of its own because runtime/bootloader depends on
// go-diskfs, which the daemon binary must not link (TestDeps in
// runtime/cmd/pantavisor) until that dependency is split off.
package updater

import (
	"context"
	"log/slog"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/hook"
	"github.com/pantavisor/pantavisor-go/runtime/pantavisor"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
	"github.com/pantavisor/pantavisor-go/runtime/update"
)

// openBootloader opens the boot loader PV_BOOTLOADER_TYPE names.
func openBootloader(env pantavisor.Env, hooks bootloader.Hooks) (*bootloader.Bootloader, error) {
	o := bootloaderOptions(env.Config, env.Storage.Root(), env.Cmdline, env.Log)
	o.Hooks = hooks
	return bootloader.Open(o)
}

// bootloaderOptions maps the PV_BOOTLOADER_* keys to the backend's options.
func bootloaderOptions(c *config.Config, storage, cmdline string, log *slog.Logger) bootloader.Options {
	return bootloader.Options{
		Type:    c.Get(config.BootloaderType),
		Storage: storage,
		Cmdline: cmdline,
		MTDEnv:  c.Get(config.BootloaderMTDEnv),
		MTDOnly: c.Bool(config.BootloaderMTDOnly),
		UbootAB: bootloader.UbootABOptions{
			AName:      c.Get(config.BootloaderUBootABAName),
			BName:      c.Get(config.BootloaderUBootABBName),
			EnvName:    c.Get(config.BootloaderUBootABEnvName),
			EnvBakName: c.Get(config.BootloaderUBootABEnvBakName),
			EnvOffset:  int64(c.Int(config.BootloaderUBootABEnvOffset)),
			EnvSize:    int64(c.Int(config.BootloaderUBootABEnvSize)),
		},
		Log: log,
	}
}

// Booted is an Options.Booted: the revision the boot loader booted and
// the one it tries, for boot loaders that do not put pv_rev on the
// kernel command line (rpiab).
func Booted(env pantavisor.Env) (rev, try string, err error) {
	bl, err := openBootloader(env, nil)
	if err != nil {
		return "", "", err
	}
	return bl.Rev(), bl.Try(), nil
}

// New builds the Updater of a daemon from INIT's Env.
func New(env pantavisor.Env) (pantavisor.Updater, error) {
	c := env.Config
	// The boot loader runs the install and boot-done hooks with the
	// updater's view of the update, which exists only once New returns.
	var u *update.Updater
	var hooks bootloader.Hooks
	if env.Hooks != nil {
		hooks = env.Hooks.Hooks(func() hook.Env {
			if u == nil {
				return hook.Env{}
			}
			return u.HookEnv()
		})
	}
	bl, err := openBootloader(env, hooks)
	if err != nil {
		return nil, err
	}
	o := update.Options{
		Storage:         env.Storage,
		Bootloader:      bl,
		CommitDelay:     c.Duration(config.UpdaterCommitDelay),
		GoalsTimeout:    c.Duration(config.UpdaterGoalsTimeout),
		RevisionRetries: c.Int(config.RevisionRetries),
		Verify:          env.Verify,
		GC: update.GCPolicy{KeepFactory: c.Bool(config.StorageGCKeepFactory),
			Threshold: c.Int(config.StorageGCThreshold),
			DeferTime: c.Duration(config.StorageGCThresholdDeferTime)},
		Log: env.Log,
	}
	if env.Clock != nil {
		o.Clock = env.Clock
	}
	if env.Platforms != nil {
		o.Containers = containers{env.Platforms}
	}
	if env.Logs != nil {
		o.Logs = env.Logs
	}
	u, err = update.New(o)
	if err != nil {
		return nil, err
	}
	return Updater{u}, nil
}

// Updater adapts *update.Updater to pantavisor.Updater (the Next values
// are equal).
type Updater struct{ u *update.Updater }

// Resume continues the update found at boot.
func (a Updater) Resume(rev, try string) error { return a.u.Resume(rev, try) }

// Updating reports whether an update is in flight.
func (a Updater) Updating() bool { return a.u.Updating() }

// Keep is what GC keeps and PUT /steps may not replace.
func (a Updater) Keep() storage.GCKeep { return a.u.Keep() }

// GC runs the garbage collector with Keep's rule.
func (a Updater) GC() (int64, error) { return a.u.GC() }

// ObjectsUploaded defers the threshold GC after an object upload.
func (a Updater) ObjectsUploaded() { a.u.ObjectsUploaded() }

// Hold keeps the objects of a remote download from the GC.
func (a Updater) Hold(shas []string) { a.u.Hold(shas) }

// Step is one WAIT tick of the update.
func (a Updater) Step(ctx context.Context) (command.Next, error) { return a.u.Step(ctx) }

// Run handles the update commands.
func (a Updater) Run(ctx context.Context, c command.Command) (command.Next, error) {
	return a.u.Run(ctx, c)
}

// ContainerFailed records a container failure of the update under test.
func (a Updater) ContainerFailed(err error) command.Next { return a.u.ContainerFailed(err) }

// WaitHub holds a remote update in INPROGRESS until the Hub answers.
func (a Updater) WaitHub(wait bool) { a.u.WaitHub(wait) }

// HubFailed fails the remote update under test with a Hub message.
func (a Updater) HubFailed(msg string, err error) command.Next { return a.u.HubFailed(msg, err) }

// Running is the running revision (it changes on a non-reboot transition).
func (a Updater) Running() string { return a.u.Running() }

// containers is update.Containers over the daemon's platform manager.
type containers struct{ m pantavisor.PlatformManager }

// Stop stops the named platforms of the running revision.
func (c containers) Stop(ctx context.Context, names []string) error {
	return c.m.StopPlatforms(ctx, names)
}

// Transition loads rev, keeping the running platforms not in names.
func (c containers) Transition(ctx context.Context, rev string, st *state.State, names []string) error {
	return c.m.Transition(ctx, rev, st, names)
}

func (c containers) Goals() (bool, []string) { return c.m.GoalsReached() }
func (c containers) Failed() error           { return c.m.Failures() }
func (c containers) Stable() bool            { return c.m.Stable() }
func (c containers) SetUpdating(on bool)     { c.m.SetUpdating(on) }
