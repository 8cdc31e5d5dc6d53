// Package volume mounts and unmounts the volumes of Pantavisor platforms:
// squashfs (and other) loop images, "dm:" (dm-verity) images, ".bind" files,
// ".data" directories, the
// writable storage entries of run.json ("permanent", "revision", "boot") and
// the _config overlay copied into the configs directory.
//
// Every mount is recorded in a [Set] so that it can be undone in reverse
// order; [Set.Unmount] falls back to a lazy detach for busy mounts and
// reports what could not be cleaned. Loop devices are configured with
// autoclear so none outlives its mount.
//
// Usage:
//
//	set, err := volume.MountPlatform(log, layout, volume.Platform{Name: "app", …})
//	…
//	err = set.Unmount()
//
// Everything here needs root (CAP_SYS_ADMIN).
package volume

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

var (
	// ErrNotSquashfs is returned for a ".squashfs" volume whose content does
	// not start with the squashfs magic.
	ErrNotSquashfs = errors.New("not a squashfs image")
	// ErrUnsupported is returned for volume kinds this implementation does
	// not handle (handlers other than "dm", storage on a swap disk).
	ErrUnsupported = errors.New("unsupported volume")
	// ErrNotMounted is returned for storage on a disk that is not up.
	ErrNotMounted = errors.New("disk not mounted")
	// ErrBadName is returned for platform, volume or storage names that are
	// empty or would escape their directory.
	ErrBadName = errors.New("bad name")
	// ErrLeak is returned by Unmount when something stayed mounted or could
	// only be lazily detached.
	ErrLeak = errors.New("leaked mount")
)

type entryKind int

const (
	kindMount entryKind = iota
	kindDir             // a directory we created and own entirely
	kindDM              // a device-mapper device (path is its name)
)

type entry struct {
	kind entryKind
	path string
	what string // for logs: "squashfs /dev/loop3", "bind", "tmpfs", …
}

// Set records the mounts made for one platform, in order. It is not safe for
// concurrent use; its owner is the platform's lifecycle goroutine.
type Set struct {
	log     *slog.Logger
	entries []entry
}

// NewSet returns an empty Set logging to log (nil means slog.Default()).
func NewSet(log *slog.Logger) *Set {
	if log == nil {
		log = slog.Default()
	}
	return &Set{log: log}
}

// Mounts returns the mount points of s, in mount order.
func (s *Set) Mounts() []string {
	var out []string
	for _, e := range s.entries {
		if e.kind == kindMount {
			out = append(out, e.path)
		}
	}
	return out
}

func (s *Set) add(kind entryKind, path, what string) {
	s.entries = append(s.entries, entry{kind: kind, path: path, what: what})
	s.log.Debug("volume mounted", "target", path, "what", what)
}

// Unmount undoes everything in s in reverse order. A busy mount is lazily
// detached (MNT_DETACH); the returned error then wraps ErrLeak and names it.
// s is empty afterwards, whatever the outcome.
func (s *Set) Unmount() error {
	var leaks []string
	var errs []error
	for i := len(s.entries) - 1; i >= 0; i-- {
		e := s.entries[i]
		switch e.kind {
		case kindMount:
			err := unix.Unmount(e.path, 0)
			if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				// EINVAL: not a mount point any more (someone else undid it).
				continue
			}
			if derr := unix.Unmount(e.path, unix.MNT_DETACH); derr != nil && !errors.Is(derr, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", e.path, derr))
				leaks = append(leaks, e.path)
				continue
			}
			s.log.Warn("volume busy, lazily detached", "target", e.path, "err", err)
			leaks = append(leaks, e.path+" (lazy)")
		case kindDir:
			if err := os.RemoveAll(e.path); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", e.path, err))
			}
		case kindDM:
			// After its mount: a lazily detached one keeps it busy.
			if err := removeDM(e.path); err != nil {
				errs = append(errs, err)
				leaks = append(leaks, "device-mapper "+e.path)
			}
		}
	}
	s.entries = nil
	if len(leaks) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrLeak, strings.Join(leaks, ", ")))
	}
	return errors.Join(errs...)
}

// mountErr formats a mount failure the way mount(8) users expect.
func mountErr(src, target string, err error) error {
	return &os.PathError{Op: "mount " + src + " on", Path: target, Err: err}
}
