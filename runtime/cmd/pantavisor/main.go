// Command pantavisor is the Pantavisor daemon.
//
//	pantavisor [--config <file>] [--cmdline "<string>"] [pv_appengine|pv_embedded|pv_standalone]
//
// It is also a multi-call binary (applets.go): run as pventer (a link
// named so, or "pantavisor pventer …") it is that tool, so a device's
// initrd carries one Go program.
//
// Exit status (App Engine contract, spec §10): 0 = reboot requested,
// 3 = poweroff or stopped by SIGTERM/SIGINT, 1 = failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/boottime"
	"github.com/pantavisor/pantavisor-go/runtime/pantavisor"
	"github.com/pantavisor/pantavisor-go/runtime/pantavisor/updater"
)

// exitCode carries a non-error exit status out of run.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the status the process exits with.
func (e exitCode) ExitCode() int { return int(e) }

func main() {
	name, args := applet(os.Args)
	err := applets[name](context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
	var coded interface{ ExitCode() int }
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &coded):
		os.Exit(coded.ExitCode())
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

const defaultConfig = "/etc/pantavisor.config"

// processStart is when the program began (package initialisation): the
// start of the boot timeline when it runs as /init.
var processStart = time.Now()

// daemon is the pantavisor applet: it runs until a reboot or poweroff is
// requested or SIGTERM/SIGINT arrives.
func daemon(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return run(ctx, args, stdin, stdout, stderr)
}

func run(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("pantavisor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", defaultConfig, "configuration file")
	cmdline := fs.String("cmdline", "", "kernel command line to use instead of /proc/cmdline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := *config
	if cfg == defaultConfig {
		if _, err := os.Stat(cfg); err != nil {
			cfg = "" // the default file is optional
		}
	}
	if err := pid1Mounts(); err != nil {
		return err
	}
	// After the mounts: /proc/uptime places processStart on the kernel's clock.
	boot := boottime.StartAt(processStart)
	cl := *cmdline
	if cl == "" {
		if b, err := os.ReadFile("/proc/cmdline"); err == nil {
			cl = strings.TrimSpace(string(b))
		}
	}
	// pv_appengine, pv_embedded, pv_standalone, pv_debug as argument words.
	for _, w := range fs.Args() {
		if !strings.HasPrefix(w, "pv_") {
			return fmt.Errorf("unexpected argument %q", w)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	prepare, settle := prepareFor(log, boot)
	d, err := pantavisor.New(pantavisor.Options{
		ConfigFile:   cfg,
		Cmdline:      strings.TrimSpace(cl),
		Args:         fs.Args(),
		Env:          os.Environ(),
		Log:          log,
		BuildInfo:    buildInfo(),
		Version:      version(),
		SystemReboot: systemReboot,
		SysctlRoot:   sysctlRoot(),
		Prepare:      prepare,
		Settle:       settle,
		NewPlatforms: pantavisor.NewPlatforms,
		NewUpdater:   updater.New,
		Booted:       updater.Booted,
		Daemons:      managedDaemons,
		Boot:         boot,
	})
	if err != nil {
		return err
	}
	exit, err := d.Run(ctx)
	if err != nil {
		return err
	}
	if exit != 0 {
		return exitCode(exit)
	}
	return nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// buildInfo is the /buildinfo manifest: module versions and build settings.
func buildInfo() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "pantavisor (no build info)\n"
	}
	return bi.String()
}
