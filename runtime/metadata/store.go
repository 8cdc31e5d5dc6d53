// Package metadata stores pantavisor's user and device metadata: one file
// per key in a directory (PV_CACHE_USRMETADIR or PV_CACHE_DEVMETADIR),
// written atomically, listed newest first, rendered in the GET
// /user-meta|/device-meta shape, optionally mirrored as
// <run>/<name>.<plat>/<rest> for keys "<plat>.<rest>" (the per-container
// role mounts of spec §7), and the publishers of the default device
// metadata of spec §12.
//
// Usage sketch:
//
//	usr, err := metadata.Open(cfg.Get(config.CacheUsrMetaDir), log)
//	usr.OnChange(func(ch metadata.Change) { /* config override */ })
//	usr.Mirror(runDir, "user-meta")
//	usr.Set("log.level", []byte("4"))
//	body, _ := json.Marshal(usr) // GET /user-meta
//
//	dev, _ := metadata.Open(cfg.Get(config.CacheDevMetaDir), log)
//	kvs, _ := metadata.Device{Version: v, Revision: rev, Mode: "local"}.Defaults()
//	dev.Publish(kvs)
package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
)

// Limits of keys and values.
const (
	MaxKeyLen   = 255
	MaxValueLen = 4096
)

// tmpPrefix names temporary files; keys may not start with it.
const tmpPrefix = ".pvmeta-tmp-"

// Errors; test with errors.Is.
var (
	ErrBadKey   = errors.New("bad metadata key")
	ErrNotFound = errors.New("metadata key not found")
	ErrTooLarge = errors.New("metadata value too large")
)

// KV is one key and its value.
type KV struct {
	Key   string
	Value []byte
}

// Change is passed to OnChange callbacks after a key was written with a
// new value or deleted.
type Change struct {
	Key     string
	Value   []byte // nil when Deleted
	Deleted bool
}

// ValidKey checks a metadata key: not empty, at most 255 bytes, no '/',
// no NUL, not "." and without "..", and not the reserved temp-file prefix.
func ValidKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("%w: empty", ErrBadKey)
	case len(k) > MaxKeyLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadKey, MaxKeyLen)
	case strings.ContainsAny(k, "/\x00"):
		return fmt.Errorf("%w %q: contains '/' or NUL", ErrBadKey, k)
	case k == "." || strings.Contains(k, ".."):
		return fmt.Errorf("%w %q: is '.' or contains '..'", ErrBadKey, k)
	case strings.HasPrefix(k, tmpPrefix):
		return fmt.Errorf("%w %q: reserved prefix", ErrBadKey, k)
	}
	return nil
}

// Store is a metadata directory. It keeps the keys in memory and writes
// through to disk. It is safe for concurrent use.
type Store struct {
	log *slog.Logger
	dir string

	mu      sync.Mutex
	order   []string // newest first
	vals    map[string][]byte
	notify  []func(Change)
	mirrors []mirror
}

// Open loads the store in dir, creating the directory if needed. Existing
// keys are ordered by modification time, newest first. Files that are not
// valid keys, not regular or too large are skipped with a warning;
// leftover temp files are removed.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata: open %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("metadata: open %s: %w", dir, err)
	}
	s := &Store{log: log, dir: dir, vals: map[string][]byte{}}
	type stamped struct {
		key string
		ns  int64
	}
	var keys []stamped
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if err := ValidKey(name); err != nil || !e.Type().IsRegular() {
			log.Warn("metadata: skipping entry", "dir", dir, "name", name)
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if info.Size() > MaxValueLen {
			log.Warn("metadata: skipping oversized value", "dir", dir, "key", name, "size", info.Size())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			log.Warn("metadata: skipping unreadable key", "dir", dir, "key", name, "err", err)
			continue
		}
		s.vals[name] = b
		keys = append(keys, stamped{name, info.ModTime().UnixNano()})
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].ns != keys[j].ns {
			return keys[i].ns > keys[j].ns
		}
		return keys[i].key < keys[j].key
	})
	for _, k := range keys {
		s.order = append(s.order, k.key)
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// OnChange registers fn to be called, outside the store's lock, after
// every Set that changed a value and every Delete. The daemon uses it to
// apply user-meta configuration overrides.
func (s *Store) OnChange(fn func(Change)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify = append(s.notify, fn)
}

// Set stores value under key (atomically: temp file, fsync, rename) and
// makes it the newest key. Setting the value a key already has does
// nothing. Errors: ErrBadKey, ErrTooLarge, or the write failure.
func (s *Store) Set(key string, value []byte) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: key %q: %d bytes, max %d", ErrTooLarge, key, len(value), MaxValueLen)
	}
	s.mu.Lock()
	if old, ok := s.vals[key]; ok && bytes.Equal(old, value) {
		s.mu.Unlock()
		return nil
	}
	if err := writeAtomic(s.dir, key, value); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("metadata: set %q: %w", key, err)
	}
	v := append([]byte{}, value...)
	s.vals[key] = v
	s.removeOrder(key)
	s.order = append([]string{key}, s.order...)
	s.mirrorSet(key, v)
	fns := append([]func(Change){}, s.notify...)
	s.mu.Unlock()
	for _, fn := range fns {
		fn(Change{Key: key, Value: append([]byte{}, v...)})
	}
	return nil
}

// Get returns a copy of the value of key.
func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vals[key]
	if !ok {
		return nil, false
	}
	return append([]byte{}, v...), true
}

// Delete removes key; ErrNotFound if it does not exist.
func (s *Store) Delete(key string) error {
	s.mu.Lock()
	if _, ok := s.vals[key]; !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	if err := os.Remove(filepath.Join(s.dir, key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.mu.Unlock()
		return fmt.Errorf("metadata: delete %q: %w", key, err)
	}
	delete(s.vals, key)
	s.removeOrder(key)
	s.mirrorDelete(key)
	fns := append([]func(Change){}, s.notify...)
	s.mu.Unlock()
	for _, fn := range fns {
		fn(Change{Key: key, Deleted: true})
	}
	return nil
}

// List returns every key and a copy of its value, newest first.
func (s *Store) List() []KV {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]KV, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, KV{Key: k, Value: append([]byte{}, s.vals[k]...)})
	}
	return out
}

// Publish sets every kv (unchanged values are skipped by Set) and returns
// the failures joined.
func (s *Store) Publish(kvs []KV) error {
	var errs []error
	for _, kv := range kvs {
		if err := s.Set(kv.Key, kv.Value); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Replace makes the store hold exactly kvs: keys not in kvs are deleted,
// the others set. It is how the Hub's user-meta list overrides the local
// one in remote mode. Invalid keys are reported and skipped.
func (s *Store) Replace(kvs []KV) error {
	keep := map[string]bool{}
	for _, kv := range kvs {
		keep[kv.Key] = true
	}
	var errs []error
	for _, kv := range s.List() {
		if !keep[kv.Key] {
			if err := s.Delete(kv.Key); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	// Set in reverse so the first kv ends up newest.
	for i := len(kvs) - 1; i >= 0; i-- {
		if err := s.Set(kvs[i].Key, kvs[i].Value); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Store) removeOrder(key string) {
	for i, k := range s.order {
		if k == key {
			s.order = append(s.order[:i], s.order[i+1:]...)
			return
		}
	}
}

// writeAtomic replaces dir/name, with temp files named by tmpPrefix so Open
// and Mirror recognise and remove leftovers.
func writeAtomic(dir, name string, data []byte) error {
	return atomicfile.WriteTemp(filepath.Join(dir, name), tmpPrefix+"*", data, 0o644)
}
