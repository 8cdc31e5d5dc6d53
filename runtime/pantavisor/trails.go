package pantavisor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
)

// store is the daemon's access to /storage (objects and trails), serving
// the /steps, /objects and /storage/gc endpoints. It is a local adapter
// following the runtime/storage contract until that package is wired in.
type store struct {
	mu   sync.Mutex
	root string
	// validate checks a state JSON (parse + semantic checks).
	validate func([]byte) error
	// free returns the usable bytes on the storage file system.
	free func() (int64, error)
	// keep lists revisions GC must not delete (running, update, factory).
	keep func() []string
}

func openStore(root string) (*store, error) {
	for _, d := range []string{"objects", "trails", "trails/locals", "logs", "cache", "config", "boot"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("storage %s: %w", root, err)
		}
	}
	s := &store{root: root, keep: func() []string { return nil }}
	s.free = func() (int64, error) { return statfsFree(root, 0) }
	return s, nil
}

// statfsFree is the free space minus reservedPct % of the total.
func statfsFree(path string, reservedPct int) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	total := int64(st.Blocks) * st.Bsize
	free := int64(st.Bavail)*st.Bsize - total*int64(reservedPct)/100
	if free < 0 {
		free = 0
	}
	return free, nil
}

func (s *store) trail(rev string) string {
	return filepath.Join(s.root, "trails", filepath.FromSlash(rev))
}

func (s *store) resolve(rev string) (string, error) {
	if rev != "current" {
		return rev, nil
	}
	t, err := os.Readlink(filepath.Join(s.root, "trails", "current"))
	if err != nil {
		return "", fmt.Errorf("revision current: %w", ctrl.ErrNotFound)
	}
	return filepath.ToSlash(t), nil
}

// List returns every revision: trails/* (without current, locals, dot
// entries) and trails/locals/*.
func (s *store) List() ([]ctrl.Step, error) {
	var names []string
	ents, err := os.ReadDir(filepath.Join(s.root, "trails"))
	if err != nil {
		return nil, fmt.Errorf("list steps: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || n == "current" || n == "locals" || strings.HasPrefix(n, ".") {
			continue
		}
		names = append(names, n)
	}
	locals, _ := os.ReadDir(filepath.Join(s.root, "trails", "locals"))
	for _, e := range locals {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, "locals/"+e.Name())
		}
	}
	sort.Strings(names)
	out := make([]ctrl.Step, 0, len(names))
	for _, n := range names {
		info, err := os.Stat(s.trail(n))
		if err != nil {
			continue
		}
		st := ctrl.Step{Name: n, Date: info.ModTime()}
		if b, err := os.ReadFile(filepath.Join(s.trail(n), ".pv", "commitmsg")); err == nil {
			st.CommitMsg = string(b)
		}
		if b, err := os.ReadFile(filepath.Join(s.trail(n), ".pv", "progress")); err == nil {
			st.Progress = b
		}
		out = append(out, st)
	}
	return out, nil
}

// State returns trails/<rev>/.pvr/json.
func (s *store) State(rev string) ([]byte, error) {
	rev, err := s.resolve(rev)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.trail(rev), ".pvr", "json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("revision %s: %w", rev, ctrl.ErrNotFound)
	}
	return b, err
}

// Put stores a new local revision. The body is streamed to a temp file
// and validated before anything replaces the revision, so a bad state
// leaves storage as it was.
func (s *store) Put(rev string, r io.Reader) error {
	if err := ctrl.ValidRevision(rev); err != nil {
		return fmt.Errorf("%w: %w", ctrl.ErrInvalid, err)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, "trails"), ".put-*")
	if err != nil {
		return fmt.Errorf("revision %s: %w", rev, err)
	}
	defer os.Remove(tmp.Name())
	free, err := s.free()
	if err != nil {
		tmp.Close()
		return fmt.Errorf("revision %s: %w", rev, err)
	}
	n, err := io.Copy(tmp, io.LimitReader(r, free+1))
	if err == nil && n > free {
		err = ctrl.Errorf(ctrl.ErrNoSpace, "state JSON larger than the %d bytes available", free)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("revision %s: %w", rev, err)
	}
	data, err := os.ReadFile(tmp.Name())
	if err != nil {
		return fmt.Errorf("revision %s: %w", rev, err)
	}
	if err := s.validate(data); err != nil {
		return ctrl.Errorf(ctrl.ErrBadState, "Parser: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := s.trail(rev)
	for _, d := range []string{".pvr", ".pv"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("revision %s: %w", rev, err)
		}
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, ".pvr", "json")); err != nil {
		return fmt.Errorf("revision %s: %w", rev, err)
	}
	cfg, _ := json.Marshal(map[string]string{"ObjectsDir": filepath.Join(s.root, "objects")})
	if err := writeAtomic(filepath.Join(dir, ".pvr", "config"), cfg); err != nil {
		return fmt.Errorf("revision %s: %w", rev, err)
	}
	os.Remove(filepath.Join(dir, ".pv", "done"))
	return s.writeProgress(rev, progressJSON("NEW", "Update ready to be run"))
}

// progressJSON renders a progress object with upstream's fixed numbers.
func progressJSON(status, msg string) []byte {
	pct := map[string]int{"NEW": 0, "QUEUED": 5, "DOWNLOADING": 25, "INPROGRESS": 50, "TESTING": 75}[status]
	if status == "UPDATED" || status == "DONE" || status == "WONTGO" || status == "ERROR" {
		pct = 100
	}
	b, _ := json.Marshal(struct {
		Status   string `json:"status"`
		Msg      string `json:"status-msg"`
		Progress int    `json:"progress"`
		Retries  int    `json:"retries"`
	}{status, msg, pct, 0})
	return b
}

func (s *store) writeProgress(rev string, p []byte) error {
	dir := filepath.Join(s.trail(rev), ".pv")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("progress %s: %w", rev, err)
	}
	if err := writeAtomic(filepath.Join(dir, "progress"), p); err != nil {
		return fmt.Errorf("progress %s: %w", rev, err)
	}
	return nil
}

// Progress returns trails/<rev>/.pv/progress.
func (s *store) Progress(rev string) ([]byte, error) {
	rev, err := s.resolve(rev)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.trail(rev), ".pv", "progress"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("progress %s: %w", rev, ctrl.ErrNotFound)
	}
	return b, err
}

// SetCommitMsg writes trails/<rev>/.pv/commitmsg.
func (s *store) SetCommitMsg(rev string, msg []byte) error {
	rev, err := s.resolve(rev)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(s.trail(rev), ".pvr", "json")); err != nil {
		return fmt.Errorf("revision %s: %w", rev, ctrl.ErrNotFound)
	}
	if err := os.MkdirAll(filepath.Join(s.trail(rev), ".pv"), 0o755); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.trail(rev), ".pv", "commitmsg"), msg)
}

// --- objects ---

func (s *store) objectPath(sha string) string { return filepath.Join(s.root, "objects", sha) }

// List returns every object in objects/.
func (s *store) objects() ([]ctrl.Object, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "objects"))
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	out := []ctrl.Object{}
	for _, e := range ents {
		if !ctrl.IsSha(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, ctrl.Object{Sha: e.Name(), Size: info.Size()})
	}
	return out, nil
}

// Open opens objects/<sha>.
func (s *store) Open(sha string) (io.ReadCloser, error) {
	f, err := os.Open(s.objectPath(sha))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("object %s: %w", sha, ctrl.ErrNotFound)
	}
	return f, err
}

func fileSha(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// PutObject streams r into objects/<sha>: temp file, sha check, fsync,
// rename. A valid existing object is kept and the body drained.
func (s *store) PutObject(sha string, r io.Reader) error {
	if got, err := fileSha(s.objectPath(sha)); err == nil && got == sha {
		io.Copy(io.Discard, r)
		return nil
	}
	free, err := s.free()
	if err != nil {
		return fmt.Errorf("object %s: %w", sha, err)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, "objects"), sha+".tmp-*")
	if err != nil {
		return fmt.Errorf("object %s: %w", sha, err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, free+1))
	if err == nil && n > free {
		err = ctrl.Errorf(ctrl.ErrNoSpace, "object %s: larger than the %d bytes available", sha, free)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("object %s: %w", sha, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("object %s: %w: content has sha256 %s", sha, ctrl.ErrBadState, got)
	}
	if err := os.Rename(tmp.Name(), s.objectPath(sha)); err != nil {
		return fmt.Errorf("object %s: %w", sha, err)
	}
	return nil
}

// GC deletes revisions not kept and objects nobody links (spec §12).
func (s *store) GC() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	for _, k := range s.keep() {
		keep[k] = true
	}
	steps, err := s.List()
	if err != nil {
		return 0, err
	}
	var reclaimed int64
	for _, st := range steps {
		if keep[st.Name] {
			continue
		}
		if err := os.RemoveAll(s.trail(st.Name)); err != nil {
			return reclaimed, fmt.Errorf("gc %s: %w", st.Name, err)
		}
		os.RemoveAll(filepath.Join(s.root, "logs", filepath.FromSlash(st.Name)))
		os.RemoveAll(filepath.Join(s.root, "disks", "rev", filepath.FromSlash(st.Name)))
	}
	ents, err := os.ReadDir(filepath.Join(s.root, "objects"))
	if err != nil {
		return reclaimed, fmt.Errorf("gc: %w", err)
	}
	for _, e := range ents {
		if !ctrl.IsSha(e.Name()) {
			continue // in-flight uploads (<sha>.tmp-*) are not garbage
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok || st.Nlink > 1 {
			continue
		}
		if err := os.Remove(filepath.Join(s.root, "objects", e.Name())); err == nil {
			reclaimed += info.Size()
		}
	}
	return reclaimed, nil
}

// objectsAPI adapts store to ctrl.Objects (List is taken by the steps).
type objectsAPI struct{ s *store }

func (o objectsAPI) List() ([]ctrl.Object, error)           { return o.s.objects() }
func (o objectsAPI) Open(sha string) (io.ReadCloser, error) { return o.s.Open(sha) }
func (o objectsAPI) Put(sha string, r io.Reader) error      { return o.s.PutObject(sha, r) }
func (o objectsAPI) GC() (int64, error)                     { return o.s.GC() }
