// Command pv-appengine runs Pantavisor on a host: it prepares the storage
// on first run (skel, initial revision from the pvtx.d packages; on every
// run the PV_DEBUG_SSH_PUBKEY authorized key), then
// boots the pantavisor daemon in a loop, playing the boot loader between
// boots (pv_rev, pv_try and the pv_trying latch in the storage's
// uboot.txt), until the daemon powers off.
//
// Usage:
//
//	pv-appengine [-prefix DIR] [-i] [-m] [-c CMDLINE] [-e ENV=VALUE]... [-d SECS] [-V]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/appengine"
	"github.com/pantavisor/pantavisor-go/runtime/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pv-appengine:", err)
		os.Exit(1)
	}
}

type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }
func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not ENV=VALUE", v)
	}
	*e = append(*e, strings.Fields(v)...)
	return nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("pv-appengine", flag.ContinueOnError)
	fl.SetOutput(stderr)
	exe, _ := os.Executable()
	prefix := fl.String("prefix", filepath.Dir(filepath.Dir(exe)), "installation prefix (holds bin/, etc/, lib/pantavisor/)")
	interactive := fl.Bool("i", false, "interactive: wait for Enter before each reboot")
	manual := fl.Bool("m", false, "manual: prepare the storage and open a shell instead of starting pantavisor")
	cmdline := fl.String("c", "", "extra kernel command line words")
	delay := fl.Int("d", 5, "seconds to wait between boots")
	valgrind := fl.Bool("V", false, "run pantavisor under valgrind (accepted for compatibility; ignored: it is a Go program)")
	var env envList
	fl.Var(&env, "e", "ENV=VALUE for pantavisor (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if *valgrind {
		log.Warn("-V ignored: valgrind does not apply to the Go pantavisor")
	}

	conf := filepath.Join(*prefix, "etc", "pantavisor-appengine.config")
	cfg, err := config.Load(config.Options{ConfigFile: conf, Cmdline: *cmdline, Env: append(os.Environ(), env...)})
	if err != nil {
		return err
	}
	store := cfg.Get(config.StorageMntPoint)
	if store == "" {
		return fmt.Errorf("%s: PV_STORAGE_MNTPOINT is not set", conf)
	}
	lib := filepath.Join(*prefix, "lib", "pantavisor")
	setup := appengine.Setup{Storage: store, Skel: filepath.Join(lib, "skel"), Packages: []string{filepath.Join(lib, "pvtx.d")}}
	if key := lookupEnv(env, "PV_DEBUG_SSH_PUBKEY"); key != "" {
		name := cfg.Get(config.DebugSSHAuthorizedKeys)
		if name == "" {
			name = "pvtest-authorized_keys"
		}
		setup.SSHPubKey = key
		setup.SSHKeysFile = name
		if !filepath.IsAbs(name) {
			setup.SSHKeysFile = filepath.Join(*prefix, "etc", "pantavisor", "ssh", name)
		}
	}
	if rev := lookupEnv(env, "PV_APPENGINE_INITIAL_REV"); rev != "" {
		setup.InitialRev = rev
		setup.Packages = append(setup.Packages, filepath.Join(lib, "pvtx.extra.d"))
	}
	if err := appengine.Prepare(ctx, setup); err != nil {
		return err
	}
	if *manual {
		return shell(stdin, stdout, stderr, env)
	}
	o := appengine.Options{
		Pantavisor: filepath.Join(*prefix, "bin", "pantavisor"),
		Config:     conf,
		Storage:    store,
		Cmdline:    *cmdline,
		Env:        env,
		Delay:      time.Duration(*delay) * time.Second,
		Stdout:     stdout,
		Stderr:     stderr,
		Log:        log,
	}
	if *delay == 0 {
		o.Delay = -1
	}
	if *interactive {
		o.Pause = pausePrompt(stdin, stdout)
	}
	_, err = appengine.Run(ctx, o)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// pausePrompt is the -i pause: it waits for Enter before each reboot. EOF
// (Ctrl-D) stops the loop, and so does ctx (Ctrl-C), even while the read
// is still blocked.
func pausePrompt(stdin io.Reader, stdout io.Writer) func(context.Context, int) error {
	in := bufio.NewReader(stdin)
	return func(ctx context.Context, boot int) error {
		fmt.Fprintf(stdout, "pantavisor asked for a reboot after boot %d; press Enter to boot again, Ctrl-D to stop\n", boot)
		line := make(chan error, 1)
		go func() {
			_, err := in.ReadString('\n')
			line <- err
		}()
		select {
		case err := <-line:
			if err != nil {
				return errors.New("stopped at the reboot prompt")
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lookupEnv returns name from the -e list (last wins), else the process
// environment.
func lookupEnv(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return os.Getenv(name)
}

// shell is the -m manual shell. Ctrl-C belongs to the shell (the terminal
// sends SIGINT to it and to us alike; an interactive shell ignores it), so
// only SIGTERM, a container stop, ends it — not ctx, which SIGINT cancels.
func shell(stdin io.Reader, stdout, stderr io.Writer, env []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	sh := os.Getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	cmd := exec.CommandContext(ctx, sh)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(os.Environ(), env...)
	return cmd.Run()
}
