package metadata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// mirror is one <runDir>/<name>.<plat>/<rest> tree.
type mirror struct {
	runDir, name string
}

// MirrorPath splits a key "<plat>.<rest>" into its platform and the file
// name in the platform's mirror dir. ok is false for keys without a dot or
// with an empty or dot-only part, which are not mirrored.
func MirrorPath(key string) (plat, rest string, ok bool) {
	plat, rest, ok = strings.Cut(key, ".")
	if !ok || plat == "" || rest == "" || rest == "." || rest == ".." {
		return "", "", false
	}
	return plat, rest, true
}

// MirrorDir returns <runDir>/<name>.<plat>, the directory bind-mounted
// read-only as /pantavisor/<name> into a non-mgmt container (spec §7).
func MirrorDir(runDir, name, plat string) string {
	return filepath.Join(runDir, name+"."+plat)
}

// Mirror mirrors the store into runDir: every key "<plat>.<rest>" is also
// written to <runDir>/<name>.<plat>/<rest> (name is "user-meta" or
// "device-meta"), and kept in step by Set and Delete. Existing keys are
// written now, and files of earlier runs that no longer match a key are
// removed.
func (s *Store) Mirror(runDir, name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("metadata: mirror name %q: must be a single path element", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := mirror{runDir: runDir, name: name}
	s.mirrors = append(s.mirrors, m)
	var errs []error
	// Remove stale files.
	dirs, _ := filepath.Glob(filepath.Join(runDir, name+".*"))
	for _, d := range dirs {
		plat := strings.TrimPrefix(filepath.Base(d), name+".")
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if _, ok := s.vals[plat+"."+e.Name()]; !ok {
				if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for _, k := range s.order {
		if err := m.set(k, s.vals[k]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("metadata: mirror to %s: %w", runDir, err)
	}
	return nil
}

// EnsureMirrorDirs creates <runDir>/<name>.<plat> for every mirror of the
// store, so a container can get its mount even before it has any key.
func (s *Store) EnsureMirrorDirs(plat string) error {
	if plat == "" || strings.ContainsAny(plat, "/\x00") || plat == "." || plat == ".." {
		return fmt.Errorf("%w: platform %q", ErrBadKey, plat)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mirrors {
		if err := os.MkdirAll(MirrorDir(m.runDir, m.name, plat), 0o755); err != nil {
			return fmt.Errorf("metadata: mirror dir: %w", err)
		}
	}
	return nil
}

func (m mirror) set(key string, value []byte) error {
	plat, rest, ok := MirrorPath(key)
	if !ok {
		return nil
	}
	dir := MirrorDir(m.runDir, m.name, plat)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeAtomic(dir, rest, value)
}

func (m mirror) delete(key string) error {
	plat, rest, ok := MirrorPath(key)
	if !ok {
		return nil
	}
	err := os.Remove(filepath.Join(MirrorDir(m.runDir, m.name, plat), rest))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// mirrorSet and mirrorDelete run with s.mu held. Mirror failures are
// logged: the store itself is the source of truth.
func (s *Store) mirrorSet(key string, value []byte) {
	for _, m := range s.mirrors {
		if err := m.set(key, value); err != nil {
			s.log.Warn("metadata: mirror write failed", "key", key, "dir", m.runDir, "err", err)
		}
	}
}

func (s *Store) mirrorDelete(key string) {
	for _, m := range s.mirrors {
		if err := m.delete(key); err != nil {
			s.log.Warn("metadata: mirror delete failed", "key", key, "dir", m.runDir, "err", err)
		}
	}
}
