package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Keeper says what must be kept now. GC and ReplaceState ask it while
// they hold the storage lock, so an install that starts meanwhile (and
// needs that lock to materialise) is either seen or not yet begun.
type Keeper interface {
	Keep() GCKeep
}

// GCKeep names what the garbage collector must keep (spec §12). The
// revision trails/current points at is always kept. A GCKeep is its own
// Keeper.
type GCKeep struct {
	// Running is the revision being run (bootloader pv_rev).
	Running string
	// Update is the revision of the update in flight, if any.
	Update string
	// Done is the last committed revision (bootloader pv_done).
	Done string
	// KeepFactory keeps revision "0" (PV_STORAGE_GC_KEEP_FACTORY=1).
	KeepFactory bool
	// Objects are the shas of the update in flight: kept even when no
	// trail links them yet.
	Objects []string
}

// Keep implements Keeper.
func (k GCKeep) Keep() GCKeep { return k }

// InUse reports whether rev is one of the revisions k names: running,
// update in flight (or tried) and committed. The factory revision "0" is
// in use only with KeepFactory.
func (k GCKeep) InUse(rev string) bool {
	return rev != "" && (rev == k.Running || rev == k.Update || rev == k.Done || k.KeepFactory && rev == "0")
}

// staleAge is how old a temp file or directory must be before GC
// deletes it as the leftover of a crash rather than work in progress.
const staleAge = 10 * time.Minute

// GC deletes every revision not kept by keeper (its trail, logs and
// disks/rev), then every object no remaining trail links (link count 1)
// that is not in the kept Objects, and stale temp files of crashed
// writes. It returns the bytes reclaimed: objects deleted plus files of
// the removed revisions that were not hard links of objects. keeper is
// asked once, under the storage lock.
func (s *Storage) GC(keeper Keeper) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := keeper.Keep()
	cur, curErr := s.Current()
	revs, err := s.Revisions()
	if err != nil {
		return 0, fmt.Errorf("gc: %w", err)
	}
	var reclaimed int64
	var errs []error
	for _, rev := range revs {
		if keep.InUse(rev) || curErr == nil && rev == cur {
			continue
		}
		n, err := s.removeRevision(rev)
		reclaimed += n
		if err != nil {
			errs = append(errs, fmt.Errorf("remove revision %s: %w", rev, err))
			continue
		}
		s.Log.Info("gc removed revision", "rev", rev, "bytes", n)
	}
	reclaimed += s.removeStale(olderThan(staleAge))
	n, err := s.gcObjects(keep.Objects)
	reclaimed += n
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return reclaimed, fmt.Errorf("gc: %w", err)
	}
	return reclaimed, nil
}

// gcObjects removes the objects with link count 1 that are not in keep.
func (s *Storage) gcObjects(keep []string) (int64, error) {
	inUpdate := make(map[string]bool, len(keep))
	for _, sha := range keep {
		inUpdate[sha] = true
	}
	ents, err := os.ReadDir(s.objectsDir())
	if err != nil {
		return 0, fmt.Errorf("list objects: %w", err)
	}
	var shas []string
	for _, e := range ents {
		if sha := e.Name(); ValidSha(sha) && !inUpdate[sha] {
			shas = append(shas, sha)
		}
	}
	return forEach(shas, s.RemoveUnreferenced)
}

// removeStale deletes temp files and directories left by crashed puts,
// uploads, materialisations and removals that old reports as stale, and
// returns the bytes they held. Trees renamed for removal are dead
// whatever their age.
func (s *Storage) removeStale(old func(path string) bool) int64 {
	var freed int64
	if ents, err := os.ReadDir(s.objectsDir()); err == nil {
		for _, e := range ents {
			p := filepath.Join(s.objectsDir(), e.Name())
			if isTempObject(e.Name()) && old(p) {
				if fi, err := os.Lstat(p); err == nil && os.Remove(p) == nil {
					freed += fi.Size()
				}
			}
		}
	}
	disks := filepath.Join(s.root, "disks", "rev")
	for _, dir := range []string{s.trailsDir(), s.LogDir, disks} {
		for _, d := range []string{dir, filepath.Join(dir, "locals")} {
			ents, err := os.ReadDir(d)
			if err != nil {
				continue
			}
			for _, e := range ents {
				name := e.Name()
				p := filepath.Join(d, name)
				inTrails := dir == s.trailsDir()
				if strings.HasPrefix(name, ".remove-") ||
					inTrails && (strings.HasPrefix(name, ".materialize-") || strings.HasPrefix(name, uploadPrefix)) && old(p) {
					n, _ := removeTree(p)
					freed += n
				}
			}
		}
	}
	return freed
}

// olderThan reports paths last modified more than age ago.
func olderThan(age time.Duration) func(string) bool {
	return func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && time.Since(fi.ModTime()) > age
	}
}

// RemoveTemporaries deletes every temp file and directory of a write
// that was cut short: object puts (objects/<sha>.tmp*), state uploads,
// materialisations, removals and the atomic writes of .pvr/ and .pv/
// files. It returns the bytes freed. Only the daemon may call it, when it
// opens the storage at boot and before it accepts any upload: a write in
// flight would lose its temp file. GC deletes them only after staleAge,
// as it runs beside uploads.
func (s *Storage) RemoveTemporaries() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	freed := s.removeStale(func(string) bool { return true })
	revs, err := s.Revisions()
	if err != nil {
		return freed, fmt.Errorf("remove temporaries: %w", err)
	}
	for _, rev := range revs {
		for _, sub := range []string{".pvr", ".pv"} {
			dir := filepath.Join(s.TrailDir(rev), sub)
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if name := e.Name(); strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp") {
					p := filepath.Join(dir, name)
					if fi, err := os.Lstat(p); err == nil && os.Remove(p) == nil {
						freed += fi.Size()
					}
				}
			}
		}
	}
	return freed, nil
}
