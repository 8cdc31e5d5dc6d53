// Command pantavisor is the Pantavisor daemon.
//
//	pantavisor [--config <file>] [--cmdline "<string>"] [pv_appengine|pv_embedded|pv_standalone]
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

	"github.com/pantavisor/pantavisor-go/runtime/pantavisor"
	"github.com/pantavisor/pantavisor-go/runtime/pantavisor/updater"
)

// exitCode carries a non-error exit status out of run.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	var code exitCode
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &code):
		os.Exit(int(code))
	default:
		fmt.Fprintln(os.Stderr, "pantavisor:", err)
		os.Exit(1)
	}
}

const defaultConfig = "/etc/pantavisor.config"

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
	d, err := pantavisor.New(pantavisor.Options{
		ConfigFile:   cfg,
		Cmdline:      strings.TrimSpace(cl),
		Args:         fs.Args(),
		Env:          os.Environ(),
		Log:          log,
		BuildInfo:    buildInfo(),
		Version:      version(),
		SystemReboot: systemReboot,
		Prepare:      prepareFor(log),
		NewPlatforms: pantavisor.NewPlatforms,
		NewUpdater:   updater.New,
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
