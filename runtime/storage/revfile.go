package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

// Files of .pv/.
const (
	progressFile  = ".pv/progress"
	doneFile      = ".pv/done"
	commitMsgFile = ".pv/commitmsg"
)

// MaxCommitMsg is the largest commit message WriteCommitMsg accepts.
const MaxCommitMsg = 256

// maxProgressSize bounds the progress file read by Progress.
const maxProgressSize = 1 << 20

func (s *Storage) revPath(rev, rel string) (string, error) {
	if err := ValidRevision(rev); err != nil {
		return "", err
	}
	return filepath.Join(s.TrailDir(rev), filepath.FromSlash(rel)), nil
}

// StateJSON returns the bytes of trails/<rev>/.pvr/json. A missing file
// gives an error wrapping fs.ErrNotExist.
//
// It reads under the lock ReplaceState checks and renames under: an
// install marks its revision in flight, then reads it here, so a
// concurrent upload either sees the mark (ErrInUse) or lands before the
// read; it is never answered 200 and then lost.
func (s *Storage) StateJSON(rev string) ([]byte, error) {
	p, err := s.revPath(rev, stateFile)
	if err != nil {
		return nil, fmt.Errorf("read state json: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return os.ReadFile(p)
}

// WriteStateJSON atomically replaces trails/<rev>/.pvr/json with the
// content of r, creating the trail directory when needed. Nothing is
// left behind when r fails or the disk is full (ErrNoSpace).
func (s *Storage) WriteStateJSON(rev string, r io.Reader) error {
	p, err := s.revPath(rev, stateFile)
	if err != nil {
		return fmt.Errorf("write state json: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeFileAtomic(p, r, 0o644); err != nil {
		return fmt.Errorf("write state json of %s: %w", rev, err)
	}
	return nil
}

// Progress reads and parses trails/<rev>/.pv/progress. A missing file
// gives an error wrapping fs.ErrNotExist; a bad one wraps
// progress.ErrBadProgress.
func (s *Storage) Progress(rev string) (progress.Progress, error) {
	p, err := s.revPath(rev, progressFile)
	if err != nil {
		return progress.Progress{}, fmt.Errorf("read progress: %w", err)
	}
	b, err := readLimited(p, maxProgressSize)
	if err != nil {
		return progress.Progress{}, fmt.Errorf("read progress of %s: %w", rev, err)
	}
	pr, err := progress.Parse(b)
	if err != nil {
		return progress.Progress{}, fmt.Errorf("read progress of %s: %w", rev, err)
	}
	return pr, nil
}

// WriteProgress atomically replaces trails/<rev>/.pv/progress with p,
// creating the directories when needed.
func (s *Storage) WriteProgress(rev string, p progress.Progress) error {
	path, err := s.revPath(rev, progressFile)
	if err != nil {
		return fmt.Errorf("write progress: %w", err)
	}
	b, err := p.MarshalJSON()
	if err != nil {
		return fmt.Errorf("write progress of %s: %w", rev, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeFileAtomic(path, bytes.NewReader(b), 0o644); err != nil {
		return fmt.Errorf("write progress of %s: %w", rev, err)
	}
	return nil
}

// SetDone creates the empty trails/<rev>/.pv/done marker of a revision
// that reached DONE.
func (s *Storage) SetDone(rev string) error {
	p, err := s.revPath(rev, doneFile)
	if err != nil {
		return fmt.Errorf("set done: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeFileAtomic(p, strings.NewReader(""), 0o644); err != nil {
		return fmt.Errorf("set done of %s: %w", rev, err)
	}
	return nil
}

// IsDone reports whether revision rev has its .pv/done marker.
func (s *Storage) IsDone(rev string) bool {
	p, err := s.revPath(rev, doneFile)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// WriteCommitMsg atomically stores msg as trails/<rev>/.pv/commitmsg;
// messages over MaxCommitMsg bytes fail with ErrTooLarge.
func (s *Storage) WriteCommitMsg(rev string, msg []byte) error {
	p, err := s.revPath(rev, commitMsgFile)
	if err != nil {
		return fmt.Errorf("write commit message: %w", err)
	}
	if len(msg) > MaxCommitMsg {
		return fmt.Errorf("write commit message of %s: %d bytes, limit %d: %w", rev, len(msg), MaxCommitMsg, ErrTooLarge)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeFileAtomic(p, bytes.NewReader(msg), 0o644); err != nil {
		return fmt.Errorf("write commit message of %s: %w", rev, err)
	}
	return nil
}

// CommitMsg returns the commit message of rev ("" without error when
// there is none), at most MaxCommitMsg bytes.
func (s *Storage) CommitMsg(rev string) (string, error) {
	p, err := s.revPath(rev, commitMsgFile)
	if err != nil {
		return "", fmt.Errorf("read commit message: %w", err)
	}
	b, err := readLimited(p, MaxCommitMsg)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil && !errors.Is(err, ErrTooLarge) {
		return "", fmt.Errorf("read commit message of %s: %w", rev, err)
	}
	return string(b), nil
}

// readLimited reads at most max bytes of path; a longer file returns its
// first max bytes and an error wrapping ErrTooLarge.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return b[:max], fmt.Errorf("%s: more than %d bytes: %w", path, max, ErrTooLarge)
	}
	return b, nil
}

// SetCurrent atomically points trails/current at rev with a relative
// symlink.
func (s *Storage) SetCurrent(rev string) error {
	if err := ValidRevision(rev); err != nil {
		return fmt.Errorf("set current: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := s.trailsDir()
	tmp := filepath.Join(dir, ".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(rev, tmp); err != nil {
		return fmt.Errorf("set current %s: %w", rev, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "current")); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("set current %s: %w", rev, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("set current %s: %w", rev, err)
	}
	return nil
}

// Current returns the revision trails/current points at. Without the
// link the error wraps fs.ErrNotExist.
func (s *Storage) Current() (string, error) {
	l, err := os.Readlink(filepath.Join(s.trailsDir(), "current"))
	if err != nil {
		return "", fmt.Errorf("read current revision: %w", err)
	}
	// Accept absolute links written by other tools.
	if filepath.IsAbs(l) {
		if rel, err := filepath.Rel(s.trailsDir(), l); err == nil {
			l = rel
		}
	}
	rev := filepath.ToSlash(filepath.Clean(l))
	if err := ValidRevision(rev); err != nil {
		return "", fmt.Errorf("read current revision: %w", err)
	}
	return rev, nil
}

// RemoveRevision deletes revision rev: its trail, LogDir/<rev> and
// disks/rev/<rev>. Each tree is first renamed aside, so a crash never
// leaves a half-deleted trail that looks like a revision. Removing an
// absent revision is not an error. It does not check whether rev is in
// use; GC does.
func (s *Storage) RemoveRevision(rev string) error {
	if err := ValidRevision(rev); err != nil {
		return fmt.Errorf("remove revision: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.removeRevision(rev); err != nil {
		return fmt.Errorf("remove revision %s: %w", rev, err)
	}
	return nil
}

// revisionTrees lists the directories that belong to revision rev.
func (s *Storage) revisionTrees(rev string) []string {
	r := filepath.FromSlash(rev)
	return []string{s.TrailDir(rev), filepath.Join(s.LogDir, r), filepath.Join(s.root, "disks", "rev", r)}
}

// removeRevision deletes the trees of rev and returns the bytes of the
// files whose last link went away.
func (s *Storage) removeRevision(rev string) (int64, error) {
	var freed int64
	for _, dir := range s.revisionTrees(rev) {
		n, err := removeAside(dir)
		freed += n
		if err != nil {
			return freed, err
		}
	}
	return freed, nil
}

// removeAside renames dir aside, then deletes it, so a crash never
// leaves a half-deleted tree under its name; it returns the bytes of the
// files whose last link went away. An absent dir is not an error.
func removeAside(dir string) (int64, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	aside := filepath.Join(filepath.Dir(dir), ".remove-"+filepath.Base(dir))
	if _, err := removeTree(aside); err != nil { // leftover of a crashed removal
		return 0, err
	}
	if err := os.Rename(dir, aside); err != nil {
		return 0, err
	}
	return removeTree(aside)
}
