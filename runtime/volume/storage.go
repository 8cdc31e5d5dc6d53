package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Persistence is the lifetime of a platform storage entry.
type Persistence string

// Persistence values of run.json "storage" entries.
const (
	// Permanent storage survives updates: <disks>/perm/<plat>/<name>.
	Permanent Persistence = "permanent"
	// Revision storage lives as long as the revision: <disks>/rev/<rev>/<plat>/<name>.
	Revision Persistence = "revision"
	// Boot storage is a tmpfs, lost on every stop.
	Boot Persistence = "boot"
)

// ParsePersistence maps a run.json value to a Persistence. Like upstream,
// anything unknown means Boot.
func ParsePersistence(s string) Persistence {
	switch Persistence(s) {
	case Permanent, Revision:
		return Persistence(s)
	}
	return Boot
}

// validName accepts names of one or more clean relative path elements.
func validName(kind, name string) error {
	n := strings.TrimSuffix(name, "/")
	if n == "" || strings.HasPrefix(n, "/") || strings.ContainsRune(n, 0) || filepath.Clean(n) != n || n == "." || n == ".." || strings.HasPrefix(n, "../") {
		return fmt.Errorf("%s %q: %w", kind, name, ErrBadName)
	}
	return nil
}

// StorageSource returns the host directory backing a permanent or revision
// storage entry, or "" for Boot.
func StorageSource(disksDir, rev, plat, name string, p Persistence) string {
	name = strings.TrimSuffix(name, "/")
	switch p {
	case Permanent:
		return filepath.Join(disksDir, "perm", plat, name)
	case Revision:
		return filepath.Join(disksDir, "rev", rev, plat, name)
	}
	return ""
}

// Storage mounts the storage entry name of platform plat on target: a bind of
// its (created) disk directory for Permanent and Revision, a tmpfs for Boot.
func (s *Set) Storage(disksDir, rev, plat, name string, p Persistence, target string) error {
	if err := validName("storage", name); err != nil {
		return err
	}
	src := StorageSource(disksDir, rev, plat, name, p)
	if src == "" {
		return s.Tmpfs(target)
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		return fmt.Errorf("create %s storage: %w", p, err)
	}
	return s.Bind(src, target, false)
}
