package kmod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrUsage is returned for a modprobe command line that cannot be run.
var ErrUsage = errors.New("usage: modprobe [-qbvnD] [-d root] [-S release] [-a] <module|alias> [param=value ...] | -r <module>...")

// Modprobe is the modprobe(8) applet of the multi-call binary; the kernel's
// request_module runs it as `/sbin/modprobe -q -- <module-or-alias>`. args
// are the arguments after the program name. Supported options:
//
//	-q, --quiet          no message for a module that is not found
//	-b, --use-blacklist  skip modules blacklisted with modprobe.blacklist=
//	-a, --all            every argument is a module (no parameters)
//	-r, --remove         unload the modules (not their dependencies)
//	-n, --dry-run        resolve but do not load
//	-D, --show-depends   print "insmod <file> [params]" lines, load nothing
//	-v, --verbose        print what is loaded
//	-d, --dirname DIR    module root instead of / (DIR/lib/modules/<release>)
//	-S, --set-version R  kernel release instead of uname -r
//	-s, --syslog, --first-time, -i, --ignore-install  accepted, no effect
//	--                   end of options
//
// Parameters come from the command line and from the kernel command line
// ("<module>.<param>=<value>"). modprobe.d configuration and install/remove
// commands are not supported. A module or alias that does not exist is an
// error ("<name>: module not found in /lib/modules/<release>", exit status
// 1); with -q its error has ExitCode 1 so the multi-call main exits
// without printing it.
func Modprobe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	return modprobe(args, stdout, stderr, modprobeEnv{sys: "/sys", cmdline: string(cmdline), release: kernelRelease, load: finit, kmsg: "/dev/kmsg"})
}

// PendingFile, in a modules directory, says that a modules image is
// about to be mounted on it (Pantavisor mounts the BSP's once its
// checksum passed, beside the container start): modprobe waits until the
// mount hides the file or it is removed, so a request_module made
// meanwhile (overlay for a container, …) is served from the image
// rather than failing against the initrd's few modules.
const PendingFile = ".pv-modules-pending"

// pendingWait bounds that wait: a mount that never comes must not hang
// the kernel's request forever.
const pendingWait = 2 * time.Minute

// waitPending returns once dir holds no PendingFile, or after max.
func waitPending(dir string, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		if _, err := os.Lstat(filepath.Join(dir, PendingFile)); err != nil || !time.Now().Before(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// modprobeEnv is the system modprobe runs against, swapped in tests.
type modprobeEnv struct {
	sys, cmdline string
	release      func() (string, error)
	load         func(path, params string) error
	// kmsg gets one line per request that loaded modules ("" = none): the
	// kernel runs modprobe with no output, and the kernel log is where a
	// device's driver loading is read.
	kmsg string
}

type modprobeFlags struct {
	quiet, blacklist, all, rm, dry, show, verbose bool
	root, release                                 string
}

func parseModprobe(args []string) (modprobeFlags, []string, error) {
	f := modprobeFlags{root: "/"}
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			args = args[1:]
			break
		}
		if a == "" || a[0] != '-' || a == "-" {
			break
		}
		args = args[1:]
		value := func(name string) (string, error) {
			if len(args) == 0 {
				return "", fmt.Errorf("%w: %s needs a value", ErrUsage, name)
			}
			v := args[0]
			args = args[1:]
			return v, nil
		}
		if strings.HasPrefix(a, "--") {
			name, v, hasV := strings.Cut(a, "=")
			var err error
			switch name {
			case "--quiet":
				f.quiet = true
			case "--use-blacklist":
				f.blacklist = true
			case "--all":
				f.all = true
			case "--remove":
				f.rm = true
			case "--dry-run", "--show":
				f.dry = true
			case "--show-depends":
				f.show = true
			case "--verbose":
				f.verbose = true
			case "--syslog", "--first-time", "--ignore-install", "--ignore-remove":
			case "--dirname", "--set-version":
				if !hasV {
					v, err = value(name)
				}
				if name == "--dirname" {
					f.root = v
				} else {
					f.release = v
				}
			default:
				return f, nil, fmt.Errorf("%w: unknown option %s", ErrUsage, a)
			}
			if err != nil {
				return f, nil, err
			}
			continue
		}
		for i := 1; i < len(a); i++ {
			switch a[i] {
			case 'q':
				f.quiet = true
			case 'b':
				f.blacklist = true
			case 'a':
				f.all = true
			case 'r':
				f.rm = true
			case 'n':
				f.dry = true
			case 'D':
				f.show = true
			case 'v':
				f.verbose = true
			case 's', 'i':
			case 'd', 'S':
				v := a[i+1:]
				if v == "" {
					var err error
					if v, err = value("-" + string(a[i])); err != nil {
						return f, nil, err
					}
				}
				if a[i] == 'd' {
					f.root = v
				} else {
					f.release = v
				}
				i = len(a)
			default:
				return f, nil, fmt.Errorf("%w: unknown option -%c", ErrUsage, a[i])
			}
		}
	}
	if len(args) == 0 {
		return f, nil, ErrUsage
	}
	return f, args, nil
}

func modprobe(args []string, stdout, stderr io.Writer, env modprobeEnv) error {
	f, rest, err := parseModprobe(args)
	if err != nil {
		return err
	}
	if f.release == "" {
		if f.release, err = env.release(); err != nil {
			return fmt.Errorf("modprobe: %w", err)
		}
	}
	dir := filepath.Join(f.root, "lib", "modules", f.release)
	waitPending(dir, pendingWait)
	idx, err := Open(dir)
	if err != nil {
		return fmt.Errorf("modprobe: %w", err)
	}
	level := slog.LevelError + 1 // the exit status and the returned error speak
	if f.verbose {
		level = slog.LevelInfo
	}
	l := NewLoader(idx, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
	l.Sys = env.sys
	l.UseCmdline(env.cmdline)
	l.load = env.load
	if f.dry || f.show {
		l.load = func(path, params string) error {
			if f.show {
				fmt.Fprintln(stdout, strings.TrimSpace("insmod "+path+" "+params))
			}
			return nil
		}
		l.Sys = "" // show everything, loaded or not
	}
	if f.rm {
		return l.Remove(rest)
	}
	var names []string
	params := ""
	if f.all {
		names = rest
	} else {
		names, params = rest[:1], strings.Join(rest[1:], " ")
	}
	var first error
	for _, n := range names {
		loaded, err := l.Probe(n, params, f.blacklist)
		if len(loaded) > 0 && env.kmsg != "" && !f.dry && !f.show {
			note(env.kmsg, fmt.Sprintf("<6>modprobe: %s: loaded %s\n", n, strings.Join(loaded, " ")))
		}
		if f.verbose {
			for _, m := range loaded {
				fmt.Fprintln(stdout, "loaded", m)
			}
		}
		if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w in %s", err, idx.Dir)
			if f.quiet {
				err = quietError{err}
			}
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// quietError is an error modprobe -q already reported by its exit status
// alone: ExitCode tells the multi-call main to exit 1 without a message.
type quietError struct{ err error }

func (e quietError) Error() string { return e.err.Error() }
func (e quietError) Unwrap() error { return e.err }

// ExitCode is modprobe's exit status for the error.
func (e quietError) ExitCode() int { return 1 }

// note appends line to the file at path (the kernel log), ignoring errors.
func note(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	f.WriteString(line)
	f.Close()
}
