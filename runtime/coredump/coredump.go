// Package coredump is pvcrash, the kernel's core dump helper (seeds,
// "Debug coredump using gdb"): PV_SYSCTL_KERNEL_CORE_PATTERN
// "|/lib/pv/pvcrash" makes the kernel pipe every core to it, and it keeps
// the core as /storage/corepv for `ssh … cat /storage/corepv`.
//
// The shipped default, "|/lib/pv/pvcrash --skip", drains the core and
// keeps nothing: a device does not fill its storage with cores unless
// asked to. The core is written beside its final name and renamed, so
// /storage/corepv is always a whole (possibly truncated, see Budget) core
// of the last crash, never a half-written one.
//
//	err := coredump.Run(args, os.Stdin, os.Stderr) // as the pvcrash applet
package coredump

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultPath is where the core of the last crash is kept.
const DefaultPath = "/storage/corepv"

// ReservedPercent of the file system is never used by a core, so a crash
// cannot leave the device without room for its revisions and logs.
const ReservedPercent = 5

// Run is the pvcrash applet: pvcrash [--skip] [-o FILE] [words…]. The
// kernel pipes the core on stdin; trailing words (core_pattern %e %p …)
// are only logged. Messages go to stderr and, when it can be opened, the
// kernel log (/dev/kmsg), since the kernel gives a core helper no
// terminal.
func Run(args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("pvcrash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	skip := fs.Bool("skip", false, "drain the core and keep nothing")
	out := fs.String("o", DefaultPath, "file that keeps the core")
	if err := fs.Parse(args); err != nil {
		return err
	}
	what := strings.Join(fs.Args(), " ")
	if *skip {
		n, err := io.Copy(io.Discard, stdin)
		logf(stderr, "pvcrash: core %s skipped (%d bytes)", what, n)
		return err
	}
	n, truncated, err := Save(*out, stdin, Budget(filepath.Dir(*out)))
	if err != nil {
		logf(stderr, "pvcrash: core %s: %v", what, err)
		return err
	}
	note := ""
	if truncated {
		note = ", truncated to keep storage free"
	}
	logf(stderr, "pvcrash: core %s saved to %s (%d bytes%s)", what, *out, n, note)
	return nil
}

// Budget is how many bytes a core may take in dir: the free space above
// ReservedPercent of the file system (-1 when it cannot be known: no
// limit).
func Budget(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	reserve := int64(st.Blocks) * int64(st.Bsize) * ReservedPercent / 100
	if free <= reserve {
		return 0
	}
	return free - reserve
}

// Save writes at most max bytes of r (max < 0: all) to path through a
// synced temporary file and a rename, drains the rest of r (the kernel
// waits for the helper to read the whole core) and reports the bytes kept
// and whether the core was cut.
func Save(path string, r io.Reader, max int64) (n int64, truncated bool, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, false, err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	src := r
	if max >= 0 {
		src = io.LimitReader(r, max)
	}
	n, err = io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, false, fmt.Errorf("write %s: %w", path, err)
	}
	rest, _ := io.Copy(io.Discard, r)
	if err = os.Rename(tmp, path); err != nil {
		return n, false, err
	}
	return n, rest > 0, nil
}

// logf writes a line to w and to the kernel log.
func logf(w io.Writer, format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	fmt.Fprintln(w, line)
	if k, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		k.WriteString(line + "\n")
		k.Close()
	} else if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrPermission) {
		fmt.Fprintln(w, "pvcrash: kmsg:", err)
	}
}
