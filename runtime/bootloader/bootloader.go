// Package bootloader is the contract between Pantavisor and the boot loader:
// the few variables both read and write to pick the revision that boots.
//
//	pv_rev   the last committed revision (the rollback point)
//	pv_try   a revision installed but not yet committed; booted once
//
// Each backend stores them where its boot loader looks: U-Boot's
// NUL-separated uboot.txt (or an MTD env), GRUB's 1 KiB grubenv block, the
// Raspberry Pi tryboot A/B partitions, or a U-Boot env reached through
// fw_setenv with FIT images on two MTD partitions.
//
//	bl, err := bootloader.Open(bootloader.Options{Type: "grub", Storage: "/storage", Cmdline: cmdline})
//	bl.Install("1")    // arm pv_try=1
//	bl.PreCommit("1")  // pv_rev=1, pv_try cleared
package bootloader

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// Variable names shared with the boot scripts.
const (
	VarRev    = "pv_rev"
	VarTry    = "pv_try"
	VarTrying = "pv_trying"
)

// ErrUnknownType is returned by Open for an unsupported PV_BOOTLOADER_TYPE.
var ErrUnknownType = errors.New("unknown bootloader type")

// Env is a boot loader environment store. Unset keys read as "".
type Env interface {
	// Get returns the value of key, "" when unset.
	Get(key string) (string, error)
	// Set stores key=value durably before returning.
	Set(key, value string) error
	// Unset removes key (backends store it as an empty value, which boot
	// scripts treat as unset).
	Unset(key string) error
	// Flush commits pending state; backends with a volatile try latch
	// (MTD env) clear it here.
	Flush() error
}

// Installer is implemented by backends that must place boot assets of a new
// revision themselves (rpiab, uboot-ab). It returns true when the update can
// only take effect through a reboot.
type Installer interface {
	InstallUpdate(rev, trailDir string) (forceReboot bool, err error)
}

// Committer is implemented by backends that must make a committed revision
// permanent outside the env (rpiab swaps autoboot.txt).
type Committer interface {
	CommitUpdate(rev string) error
}

// booter is a backend whose firmware says which revision it booted
// instead of passing pv_rev on the command line (rpiab: tryboot).
type booter interface {
	Booted(done, try string) string
}

// Hooks runs the system hooks around boot loader operations; nil runs none.
type Hooks func(hook string) error

// Options select and configure a backend.
type Options struct {
	Type    string // PV_BOOTLOADER_TYPE: uboot, uboot-pvk, uboot-ab, rpiab, grub
	Storage string // storage mount point; env files live in <Storage>/boot
	Trails  string // trails dir, default <Storage>/trails
	Cmdline string // kernel command line (pv_rev=, pv_try=)

	MTDEnv  string // PV_BOOTLOADER_MTD_ENV
	MTDOnly bool   // PV_BOOTLOADER_MTD_ONLY
	UbootAB UbootABOptions
	RPi     *RPiOptions // nil: real devices

	ProcMTD string // /proc/mtd, for tests
	Hooks   Hooks
	Log     *slog.Logger
}

// Bootloader is the generic layer over a backend: it knows which revision is
// running, which is being tried and which was last committed.
type Bootloader struct {
	env   Env
	typ   string
	hooks Hooks
	log   *slog.Logger

	rev  string // running revision
	try  string // pv_try from the env: an update is in progress
	done string // pv_rev from the env: the rollback point
}

// Open reads the current variables through the backend named by o.Type.
func Open(o Options) (*Bootloader, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Trails == "" {
		o.Trails = o.Storage + "/trails"
	}
	var env Env
	var err error
	switch o.Type {
	case "", "uboot", "uboot-pvk":
		env, err = openUboot(o)
	case "grub":
		env, err = OpenGrub(o.Storage + "/boot/grubenv")
	case "rpiab":
		env, err = openRPiAB(o)
	case "uboot-ab":
		env, err = openUbootAB(o)
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownType, o.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("bootloader %s: %w", o.Type, err)
	}
	b := &Bootloader{env: env, typ: o.Type, hooks: o.Hooks, log: o.Log}
	if b.try, err = env.Get(VarTry); err != nil {
		return nil, err
	}
	if b.done, err = env.Get(VarRev); err != nil {
		return nil, err
	}
	args := cmdlineArgs(o.Cmdline)
	b.rev = args[VarRev]
	if bt, ok := env.(booter); ok && b.rev == "" {
		b.rev = bt.Booted(b.done, b.try)
	}
	if b.rev == "" {
		b.rev = b.done
	}
	if b.rev == "" {
		b.rev = "0"
	}
	if b.done == "" {
		b.done = "0"
	}
	return b, nil
}

// Rev is the running revision.
func (b *Bootloader) Rev() string { return b.rev }

// Try is the revision being tried, "" when no update is in progress.
func (b *Bootloader) Try() string { return b.try }

// Done is the last committed revision.
func (b *Bootloader) Done() string { return b.done }

// UpdateInProgress reports whether a revision was installed and not yet
// committed or failed.
func (b *Bootloader) UpdateInProgress() bool { return b.try != "" }

// TryingUpdate reports whether this boot runs the revision being tried.
func (b *Bootloader) TryingUpdate() bool { return b.try != "" && b.rev == b.try }

// Env exposes the backend.
func (b *Bootloader) Env() Env { return b.env }

// Install arms rev to be tried: backend-specific asset installation between
// the before/after hooks, then pv_try=rev. It returns true when the backend
// requires a reboot to run rev.
func (b *Bootloader) Install(rev, trailDir string) (forceReboot bool, err error) {
	if inst, ok := b.env.(Installer); ok {
		if err := b.hook("system-before-install-update"); err != nil {
			return false, err
		}
		if forceReboot, err = inst.InstallUpdate(rev, trailDir); err != nil {
			return false, fmt.Errorf("install revision %s: %w", rev, err)
		}
		if err := b.hook("system-after-install-update"); err != nil {
			return false, err
		}
	} else if err := b.hook("system-install-update"); err != nil {
		return false, err
	}
	if err := b.env.Set(VarTry, rev); err != nil {
		return false, err
	}
	b.try = rev
	return forceReboot, nil
}

// PreCommit makes rev the rollback point and ends the try.
func (b *Bootloader) PreCommit(rev string) error {
	if err := b.env.Set(VarRev, rev); err != nil {
		return err
	}
	if err := b.env.Unset(VarTry); err != nil {
		return err
	}
	if err := b.env.Flush(); err != nil {
		return err
	}
	b.done, b.try = rev, ""
	return nil
}

// PostCommit finishes a commit: backend commit (rpiab) and the
// system-boot-done hook.
func (b *Bootloader) PostCommit() error {
	if c, ok := b.env.(Committer); ok {
		if err := c.CommitUpdate(b.done); err != nil {
			return fmt.Errorf("commit revision %s: %w", b.done, err)
		}
	}
	return b.hook("system-boot-done")
}

// Fail ends a failed update on the rolled-back boot.
func (b *Bootloader) Fail() error {
	if err := b.env.Unset(VarTry); err != nil {
		return err
	}
	if err := b.env.Flush(); err != nil {
		return err
	}
	b.try = ""
	return nil
}

func (b *Bootloader) hook(name string) error {
	if b.hooks == nil {
		return nil
	}
	if err := b.hooks(name); err != nil {
		return fmt.Errorf("hook %s: %w", name, err)
	}
	return nil
}

// cmdlineArgs returns the key=value words of a kernel command line.
func cmdlineArgs(cmdline string) map[string]string {
	m := map[string]string{}
	for _, w := range strings.Fields(cmdline) {
		if k, v, ok := strings.Cut(w, "="); ok {
			m[k] = v
		}
	}
	return m
}

// validVar rejects names and values the env formats cannot carry.
func validVar(key, value string) error { return bootenv.CheckVar(key, value) }
