// Package appengine runs Pantavisor as a program on a host instead of as
// PID 1 of a device: a boot loop that plays the boot loader (reads pv_rev
// and pv_try from the storage's uboot.txt, keeps the pv_trying latch,
// chooses the revision to boot), starts the pantavisor daemon with the
// matching command line and, when the daemon exits asking for a reboot,
// boots it again. Update, commit and rollback thus run end to end on a
// development machine or in CI.
//
//	err := appengine.Run(ctx, appengine.Options{
//		Pantavisor: "/opt/pantavisor/bin/pantavisor",
//		Config:     "/opt/pantavisor/etc/pantavisor-appengine.config",
//		Storage:    "/var/pantavisor/storage",
//	})
package appengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
)

// Exit statuses of the pantavisor daemon (spec §10).
const (
	ExitReboot   = 0 // reboot requested: boot again
	ExitPoweroff = 3 // poweroff, or SIGTERM/SIGINT received: stop
)

// ErrBroken is returned when the daemon exits with a status that is
// neither a reboot, a poweroff nor a crash: booting again would loop.
var ErrBroken = errors.New("pantavisor exited with an unexpected status")

// Options configure the boot loop.
type Options struct {
	Pantavisor string        // daemon binary
	Config     string        // --config file
	Storage    string        // PV_STORAGE_MNTPOINT: holds boot/uboot.txt
	Cmdline    string        // extra kernel-command-line words
	Env        []string      // extra environment for the daemon
	Delay      time.Duration // pause between boots (default 5 s; <0 = none)
	MaxBoots   int           // stop after this many boots (0 = no limit)
	// StopTimeout bounds how long a cancelled boot may take to exit after
	// SIGTERM before it is killed (default 30 s).
	StopTimeout time.Duration

	// Pause, when set, is called before each reboot (-i interactive
	// mode); returning an error stops the loop.
	Pause func(ctx context.Context, boot int) error

	Stdout, Stderr io.Writer
	Log            *slog.Logger
}

// Boot is one boot decision and its outcome.
type Boot struct {
	Choice bootloader.Choice
	Try    string // pv_try at boot time
	Status int    // exit status, -1 when killed by a signal
}

// latchPath is where the volatile pv_trying latch lives: beside the env,
// as U-Boot keeps it in pv.env on the boot partition, so a killed boot
// loop (a power cut) still rolls back a try that never committed.
func latchPath(storage string) string { return filepath.Join(storage, "boot", "pv.env") }

// Choose reads the env and the latch, applies the boot script contract and
// persists the new latch before anything boots.
func Choose(storage string) (bootloader.Choice, string, error) {
	env := bootloader.OpenUbootFile(filepath.Join(storage, "boot", "uboot.txt"))
	rev, err := env.Get(bootloader.VarRev)
	if err != nil {
		return bootloader.Choice{}, "", err
	}
	try, err := env.Get(bootloader.VarTry)
	if err != nil {
		return bootloader.Choice{}, "", err
	}
	latch := bootloader.OpenUbootFile(latchPath(storage))
	trying, err := latch.Get(bootloader.VarTrying)
	if err != nil {
		return bootloader.Choice{}, "", err
	}
	c := bootloader.Choose(rev, try, trying)
	if c.Trying != trying {
		if err := latch.Set(bootloader.VarTrying, c.Trying); err != nil {
			return bootloader.Choice{}, "", fmt.Errorf("save pv_trying: %w", err)
		}
	}
	return c, try, nil
}

// Run boots the daemon until it powers off, breaks, or ctx ends. The
// returned boots record every decision, for callers and tests.
func Run(ctx context.Context, o Options) ([]Boot, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Delay == 0 {
		o.Delay = 5 * time.Second
	}
	var boots []Boot
	for n := 1; ; n++ {
		c, try, err := Choose(o.Storage)
		if err != nil {
			return boots, err
		}
		o.Log.Info("booting", "boot", n, "rev", c.Boot, "pv_try", try)
		status, err := o.start(ctx, c.Boot, try)
		boots = append(boots, Boot{Choice: c, Try: try, Status: status})
		if err != nil {
			return boots, err
		}
		switch {
		case status == ExitPoweroff:
			o.Log.Info("powered off", "boot", n)
			return boots, nil
		case status == ExitReboot, status < 0, status >= 128:
			o.Log.Info("rebooting", "boot", n, "status", status)
		default:
			return boots, fmt.Errorf("%w %d", ErrBroken, status)
		}
		if ctx.Err() != nil || (o.MaxBoots > 0 && n >= o.MaxBoots) {
			return boots, ctx.Err()
		}
		if o.Pause != nil {
			if err := o.Pause(ctx, n); err != nil {
				return boots, err
			}
		}
		if o.Delay > 0 {
			select {
			case <-ctx.Done():
				return boots, ctx.Err()
			case <-time.After(o.Delay):
			}
		}
	}
}

// start runs one boot of the daemon. Cancelling ctx sends SIGTERM (a
// lenient stop, which the daemon answers with ExitPoweroff), then SIGKILL
// after StopTimeout.
func (o *Options) start(ctx context.Context, rev, try string) (int, error) {
	cmdline := strings.TrimSpace(fmt.Sprintf("pv_rev=%s pv_try=%s %s", rev, try, o.Cmdline))
	args := []string{"--cmdline", cmdline}
	if o.Config != "" {
		args = append([]string{"--config", o.Config}, args...)
	}
	cmd := exec.Command(o.Pantavisor, args...)
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", o.Pantavisor, err)
	}
	done := make(chan struct{})
	stopTimeout := o.StopTimeout
	if stopTimeout <= 0 {
		stopTimeout = 30 * time.Second
	}
	go func() {
		select {
		case <-ctx.Done():
			cmd.Process.Signal(syscall.SIGTERM)
		case <-done:
			return
		}
		// A daemon that ignores SIGTERM must not hang the boot loop.
		t := time.NewTimer(stopTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			o.Log.Warn("pantavisor ignored SIGTERM; killing it", "after", stopTimeout)
			cmd.Process.Kill()
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, nil
		}
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}
