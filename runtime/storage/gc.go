package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GCKeep names what the garbage collector must keep (spec §12). The
// revision trails/current points at is always kept.
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

// staleAge is how old a temp file or directory must be before GC
// deletes it as the leftover of a crash rather than work in progress.
const staleAge = 10 * time.Minute

// GC deletes every revision not kept by keep (its trail, logs and
// disks/rev), then every object no remaining trail links (link count 1)
// that is not in keep.Objects, and stale temp files of crashed writes.
// It returns the bytes reclaimed: objects deleted plus files of the
// removed revisions that were not hard links of objects.
func (s *Storage) GC(keep GCKeep) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := map[string]bool{}
	for _, r := range []string{keep.Running, keep.Update, keep.Done} {
		if r != "" {
			kept[r] = true
		}
	}
	if keep.KeepFactory {
		kept["0"] = true
	}
	if cur, err := s.Current(); err == nil {
		kept[cur] = true
	}
	revs, err := s.Revisions()
	if err != nil {
		return 0, fmt.Errorf("gc: %w", err)
	}
	var reclaimed int64
	var errs []error
	for _, rev := range revs {
		if kept[rev] {
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
	reclaimed += s.removeStale()
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
// materialisations and removals, and returns the bytes they held.
func (s *Storage) removeStale() int64 {
	var freed int64
	old := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && time.Since(fi.ModTime()) > staleAge
	}
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
				// Trees renamed for removal are dead already; a
				// materialisation may still be running elsewhere.
				if strings.HasPrefix(name, ".remove-") || dir == s.trailsDir() && strings.HasPrefix(name, ".materialize-") && old(p) {
					n, _ := removeTree(p)
					freed += n
				}
			}
		}
	}
	return freed
}
