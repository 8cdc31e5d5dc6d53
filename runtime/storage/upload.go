package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

// ErrInUse: a revision that is running, committed, being tried or
// installed, or the factory one, cannot be replaced (revisions are
// immutable once installed).
var ErrInUse = errors.New("revision in use")

// uploadPrefix names the spool files of state uploads in trails/.
const uploadPrefix = ".upload-"

// StateUpload is a state JSON being received (PUT /steps): it is spooled
// to a temp file in trails/ whose space is reserved in the ledger as it
// grows, so an upload holds no body in memory however many run at once.
// Close it when done; ReplaceState consumes it.
type StateUpload struct {
	s   *Storage
	f   *os.File
	res *reservation
	n   int64
}

// NewStateUpload starts an upload of size bytes (< 0: unknown), failing
// with ErrNoSpace at once when that much is not free.
func (s *Storage) NewStateUpload(size int64) (*StateUpload, error) {
	res, err := s.reserve(size)
	if err != nil {
		return nil, fmt.Errorf("state upload: %w", err)
	}
	f, err := os.CreateTemp(s.trailsDir(), uploadPrefix)
	if err != nil {
		res.release()
		return nil, fmt.Errorf("state upload: %w", noSpace(err))
	}
	return &StateUpload{s: s, f: f, res: res}, nil
}

// ReadFrom appends the content of r to the upload and returns the
// bytes read.
func (u *StateUpload) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, streamBufSize) // not a 1 MiB pool buffer per upload
	var total int64
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			if err := u.s.admit(u.res, u.n, m); err != nil {
				return total, fmt.Errorf("state upload: %w", err)
			}
			if _, err := u.f.Write(buf[:m]); err != nil {
				return total, fmt.Errorf("state upload: %w", noSpace(err))
			}
			u.res.wrote(int64(m))
			u.n += int64(m)
			total += int64(m)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, fmt.Errorf("state upload: read: %w", rerr)
		}
	}
}

// Size returns the bytes received so far.
func (u *StateUpload) Size() int64 { return u.n }

// Bytes reads the whole upload back; callers bound its size first.
func (u *StateUpload) Bytes() ([]byte, error) {
	b := make([]byte, u.n)
	if _, err := u.f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("state upload: %w", err)
	}
	return b, nil
}

// Close deletes the spool file unless ReplaceState took it, and releases
// the reservation.
func (u *StateUpload) Close() error {
	u.res.release()
	if u.f == nil {
		return nil
	}
	name := u.f.Name()
	u.f.Close()
	u.f = nil
	return os.Remove(name)
}

// ReplaceState makes the upload trails/<rev>/.pvr/json and writes rev's
// progress p, unless rev may not change: keeper names it (running,
// committed, tried or in update), it is the factory revision "0" or
// trails/current, or it was installed (its .pv/done exists). Those fail
// with ErrInUse and keep everything. keeper is asked under the storage
// lock, in the same critical section as the replacement, so an install
// of rev cannot start between the check and the write and run files the
// new JSON does not describe.
func (s *Storage) ReplaceState(rev string, u *StateUpload, p progress.Progress, keeper Keeper) error {
	dst, err := s.revPath(rev, stateFile)
	if err != nil {
		return fmt.Errorf("replace state: %w", err)
	}
	pb, err := p.MarshalJSON()
	if err != nil {
		return fmt.Errorf("replace state of %s: %w", rev, err)
	}
	if err := u.f.Sync(); err != nil {
		return fmt.Errorf("replace state of %s: %w", rev, noSpace(err))
	}
	if err := u.f.Chmod(0o644); err != nil {
		return fmt.Errorf("replace state of %s: %w", rev, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if why := s.inUse(rev, keeper.Keep()); why != "" {
		return fmt.Errorf("revision %s is %s: %w", rev, why, ErrInUse)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("replace state of %s: %w", rev, noSpace(err))
	}
	if err := os.Rename(u.f.Name(), dst); err != nil {
		return fmt.Errorf("replace state of %s: %w", rev, err)
	}
	u.f.Close()
	u.f = nil
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("replace state of %s: %w", rev, err)
	}
	pp, _ := s.revPath(rev, progressFile)
	if err := writeFileAtomic(pp, bytes.NewReader(pb), 0o644); err != nil {
		return fmt.Errorf("write progress of %s: %w", rev, err)
	}
	return nil
}

// CheckReplaceable is ReplaceState's check alone, for refusing an upload
// before its body is read; ReplaceState checks again.
func (s *Storage) CheckReplaceable(rev string, keeper Keeper) error {
	if err := ValidRevision(rev); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if why := s.inUse(rev, keeper.Keep()); why != "" {
		return fmt.Errorf("revision %s is %s: %w", rev, why, ErrInUse)
	}
	return nil
}

// RemoveReplaceable deletes revision rev as RemoveRevision does, unless
// rev may not be replaced (the rules of ReplaceState), which fails with
// ErrInUse and deletes nothing. keeper is asked under the storage lock,
// in the same critical section as the removal: an install of rev that
// starts meanwhile is either seen (its revision kept) or reads the state
// only after it is gone, never a trail deleted under it.
func (s *Storage) RemoveReplaceable(rev string, keeper Keeper) error {
	if err := ValidRevision(rev); err != nil {
		return fmt.Errorf("remove revision: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if why := s.inUse(rev, keeper.Keep()); why != "" {
		return fmt.Errorf("remove revision %s: revision is %s: %w", rev, why, ErrInUse)
	}
	if _, err := s.removeRevision(rev); err != nil {
		return fmt.Errorf("remove revision %s: %w", rev, err)
	}
	return nil
}

// inUse says why rev may not be replaced, "" when it may. Callers hold mu.
func (s *Storage) inUse(rev string, k GCKeep) string {
	switch {
	case rev == k.Running:
		return "running"
	case rev == k.Update:
		return "being installed or tried"
	case rev == k.Done:
		return "the committed revision"
	case rev == "0":
		return "the factory revision"
	}
	if cur, err := s.Current(); err == nil && cur == rev {
		return "trails/current"
	}
	if s.IsDone(rev) {
		return "installed (DONE)"
	}
	return ""
}
