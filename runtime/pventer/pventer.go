// Package pventer runs a command (default /bin/sh) inside a running
// Pantavisor container, in all of its namespaces:
//
//	pventer -c <container> [command [args…]]
//
// The lxcpath is taken from -P, then $PV_LXC_PATH, then the first of
// DefaultPaths that holds <container>/config. The exit status is the
// command's. Run is the whole program: the pventer command and the
// multi-call pantavisor binary (argv[0] "pventer") both call it.
package pventer

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
)

// DefaultPaths are the lxcpaths tried when none is given.
var DefaultPaths = []string{"/run/pantavisor/pv/lxc", "/pv/lxc", "/usr/var/lib/lxc", "/var/lib/lxc"}

// ExitError carries a non-zero exit status: the command's, or 2 for a
// usage error.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ExitCode is the status the process should exit with.
func (e ExitError) ExitCode() int { return e.Code }

// Run parses the pventer command line args (without the program name) and
// runs the command in the container with the given standard files (the
// attached process gets them as its own).
func Run(args []string, getenv func(string) string, stdin, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("pventer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("c", "", "container (platform) name")
	path := fs.String("P", "", "lxcpath (default $PV_LXC_PATH or the first of "+strings.Join(DefaultPaths, ", ")+" with the container)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pventer -c <container> [command [args...]]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ExitError{2}
	}
	if *name == "" {
		fs.Usage()
		return ExitError{2}
	}
	lxcpath := *path
	if lxcpath == "" {
		lxcpath = getenv("PV_LXC_PATH")
	}
	if lxcpath == "" {
		lxcpath = findPath(*name, DefaultPaths)
	}
	if lxcpath == "" {
		return fmt.Errorf("container %q not found in %s (use -P)", *name, strings.Join(DefaultPaths, ", "))
	}
	argv := fs.Args()
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	if t := getenv("TERM"); t != "" {
		env = append(env, "TERM="+t)
	}
	code, err := lxc.Attach(lxcpath, *name, argv, env, stdin, stdout, stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return ExitError{code}
	}
	return nil
}

// findPath returns the first lxcpath of paths holding name/config.
func findPath(name string, paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(p, name, "config")); err == nil {
			return p
		}
	}
	return ""
}
